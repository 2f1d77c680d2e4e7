//! Review findings: each test proves one bug over real TCP on 127.0.0.1.
//!
//! Tests that fail today are `#[ignore = "BUG: ..."]` so the suite stays
//! green; run them with `cargo test --test review -- --ignored`. Waits are
//! bounded; nothing asserts on timing.

mod common;
#[path = "common/sockets.rs"]
mod sockets;

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use common::handlers::Hello;
use common::{read_response, serve, serve_with, Client};
use nextloop::server::{Decoder, Encoder, Handler, Request, Response};
use nextloop::{Control, Error, Next};
use sockets::set_listener_send_buffer;

/// A bound for a read that must not hang (a hang fails the test).
const BOUND: Duration = Duration::from_secs(5);

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// A client whose reads give up after [`BOUND`].
fn client(addr: std::net::SocketAddr) -> Client {
    let c = Client::connect(addr);
    c.reader.get_ref().set_read_timeout(Some(BOUND)).unwrap();
    c
}

/// GET / on `c` is answered 200 Hello (every server here routes `/` to Hello).
fn ok(c: &mut Client) {
    c.send(get("/"));
    let res = read_response(&mut c.reader, false).expect("a response to GET /");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Hello, World!");
}

// ---------------------------------------------------------------------------
// 1. Response::set_content_length after Response::body: arithmetic outside
//    the panic guard (Response::finish `*n -= queued`).
// ---------------------------------------------------------------------------

/// `/bad`: sets a body, then a shorter Content-Length. Anything else: Hello.
struct LengthAfterBody {
    bad: bool,
}

impl Handler for LengthAfterBody {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.bad = req.path() == "/bad";
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.bad {
            res.body(b"hello").set_content_length(2);
        } else {
            res.body(b"Hello, World!");
        }
        Next::end()
    }
}

#[test]
fn content_length_set_after_body_costs_only_that_connection() {
    let server = serve(|_| LengthAfterBody { bad: false });
    let mut other = client(server.addr());
    ok(&mut other);

    let mut bad = client(server.addr());
    bad.send(get("/bad"));
    // Whatever this connection gets (a 500, a close), its bytes must not
    // desynchronise it: a second request is either answered cleanly or
    // the connection is closed.
    if let Ok(first) = read_response(&mut bad.reader, false) {
        assert_ne!(
            (first.status, first.body.len()),
            (200, 2),
            "a body of 5 bytes announced as 2"
        );
    }
    // The other connection, and new ones, must be unaffected.
    ok(&mut other);
    ok(&mut client(server.addr()));
}

// ---------------------------------------------------------------------------
// 2. Next::read_and_write(): a handler that cannot take more body now spins
//    the loop (step_exchange prefers step_read while the body is readable,
//    with no progress check).
// ---------------------------------------------------------------------------

/// Full-duplex echo through a fixed 4 KiB buffer: reads while it has room,
/// writes what it holds, always asking for both.
struct DuplexEcho {
    buf: [u8; 4096],
    len: usize,
    body_done: bool,
}

impl DuplexEcho {
    fn new() -> DuplexEcho {
        DuplexEcho {
            buf: [0; 4096],
            len: 0,
            body_done: false,
        }
    }

    fn next(&self) -> Next {
        if self.body_done && self.len == 0 {
            Next::end()
        } else {
            Next::read_and_write()
        }
    }
}

impl Handler for DuplexEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.body_done = !req.has_body();
        Next::read_and_write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        // Only read when there is room to keep what is read.
        while self.len < self.buf.len() {
            match body.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.body_done = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        self.next()
    }

    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        // No length: chunked.
        self.next()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let mut written = 0;
        while written < self.len {
            match body.write(&self.buf[written..self.len]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => return Next::remove(),
            }
        }
        self.buf.copy_within(written..self.len, 0);
        self.len -= written;
        self.next()
    }
}

/// Routes `/` to Hello and everything else to `DuplexEcho`.
enum DuplexOrHello {
    Undecided,
    Echo(Box<DuplexEcho>),
    Hello,
}

impl Handler for DuplexOrHello {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/" {
            *self = DuplexOrHello::Hello;
            return Next::write();
        }
        let mut echo = Box::new(DuplexEcho::new());
        let next = echo.on_request(req);
        *self = DuplexOrHello::Echo(echo);
        next
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_request_readable(body),
            _ => Next::write(),
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_response(res),
            _ => Hello.on_response(res),
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        match self {
            DuplexOrHello::Echo(e) => e.on_response_writable(body),
            _ => Next::end(),
        }
    }
}

