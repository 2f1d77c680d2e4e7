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

// ---- request body limit ----------------------------------------------

/// Reads the whole body (uploads to `/upload` may be 100 bytes), then
/// answers with its length; `/stream` answers first and then reads.
/// Reports what `on_error` was told.
struct Upload {
    got: usize,
    streaming: bool,
    errors: std::sync::mpsc::Sender<String>,
}

impl Upload {
    fn factory() -> (
        impl FnMut(nextloop::Control) -> Upload + Clone + Send,
        std::sync::mpsc::Receiver<String>,
    ) {
        let (tx, rx) = std::sync::mpsc::channel();
        let factory = move |_| Upload {
            got: 0,
            streaming: false,
            errors: tx.clone(),
        };
        (factory, rx)
    }
}

impl Handler for Upload {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/upload" {
            req.set_max_body_size(Some(100));
        }
        self.streaming = req.path() == "/stream";
        if self.streaming {
            Next::write()
        } else {
            Next::read()
        }
    }

    fn on_request_readable(&mut self, body: &mut nextloop::Decoder<'_>) -> Next {
        use std::io::Read;
        let mut buf = [0; 64];
        loop {
            match body.read(&mut buf) {
                Ok(0) if self.streaming => return Next::end(),
                Ok(0) => return Next::write(),
                Ok(n) => self.got += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Next::read(),
                Err(_) => return Next::remove(),
            }
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.streaming {
            res.header("Content-Type", "text/plain");
            return Next::read();
        }
        res.body(self.got.to_string().as_bytes());
        Next::end()
    }

    fn on_error(&mut self, err: nextloop::Error) -> Next {
        let _ = self.errors.send(format!("{err:?}"));
        Next::remove()
    }
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn post_chunked(path: &str, chunks: &[&str]) -> String {
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for c in chunks {
        req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    req + "0\r\n\r\n"
}

#[test]
fn a_body_within_the_limit_is_read() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send(post("/", "0123456789"));
    assert_eq!(c.response().body_str(), "10");
    c.send(post_chunked("/", &["01234", "56789"]));
    let res = c.response();
    assert_eq!(res.body_str(), "10");
    assert!(!res.closes());
}

#[test]
fn a_body_declared_too_large_gets_413_unread() {
    let (factory, errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    // Only the head: the server must answer without waiting for the body.
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
    let res = c.response();
    assert_eq!(res.status, 413);
    assert!(res.closes());
    assert!(c.is_closed());
    assert!(errors
        .recv_timeout(common::BOUND)
        .unwrap()
        .contains("BodyTooLarge"));
}

#[test]
fn with_100_continue_a_body_declared_too_large_gets_413_and_no_100() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n");
    let res = c.response();
    assert_eq!(res.status, 413, "the first response, not a 100");
    assert!(c.is_closed());
    // Within the limit, the same request gets its 100.
    let mut c = client(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    assert_eq!(c.response().status, 100);
    c.send("0123456789");
    assert_eq!(c.response().body_str(), "10");
}

#[test]
fn a_chunked_body_growing_past_the_limit_gets_413() {
    let (factory, errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send(post_chunked("/", &["01234", "56789", "x"]));
    let res = c.response();
    assert_eq!(res.status, 413);
    assert!(res.closes());
    assert!(c.is_closed());
    assert!(errors
        .recv_timeout(common::BOUND)
        .unwrap()
        .contains("BodyTooLarge"));
}

#[test]
fn a_chunked_body_growing_past_the_limit_after_the_head_cuts_the_connection() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send(post_chunked("/stream", &["01234", "56789", "x"]));
    let rest = c.read_to_close().unwrap_or_default();
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // The chunked response never ends: the connection was cut.
    assert!(!text.ends_with("0\r\n\r\n"), "{text}");
}

#[test]
fn an_exchange_may_raise_its_own_limit() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let body = "x".repeat(100);
    let mut c = client(server.addr());
    c.send(post("/upload", &body));
    assert_eq!(c.response().body_str(), "100");
    c.send(post_chunked("/upload", &[&body]));
    assert_eq!(c.response().body_str(), "100");
    c.send(post("/upload", &format!("{body}!")));
    assert_eq!(c.response().status, 413);
    // Elsewhere the server's limit holds.
    let mut c = client(server.addr());
    c.send(post("/", &body));
    assert_eq!(c.response().status, 413);
}

#[test]
fn a_413_does_not_run_the_request_pipelined_behind_it() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send(post("/", "0123456789!") + &post("/", "ok"));
    let res = c.response();
    assert_eq!(res.status, 413);
    assert!(res.closes());
    assert_eq!(c.read_to_close().unwrap_or_default(), b"");
    // The same with a chunked body past the limit.
    let mut c = client(server.addr());
    c.send(post_chunked("/", &["0123456789", "!"]) + &post("/", "ok"));
    assert_eq!(c.response().status, 413);
    assert_eq!(c.read_to_close().unwrap_or_default(), b"");
}

