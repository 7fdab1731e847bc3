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