#[test]
fn read_and_write_handler_with_a_full_buffer_does_not_hang_the_loop() {
    let server = serve(|_| DuplexOrHello::Undecided);
    let mut other = client(server.addr());
    ok(&mut other);

    let body = vec![b'a'; 16 * 1024];
    let mut echo = client(server.addr());
    echo.send(format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    echo.send(&body);
    // Let the loop take the echo's body in.
    thread::sleep(Duration::from_millis(300));

    // The loop must still serve other connections...
    ok(&mut other);
    // ...and the echo must complete.
    let res = read_response(&mut echo.reader, false).expect("the echo");
    assert_eq!(res.body, body);
}

// ---------------------------------------------------------------------------
// 3. A Read handler that reads nothing after the peer half-closed mid-body:
//    the `stuck` early return in step_read skips the Truncated check, and
//    the connection parks forever (no deadline in an exchange).
// ---------------------------------------------------------------------------

/// Reads the body ignoring errors (a short read is "nothing yet").
struct LenientReader {
    got: usize,
}

impl Handler for LenientReader {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        Next::read()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 256];
        self.got += body.read(&mut buf).unwrap_or(0);
        if body.is_eof() {
            Next::write()
        } else {
            Next::read()
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(format!("{}", self.got).as_bytes());
        Next::end()
    }
}

