//! Client exchanges cut short — by their own timeout, a panic, a server
//! that answers before the upload is done, a handler giving up — end
//! cleanly and cost nothing to the exchanges around them; dropping the
//! `Client` does not cut short the exchanges in flight.
//!
//! Raw servers on 127.0.0.1 play the peer; every wait is bounded. Servers
//! are held back by signals from the test rather than by sleeps where the
//! outcome would otherwise depend on timing.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{self, BufRead, BufReader, Read, Write};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use client_kit::{
    get, hold, raw, read_head, read_head_lines, signal, until_closed, Collect, Outcome, Raw,
};
use common::IO_TIMEOUT;
use nextloop::client::{self, Error, Handler};
use nextloop::{Encoder, Next};

// ---- the client dropped mid-body ----

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

// ---- a panic in a pipelined exchange ----

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

// ---- an early answer to an upload ----

// Once a bug: moving on after an early answer sent the last chunk of a
// body the handler never finished, so a cut-short chunked body looked
// complete.

/// Streams `total` bytes chunked; `Next::read()` from `on_response`.
struct Upload {
    total: usize,
    sent: usize,
    done: mpsc::Sender<Outcome>,
}

impl Handler for Upload {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method("POST");
        Next::write()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let piece = [b'x'; 4096];
        while self.sent < self.total {
            let n = (self.total - self.sent).min(piece.len());
            match body.write(&piece[..n]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.done.send(Ok((res.status(), Vec::new())));
        Next::read()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.done.send(Err(err.to_string()));
        Next::remove()
    }
}

#[test]
fn an_early_answer_does_not_send_the_last_chunk_of_an_unfinished_body() {
    const TOTAL: usize = 64 << 20; // far more than the socket buffers hold
    let (go_tx, go) = signal();
    let (seen_tx, seen_rx) = mpsc::channel::<(usize, bool)>();
    let seen_tx = Mutex::new(seen_tx);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head_lines(&mut r).is_none() {
            return;
        }
        // Answer at once (as a server may), and read the chunked body only
        // once the client has seen the answer.
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        go.wait();
        let (mut body, mut complete) = (0usize, false);
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let Ok(size) = usize::from_str_radix(line.trim_end(), 16) else {
                break;
            };
            if size == 0 {
                complete = true;
                break;
            }
            let mut data = vec![0; size + 2];
            if r.read_exact(&mut data).is_err() {
                break;
            }
            body += size;
        }
        let _ = seen_tx.lock().unwrap().send((body, complete));
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let upload = Upload {
        total: TOTAL,
        sent: 0,
        done: tx,
    };
    client.request(&server.url("/upload"), upload).unwrap();
    let outcome = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(outcome, Ok((200, Vec::new())));
    go_tx.send(()).unwrap();
    let (body, complete) = seen_rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(
        !complete && body < TOTAL,
        "the server received a complete chunked body of {body} of {TOTAL} bytes: the client \
         wrote the last chunk for a body its handler never finished"
    );
}

// ---- a pipelined exchange's own timeout ----

// Once a bug: a pipelined request's own timeout failed the request ahead
// of it (with "server closed").

/// A GET with its own short timeout that gives up on it with
/// `Next::remove()` (the default), reporting the timeout first.
struct Impatient {
    timed_out: mpsc::Sender<()>,
    responded: Arc<AtomicBool>,
}

impl Handler for Impatient {
    fn on_request(&mut self, _: &mut client::Request<'_>) -> Next {
        Next::read().timeout(Duration::from_millis(100))
    }

    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        self.responded.store(true, Ordering::SeqCst);
        Next::end()
    }

    fn on_error(&mut self, err: Error) -> Next {
        assert!(matches!(err, Error::Timeout), "{err:?}");
        let _ = self.timed_out.send(());
        Next::remove()
    }
}

