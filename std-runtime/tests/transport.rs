//! The transport's two backends move the same bytes: an echo peer on a
//! loopback port sends back what each backend writes.

use std::io::{Read, Write};
use std::net::TcpListener;

use bytes::Bytes;
use courier::transport::{connect, ReadBuffer};
use courier::{Backend, BackendChoice, Runtime};

fn echo_peer() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => s.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    addr
}

fn echo_scenario(choice: BackendChoice) -> Backend {
    let rt = Runtime::builder().backend(choice).build().unwrap();
    let backend = rt.backend();
    rt.block_on(async {
        let addr = echo_peer();
        let (mut rd, mut wr) = connect(addr).await.unwrap();
        let (res, _buf) = wr.write_all(b"hello ".to_vec()).await;
        res.unwrap();
        let parts = vec![
            Bytes::from_static(b"vectored "),
            Bytes::from(vec![b'x'; 3000]),
        ];
        let (res, parts) = wr.write_vectored_all(parts).await;
        res.unwrap();
        assert!(parts.is_empty());
        let mut rx = ReadBuffer::new(8192);
        while rx.len() < 6 + 9 + 3000 {
            let n = rd.read(&mut rx).await.unwrap();
            assert!(n > 0, "peer closed early");
        }
        assert_eq!(&rx.data()[..15], b"hello vectored ");
        assert!(rx.data()[15..].iter().all(|&b| b == b'x'));
        wr.shutdown().unwrap();
        assert_eq!(rx.len(), 3015);
        let stats = courier::stats();
        assert_eq!(stats.bytes_written, 3015);
        assert_eq!(stats.bytes_read, 3015);
        assert!(stats.reads >= 1 && stats.writes >= 2);
        assert_eq!(stats.connects, 1);
    });
    backend
}

#[test]
fn epoll_backend_echoes() {
    assert_eq!(echo_scenario(BackendChoice::Epoll), Backend::Epoll);
}

#[test]
fn auto_backend_echoes() {
    // Whatever auto picks (io_uring here when the kernel allows it) behaves the same.
    echo_scenario(BackendChoice::Auto);
}

#[test]
fn uring_backend_echoes_when_available() {
    if Runtime::builder()
        .backend(BackendChoice::Uring)
        .build()
        .is_err()
    {
        eprintln!("io_uring refused on this machine; the epoll test covers the transport");
        return;
    }
    assert_eq!(echo_scenario(BackendChoice::Uring), Backend::Uring);
}

// ---- io_uring variants: registered buffers and zero-copy send ----

use courier::Transport;

/// Bytes that reveal a lost, doubled or reordered chunk: position mod 251.
fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + seed) % 251) as u8).collect()
}

/// Builds a runtime for an io_uring variant; `None` when io_uring itself is
/// refused here (the epoll test covers the transport then).
fn variant_runtime(choice: BackendChoice) -> Option<Runtime> {
    match Runtime::builder().backend(choice).build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("io_uring refused on this machine ({e}); skipping {choice:?}");
            None
        }
    }
}

/// Small, large (many fixed-buffer fills / above the zero-copy threshold)
/// and vectored writes, read back concurrently through the echo peer; every
/// byte must come back in order. Returns the counters of the run.
fn variant_echo_scenario(rt: &Runtime) -> courier::Stats {
    const LARGE: usize = 1024 * 1024 + 17;
    let small = b"0123456789abcdef".to_vec();
    let large = pattern(LARGE, 3);
    let head = pattern(100, 7);
    let body = pattern(300 * 1024, 11);
    let mut expected = small.clone();
    expected.extend_from_slice(&large);
    expected.extend_from_slice(&head);
    expected.extend_from_slice(&body);
    expected.extend_from_slice(b"\r\n");
    expected.extend_from_slice(b"tail");
    let total = expected.len();
    rt.block_on(async move {
        let addr = echo_peer();
        let (mut rd, mut wr) = connect(addr).await.unwrap();
        // The peer echoes while we write, so read at the same time or both
        // sides stall on full socket buffers.
        let writer = courier::spawn(async move {
            let (res, _) = wr.write_all(small).await;
            res.unwrap();
            let small_writes = courier::stats();
            let (res, back) = wr.write_all(large).await;
            res.unwrap();
            assert_eq!(back.len(), LARGE, "the buffer comes back whole");
            let parts = vec![
                Bytes::from(head),
                Bytes::from(body),
                Bytes::from_static(b"\r\n"),
            ];
            let (res, parts) = wr.write_vectored_all(parts).await;
            res.unwrap();
            assert!(parts.is_empty());
            let (res, _) = wr.write_all(b"tail".to_vec()).await;
            res.unwrap();
            (wr, small_writes)
        });
        let mut rx = ReadBuffer::new(64 * 1024);
        let mut received = Vec::with_capacity(total);
        while received.len() < total {
            let n = rd.read(&mut rx).await.unwrap();
            assert!(
                n > 0,
                "peer closed after {} of {total} bytes",
                received.len()
            );
            received.extend_from_slice(rx.data());
            rx.consume(rx.len());
        }
        let (mut wr, small_writes) = writer.await.unwrap();
        wr.shutdown().unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(
            received == expected,
            "echoed bytes differ from the written ones"
        );
        // The 16-byte write never takes the zero-copy path.
        assert_eq!(small_writes.zero_copy_sends, 0);
        let stats = courier::stats();
        assert_eq!(stats.bytes_written, total as u64);
        assert_eq!(stats.bytes_read, total as u64);
        assert_eq!(stats.connects, 1);
        stats
    })
}

