//! The epoll fallback: when io_uring cannot be set up, `BackendChoice::Auto`
//! falls back to epoll, logs it once at warn level, and the same NATS
//! scenario runs.
//!
//! io_uring is refused here the way a kernel refuses it: a ring larger than
//! the kernel allows (EINVAL from io_uring_setup), since a seccomp filter
//! (EPERM) cannot be installed from a test.

use std::sync::Mutex;

use courier::{Backend, BackendChoice, Runtime};
use courier_tests::NatsServer;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record) {
        if record.level() <= log::Level::Warn {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Capture = Capture;

#[test]
fn refused_io_uring_falls_back_to_epoll_logs_once_and_runs_pub_sub() {
    log::set_logger(&LOGGER).unwrap();
    log::set_max_level(log::LevelFilter::Warn);

    // More entries than IORING_MAX_ENTRIES: io_uring_setup fails.
    let refused = || {
        Runtime::builder()
            .backend(BackendChoice::Auto)
            .uring_entries(1 << 20)
            .build()
            .unwrap()
    };
    let forced = Runtime::builder()
        .backend(BackendChoice::Uring)
        .uring_entries(1 << 20)
        .build();
    assert!(
        forced.is_err(),
        "forcing io_uring must not fall back silently"
    );

    let rt = refused();
    assert_eq!(rt.backend(), Backend::Epoll);
    let again = refused();
    assert_eq!(again.backend(), Backend::Epoll);
    let warnings = WARNINGS.lock().unwrap().clone();
    let fallbacks: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("falls back to epoll"))
        .collect();
    assert_eq!(fallbacks.len(), 1, "logged once: {warnings:?}");

    let server = NatsServer::start();
    rt.block_on(async {
        assert_eq!(courier::current_backend(), Some(Backend::Epoll));
        let client = courier::nats::connect([server.url()]).await.unwrap();
        let mut sub = client.subscribe("fallback.*").await.unwrap();
        for i in 0..100 {
            client
                .publish(&format!("fallback.{i}"), i.to_string())
                .await
                .unwrap();
        }
        for i in 0..100 {
            let msg = sub.next().await.unwrap();
            assert_eq!(msg.subject(), format!("fallback.{i}"));
        }
        let stats = courier::stats();
        assert!(stats.reads > 0 && stats.writes > 0);
        assert_eq!(stats.submissions, 0, "epoll submits nothing to a ring");
    });
}