#[test]
fn a_pipelined_request_timing_out_does_not_fail_the_one_ahead() {
    // Answers only once both pipelined requests are in and the test says
    // so (after the second one's timeout), then serves on.
    let (go_tx, go) = signal();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head_lines(&mut r).is_none() || read_head_lines(&mut r).is_none() {
            return;
        }
        go.wait();
        let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nlater");
        while read_head_lines(&mut r).is_some() {
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
    let (timed_out, timeout) = mpsc::channel();
    let responded = Arc::new(AtomicBool::new(false));
    let impatient = Impatient {
        timed_out,
        responded: Arc::clone(&responded),
    };
    client.request(&server.url("/b"), impatient).unwrap();
    timeout.recv_timeout(IO_TIMEOUT).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Ok((200, b"ok".to_vec())),
        "the GET ahead failed because the request pipelined behind it hit its own timeout"
    );
    // The abandoned response was read past, unseen: the connection
    // serves on.
    assert_eq!(get(&client, &server.url("/c")), Ok((200, b"ok".to_vec())));
    assert_eq!(server.accepted(), 1);
    assert!(!responded.load(Ordering::SeqCst));
}

// ---- a handler giving up while the response head is due ----

// Once a bug: `Next::end()` from `on_error(Timeout)` while waiting for the
// response head was ignored.

/// A server that answers `200 ok` when the test sends on the returned
/// sender, then reports whether the client closed the connection (`true`)
/// or left it open.
fn answer_when_told() -> (Raw, mpsc::Sender<()>, mpsc::Receiver<bool>) {
    let (go_tx, go) = signal();
    let (closed_tx, closed_rx) = mpsc::channel();
    let closed_tx = Mutex::new(closed_tx);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if read_head_lines(&mut r).is_some() {
            go.wait();
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            let closed = until_closed(&mut r);
            let _ = closed_tx.lock().unwrap().send(closed);
        }
    });
    (server, go_tx, closed_rx)
}

/// Waits for the head under its own timeout; on it, gives up with
/// `Next::end()`.
struct GivesUp {
    events: mpsc::Sender<String>,
}

impl Handler for GivesUp {
    fn on_request(&mut self, _: &mut client::Request<'_>) -> Next {
        Next::read().timeout(Duration::from_millis(100))
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.events.send(format!("response {}", res.status()));
        Next::end()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.events.send(format!("error {err}"));
        Next::end()
    }
}

#[test]
fn end_after_the_handlers_own_timeout_ends_the_exchange() {
    let (server, go_tx, closed_rx) = answer_when_told();
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/"), GivesUp { events: tx })
        .unwrap();
    let first = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(first, format!("error {}", Error::Timeout));
    // The exchange is over: its handler is dropped, with no other callback.
    let after = rx.recv_timeout(IO_TIMEOUT);
    go_tx.send(()).unwrap();
    let later = rx.recv_timeout(IO_TIMEOUT);
    assert!(
        matches!(after, Err(RecvTimeoutError::Disconnected)),
        "Next::end() from on_error(Timeout) did not end the exchange: then {after:?}, {later:?}"
    );
    // The response was still to come: the client closed the connection.
    assert_eq!(closed_rx.recv_timeout(IO_TIMEOUT), Ok(true));
}

// Once a bug (found by the review of the fix above): an early
// `Next::end()` taken by `Next::wait()` skipped giving the exchange up.

struct WaitsAfterTimeout {
    events: mpsc::Sender<String>,
    controls: mpsc::Sender<nextloop::Control>,
}

impl Handler for WaitsAfterTimeout {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        let _ = self.controls.send(req.control());
        Next::read().timeout(Duration::from_millis(300))
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.events.send(format!("response {}", res.status()));
        Next::end()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.events.send(format!("error {err}"));
        // Waits for the wake-up, which already came: Next::end().
        Next::wait()
    }
}

#[test]
fn an_early_end_taken_by_wait_while_the_head_is_due_gives_the_exchange_up() {
    let (server, go_tx, closed_rx) = answer_when_told();
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let (ctx, crx) = mpsc::channel();
    client
        .request(
            &server.url("/"),
            WaitsAfterTimeout {
                events: tx,
                controls: ctx,
            },
        )
        .unwrap();
    let control = crx.recv_timeout(IO_TIMEOUT).unwrap();
    // Before the timeout: interest is Read, so it is kept as an early wake.
    control.ready(Next::end()).unwrap();
    let first = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(first, format!("error {}", Error::Timeout));
    go_tx.send(()).unwrap();
    let after = rx.recv_timeout(Duration::from_secs(2));
    assert!(
        matches!(after, Err(RecvTimeoutError::Disconnected)),
        "Next::end() (early wake, taken by Next::wait()) did not give the exchange up: then {after:?}"
    );
    assert_eq!(closed_rx.recv_timeout(IO_TIMEOUT), Ok(true));
}
