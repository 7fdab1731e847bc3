//! NSQ pipeline: a producer publishes a mix of order events to nsqd, and a
//! consumer classifies each message and dispatches it to the handler of its
//! class (the nsqs seed's classification-based dispatch), with RDY managed
//! across connections and failures requeued with backoff.
//!
//! ```text
//! cargo run -p courier-examples --bin nsq_pipeline -- 127.0.0.1:4150 [events]
//! ```

use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use courier::nsq::{Config, Consumer, Handler, HandlerError, Message, Producer, ServerNodes};

/// What a message is about, decided from its body.
#[derive(Debug, Clone, Copy)]
enum Class {
    Created,
    Paid,
}

/// Counts per class; `paid` fails once per order to show REQ redelivery.
#[derive(Default)]
struct Orders {
    created: Cell<u32>,
    paid: Cell<u32>,
    unknown: Cell<u32>,
    retried: Cell<u32>,
}

/// The consumer's handler: shares the tally with `main`.
struct Billing(Rc<Orders>);

impl std::ops::Deref for Billing {
    type Target = Orders;
    fn deref(&self) -> &Orders {
        &self.0
    }
}

impl Handler for Billing {
    type Class = Class;
    /// The order id, parsed once during classification.
    type Context = u32;

    fn classify(&self, message: &Message) -> Option<(Class, u32)> {
        let text = std::str::from_utf8(message.body()).ok()?;
        let (kind, id) = text.split_once(':')?;
        let id = id.parse().ok()?;
        match kind {
            "created" => Some((Class::Created, id)),
            "paid" => Some((Class::Paid, id)),
            _ => None,
        }
    }

    async fn handle(
        &self,
        class: Class,
        order: u32,
        message: &Message,
    ) -> Result<(), HandlerError> {
        match class {
            Class::Created => {
                self.created.set(self.created.get() + 1);
                println!("consumer: order {order} created");
            }
            Class::Paid if message.attempts() == 1 => {
                // A transient failure: nsqd redelivers with attempts + 1.
                self.retried.set(self.retried.get() + 1);
                return Err(HandlerError::requeue_after(
                    "payment service busy",
                    Duration::from_millis(100),
                ));
            }
            Class::Paid => {
                self.paid.set(self.paid.get() + 1);
                println!(
                    "consumer: order {order} paid (attempt {})",
                    message.attempts()
                );
            }
        }
        Ok(())
    }

    async fn default_handler(&self, message: &Message) -> Result<(), HandlerError> {
        self.unknown.set(self.unknown.get() + 1);
        println!(
            "consumer: unclassified {:?} finished without handling",
            String::from_utf8_lossy(message.body())
        );
        Ok(())
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let nsqd = args.next().unwrap_or_else(|| "127.0.0.1:4150".to_string());
    let orders: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let outcome = courier::run(async move {
        let producer = Producer::new([nsqd.as_str()], Config::default())?;
        let mut bodies: Vec<String> = Vec::new();
        for id in 0..orders {
            bodies.push(format!("created:{id}"));
            bodies.push(format!("paid:{id}"));
        }
        bodies.push("refunded:???".to_string());
        // One MPUB: nsqd answers OK once it has all of them.
        producer.multi_publish("orders", &bodies).await?;
        println!("producer: {} events published with one MPUB", bodies.len());

        let tally = Rc::new(Orders::default());
        let consumer = Consumer::builder(
            [("orders", "billing")],
            ServerNodes::new([nsqd.as_str()]),
            4,
            Billing(tally.clone()),
        )
        .start()
        .await?;
        for _ in 0..200 {
            if tally.created.get() + tally.paid.get() + tally.unknown.get() > 2 * orders {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        consumer.stop().await;
        producer.stop().await;
        println!(
            "consumer: {} created, {} paid ({} retried once), {} unclassified",
            tally.created.get(),
            tally.paid.get(),
            tally.retried.get(),
            tally.unknown.get()
        );
        Ok::<_, courier::nsq::Error>(
            tally.created.get() == orders && tally.paid.get() == orders && tally.unknown.get() == 1,
        )
    });
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!(
                "nsq_pipeline: not every event was handled (is the topic shared with another run?)"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("nsq_pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}
