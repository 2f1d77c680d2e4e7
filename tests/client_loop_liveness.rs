//! A client handler that makes no progress — re-arms a zero timeout,
//! reads or writes nothing while asking to go on, or uploads to a
//! connection the server reset — never keeps the client's loop thread
//! from serving other requests.
//!
//! Each test checks the loop with a probe request to another raw server
//! on 127.0.0.1. Tests that could hang the loop thread have an escape
//! hatch: the handler stops misbehaving when the test sets `stop`, so a
//! failing test ends (and the loop recovers) instead of blocking the suite.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{self, BufRead, BufReader, Read, Write};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use client_kit::{raw, read_head, read_head_lines, signal, Collect, Raw};
use common::IO_TIMEOUT;
use nextloop::client::{self, Error, Handler};
use nextloop::{Decoder, Encoder, Next};

/// How long a probe request may take before the loop counts as hung.
const PROBE: Duration = Duration::from_secs(5);

// ---- raw servers ----

/// Keep-alive HTTP/1.1: answers each request with `ok`, reading
/// Content-Length bodies.
fn keep_alive_server() -> Raw {
    raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Some(head) = read_head(&mut r) {
            let mut body = vec![0; head.content_length];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

/// Answers every request `200 ok`.
fn ok_server() -> Raw {
    raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while read_head_lines(&mut r).is_some() {
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    })
}

// ---- the probe ----

/// Does a fresh GET on `client` complete within [`PROBE`]? `false` means
/// the client's loop thread is stuck.
fn probe(client: &client::Client) -> bool {
    let server = keep_alive_server();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/probe"), Collect::new("GET", &tx))
        .unwrap();
    matches!(rx.recv_timeout(PROBE), Ok(Ok((200, _))))
}

fn wait_until(what: impl Fn() -> bool) {
    let start = Instant::now();
    while !what() && start.elapsed() < IO_TIMEOUT {
        thread::sleep(Duration::from_millis(5));
    }
}

// ---- handlers that make no progress ----

/// Parks after the head with a zero timeout, and re-arms a zero timeout
/// from `on_error(Timeout)` until `stop`.
struct ZeroTimeout {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Handler for ZeroTimeout {
    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::wait().timeout(Duration::ZERO)
    }

    fn on_error(&mut self, err: Error) -> Next {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if matches!(err, Error::Timeout) && !self.stop.load(Ordering::SeqCst) {
            Next::wait().timeout(Duration::ZERO)
        } else {
            Next::remove()
        }
    }
}

#[test]
fn zero_timeout_rearmed_from_on_error_does_not_hang_the_loop() {
    let server = keep_alive_server();
    let client = client::Client::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = ZeroTimeout {
        stop: Arc::clone(&stop),
        calls: Arc::clone(&calls),
    };
    client.request(&server.url("/zero"), handler).unwrap();
    wait_until(|| calls.load(Ordering::SeqCst) > 0);
    let alive = probe(&client);
    stop.store(true, Ordering::SeqCst);
    assert!(
        alive,
        "another request on the client got no answer in {PROBE:?}: the loop thread is \
         spinning in expire() ({} on_error calls)",
        calls.load(Ordering::SeqCst)
    );
}

/// Reads the head, then answers every `on_response_readable` with `next`
/// without reading, until `stop`.
struct IdleReader {
    next: fn() -> Next,
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Handler for IdleReader {
    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.stop.load(Ordering::SeqCst) {
            return (self.next)();
        }
        let mut buf = [0u8; 64];
        for _ in 0..64 {
            match body.read(&mut buf) {
                Ok(0) => return Next::end(),
                Ok(_) => {}
                Err(_) => return Next::read(),
            }
        }
        Next::end()
    }
}

fn idle_reader_does_not_hang_the_loop(next: fn() -> Next) {
    let server = keep_alive_server();
    let client = client::Client::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = IdleReader {
        next,
        stop: Arc::clone(&stop),
        calls: Arc::clone(&calls),
    };
    client.request(&server.url("/idle"), handler).unwrap();
    wait_until(|| calls.load(Ordering::SeqCst) > 0);
    let alive = probe(&client);
    stop.store(true, Ordering::SeqCst);
    assert!(
        alive,
        "another request got no answer in {PROBE:?}: the loop thread spins in \
         Conn::advance ({} on_response_readable calls)",
        calls.load(Ordering::SeqCst)
    );
}

#[test]
fn read_and_write_that_reads_nothing_does_not_hang_the_loop() {
    idle_reader_does_not_hang_the_loop(Next::read_and_write);
}

#[test]
fn write_after_the_request_that_reads_nothing_does_not_hang_the_loop() {
    idle_reader_does_not_hang_the_loop(Next::write);
}

/// Declares a 2-byte body, then answers `on_request_writable` with
/// `read_and_write()` without writing, until `stop`.
struct IdleWriter {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Handler for IdleWriter {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method("PUT").set_content_length(2);
        Next::write()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.stop.load(Ordering::SeqCst) {
            return Next::read_and_write();
        }
        let _ = body.write_all(b"ok");
        Next::read()
    }

    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn read_and_write_that_writes_nothing_does_not_hang_the_loop() {
    let server = keep_alive_server();
    let client = client::Client::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = IdleWriter {
        stop: Arc::clone(&stop),
        calls: Arc::clone(&calls),
    };
    client.request(&server.url("/upload"), handler).unwrap();
    wait_until(|| calls.load(Ordering::SeqCst) > 0);
    let alive = probe(&client);
    stop.store(true, Ordering::SeqCst);
    assert!(
        alive,
        "another request got no answer in {PROBE:?}: the loop thread spins in \
         Conn::advance ({} on_request_writable calls)",
        calls.load(Ordering::SeqCst)
    );
}

// ---- an upload to a connection the server reset ----

// Once a bug: a write error while uploading made the loop feed a dead
// connection forever.

/// An endless chunked upload that goes on after the response head (full
/// duplex: `Next::write()` from `on_response`), until `stop`.
struct EndlessUpload {
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<String>,
}

impl Handler for EndlessUpload {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method("POST");
        Next::write()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if self.stop.load(Ordering::SeqCst) {
            return Next::read();
        }
        let piece = [b'x'; 8192];
        loop {
            match body.write(&piece) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.events.send(format!("response {}", res.status()));
        Next::write()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.events.send(format!("error {err}"));
        Next::remove()
    }
}

#[test]
fn an_upload_to_a_reset_connection_does_not_spin_the_loop() {
    let (reset_tx, reset) = signal();
    let reset_tx = Mutex::new(reset_tx);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head_lines(&mut r).is_some() {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            // Let some of the upload arrive unread, then drop the
            // connection: the kernel resets it.
            let _ = r.fill_buf();
            drop((r, w));
            let _ = reset_tx.lock().unwrap().send(());
        }
    });
    let client = client::Client::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (etx, erx) = mpsc::channel();
    let handler = EndlessUpload {
        stop: Arc::clone(&stop),
        events: etx,
    };
    client.request(&server.url("/up"), handler).unwrap();
    assert_eq!(erx.recv_timeout(IO_TIMEOUT).unwrap(), "response 200");
    reset.wait();
    let other = ok_server();
    let (tx, rx) = mpsc::channel();
    client
        .request(&other.url("/probe"), Collect::new("GET", &tx))
        .unwrap();
    let probe = rx.recv_timeout(PROBE);
    // Escape hatch: lets a spinning loop recover, so the test ends.
    stop.store(true, Ordering::SeqCst);
    assert!(
        matches!(probe, Ok(Ok((200, _)))),
        "the loop thread is stuck feeding a dead connection: the probe got {probe:?}"
    );
    // The upload is over (its handler dropped, or told why), not left
    // waiting to write on a connection that is gone.
    let ended = erx.recv_timeout(IO_TIMEOUT);
    assert!(
        matches!(&ended, Err(RecvTimeoutError::Disconnected))
            || matches!(&ended, Ok(e) if e.starts_with("error")),
        "{ended:?}"
    );
}
