//! Responses larger than the socket takes at once, to readers slower
//! than the server: the timers, graceful shutdown and memory while the
//! output is still being flushed.
//!
//! Over real TCP on 127.0.0.1. These tests move tens of MiB (and one
//! measures the process's memory), so they take one lock and run one at a
//! time. Waits are bounded; nothing asserts on timing.

mod common;
#[path = "common/sockets.rs"]
mod sockets;

use std::io::{self, Read, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use common::handlers::Hello;
use common::{client, get, read_response, serve, serve_with};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Encoder, Next};
use sockets::set_listener_send_buffer;

// ---------------------------------------------------------------------------
// Once a bug: output still being flushed after Next::end(): the phase deadline
// of the next phase (keep-alive, head) and graceful shutdown treat the
// connection as idle and drop it or answer 408.
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
// Once a bug: WriteBuf never compacts: written bytes stay in `buf[..pos]`
// until a flush empties the buffer completely. While a handler streams and
// each flush is short (socket send buffer smaller than the 64 KiB high-water
// mark), the Vec grows by every byte of the response.
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
