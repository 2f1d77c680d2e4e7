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

// ---- a port is the server's own --------------------------------------

/// Binds a listener of another program that sets `SO_REUSEPORT` itself.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(16)?;
    Ok(s)
}

fn assert_addr_in_use<T: std::fmt::Debug>(result: std::io::Result<T>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{what}: {err}");
}

#[test]
fn a_second_server_on_a_port_in_use_fails_with_one_worker() {
    let server = serve(|_| common::handlers::Hello);
    assert_addr_in_use(Server::bind(server.addr()), "a second Server::bind");
    assert_addr_in_use(
        Server::bind(server.addr()).map(|s| s.workers(4)),
        "a second Server with 4 workers",
    );
    // Not even a program that sets SO_REUSEPORT itself can share it.
    assert_addr_in_use(reuseport_listener(server.addr()), "a SO_REUSEPORT socket");
    // The server still serves, alone.
    common::ok(&mut client(server.addr()));
}

#[cfg(target_os = "linux")]
#[test]
fn a_second_server_on_a_port_in_use_fails_with_several_workers() {
    let server = common::serve_with(|s| s.workers(3), |_| common::handlers::Hello);
    assert_addr_in_use(Server::bind(server.addr()), "a second Server::bind");
    assert_addr_in_use(
        Server::bind(server.addr()).map(|s| s.workers(3)),
        "a second Server with 3 workers",
    );
    // What the kernel allows: a socket of the same user that sets
    // SO_REUSEPORT itself joins the workers' group (documented on
    // `Server`). Shown here so that a change in it is noticed.
    assert!(reuseport_listener(server.addr()).is_ok());
}

#[test]
fn a_port_is_free_again_once_the_server_is_gone() {
    let server = serve(|_| common::handlers::Hello);
    let addr = server.addr();
    server.shutdown();
    server.join().unwrap();
    let again = Server::bind(addr).expect("rebinding after shutdown (SO_REUSEADDR)");
    assert_eq!(again.local_addr().unwrap(), addr);
}

// ---- listeners and sockets -------------------------------------------

#[test]
fn from_listener_serves_a_socket_bound_beforehand() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_listener(listener)
        .unwrap()
        .handle(|_| common::handlers::Hello)
        .unwrap();
    assert_eq!(server.addr(), addr);
    let mut c = client(addr);
    common::ok(&mut c);
    common::ok(&mut c);
}

#[test]
fn from_listener_with_several_workers_shares_the_socket() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::from_listener(listener)
        .unwrap()
        .workers(2)
        .handle(|_| common::handlers::Hello)
        .unwrap();
    let mut clients: Vec<_> = (0..16).map(|_| client(addr)).collect();
    for c in &mut clients {
        common::ok(c);
    }
    // Its own socket, not one beside it: the port stays the server's.
    assert_addr_in_use(reuseport_listener(addr), "a SO_REUSEPORT socket");
    drop(server);
}

/// Connections the kernel completes while the loop is not accepting
/// (built with `handle_here`, not run yet): `backlog + 1` on Linux.
#[cfg(target_os = "linux")]
fn completed_before_accepting(configure: impl FnOnce(Server) -> Server) -> usize {
    use std::time::Duration;
    let (listening, _loop) = configure(Server::bind("127.0.0.1:0").unwrap())
        .handle_here(|_| common::handlers::Hello)
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..6 {
        // A full accept queue drops the SYN: the connect does not complete
        // before the client's first retransmission (1 s).
        match std::net::TcpStream::connect_timeout(&listening.addr(), Duration::from_millis(400)) {
            Ok(s) => open.push(s),
            Err(_) => break,
        }
    }
    open.len()
}

#[cfg(target_os = "linux")]
#[test]
fn backlog_bounds_the_connections_waiting_to_be_accepted() {
    assert_eq!(completed_before_accepting(|s| s.backlog(1)), 2);
    assert_eq!(completed_before_accepting(|s| s), 6);
}

/// Reports whether its connection had `TCP_NODELAY`, then takes it over.
struct NoDelay(std::sync::mpsc::Sender<bool>);

impl Handler for NoDelay {
    fn on_request(&mut self, _req: Request<'_>) -> Next {
        Next::remove()
    }

    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        Next::end()
    }

    fn on_remove(self, conn: nextloop::Detached) {
        let _ = self.0.send(conn.stream().nodelay().unwrap());
    }
}

#[test]
fn nodelay_is_on_unless_turned_off() {
    for (setting, expected) in [(None, true), (Some(false), false), (Some(true), true)] {
        let (tx, rx) = std::sync::mpsc::channel();
        let server = common::serve_with(
            |s| match setting {
                Some(on) => s.nodelay(on),
                None => s,
            },
            move |_| NoDelay(tx.clone()),
        );
        let mut c = client(server.addr());
        c.send(get("/"));
        let got = rx.recv_timeout(common::BOUND).expect("on_remove");
        assert_eq!(got, expected, "nodelay setting {setting:?}");
    }
}
