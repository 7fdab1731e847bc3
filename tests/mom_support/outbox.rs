//! Steps the durable-outbox tests share (mom_nats.rs, mom_amqp.rs): a
//! sender PROCESS that spools messages and is killed with SIGKILL, a stop
//! with the broker gone, the next sender replaying a spool, and draining
//! the numbers that arrived.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use courier::mom::{Error, Sender};

use super::{receiver, sender};

/// Environment variable that turns the ignored `outbox_child_sender` test
/// of a test binary into the child side of [`ChildSender`]:
/// `<uri>|<key>|<from>|<to>`.
pub const CHILD_ENV: &str = "MOM_OUTBOX_CHILD";

/// Body of each binary's ignored `outbox_child_sender` test (does nothing
/// unless [`CHILD_ENV`] is set): connects a sender on the URI (with its
/// `outbox=`), says `READY`, waits for a line on stdin, sends the JSON
/// numbers `from..to`, says `SPOOLED <sent>` and waits to be killed.
pub fn child_sender_main() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let (uri, key) = (parts[0], parts[1]);
    let (from, to): (u32, u32) = (parts[2].parse().unwrap(), parts[3].parse().unwrap());
    courier::run(async {
        let s = sender(uri, key).await;
        println!("READY");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).unwrap();
        for i in from..to {
            s.send(&i, None).await.unwrap();
        }
        println!("SPOOLED {}", s.sent());
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

/// A sender in a child process (this test binary, running its ignored
/// `outbox_child_sender` test), killed with SIGKILL by [`ChildSender::kill`]
/// or when dropped.
pub struct ChildSender {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl ChildSender {
    /// Starts the child and waits until its sender is connected.
    pub fn spawn(uri: &str, key: &str, numbers: std::ops::Range<u32>) -> ChildSender {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "outbox_child_sender", "--nocapture"])
            .env(
                CHILD_ENV,
                format!("{uri}|{key}|{}|{}", numbers.start, numbers.end),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut c = ChildSender { child, out };
        c.wait_for("READY");
        c
    }

    fn wait_for(&mut self, what: &str) -> String {
        loop {
            let mut line = String::new();
            assert!(
                self.out.read_line(&mut line).unwrap() > 0,
                "the child sender ended before {what}"
            );
            if line.starts_with(what) {
                return line;
            }
        }
    }

    /// Lets the child send its numbers; returns once it has (its
    /// `Sender::sent()` count, which the caller asserts).
    pub fn send_all(&mut self) -> u64 {
        writeln!(self.child.stdin.as_mut().unwrap(), "go").unwrap();
        let line = self.wait_for("SPOOLED");
        line.trim()
            .trim_start_matches("SPOOLED ")
            .parse()
            .unwrap_or_else(|_| panic!("child said {line:?}"))
    }

    /// SIGKILL: no stop, no flush, no destructor runs in the child.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildSender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `stop` with a short deadline while the broker is gone: the sender's
/// `n` spooled messages are reported unconfirmed, naming the spool.
pub async fn expect_unconfirmed(s: &Sender, n: usize, dir: &str) {
    match s.stop(Duration::from_millis(500)).await {
        Err(Error::Unconfirmed {
            remaining, spool, ..
        }) => assert_eq!((remaining, spool.as_str()), (n, dir)),
        other => panic!("expected Unconfirmed {{ remaining: {n} }}, got {other:?}"),
    }
}

/// The next sender on a spool (`uri` names it with `outbox=`) delivers
/// what an earlier sender left there: its `stop` confirms everything, and
/// none of it counts as this sender's own sends.
pub async fn replay_spool(uri: &str, key: &str) {
    let s = sender(uri, key).await;
    s.stop(Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("the spool of {uri} was not delivered: {e}"));
    assert_eq!(s.sent(), 0, "replays are not this sender's sends");
}

/// Receives `n` JSON numbers from the pt2pt receiver behind `uri`
/// (acking each), checks nothing more comes within 300 ms, and returns
/// them sorted.
pub async fn drain_numbers(uri: &str, key: &str, n: usize) -> Vec<u32> {
    let mut r = receiver("drain", uri, key).await;
    let mut got = Vec::new();
    while got.len() < n {
        let d = r
            .receive(Some(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("only {} of {n} arrived: {got:?}", got.len()));
        got.push(d.decode::<u32>().unwrap());
        d.ack().await.unwrap();
    }
    assert!(
        r.receive(Some(Duration::from_millis(300)))
            .await
            .unwrap()
            .is_none(),
        "more than {n} messages"
    );
    r.stop().await;
    got.sort_unstable();
    got
}