#[test]
fn body_cut_short_by_half_close_ends_the_connection_whatever_the_handler_asks() {
    let server = serve(|_| LenientReader { got: 0 });
    let mut c = client(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    c.stream().shutdown(Shutdown::Write).unwrap();
    // The body can never complete: the server must answer 400 or close,
    // not hold the connection open forever.
    match c.read_to_close() {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("connection still open after {BOUND:?}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// 4. Output still being flushed after Next::end(): the phase deadline of
//    the next phase (keep-alive, head) and graceful shutdown treat the
//    connection as idle and drop it or answer 408.
// ---------------------------------------------------------------------------

const BIG: usize = 32 << 20;

/// Serialises the tests that move tens of MiB (and the one that measures
/// memory), so they do not skew one another.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `/big`: a large body given at once (say a file held in memory).
/// Anything else: Hello.
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
            res.body(&vec![b'x'; BIG]);
            Next::end()
        } else {
            Hello.on_response(res)
        }
    }
}

fn big_or_hello(_: Control) -> BigOrHello {
    BigOrHello { big: false }
}

#[test]
fn keep_alive_timeout_does_not_cut_a_response_being_flushed() {
    let _heavy = heavy();
    let server = serve_with(
        |s| s.keep_alive_timeout(Duration::from_millis(200)),
        big_or_hello,
    );
    let mut c = client(server.addr());
    c.send(get("/big"));
    // A slow reader: the response is produced at once but takes a while
    // to leave the server.
    thread::sleep(Duration::from_millis(1000));
    let res = read_response(&mut c.reader, false).expect("the whole response");
    assert_eq!(res.body.len(), BIG);
}

#[test]
fn head_timeout_does_not_fire_for_a_complete_head_behind_a_response_being_flushed() {
    let _heavy = heavy();
    let server = serve_with(|s| s.head_timeout(Duration::from_millis(200)), big_or_hello);
    let mut c = client(server.addr());
    // Two complete requests at once; the second waits behind the first's
    // output (write high-water mark), not for its own bytes.
    c.send(format!("{}{}", get("/big"), get("/")));
    thread::sleep(Duration::from_millis(1000));
    let first = read_response(&mut c.reader, false).expect("the first response");
    assert_eq!(first.body.len(), BIG);
    let second = read_response(&mut c.reader, false).expect("the second response");
    assert_eq!(second.status, 200, "{second:?}");
}

#[test]
fn graceful_shutdown_does_not_cut_a_response_being_flushed() {
    let _heavy = heavy();
    let server = serve(big_or_hello);
    let mut c = client(server.addr());
    c.send(get("/big"));
    thread::sleep(Duration::from_millis(300));
    server.shutdown();
    thread::sleep(Duration::from_millis(300));
    let res = read_response(&mut c.reader, false).expect("the whole response");
    assert_eq!(res.body.len(), BIG);
    server.join().unwrap();
}

// ---------------------------------------------------------------------------
// 5. A readiness event of a removed connection is applied to the new
//    connection that took its slab slot in the same poll batch.
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Hooks {
    controls: Sender<Control>,
    blocking: Sender<()>,
}

/// `/wait`: parks and hands its Control out. `/block`: blocks the loop
/// thread for a while, so that several events queue up for its next poll.
/// Anything else: Hello.
struct Staged {
    hooks: Hooks,
    control: Option<Control>,
}

impl Handler for Staged {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        match req.path() {
            "/wait" => {
                let control = self.control.take().unwrap();
                self.hooks.controls.send(control).unwrap();
                Next::wait()
            }
            "/block" => {
                self.hooks.blocking.send(()).unwrap();
                thread::sleep(Duration::from_millis(600));
                Next::write()
            }
            _ => Next::write(),
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }
}

#[test]
fn event_of_a_removed_connection_does_not_hit_the_connection_reusing_its_slot() {
    let (controls_tx, controls) = mpsc::channel();
    let (blocking_tx, blocking) = mpsc::channel();
    let hooks = Hooks {
        controls: controls_tx,
        blocking: blocking_tx,
    };
    let server = serve(move |control| Staged {
        hooks: hooks.clone(),
        control: Some(control),
    });

    // A: parked in wait(), slot 0.
    let mut a = client(server.addr());
    a.send(get("/wait"));
    let a_control = controls.recv_timeout(BOUND).expect("A's control");
    // C: blocks the loop thread.
    let mut c = client(server.addr());
    c.send(get("/block"));
    blocking.recv_timeout(BOUND).expect("loop blocked");

    // While the loop is blocked, queue up, in this order: the wake-up that
    // removes A, a new connection B (its slot will be A's), A's reset.
    a_control.ready(Next::remove()).unwrap();
    let mut b = client(server.addr());
    b.send(get("/"));
    thread::sleep(Duration::from_millis(50));
    socket2::SockRef::from(a.reader.get_ref())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(a);

    // C is answered after its block; B must be answered too.
    let res = read_response(&mut c.reader, false).expect("C's answer");
    assert_eq!(res.status, 200);
    let res = read_response(&mut b.reader, false).expect("B's answer");
    assert_eq!(res.status, 200);
}

// ---------------------------------------------------------------------------
// 6. Next::read() after the body has ended, from a handler with nothing to
//    write: step_read turns it into Write, step_write calls the handler,
//    which asks read() again — a cycle inside Conn::advance with no
//    progress guard (step_write's `stuck` only covers Write/ReadWrite).
// ---------------------------------------------------------------------------

/// `/poll`: writes a first piece, then asks read() whenever it has
/// nothing to write, treating Ok(0) as "nothing yet". Anything else: Hello.
struct ReadWhenIdle {
    poll: bool,
    wrote: bool,
}

impl Handler for ReadWhenIdle {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.poll = req.path() == "/poll";
        Next::write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let _ = body.read(&mut [0u8; 64]);
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.poll {
            Next::write()
        } else {
            Hello.on_response(res)
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if !self.wrote {
            self.wrote = true;
            let _ = body.write_all(b"first piece");
        }
        Next::read()
    }
}

#[test]
fn read_after_the_body_ended_with_nothing_to_write_does_not_hang_the_loop() {
    let server = serve(|_| ReadWhenIdle {
        poll: false,
        wrote: false,
    });
    let mut other = client(server.addr());
    ok(&mut other);
    let mut poll = client(server.addr());
    poll.send(get("/poll"));
    thread::sleep(Duration::from_millis(300));
    ok(&mut other);
}

// ---------------------------------------------------------------------------
// 7. Expect: 100-continue with a read_and_write() handler: no 100 is sent
//    (step_exchange goes to step_write while the body is not readable, and
//    only step_read sends the 100), so a client that waits for it stalls.
// ---------------------------------------------------------------------------

#[test]
fn expect_continue_is_answered_100_for_a_read_and_write_handler() {
    let server = serve(|_| DuplexOrHello::Undecided);
    let mut c = client(server.addr());
    c.send("PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    // A client that waits for 100 before sending its body.
    let mut line = String::new();
    c.reader.read_line(&mut line).expect("a status line");
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    c.reader.read_line(&mut blank).unwrap();
    c.send("hello");
    let res = read_response(&mut c.reader, false).expect("the echo");
    assert_eq!(res.body, b"hello");
}

// ---------------------------------------------------------------------------
// 8. WriteBuf never compacts: written bytes stay in `buf[..pos]` until a
//    flush empties the buffer completely. While a handler streams and each
//    flush is short (socket send buffer smaller than the 64 KiB high-water
//    mark), the Vec grows by every byte of the response.
// ---------------------------------------------------------------------------

const STREAM: usize = 16 << 20;

/// Streams `STREAM` bytes through the Encoder, 4 KiB at a time.
struct Streamer {
    sent: usize,
}

impl Handler for Streamer {
    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let piece = [b'z'; 4096];
        while self.sent < STREAM {
            let n = (STREAM - self.sent).min(piece.len());
            match body.write(&piece[..n]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
        Next::end()
    }
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn streaming_response_memory_stays_bounded_when_writes_are_short() {
    let _heavy = heavy();
    let server = serve(|_| Streamer { sent: 0 });
    set_listener_send_buffer(server.addr(), 32 * 1024);
    let before = rss_kib();
    let mut c = client(server.addr());
    c.send(get("/"));
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut peak, mut reads) = (0usize, before, 0u32);
    while total < STREAM {
        let n = c.reader.read(&mut buf).expect("read");
        assert!(n > 0, "closed early");
        total += n;
        reads += 1;
        if reads % 64 == 0 {
            peak = peak.max(rss_kib());
        }
    }
    let growth_mib = peak.saturating_sub(before) / 1024;
    // The server holds at most ~64 KiB of output per connection by design.
    assert!(
        growth_mib < 8,
        "process grew by {growth_mib} MiB while streaming {} MiB",
        STREAM >> 20
    );
}

// ---------------------------------------------------------------------------
// 9. No server-side bound on a request body that never comes: an exchange
//    has no deadline unless the handler sets one, so with the shipped Echo
//    handler a client that sends a head and stops holds its slot forever.
// ---------------------------------------------------------------------------

#[test]
fn a_body_that_never_comes_does_not_hold_the_connection_forever() {
    let server = serve_with(
        |s| {
            s.head_timeout(Duration::from_millis(200))
                .keep_alive_timeout(Duration::from_millis(200))
                .io_timeout(Duration::from_millis(200))
        },
        |_| common::handlers::Echo::new(),
    );
    let mut c = client(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    // Every server timeout is 200 ms; give it 5 s.
    match c.read_to_close() {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("connection still held after {BOUND:?}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// 10. `Instant + Duration` overflow on the loop thread: a handler timeout of
//     Duration::MAX (Conn::apply, `ctx.now + d`) or a shutdown grace of
//     Duration::MAX (EventLoop::begin_shutdown) panics outside any guard.
// ---------------------------------------------------------------------------

/// `/forever`: parks with the longest timeout there is. Anything else: Hello.
struct WaitForever {
    control: Option<Control>,
    controls: Sender<Control>,
}

impl Handler for WaitForever {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/forever" {
            if let Some(control) = self.control.take() {
                let _ = self.controls.send(control);
            }
            Next::wait().timeout(Duration::MAX)
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }
}

#[test]
fn longest_next_timeout_costs_nothing_to_other_connections() {
    let (tx, _controls) = mpsc::channel();
    let server = serve(move |control| WaitForever {
        control: Some(control),
        controls: tx.clone(),
    });
    let mut other = client(server.addr());
    ok(&mut other);
    let mut forever = client(server.addr());
    forever.send(get("/forever"));
    thread::sleep(Duration::from_millis(200));
    ok(&mut other);
}

#[test]
fn longest_shutdown_grace_lets_the_exchange_in_flight_finish() {
    let (tx, controls) = mpsc::channel();
    let server = serve_with(
        |s| s.shutdown_grace(Duration::MAX),
        move |control| WaitForever {
            control: Some(control),
            controls: tx.clone(),
        },
    );
    let mut c = client(server.addr());
    c.send(get("/forever"));
    let control = controls.recv_timeout(BOUND).expect("the control");
    server.shutdown();
    thread::sleep(Duration::from_millis(200));
    control
        .ready(Next::write())
        .expect("exchange still in flight");
    let res = read_response(&mut c.reader, false).expect("the answer");
    assert_eq!(res.status, 200);
    server.join().expect("a clean shutdown");
}

// ---------------------------------------------------------------------------
// 11. A zero timeout re-armed from on_error fires again within the same
//     EventLoop::expire pass (same `now`): the loop never gets back to poll.
// ---------------------------------------------------------------------------

/// `/spin`: waits with a zero timeout, re-armed from `on_error` until
/// `go` is set ("call me back as soon as possible"). Anything else: Hello.
struct PollSoon {
    go: Arc<AtomicBool>,
}

impl Handler for PollSoon {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/spin" {
            Next::wait().timeout(Duration::ZERO)
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }

    fn on_error(&mut self, _err: nextloop::Error) -> Next {
        if self.go.load(Ordering::Acquire) {
            Next::write()
        } else {
            Next::wait().timeout(Duration::ZERO)
        }
    }
}

#[test]
fn zero_timeout_rearmed_from_on_error_lets_other_connections_run() {
    let go = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&go);
    let server = serve(move |_| PollSoon {
        go: Arc::clone(&flag),
    });
    let mut other = client(server.addr());
    ok(&mut other);
    let mut spin = client(server.addr());
    spin.send(get("/spin"));
    thread::sleep(Duration::from_millis(200));
    other.send(get("/"));
    let answered = read_response(&mut other.reader, false);
    // Release the spinning exchange either way, so the loop recovers.
    go.store(true, Ordering::Release);
    let res = answered.expect("other connections are served meanwhile");
    assert_eq!(res.status, 200);
    let res = read_response(&mut spin.reader, false).expect("the spinning one, after");
    assert_eq!(res.status, 200);
}

// ---------------------------------------------------------------------------
// 12. The stall timer fired, the handler's `on_error(Timeout)` asked to go
//     on reading without a timeout of its own: the deadline was gone and
//     `apply` took the stall timer as still running — the connection was
//     held with no deadline at all.
// ---------------------------------------------------------------------------

/// Reads the body; the first stall timeout asks for another round, the
/// second gives up.
struct PatientReader {
    timeouts: Arc<AtomicUsize>,
}

impl Handler for PatientReader {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        Next::read()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 64];
        loop {
            match body.read(&mut buf) {
                Ok(0) => return Next::write(),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                Err(_) => return Next::remove(),
            }
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }

    fn on_error(&mut self, err: Error) -> Next {
        if matches!(err, Error::Timeout) && self.timeouts.fetch_add(1, Ordering::SeqCst) == 0 {
            Next::read()
        } else {
            Next::remove()
        }
    }
}

#[test]
fn the_stall_timer_fires_again_after_on_error_asks_to_go_on() {
    let timeouts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&timeouts);
    let server = serve_with(
        |s| s.io_timeout(Duration::from_millis(200)),
        move |_| PatientReader {
            timeouts: Arc::clone(&seen),
        },
    );
    let mut c = client(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
    let mut rest = Vec::new();
    let closed = match c.reader.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
    };
    assert!(
        closed,
        "still open after {BOUND:?}; on_error(Timeout) calls: {}",
        timeouts.load(Ordering::SeqCst)
    );
    assert_eq!(timeouts.load(Ordering::SeqCst), 2, "two stall timeouts");
}

// ---------------------------------------------------------------------------
// 13. A handler that wakes itself (`ready` from a callback, then `wait`):
//     `on_wake` drained the queue until empty, and every run queued a new
//     wake, so the loop never polled again.
// ---------------------------------------------------------------------------

/// `/spin`: produces nothing, waking itself to be called again, until
/// `go`. Anything else: Hello.
struct SelfWaker {
    control: Control,
    go: Arc<AtomicBool>,
    spin: bool,
}

impl Handler for SelfWaker {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.spin = req.path() == "/spin";
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if !self.spin {
            return Hello.on_response(res);
        }
        let _ = self.control.ready(Next::write());
        Next::wait()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if self.go.load(Ordering::Acquire) {
            let _ = body.write_all(b"done");
            return Next::end();
        }
        let _ = self.control.ready(Next::write());
        Next::wait()
    }
}

#[test]
fn a_handler_that_wakes_itself_does_not_keep_the_loop() {
    let go = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&go);
    let server = serve(move |control| SelfWaker {
        control,
        go: Arc::clone(&flag),
        spin: false,
    });
    let mut spin = client(server.addr());
    spin.send(get("/spin"));
    thread::sleep(Duration::from_millis(100));
    let mut other = client(server.addr());
    other.send(get("/"));
    let answered = read_response(&mut other.reader, false);
    // Release the spinning exchange either way, so the loop recovers.
    go.store(true, Ordering::Release);
    assert_eq!(answered.expect("other connections are served").status, 200);
    let res = read_response(&mut spin.reader, false).expect("/spin, after");
    assert_eq!(res.body_str(), "done");
}

