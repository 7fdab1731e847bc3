//! A borrowed-delivery handler that settles later: it answers
//! `Settle::Nothing`, keeps `Connection::unsettled(&delivery)` tokens, and
//! acks / rejects / nacks them afterwards. The broker's own counts show
//! each answer (unacked until settled, requeued on nack, gone on ack).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use courier::amqp::{Settle, Unsettled};
use courier_core::amqp::{ConsumeFlags, DeliveryKind};
use courier_tests::alloc_count::thread_allocations;
use courier_tests::amqp_setup::{confirmed_queue, publish_numbers};
use courier_tests::RabbitMq;

fn broker() -> &'static RabbitMq {
    RabbitMq::shared()
}

type Kept = Rc<RefCell<Vec<(u32, bool, Unsettled)>>>;

async fn wait_for(kept: &Kept, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while kept.borrow().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(kept.borrow().len(), n, "deliveries reached the handler");
}

#[test]
fn a_handler_settles_later_with_unsettled_tokens_and_the_broker_sees_each_answer() {
    let vh = broker().vhost("settlelater");
    courier::run(async {
        let (conn, ch) = confirmed_queue(&broker().url(&vh), "q").await;
        publish_numbers(&ch, "q", 0..30).await;
        ch.qos(100).await.unwrap();
        let kept: Kept = Rc::new(RefCell::new(Vec::with_capacity(64)));
        // Allocations made while taking the tokens and settling them.
        let allocs = Rc::new(Cell::new(0u64));
        let (k, handle, a) = (kept.clone(), conn.clone(), allocs.clone());
        let _consumer = ch
            .consume_with("q", ConsumeFlags::default(), move |d| {
                let n = u32::from_be_bytes(d.body.as_slice().unwrap().try_into().unwrap());
                let redelivered = matches!(
                    d.kind,
                    DeliveryKind::Deliver {
                        redelivered: true,
                        ..
                    }
                );
                let before = thread_allocations();
                let token = handle.unsettled(d).expect("a delivery has a tag");
                a.set(a.get() + thread_allocations() - before);
                k.borrow_mut().push((n, redelivered, token));
                Settle::Nothing
            })
            .await
            .unwrap();
        wait_for(&kept, 30).await;
        conn.flush().await.unwrap();
        let counts = broker().wait_queue(&vh, "q", |c| c.1 == 30);
        assert_eq!(
            (counts.0, counts.1),
            (0, 30),
            "all 30 unacked until settled"
        );

        let first: Vec<_> = kept.borrow_mut().drain(..).collect();
        for (n, redelivered, token) in first {
            assert!(!redelivered);
            let before = thread_allocations();
            match n {
                0..10 => token.ack().unwrap(),
                10..20 => token.reject(false).unwrap(),
                _ => token.nack(true).unwrap(),
            }
            allocs.set(allocs.get() + thread_allocations() - before);
        }
        conn.flush().await.unwrap();
        // The 10 nacked with requeue come back, flagged redelivered.
        wait_for(&kept, 10).await;
        let again: Vec<_> = kept.borrow_mut().drain(..).collect();
        let mut ns: Vec<u32> = again.iter().map(|(n, _, _)| *n).collect();
        ns.sort();
        assert_eq!(ns, (20..30).collect::<Vec<_>>());
        assert!(again.iter().all(|(_, r, _)| *r), "redelivered flag set");
        let counts = broker().wait_queue(&vh, "q", |c| c.1 == 10);
        assert_eq!(
            (counts.0, counts.1),
            (0, 10),
            "only the redelivered ones are unacked"
        );
        for (_, _, token) in again {
            token.ack().unwrap();
        }
        assert_eq!(
            allocs.get(),
            0,
            "taking and settling tokens allocates nothing"
        );
        conn.flush().await.unwrap();
        let counts = broker().wait_queue(&vh, "q", |c| c == (0, 0, 1));
        assert_eq!(
            counts,
            (0, 0, 1),
            "everything settled, consumer still there"
        );
        conn.close().await.unwrap();
    });
}
