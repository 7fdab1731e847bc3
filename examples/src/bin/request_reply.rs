//! NATS request/reply: a service answers on `svc.temperature` in a queue
//! group (add more instances and the load spreads), and a client asks it
//! with a timeout. Every request shares one inbox subscription.
//!
//! ```text
//! cargo run -p courier-examples --bin request_reply -- nats://127.0.0.1:4222 [requests]
//! ```

use std::process::ExitCode;
use std::time::Duration;

use courier::nats::{ConnectOptions, Error};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_string());
    let requests: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let outcome = courier::run(async move {
        let service = ConnectOptions::new()
            .name("temperature-service")
            .connect([url.as_str()])
            .await?;
        let mut incoming = service
            .queue_subscribe("svc.temperature", "workers")
            .await?;
        service.flush().await?;
        let responder = service.clone();
        courier::spawn(async move {
            let mut served = 0u32;
            while let Some(req) = incoming.next().await {
                let room = String::from_utf8_lossy(&req.payload).into_owned();
                if let Some(reply) = req.reply() {
                    let answer = format!("{room}: {:.1} °C", 20.0 + served as f64 / 10.0);
                    if responder.publish(reply, answer).await.is_err() {
                        break;
                    }
                }
                served += 1;
            }
        });

        let client = ConnectOptions::new()
            .name("dashboard")
            .request_timeout(Duration::from_secs(2))
            .connect([url.as_str()])
            .await?;
        for i in 0..requests {
            let started = std::time::Instant::now();
            let reply = client
                .request("svc.temperature", format!("room-{i}"))
                .await?;
            println!(
                "client: {} (in {} µs)",
                String::from_utf8_lossy(&reply.payload),
                started.elapsed().as_micros()
            );
        }
        match client.request("svc.nobody-home", "ping").await {
            Err(Error::NoResponders { subject }) => {
                println!("client: no responders on {subject}, as expected")
            }
            other => println!("client: unexpected answer from svc.nobody-home: {other:?}"),
        }
        client.drain().await?;
        service.drain().await?;
        Ok::<_, Error>(())
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("request_reply: {e}");
            ExitCode::FAILURE
        }
    }
}