// ---------------------------------------------------------------------------
// 14. A panic whose payload panics when dropped: the guard dropped the
//     payload outside `catch_unwind`, and the loop thread died.
// ---------------------------------------------------------------------------

/// Panics when dropped.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("deliberate panic in a panic payload's drop");
    }
}

/// `/bomb`: panics with a [`Bomb`]. Anything else: Hello.
struct PanicsWithBomb;

impl Handler for PanicsWithBomb {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/bomb" {
            std::panic::panic_any(Bomb);
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        Hello.on_response(res)
    }
}

#[test]
fn a_panic_payload_that_panics_when_dropped_costs_only_its_connection() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let server = serve(|_| PanicsWithBomb);
    let mut other = client(server.addr());
    ok(&mut other);
    let mut c = client(server.addr());
    c.send(get("/bomb"));
    let res = read_response(&mut c.reader, false);
    other.send(get("/"));
    let again = read_response(&mut other.reader, false);
    std::panic::set_hook(hook);
    assert_eq!(res.expect("a 500 for /bomb").status, 500);
    assert_eq!(again.expect("the loop lives on").status, 200);
}

// ---------------------------------------------------------------------------
// 15. Body writes that never fill the write buffer — a streamed body to a
//     HEAD request, which the server suppresses — kept `Conn::advance`
//     calling `on_response_writable` for as long as the handler streamed.
// ---------------------------------------------------------------------------

