//! Resource exhaustion and fairness: each test proves one bug over real
//! TCP on 127.0.0.1. Every wait is bounded; nothing asserts on timing.

mod common;
#[path = "common/sockets.rs"]
mod sockets;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::handlers::Hello;
use common::{read_response, serve, serve_with, Client, IO_TIMEOUT};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Encoder, Next};
use sockets::set_listener_send_buffer;

// ---------------------------------------------------------------------------
// 1. A connection that yields is pushed onto `rerun` once more for every
//    readiness event (or wake) it gets while already queued there, and each
//    run is a fresh share: a client multiplies its share of the loop by
//    sending single bytes.
// ---------------------------------------------------------------------------

const STREAM: usize = 256 * 1024;

/// Streams `STREAM` bytes, one per `on_response_writable` call, logging
/// each call with its id (`b'x'` for `/x`, `b'y'` otherwise).
/// `/x` sends its `Control` to `controls`.
struct OneByteStreamer {
    id: u8,
    left: usize,
    log: Arc<Mutex<Vec<u8>>>,
    control: Option<Control>,
    controls: mpsc::Sender<Control>,
}

impl Handler for OneByteStreamer {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.id = if req.path() == "/x" { b'x' } else { b'y' };
        if let (b'x', Some(control)) = (self.id, self.control.take()) {
            let _ = self.controls.send(control);
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_content_length(STREAM as u64);
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        self.log.lock().unwrap().push(self.id);
        match body.write(b"z") {
            Ok(1) => self.left -= 1,
            _ => return Next::write(),
        }
        if self.left == 0 {
            Next::end()
        } else {
            Next::write()
        }
    }
}

/// Reads one response with a `STREAM`-byte body.
fn read_stream(mut s: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = Vec::new();
    loop {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        have.extend_from_slice(&buf[..n]);
        if let Some(i) = have.windows(4).position(|w| w == b"\r\n\r\n") {
            if have.len() >= i + 4 + STREAM {
                return;
            }
        }
    }
}

