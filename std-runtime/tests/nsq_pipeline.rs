//! Several tasks publishing through one NSQ `Producer` share its connection:
//! their PUBs are pipelined (nsqd answers in order) and every publisher gets
//! its own answer. Runs against a real nsqd.

use std::time::Instant;

use courier::nsq::{Config, Producer};
use courier_tests::Nsqd;

const TASKS: usize = 16;
const PER_TASK: usize = 250;

fn topic_message_count(nsqd: &Nsqd, topic: &str) -> u64 {
    let body = nsqd.http_get(&format!("/stats?format=json&topic={topic}"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("stats JSON");
    let v = v.get("data").cloned().unwrap_or(v);
    v["topics"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["topic_name"] == topic))
        .map(|t| t["message_count"].as_u64().unwrap_or(0))
        .unwrap_or(0)
}

/// Publishes `TASKS * PER_TASK` messages from `tasks` tasks, each awaiting
/// every publish before the next; returns (messages/s, writes issued).
async fn publish_from(producer: &Producer, topic: &str, tasks: usize) -> (f64, u64) {
    let per_task = TASKS * PER_TASK / tasks;
    let writes_before = courier::stats().writes;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let producer = producer.clone();
            let topic = topic.to_string();
            courier::spawn(async move {
                for i in 0..per_task {
                    let body = format!("task {t} message {i}");
                    producer
                        .publish(&topic, body.as_bytes())
                        .await
                        .unwrap_or_else(|e| panic!("task {t} publish {i}: {e}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("publisher task");
    }
    let rate = (TASKS * PER_TASK) as f64 / start.elapsed().as_secs_f64();
    (rate, courier::stats().writes - writes_before)
}

#[test]
fn concurrent_publishers_share_one_connection_and_each_gets_its_answer() {
    let nsqd = Nsqd::start();
    let total = (TASKS * PER_TASK) as u64;
    courier::run(async {
        let producer = Producer::new([nsqd.tcp_addr()], Config::default()).unwrap();
        producer.connect().await.unwrap();

        let (alone_rate, alone_writes) = publish_from(&producer, "pipeline_one", 1).await;
        let (pipelined_rate, pipelined_writes) =
            publish_from(&producer, "pipeline_many", TASKS).await;
        // Not asserted (no timed assertions): shown with --nocapture.
        println!(
            "{total} PUBs of one task: {alone_rate:.0} msg/s, {alone_writes} writes; \
             {TASKS} tasks: {pipelined_rate:.0} msg/s, {pipelined_writes} writes"
        );

        // One task waits for each OK: one write per PUB.
        assert_eq!(alone_writes, total);
        // Sixteen tasks keep up to sixteen PUBs in flight: the writer sends
        // the ones queued meanwhile together.
        assert!(
            pipelined_writes < total,
            "{pipelined_writes} writes for {total} pipelined PUBs: nothing was batched"
        );
        producer.stop().await;
        assert_eq!(courier::stats().connects, 1, "all of it on one connection");
    });
    assert_eq!(topic_message_count(&nsqd, "pipeline_one"), total);
    assert_eq!(topic_message_count(&nsqd, "pipeline_many"), total);
}