#[test]
fn uring_fixed_buffers_echo_exact_bytes() {
    let Some(rt) = variant_runtime(BackendChoice::UringFixed) else {
        return;
    };
    assert_eq!(rt.backend(), Backend::Uring);
    let transport = rt.transport();
    let stats = variant_echo_scenario(&rt);
    if transport == Transport::Uring {
        eprintln!("buffer registration refused here; ran plain io_uring (logged)");
        assert_eq!(stats.fixed_buffer_ops, 0);
        return;
    }
    assert_eq!(transport, Transport::UringFixedBuffers);
    // 1 MiB through a 128 KiB registered buffer: split over many
    // WRITE_FIXED completions, each refill waiting for the previous one.
    let min_fixed_writes = (1024 * 1024 / courier::transport::FIXED_BUFFER_SIZE) as u64;
    assert!(
        stats.fixed_buffer_ops > min_fixed_writes,
        "{stats:?}: expected at least {min_fixed_writes} fixed writes plus fixed reads"
    );
    assert!(stats.writes >= min_fixed_writes);
    assert_eq!(stats.zero_copy_sends, 0);
}

#[test]
fn uring_zero_copy_send_echoes_exact_bytes() {
    let Some(rt) = variant_runtime(BackendChoice::UringZeroCopy) else {
        return;
    };
    assert_eq!(rt.backend(), Backend::Uring);
    let transport = rt.transport();
    let stats = variant_echo_scenario(&rt);
    if transport == Transport::Uring {
        eprintln!("SEND_ZC refused here; ran plain io_uring (logged)");
        assert_eq!(stats.zero_copy_sends, 0);
        return;
    }
    assert_eq!(transport, Transport::UringZeroCopySend);
    // The 1 MiB write and the 300 KiB vectored one go zero-copy (more than
    // once each if the kernel accepted them in parts); the small ones do not.
    assert!(stats.zero_copy_sends >= 2, "{stats:?}");
    assert!(stats.writes > stats.zero_copy_sends, "{stats:?}");
    assert_eq!(stats.fixed_buffer_ops, 0);
}

#[test]
fn uring_variants_pass_the_plain_echo_scenario() {
    for choice in [BackendChoice::UringFixed, BackendChoice::UringZeroCopy] {
        if variant_runtime(choice).is_none() {
            return;
        }
        assert_eq!(echo_scenario(choice), Backend::Uring);
    }
}

/// A write far larger than the socket buffers while the peer reads slowly:
/// the kernel takes it in several completions (short writes), and each
/// variant must resume exactly where the previous completion stopped.
fn split_write_scenario(choice: BackendChoice) {
    let Some(rt) = variant_runtime(choice) else {
        return;
    };
    let data = pattern(8 * 1024 * 1024, 5);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });
    let sent = data.clone();
    rt.block_on(async move {
        let (_rd, mut wr) = connect(addr).await.unwrap();
        let (res, back) = wr.write_all(sent).await;
        res.unwrap();
        assert_eq!(back.len(), 8 * 1024 * 1024);
        wr.shutdown().unwrap();
    });
    let got = peer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "{choice:?}: bytes differ after a split write");
}

#[test]
fn uring_fixed_buffers_resume_split_writes() {
    split_write_scenario(BackendChoice::UringFixed);
}

#[test]
fn uring_zero_copy_send_resumes_split_writes() {
    split_write_scenario(BackendChoice::UringZeroCopy);
}

#[test]
fn transport_names_parse_and_report() {
    assert_eq!(
        "uring-fixed".parse::<BackendChoice>().unwrap(),
        BackendChoice::UringFixed
    );
    assert_eq!(
        "uring-zc".parse::<BackendChoice>().unwrap(),
        BackendChoice::UringZeroCopy
    );
    assert_eq!(
        "epoll".parse::<BackendChoice>().unwrap(),
        BackendChoice::Epoll
    );
    assert_eq!(
        "uring".parse::<BackendChoice>().unwrap(),
        BackendChoice::Uring
    );
    assert_eq!(
        "auto".parse::<BackendChoice>().unwrap(),
        BackendChoice::Auto
    );
    assert!("uring-turbo".parse::<BackendChoice>().is_err());
    assert_eq!(
        Transport::UringFixedBuffers.to_string(),
        "io_uring+fixed-buffers"
    );
    assert_eq!(Transport::UringZeroCopySend.to_string(), "io_uring+send-zc");
    assert_eq!(courier::current_transport(), None);
    let rt = Runtime::builder()
        .backend(BackendChoice::Epoll)
        .build()
        .unwrap();
    assert_eq!(rt.transport(), Transport::Epoll);
    rt.block_on(async { assert_eq!(courier::current_transport(), Some(Transport::Epoll)) });
    assert_eq!(courier::current_transport(), None);
}

