//! Memory after a burst: buffers go back to the loop's pool, which keeps
//! them. Only the loop thread is counted (see tests/alloc.rs).

mod common;
#[path = "common/counting.rs"]
mod counting;
#[path = "common/sockets.rs"]
mod sockets;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::handlers::Hello;
use common::{serve, IO_TIMEOUT};
use counting::{count_marked_only, live_bytes, server_thread};
use nextloop::server::{Handler, Request, Response};
use nextloop::Next;
use sockets::set_listener_send_buffer;

const BIG: usize = 192 * 1024;
static BODY: [u8; BIG] = [b'x'; BIG];

/// `/big`: a 192 KiB body given at once (a file held in memory). Else Hello.
struct BigOrHello {
    big: bool,
}

impl Handler for BigOrHello {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.big = req.path() == "/big";
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.big {
            res.body(&BODY);
            Next::end()
        } else {
            Hello.on_response(res)
        }
    }
}

/// A client with a small receive window, so a big response waits in the
/// server's write buffer until the client reads it.
fn slow_client(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads one response with `body_len` bytes of body.
fn read_one(s: &mut TcpStream, body_len: usize) {
    let mut have = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(i) = have.windows(4).position(|w| w == b"\r\n\r\n") {
            if have.len() >= i + 4 + body_len {
                return;
            }
        }
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        have.extend_from_slice(&buf[..n]);
    }
}

/// Half-closes and waits for the server to close (it removes the
/// connection in the same step).
fn close(mut s: TcpStream) {
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

#[test]
fn memory_of_a_burst_goes_back_once_its_connections_are_gone() {
    const CONNS: usize = 64;
    count_marked_only();
    let server = serve(|_| {
        server_thread();
        BigOrHello { big: false }
    });
    let addr = server.addr();
    set_listener_send_buffer(addr, 4096);
    // Warm-up: the loop's one-time allocations, and one big buffer pooled.
    let mut warm = slow_client(addr);
    warm.write_all(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    read_one(&mut warm, BIG);
    close(warm);
    std::thread::sleep(Duration::from_millis(50));
    let before = live_bytes();

    // The burst: CONNS clients download at once.
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| slow_client(addr)).collect();
    for s in &mut conns {
        s.write_all(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let during = live_bytes() - before;
    for s in &mut conns {
        read_one(s, BIG);
    }
    for s in conns {
        close(s);
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = live_bytes() - before;
    server.shutdown();
    server.join().unwrap();
    println!(
        "server heap: +{} KiB during the burst, +{} KiB after every connection closed",
        during / 1024,
        after / 1024
    );
    assert!(
        after < 2 << 20,
        "{} KiB of the burst's {} KiB still held with no connection open",
        after / 1024,
        during / 1024
    );
}