/// `/stream`: an endless body until `go`. Anything else: Hello.
struct EndlessFeed {
    go: Arc<AtomicBool>,
    stream: bool,
}

impl Handler for EndlessFeed {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.stream = req.path() == "/stream";
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if !self.stream {
            return Hello.on_response(res);
        }
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if self.go.load(Ordering::Acquire) {
            return Next::end();
        }
        match body.write(&[b'x'; 16 * 1024]) {
            Ok(_) => Next::write(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Next::write(),
            Err(_) => Next::remove(),
        }
    }
}

#[test]
fn a_head_request_to_a_streaming_handler_does_not_keep_the_loop() {
    let go = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&go);
    let server = serve(move |_| EndlessFeed {
        go: Arc::clone(&flag),
        stream: false,
    });
    let mut other = client(server.addr());
    ok(&mut other);
    let mut head = client(server.addr());
    head.send("HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    thread::sleep(Duration::from_millis(100));
    other.send(get("/"));
    let answered = read_response(&mut other.reader, false);
    go.store(true, Ordering::Release);
    assert_eq!(answered.expect("other connections are served").status, 200);
    let res = read_response(&mut head.reader, true).expect("the HEAD, after");
    assert_eq!(res.status, 200);
}

// ---------------------------------------------------------------------------
// 16. A handler in `read_and_write()` with nothing written yet, its body
//     read, parks on input; a `Control::ready` from its producer must run
//     it (a wake is kept for `wait()` as well, but the connection runs).
//     Lost when wakes ran only waiting exchanges, for fairness.
// ---------------------------------------------------------------------------