/// The peer goes away while large writes go out: each variant reports an
/// error for that connection (never a hang or a crash) and the runtime
/// carries on with a new connection.
fn peer_gone_scenario(choice: BackendChoice) {
    let Some(rt) = variant_runtime(choice) else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        drop(s);
    });
    rt.block_on(async move {
        let (_rd, mut wr) = connect(addr).await.unwrap();
        let mut data = pattern(256 * 1024, 1);
        let mut failed = None;
        for _ in 0..1000 {
            let (res, back) = wr.write_all(data).await;
            data = if back.is_empty() {
                pattern(256 * 1024, 1)
            } else {
                back
            };
            if let Err(e) = res {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("writes to a closed peer must fail");
        eprintln!("{choice:?}: closed peer -> {e}");
        let parts = vec![Bytes::from(pattern(64 * 1024, 2))];
        let (res, _) = wr.write_vectored_all(parts).await;
        assert!(res.is_err(), "a vectored write after the failure fails too");
        let (mut rd2, mut wr2) = connect(echo_peer()).await.unwrap();
        let (res, _) = wr2.write_all(b"still alive".to_vec()).await;
        res.unwrap();
        let mut rx = ReadBuffer::new(64);
        while rx.len() < 11 {
            assert!(rd2.read(&mut rx).await.unwrap() > 0);
        }
        assert_eq!(rx.data(), b"still alive");
    });
    // Dropping the runtime returns (tokio-uring 0.5 loses a failed SEND_ZC;
    // courier leaks that ring instead of waiting for it forever).
    drop(rt);
}

/// Runs the vanished-peer scenario on its own thread and fails the test if
/// it has not finished within a minute: a hang (tokio-uring 0.5 loses a
/// failed SEND_ZC) must be a failure with a reason, never a stuck CI run.
fn peer_gone_within_a_minute(choice: BackendChoice) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        peer_gone_scenario(choice);
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{choice:?}: the vanished-peer scenario hung for 60 s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{choice:?}: the vanished-peer scenario failed (its panic is printed above)")
        }
    }
}

#[test]
fn uring_fixed_buffers_report_a_vanished_peer() {
    peer_gone_within_a_minute(BackendChoice::UringFixed);
}

#[test]
fn uring_zero_copy_send_reports_a_vanished_peer() {
    peer_gone_within_a_minute(BackendChoice::UringZeroCopy);
}

/// More connections than registered buffer pairs: the extra one runs on
/// plain buffers (same bytes), and picks up a registered pair once another
/// connection closes and returns its own.
#[test]
fn uring_fixed_buffers_beyond_the_pool_use_plain_buffers_until_one_frees() {
    let Some(rt) = variant_runtime(BackendChoice::UringFixed) else {
        return;
    };
    if rt.transport() != Transport::UringFixedBuffers {
        eprintln!("buffer registration refused here; nothing to exhaust");
        return;
    }
    rt.block_on(async {
        async fn echo_once(
            rd: &mut courier::transport::ReadHalf,
            wr: &mut courier::transport::WriteHalf,
            text: &[u8],
        ) {
            let (res, _) = wr.write_all(text.to_vec()).await;
            res.unwrap();
            let mut rx = ReadBuffer::new(64);
            while rx.len() < text.len() {
                assert!(rd.read(&mut rx).await.unwrap() > 0);
            }
            assert_eq!(rx.data(), text);
        }
        let mut conns = Vec::new();
        for _ in 0..courier::transport::FIXED_BUFFER_CONNECTIONS {
            conns.push(connect(echo_peer()).await.unwrap());
        }
        let (mut rd, mut wr) = connect(echo_peer()).await.unwrap();
        let before = courier::stats().fixed_buffer_ops;
        echo_once(&mut rd, &mut wr, b"on plain buffers").await;
        assert_eq!(
            courier::stats().fixed_buffer_ops,
            before,
            "the pool is empty: this connection cannot use registered buffers"
        );
        for (i, (r, w)) in conns.iter_mut().enumerate() {
            echo_once(r, w, format!("fixed {i}").as_bytes()).await;
        }
        drop(conns.pop());
        let before = courier::stats().fixed_buffer_ops;
        echo_once(&mut rd, &mut wr, b"on a freed pair").await;
        assert!(
            courier::stats().fixed_buffer_ops >= before + 2,
            "a WRITE_FIXED and READ_FIXED once a pair is free"
        );
    });
}
