//! A handler that makes no progress — asks for both directions with a
//! full buffer, asks to read after its body ended, re-arms a zero timeout,
//! wakes itself, streams a body that HEAD suppresses — never keeps the
//! loop from serving other connections. Each bug was a cycle on the loop
//! thread with no progress check.
//!
//! Every test serves `/` with Hello and checks that another connection is
//! still answered; a handler that would spin forever has an escape hatch
//! (a flag the test sets) so a failure ends instead of blocking the suite.
//! Over real TCP on 127.0.0.1; waits are bounded; nothing asserts on timing.

mod common;

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::handlers::{DuplexOrHello, Hello};
use common::{client, get, ok, read_response, serve};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Decoder, Encoder, Next};

// ---------------------------------------------------------------------------
// Once a bug: Next::read_and_write(): a handler that cannot take more body now
// spins the loop (step_exchange prefers step_read while the body is readable,
// with no progress check).
// ---------------------------------------------------------------------------

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
// Once a bug: Next::read() after the body has ended, from a handler with
// nothing to write: step_read turns it into Write, step_write calls the
// handler, which asks read() again — a cycle inside Conn::advance with no
// progress guard (step_write's `stuck` only covers Write/ReadWrite).
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
// Once a bug: a zero timeout re-armed from on_error fires again within the
// same EventLoop::expire pass (same `now`): the loop never gets back to poll.
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
// Once a bug: a handler that wakes itself (`ready` from a callback, then
// `wait`): `on_wake` drained the queue until empty, and every run queued a new
// wake, so the loop never polled again.
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
// Once a bug: body writes that never fill the write buffer — a streamed body
// to a HEAD request, which the server suppresses — kept `Conn::advance`
// calling `on_response_writable` for as long as the handler streamed.
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
