//! The client loop's deadline heap under churn: exchanges that come and
//! go with long `Next` timeouts leave their heap entries behind until
//! their time, and the loop must drop them rather than pile them up
//! (memory measured by a counting `#[global_allocator]`).

#[path = "common/counting.rs"]
mod counting;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use nextloop::client::{Client, Handler, Request, Response};
use nextloop::{Decoder, Next};

/// A keep-alive server on fixed buffers: every request head gets the same
/// empty response. Its threads are not counted.
fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        counting::client_thread();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                counting::client_thread();
                let mut buf = [0u8; 8192];
                let mut len = 0;
                loop {
                    match stream.read(&mut buf[len..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    while let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..len, 0);
                        len -= end + 4;
                        if stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Waits for its response under an hour-long timeout of its own, which
/// never fires: the exchange ends long before, its heap entry stays.
struct LongTimeout {
    done: mpsc::SyncSender<()>,
}

impl Handler for LongTimeout {
    fn on_request(&mut self, _req: &mut Request<'_>) -> Next {
        // On the loop thread: from now on it is the one counted.
        counting::server_thread();
        Next::read().timeout(Duration::from_secs(3600))
    }

    fn on_response(&mut self, res: Response<'_>) -> Next {
        assert_eq!(res.status(), 200);
        Next::read().timeout(Duration::from_secs(3600))
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 16];
        match body.read(&mut buf) {
            Ok(0) => {
                let _ = self.done.send(());
                Next::end()
            }
            Ok(_) => Next::read(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::read(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// 20,000 exchanges one after another, each leaving an entry an hour
/// away: the loop's deadline heap stays bounded (without dropping stale
/// entries it held all of them, growing to ~1 MiB).
#[test]
fn stale_deadlines_of_finished_exchanges_do_not_pile_up() {
    counting::count_marked_only();
    counting::client_thread();
    let addr = server();
    let url = format!("http://{addr}/");
    let client = Client::new().unwrap();
    let (tx, rx) = mpsc::sync_channel(1);
    let run = |n: usize| {
        for _ in 0..n {
            client
                .request(&url, LongTimeout { done: tx.clone() })
                .unwrap();
            rx.recv_timeout(Duration::from_secs(10))
                .expect("the exchange completes");
        }
    };
    run(2_000);
    let before = counting::allocated_bytes();
    run(20_000);
    let grown = counting::allocated_bytes() - before;
    println!("client loop allocated {grown} bytes over 20,000 exchanges");
    // The loop allocates nothing per exchange (tests/client_alloc.rs):
    // what it allocates here is the deadline heap growing.
    assert!(
        grown < 256 * 1024,
        "the client loop allocated {grown} bytes over 20,000 finished exchanges"
    );
}
