//! The embedded blocking AMQP publisher (`courier_core::drivers::amqp_blocking`)
//! over a std socket through `embedded-io-adapters`, against a real
//! RabbitMQ: the same code a device runs with its own TCP stack.

use std::net::TcpStream;

use courier_core::amqp::{Options, Properties};
use courier_core::drivers::amqp_blocking::{AmqpError, AmqpPublisher};
use courier_core::drivers::Clock;
use courier_core::time::Instant;
use courier_tests::RabbitMq;
use embedded_io_adapters::std::FromStd;

struct StdClock(std::time::Instant);

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

fn publisher(
    vh: &str,
    password: &str,
) -> AmqpPublisher<FromStd<TcpStream>, StdClock, [u8; 4096], [u8; 4096]> {
    let broker = RabbitMq::shared();
    let socket = TcpStream::connect(("127.0.0.1", broker.amqp_port())).unwrap();
    AmqpPublisher::new(
        FromStd::new(socket),
        StdClock(std::time::Instant::now()),
        Options::new("guest", password, vh).unwrap(),
        [0u8; 4096],
        [0u8; 4096],
    )
}

#[test]
fn the_blocking_driver_publishes_with_confirms_to_rabbitmq() {
    let broker = RabbitMq::shared();
    let vh = broker.vhost("embedded");
    let mut p = publisher(&vh, "guest");
    let tune = p.connect().unwrap();
    assert_eq!(
        tune.frame_max, 4096,
        "frame-max capped to the receive buffer"
    );
    p.declare_queue("telemetry", true).unwrap();
    for i in 0..200u32 {
        let body = format!("{{\"seq\":{i},\"celsius\":21.5}}");
        let props = Properties::default()
            .content_type("application/json")
            .persistent();
        p.publish("", "telemetry", &props, body.as_bytes()).unwrap();
    }
    // A body larger than one frame is split at frame-max.
    p.publish("", "telemetry", &Properties::default(), &[7u8; 3000])
        .unwrap();
    // Unroutable: returned, not reported as sent.
    assert!(matches!(
        p.publish("amq.direct", "nowhere", &Properties::default(), b"x"),
        Err(AmqpError::Returned(_))
    ));
    assert_eq!(broker.wait_queue(&vh, "telemetry", |c| c.0 == 201).0, 201);
}

#[test]
fn the_blocking_driver_reports_a_refused_login() {
    let vh = RabbitMq::shared().vhost("embedded-auth");
    let mut p = publisher(&vh, "wrong");
    match p.connect() {
        Err(AmqpError::Amqp(courier_core::amqp::Error::AccessRefused(_))) => {}
        other => panic!("{other:?}"),
    }
}