/// Longest run of `b'x'` entries with a `b'y'` on both sides.
fn longest_x_streak_between_ys(log: &[u8]) -> usize {
    let first_y = log.iter().position(|&b| b == b'y').unwrap_or(log.len());
    let last_y = log.iter().rposition(|&b| b == b'y').unwrap_or(0);
    let (mut best, mut run) = (0, 0);
    for &b in log.get(first_y..last_y).unwrap_or(&[]) {
        if b == b'x' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// Streams to `/x` and `/y` at once while `meanwhile` pokes at x (given
/// x's socket and its `Control`); returns the longest run of x's body
/// writes between two of y's.
fn x_streak(meanwhile: impl FnOnce(&mut TcpStream, Control)) -> usize {
    let log = Arc::new(Mutex::new(Vec::with_capacity(2 * STREAM)));
    let l = Arc::clone(&log);
    let (tx, controls) = mpsc::channel();
    let server = serve(move |control| OneByteStreamer {
        id: 0,
        left: STREAM,
        log: Arc::clone(&l),
        control: Some(control),
        controls: tx.clone(),
    });
    // Room in the kernel for both whole streams: neither connection ever
    // waits for its reader, so each runs every turn and a long run of one
    // means the loop gave it more than its share (not that the other had
    // nothing to do while its reader was not scheduled).
    set_listener_send_buffer(server.addr(), 1 << 20);
    let connect = || {
        let s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        s
    };
    let (mut x, mut y) = (connect(), connect());
    y.write_all(b"GET /y HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    x.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    let (xr, yr) = (x.try_clone().unwrap(), y.try_clone().unwrap());
    let readers = [
        thread::spawn(move || read_stream(xr)),
        thread::spawn(move || read_stream(yr)),
    ];
    let control = controls.recv_timeout(IO_TIMEOUT).expect("x's Control");
    meanwhile(&mut x, control);
    for r in readers {
        r.join().unwrap();
    }
    let streak = longest_x_streak_between_ys(&log.lock().unwrap());
    streak
}

#[test]
fn single_bytes_from_a_client_do_not_multiply_its_share_of_the_loop() {
    // While both download, x sends empty lines (allowed before its next
    // request line) a byte at a time: each byte is one readiness event.
    let streak = x_streak(|x, _| {
        for i in 0..100 {
            let _ = x.write_all(if i % 2 == 0 { b"\r" } else { b"\n" });
            thread::sleep(Duration::from_millis(1));
        }
    });
    // Fair: x runs at most twice in a row (its event, then its rerun),
    // 64 body writes (WRITES_PER_TURN) each.
    assert!(
        streak <= 4 * 64,
        "x made {streak} body writes in a row while y was streaming too"
    );
}

#[test]
fn wake_ups_of_a_busy_exchange_do_not_multiply_its_share_of_the_loop() {
    // A producer waking a streaming exchange per item: each wake ran the
    // connection with a fresh share, though it was not waiting for one.
    let streak = x_streak(|_, control| {
        for _ in 0..20_000 {
            let _ = control.ready(Next::write());
        }
    });
    assert!(
        streak <= 4 * 64,
        "x made {streak} body writes in a row while y was streaming too"
    );
}

// ---------------------------------------------------------------------------
// 2. Bytes *read* restart the stall timer that, between exchanges, guards
//    output the client is not taking — and while output is pending that
//    timer replaces the head timeout. A client that never reads and sends
//    a byte now and then keeps its connection and its buffers for ever.
// ---------------------------------------------------------------------------

/// `/kib/<n>`: an n KiB body given at once. Anything else: Hello.
struct SizedOrHello {
    kib: Option<usize>,
}

impl Handler for SizedOrHello {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.kib = req
            .path()
            .strip_prefix("/kib/")
            .and_then(|n| n.parse().ok());
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        match self.kib {
            Some(n) => {
                res.body(&vec![b'x'; n * 1024]);
                Next::end()
            }
            None => Hello.on_response(res),
        }
    }
}

/// A client with a 4 KiB receive buffer that never reads.
fn non_reader(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_nodelay(true).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

#[test]
fn a_client_that_never_reads_cannot_keep_its_connection_by_trickling_input() {
    let server = serve_with(
        |s| {
            s.head_timeout(Duration::from_millis(200))
                .keep_alive_timeout(Duration::from_millis(200))
                .io_timeout(Duration::from_millis(300))
        },
        |_| SizedOrHello { kib: None },
    );
    set_listener_send_buffer(server.addr(), 4096);
    // A response the client never reads: the kernel takes ~40 KiB of it,
    // the rest waits in the write buffer below the 64 KiB high-water mark,
    // so the server goes on reading. Then a head that never ends, a byte
    // every 100 ms. Two sizes, in case the kernel here takes more or less.
    let runs: Vec<_> = [52, 60]
        .into_iter()
        .map(|kib| {
            let mut s = non_reader(server.addr());
            thread::spawn(move || {
                s.write_all(format!("GET /kib/{kib} HTTP/1.1\r\nHost: h\r\n\r\nGET /").as_bytes())
                    .unwrap();
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(1500) {
                    thread::sleep(Duration::from_millis(100));
                    if s.write_all(b"a").is_err() {
                        return (kib, true);
                    }
                }
                (kib, false)
            })
        })
        .collect();
    for run in runs {
        let (kib, dropped) = run.join().unwrap();
        // Every timeout is at most 300 ms; the output has not moved and the
        // head has been arriving for 1.5 s.
        assert!(
            dropped,
            "a client that never read its {kib} KiB response kept the connection \
             for 1.5 s by sending a byte every 100 ms"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. Draining an unread chunked body counts only its data against
//    `max_drain` (64 KiB): chunk framing — up to 4 KiB of extension per
//    1-byte chunk — is read and parsed without limit to keep the
//    connection alive.
// ---------------------------------------------------------------------------

#[test]
fn draining_an_unread_body_reads_at_most_max_drain_bytes() {
    let server = serve(|_| Hello);
    let mut c = Client::connect(server.addr());
    let ext = "x".repeat(4000);
    let mut body = Vec::new();
    for _ in 0..256 {
        body.extend_from_slice(format!("1;e={ext}\r\na\r\n").as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut wire = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend_from_slice(&body);
    wire.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut w = c.stream().try_clone().unwrap();
    // The server may close while this is being written.
    let writer = thread::spawn(move || {
        let _ = w.write_all(&wire);
    });
    assert_eq!(c.response().status, 200);
    let next = read_response(&mut c.reader, false);
    writer.join().unwrap();
    assert!(
        next.is_err(),
        "{} KiB of unread chunked body (256 bytes of data) drained to serve the next request",
        body.len() / 1024
    );
}

// ---------------------------------------------------------------------------
// 5. A backlog larger than a turn's share of accepts: the rest must still
//    be accepted (the listener's readiness is not reported again).
// ---------------------------------------------------------------------------

/// `/block`: holds the loop thread for a while (never do this in a real
/// handler), so that connections pile up in the backlog. Else Hello.
struct Blocker;

impl Handler for Blocker {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/block" {
            thread::sleep(Duration::from_millis(300));
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }
}

#[test]
fn a_backlog_larger_than_a_turns_accepts_is_all_served() {
    const CONNS: usize = 700;
    let server = serve(|_| Blocker);
    let mut first = Client::connect(server.addr());
    first.send("GET /block HTTP/1.1\r\nHost: h\r\n\r\n");
    thread::sleep(Duration::from_millis(50));
    // While the loop is held, these wait in the backlog, all at once.
    let mut clients: Vec<Client> = (0..CONNS).map(|_| Client::connect(server.addr())).collect();
    for c in &mut clients {
        c.send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    }
    assert_eq!(first.response().status, 200);
    for (i, c) in clients.iter_mut().enumerate() {
        let res = read_response(&mut c.reader, false)
            .unwrap_or_else(|e| panic!("connection {i} of {CONNS} not served: {e}"));
        assert_eq!(res.status, 200);
    }
}
