//! The server's surface for users (issue 14): who is calling, body
//! limits, listeners and sockets, HEAD, chunk coalescing. Every test talks
//! raw bytes over real TCP to a server on 127.0.0.1.

mod common;

use std::net::SocketAddr;

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::Next;

use common::{client, get, serve};

// ---- who is calling -------------------------------------------------

/// Answers `remote local` as the handler saw them.
#[derive(Default)]
struct Addrs(String);

impl Handler for Addrs {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.0 = format!("{} {}", req.remote_addr(), req.local_addr());
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(self.0.as_bytes());
        Next::end()
    }
}

/// The body of `GET /` on a new connection to `addr`, and that
/// connection's two ends as the client sees them.
fn addrs_seen(addr: SocketAddr) -> (String, SocketAddr, SocketAddr) {
    let mut c = client(addr);
    let (mine, theirs) = (
        c.stream().local_addr().unwrap(),
        c.stream().peer_addr().unwrap(),
    );
    c.send(get("/"));
    (c.response().body_str().to_string(), mine, theirs)
}

#[test]
fn a_handler_learns_both_ends_of_its_connection() {
    let server = serve(|_| Addrs::default());
    for _ in 0..2 {
        let (seen, mine, theirs) = addrs_seen(server.addr());
        assert_eq!(seen, format!("{mine} {theirs}"));
    }
}

#[test]
fn behind_a_wildcard_listener_the_local_address_is_the_one_reached() {
    let server = Server::bind("0.0.0.0:0")
        .unwrap()
        .handle(|_| Addrs::default())
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], server.addr().port()).into();
    let (seen, mine, theirs) = addrs_seen(addr);
    assert_eq!(seen, format!("{mine} {theirs}"));
    assert!(
        seen.ends_with(&format!(" 127.0.0.1:{}", addr.port())),
        "{seen}"
    );
}

#[test]
fn a_hypersync_handler_learns_both_ends_too() {
    let server = nextloop::hypersync::Server::bind("127.0.0.1:0")
        .unwrap()
        .threads(1)
        .handle(|req, res| {
            use std::io::Write;
            let _ = write!(res, "{} {}", req.remote_addr(), req.local_addr());
        })
        .unwrap();
    let (seen, mine, theirs) = addrs_seen(server.addr());
    assert_eq!(seen, format!("{mine} {theirs}"));
}
