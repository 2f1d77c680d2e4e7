//! A bug in a handler — a Content-Length that contradicts the body it set,
//! a panic whose payload panics again when dropped — costs only its own
//! connection: the loop lives on and other connections are served.
//!
//! (Handler panics in general are in `tests/lifecycle.rs`, `mod panics`;
//! these two are apart because one swaps the process's panic hook.)
//! Over real TCP on 127.0.0.1; waits are bounded.

mod common;

use common::handlers::Hello;
use common::{client, get, ok, read_response, serve};
use nextloop::server::{Handler, Request, Response};
use nextloop::Next;

// ---------------------------------------------------------------------------
// Once a bug: Response::set_content_length after Response::body: arithmetic
// outside the panic guard (Response::finish `*n -= queued`).
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
// Once a bug: a panic whose payload panics when dropped: the guard dropped the
// payload outside `catch_unwind`, and the loop thread died.
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