#[test]
fn bodies_exactly_at_the_limit_are_read_and_the_pipeline_goes_on() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let mut c = client(server.addr());
    c.send(
        post("/", "0123456789")
            + &post_chunked("/", &["0123456789"])
            + &post_chunked("/", &["0", "123456789"])
            + &post("/", "x"),
    );
    for want in ["10", "10", "10", "1"] {
        let res = c.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), want);
    }
}

#[test]
fn a_raised_limit_ends_with_its_exchange() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(10), factory);
    let body = "x".repeat(50);
    let mut c = client(server.addr());
    // Pipelined: the second request must not inherit the first's limit.
    c.send(post("/upload", &body) + &post("/", &body));
    assert_eq!(c.response().body_str(), "50");
    assert_eq!(c.response().status, 413);
    let mut c = client(server.addr());
    c.send(post_chunked("/upload", &[&body]) + &post_chunked("/", &[&body]));
    assert_eq!(c.response().body_str(), "50");
    assert_eq!(c.response().status, 413);
}

#[test]
fn a_lowered_limit_refuses_a_declared_body_before_its_100() {
    let (factory, _errors) = Upload::factory();
    let server = common::serve_with(|s| s.max_body_size(1000), factory);
    let mut c = client(server.addr());
    c.send(
        "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n",
    );
    let res = c.response();
    assert_eq!(res.status, 413, "the first response, not a 100");
    assert!(c.is_closed());
    // A chunked one under 100-continue: 100, then 413 once it grows past.
    let mut c = client(server.addr());
    c.send("POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(c.response().status, 100);
    c.send(format!("65\r\n{}\r\n0\r\n\r\n", "y".repeat(101)));
    assert_eq!(c.response().status, 413);
}

#[test]
fn without_a_limit_any_body_is_read() {
    let (factory, _errors) = Upload::factory();
    let server = serve(factory);
    let body = "x".repeat(200_000);
    let mut c = client(server.addr());
    c.send(post("/", &body));
    assert_eq!(c.response().body_str(), "200000");
}

// ---- HEAD ends with its head -------------------------------------------

/// Streams a 1 MiB body in 4 KiB writes (status from the path:
/// `/204` gives 204), counting its `on_response_writable` calls.
struct Big {
    left: usize,
    status: u16,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Handler for Big {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.status = if req.path() == "/204" { 204 } else { 200 };
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(self.status);
        if self.status == 200 {
            res.header("Content-Length", self.left.to_string());
        }
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut nextloop::Encoder<'_>) -> Next {
        use std::io::Write;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        while self.left > 0 {
            match body.write(&[b'x'; 4096][..self.left.min(4096)]) {
                Ok(n) => self.left -= n,
                Err(_) => return Next::write(),
            }
        }
        Next::end()
    }
}

#[test]
fn a_head_request_ends_with_the_head_and_never_runs_the_body() {
    use std::sync::atomic::Ordering;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let server = serve(move |_| Big {
        left: 1 << 20,
        status: 200,
        calls: counted.clone(),
    });
    let mut c = client(server.addr());
    for _ in 0..2 {
        c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
        let res = c.head_response();
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-length"), Some("1048576"));
        assert!(!res.closes());
    }
    c.send("GET /204 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 204);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "body callbacks for HEAD/204"
    );
    // A GET still streams its body, on the same connection.
    c.send(get("/"));
    let res = c.response();
    assert_eq!(res.body.len(), 1 << 20);
    assert!(calls.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_hypersync_head_response_ends_and_the_worker_is_not_held() {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = nextloop::hypersync::Server::bind("127.0.0.1:0")
        .unwrap()
        .threads(1)
        .handle(move |req, res| {
            use std::io::Write;
            if req.method() != "HEAD" {
                let _ = res.write_all(b"done");
                return;
            }
            // A large body: for HEAD its writes stop being taken.
            let mut written = 0usize;
            while written < 64 << 20 && res.write_all(&[b'x'; 64 << 10]).is_ok() {
                written += 64 << 10;
            }
            let _ = tx.lock().unwrap().send(written);
        })
        .unwrap();
    let mut c = client(server.addr());
    c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.head_response().status, 200);
    let written = rx
        .recv_timeout(common::IO_TIMEOUT)
        .expect("the worker finished");
    assert!(
        written < 64 << 20,
        "the worker wrote the whole body: {written}"
    );
    // The one worker is free again.
    let mut c = client(server.addr());
    c.send(get("/"));
    assert_eq!(c.response().body_str(), "done");
}

// ---- writes of one callback make one chunk ---------------------------

/// Server-sent events: each callback writes one event with `write!`
/// (several writes), three events in all. `/big`: 1 MiB, each callback
/// giving all that is left to one `write`.
struct Ticks {
    ticks: usize,
    big: Option<usize>,
}

const BIG: usize = 1 << 20;

impl Handler for Ticks {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/big" {
            self.big = Some(0);
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Content-Type", "text/event-stream");
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut nextloop::Encoder<'_>) -> Next {
        use std::io::Write;
        if let Some(sent) = &mut self.big {
            static DATA: [u8; BIG] = [b'b'; BIG];
            if let Ok(n) = body.write(&DATA[*sent..]) {
                *sent += n;
            }
            return if *sent == BIG {
                Next::end()
            } else {
                Next::write()
            };
        }
        if self.ticks == 3 {
            return Next::end();
        }
        self.ticks += 1;
        write!(body, "data: tick {}\n\n", self.ticks).unwrap();
        Next::write()
    }
}

fn ticks() -> Ticks {
    Ticks {
        ticks: 0,
        big: None,
    }
}

/// The chunks of a chunked body as they came: (size line, data).
fn raw_chunks(c: &mut common::Client) -> Vec<(String, Vec<u8>)> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    loop {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let mut chunks = Vec::new();
    loop {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
        let size_line = line.trim_end().to_string();
        let size = usize::from_str_radix(&size_line, 16).unwrap();
        let mut data = vec![0; size + 2];
        c.reader.read_exact(&mut data).unwrap();
        assert!(data.ends_with(b"\r\n"));
        data.truncate(size);
        if size == 0 {
            return chunks;
        }
        chunks.push((size_line, data));
    }
}

#[test]
fn the_writes_of_one_callback_go_out_as_one_chunk() {
    let server = serve(|_| ticks());
    let mut c = client(server.addr());
    c.send(get("/"));
    let chunks = raw_chunks(&mut c);
    let events: Vec<&[u8]> = chunks.iter().map(|(_, d)| &d[..]).collect();
    assert_eq!(
        events,
        [
            &b"data: tick 1\n\n"[..],
            b"data: tick 2\n\n",
            b"data: tick 3\n\n"
        ]
    );
}

#[test]
fn a_large_single_write_streams_through_the_fixed_buffer() {
    let server = serve(|_| ticks());
    let mut c = client(server.addr());
    c.send(get("/big"));
    let chunks = raw_chunks(&mut c);
    let total: usize = chunks.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(total, BIG);
    // Each write took what fit the output buffer (64 KiB), not the whole.
    assert!(chunks.len() >= 16, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|(_, d)| d.len() <= 64 << 10));
    assert!(chunks.iter().all(|(_, d)| d.iter().all(|&b| b == b'b')));
    // The connection goes on.
    c.send(get("/"));
    assert_eq!(raw_chunks(&mut c).len(), 3);
}