/// Streams what a producer thread hands it, waiting in `read_and_write()`.
struct Duplex {
    control: Control,
    data: Arc<Mutex<Option<Vec<u8>>>>,
    started: bool,
}

impl Handler for Duplex {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        Next::write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 64];
        let _ = body.read(&mut buf);
        Next::read_and_write()
    }

    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        if !self.started {
            self.started = true;
            let (control, data) = (self.control.clone(), Arc::clone(&self.data));
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100));
                *data.lock().unwrap() = Some(b"hello".to_vec());
                let _ = control.ready(Next::read_and_write());
            });
        }
        Next::read_and_write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        match self.data.lock().unwrap().take() {
            Some(data) => {
                let _ = body.write_all(&data);
                Next::end()
            }
            None => Next::read_and_write(),
        }
    }
}

#[test]
fn a_wake_runs_a_handler_parked_in_read_and_write() {
    let server = serve_with(
        // Far beyond BOUND: only the wake can finish this in time.
        |s| s.io_timeout(Duration::from_secs(60)),
        |control| Duplex {
            control,
            data: Arc::default(),
            started: false,
        },
    );
    let mut c = client(server.addr());
    c.send(get("/"));
    let res = read_response(&mut c.reader, false).expect("the woken handler's answer");
    assert_eq!(res.body_str(), "hello");
}
