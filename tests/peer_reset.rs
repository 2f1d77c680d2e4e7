//! A reset or hang-up never discards what arrived before it: the same
//! policy on both sides of the reactor. A request that arrived whole just
//! before the client reset the connection is handled as if the reset had
//! come a moment later (its handler runs; writing the answer then fails).

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{serve, Client, IO_TIMEOUT};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Next};

/// `/block` holds the loop thread (deliberately, for the test) so that a
/// request and its reset arrive in one batch of events; every request
/// reports its path.
struct Block {
    seen: mpsc::Sender<String>,
}

impl Handler for Block {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        let _ = self.seen.send(req.path().to_string());
        if req.path() == "/block" {
            thread::sleep(Duration::from_millis(300));
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"ok");
        Next::end()
    }
}

#[test]
fn a_request_that_arrived_before_a_reset_is_still_handled() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| Block { seen: tx.clone() });
    let mut a = Client::connect(server.addr());
    a.send("GET /block HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), "/block");
    // The loop is asleep in /block: B's request and its reset are both
    // waiting when it polls again.
    let mut b = Client::connect(server.addr());
    b.send("GET /before-reset HTTP/1.1\r\nHost: x\r\n\r\n");
    socket2::SockRef::from(b.reader.get_ref())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(b);
    assert_eq!(a.response().body_str(), "ok");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT)
            .expect("B's request reached its handler"),
        "/before-reset"
    );
    // And the server goes on.
    let mut c = Client::connect(server.addr());
    c.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_str(), "ok");
}