#[test]
fn a_hypersync_server_keeps_the_body_limit_too() {
    let native = Server::bind("127.0.0.1:0").unwrap().max_body_size(10);
    let server = nextloop::hypersync::Server::from(native)
        .threads(1)
        .handle(|req, res| {
            use std::io::{Read, Write};
            let mut body = Vec::new();
            if req.read_to_end(&mut body).is_ok() {
                let _ = write!(res, "{}", body.len());
            }
        })
        .unwrap();
    let mut c = client(server.addr());
    c.send(post("/", "0123456789"));
    assert_eq!(c.response().body_str(), "10");
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n");
    assert_eq!(c.response().status, 413);
    assert!(c.is_closed());
    let mut c = client(server.addr());
    c.send(post_chunked("/", &["01234", "56789", "x"]));
    assert_eq!(c.response().status, 413);
    // The one worker is free again.
    let mut c = client(server.addr());
    c.send(post("/", "abc"));
    assert_eq!(c.response().body_str(), "3");
}

/// An event stream: its head, then a wait for events (none come here);
/// `/` gets Hello.
struct Events(bool);

impl Handler for Events {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.0 = req.path() == "/events";
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if !self.0 {
            return common::handlers::Hello.on_response(res);
        }
        res.header("Content-Type", "text/event-stream");
        Next::wait()
    }

    fn on_response_writable(&mut self, body: &mut nextloop::Encoder<'_>) -> Next {
        use std::io::Write;
        let _ = body.write(b"data: x\n\n");
        Next::wait()
    }
}

#[test]
fn a_head_request_to_an_event_stream_ends_with_its_head_though_it_waits() {
    let server = common::serve_with(
        |s| s.io_timeout(std::time::Duration::from_secs(5)),
        |_| Events(false),
    );
    let mut c = client(server.addr());
    let start = std::time::Instant::now();
    c.send(format!(
        "HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n{}",
        common::get("/")
    ));
    let head = c.head_response();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    let res = c.response();
    assert_eq!(res.body_str(), "Hello, World!");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "the request behind the HEAD waited {:?}",
        start.elapsed()
    );
}
