//! Adversarial review of the HTTP/1.1 client (`nextloop::client`).
//!
//! Each `#[ignore = "BUG: ..."]` test proves one bug and passes once it is
//! fixed. Tests that hang the client's loop thread have an escape hatch: the
//! handler stops misbehaving when the test sets `stop`, so a failing test
//! ends (and the loop recovers) instead of blocking the suite.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{self, BufRead, BufReader, Read, Write};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use client_kit::{raw, Collect, Raw};
use common::IO_TIMEOUT;
use nextloop::client::{self, Decoder, Encoder, Error, Handler};
use nextloop::Next;

/// How long a probe request may take before the loop counts as hung.
const PROBE: Duration = Duration::from_secs(5);

// ---- raw servers ----

struct Head {
    method: String,
    path: String,
    content_length: usize,
}

/// Reads one request head; `None` at EOF or on error.
fn read_head(r: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut content_length = 0;
    for _ in 0..100 {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            return Some(Head {
                method,
                path,
                content_length,
            });
        }
        let (n, v) = l.split_once(':')?;
        if n.eq_ignore_ascii_case("content-length") {
            content_length = v.trim().parse().ok()?;
        }
    }
    None
}

/// Reads until the peer closes (or the read timeout passes).
fn hold(r: &mut impl Read) {
    let mut sink = [0u8; 4096];
    for _ in 0..100_000 {
        match r.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

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

// ---- handlers ----

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

// ---- loop-thread hangs ----

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

// ---- retries and pipelining ----

/// Ends the exchange as soon as the head is in (abandoning a large body).
struct HeadOnly;

impl Handler for HeadOnly {
    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn a_pipelined_post_is_never_sent_twice() {
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&posts);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Some(head) = read_head(&mut r) {
            if head.method == "POST" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            if head.path == "/big" {
                // Wait for the pipelined POST, then start a body far larger
                // than the client will drain.
                if let Some(next) = read_head(&mut r) {
                    if next.method == "POST" {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let mut res = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
                res.extend_from_slice(&[b'x'; 1000]);
                let _ = w.write_all(&res);
                hold(&mut r);
                return;
            }
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let client = client::Client::builder()
        .max_per_host(1)
        .pipelining(2)
        .build()
        .unwrap();
    client.request(&server.url("/big"), HeadOnly).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/post"), Collect::new("POST", &tx))
        .unwrap();
    let outcome = rx.recv_timeout(IO_TIMEOUT).expect("the POST ends");
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "the POST reached the server twice (connections: {}; its outcome: {outcome:?})",
        server.accepted.load(Ordering::SeqCst)
    );
}

// ---- bytes handed over with the socket ----

struct Upgrade {
    got: mpsc::Sender<Vec<u8>>,
}

impl Handler for Upgrade {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.header("Connection", "upgrade")
            .header("Upgrade", "echo");
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        if res.status() == 101 {
            Next::remove()
        } else {
            Next::end()
        }
    }

    fn on_remove(self, mut transport: nextloop::Detached) {
        let got = self.got;
        thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 64];
            let start = Instant::now();
            while out.len() < 5 && start.elapsed() < Duration::from_secs(3) {
                match transport.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => break,
                }
            }
            let _ = got.send(out);
        });
    }
}

#[test]
fn bytes_after_101_reach_the_new_owner_of_the_socket() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head(&mut r).is_some() {
            let _ = w.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nHELLO",
            );
            hold(&mut r);
        }
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/ws"), Upgrade { got: tx })
        .unwrap();
    let got = rx.recv_timeout(IO_TIMEOUT).expect("on_remove called");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "HELLO",
        "the first bytes of the new protocol were dropped"
    );
}

// ---- checked and found correct ----

#[test]
fn dropping_the_client_mid_body_finishes_the_exchange() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head(&mut r).is_some() {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc");
            thread::sleep(Duration::from_millis(200));
            let _ = w.write_all(b"def");
            hold(&mut r);
        }
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/"), Collect::new("GET", &tx))
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    drop(client);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Ok((200, b"abcdef".to_vec()))
    );
}

#[test]
fn a_post_on_a_stale_keep_alive_connection_is_not_retried() {
    // The server answers one request per connection, then closes without
    // saying so: the second request finds a dead pooled connection.
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&posts);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if let Some(head) = read_head(&mut r) {
            if head.method == "POST" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/1"), Collect::new("GET", &tx))
        .unwrap();
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Ok((200, b"ok".to_vec()))
    );
    thread::sleep(Duration::from_millis(100));
    client
        .request(&server.url("/2"), Collect::new("POST", &tx))
        .unwrap();
    let outcome = rx.recv_timeout(IO_TIMEOUT).unwrap();
    // Either the close was noticed while idle (a fresh connection, one
    // POST) or the POST failed; never two POSTs.
    assert!(posts.load(Ordering::SeqCst) <= 1, "{outcome:?}");
}

/// Panics building its request head.
struct PanicsInOnRequest;

impl Handler for PanicsInOnRequest {
    fn on_request(&mut self, _: &mut client::Request<'_>) -> Next {
        panic!("handler bug (expected by the test)");
    }

    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn a_panic_in_a_pipelined_on_request_costs_only_that_exchange() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while read_head(&mut r).is_some() {
            // Slow enough that the second request is pipelined behind.
            thread::sleep(Duration::from_millis(300));
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let client = client::Client::builder()
        .max_per_host(1)
        .pipelining(2)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/a"), Collect::new("GET", &tx))
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    client
        .request(&server.url("/b"), PanicsInOnRequest)
        .unwrap();
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Ok((200, b"ok".to_vec())),
        "the GET ahead of the panicking request failed"
    );
}
