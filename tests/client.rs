//! The client over real TCP on 127.0.0.1: against nextloop's own server,
//! and against small raw servers written here (HTTP/1.0 close-delimited,
//! chunked in pieces, malformed, slow, resetting). Pool reuse is observed
//! by counting the connections a raw server accepts.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use client_kit::{get, hold, raw, until_closed, Raw};
use common::{serve, IO_TIMEOUT};
use nextloop::client::{self, Error, Handler};
use nextloop::hypersync::Client;
use nextloop::{server, Decoder, Encoder};
use nextloop::{Control, Next};

// ---- raw servers ----

/// A request head as a raw server reads it.
struct Head {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request head; `None` at EOF (or on error).
fn read_head(r: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.to_string(), v.trim().to_string()));
    }
    Some(Head {
        method,
        path,
        headers,
    })
}

/// Reads a request body as framed by its head (Content-Length or chunked).
fn read_body(r: &mut impl BufRead, head: &Head) -> Vec<u8> {
    let mut body = Vec::new();
    if head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).unwrap();
            let mut crlf = String::new();
            r.read_line(&mut crlf).unwrap();
            if size == 0 {
                return body;
            }
        }
    }
    let len: usize = head
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    body.resize(len, 0);
    r.read_exact(&mut body).unwrap();
    body
}

/// A keep-alive HTTP/1.1 server answering each request with its path.
fn keep_alive_server() -> Raw {
    raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Some(head) = read_head(&mut r) {
            let body = read_body(&mut r, &head);
            let text = format!("{} {} {}", head.method, head.path, body.len());
            let res = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                text.len()
            );
            if w.write_all(res.as_bytes()).is_err() {
                return;
            }
        }
    })
}

fn body_of(res: nextloop::hypersync::ClientResponse) -> String {
    let mut res = res;
    let mut s = String::new();
    res.read_to_string(&mut s).unwrap();
    s
}

// ---- our own server ----

/// Echoes the request body (or says hello), sets `X-Method`.
struct Echo {
    method: String,
    body: Vec<u8>,
    sent: usize,
}

impl server::Handler for Echo {
    fn on_request(&mut self, req: server::Request<'_>) -> Next {
        self.method = req.method().to_string();
        if req.path() == "/big" {
            self.body = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
            return Next::write();
        }
        Next::read()
    }

    fn on_request_readable(&mut self, body: &mut nextloop::Decoder<'_>) -> Next {
        let mut buf = [0; 4096];
        loop {
            match body.read(&mut buf) {
                Ok(0) => return Next::write(),
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                Err(_) => return Next::remove(),
            }
        }
    }

    fn on_response(&mut self, res: &mut server::Response<'_>) -> Next {
        res.header("X-Method", &self.method);
        if self.body.is_empty() {
            res.body(b"Hello, World!");
            return Next::end();
        }
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut nextloop::Encoder<'_>) -> Next {
        while self.sent < self.body.len() {
            match body.write(&self.body[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                Err(_) => return Next::remove(),
            }
        }
        Next::end()
    }
}

fn echo_server() -> server::Listening {
    serve(|_: Control| Echo {
        method: String::new(),
        body: Vec::new(),
        sent: 0,
    })
}

// ---- a native handler that reports its outcome ----

type Outcome = Result<(u16, Vec<u8>), Error>;

/// Sends `method` with `pieces` as the body (chunked unless `length`),
/// collects the response, reports it on `done`.
struct Collect {
    method: &'static str,
    pieces: Vec<&'static [u8]>,
    length: bool,
    expect: bool,
    status: u16,
    body: Vec<u8>,
    done: mpsc::Sender<Outcome>,
}

impl Collect {
    fn get(done: &mpsc::Sender<Outcome>) -> Collect {
        Collect {
            method: "GET",
            pieces: Vec::new(),
            length: false,
            expect: false,
            status: 0,
            body: Vec::new(),
            done: done.clone(),
        }
    }
}

impl Handler for Collect {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method(self.method);
        if self.pieces.is_empty() {
            return Next::read();
        }
        if self.length {
            req.set_content_length(self.pieces.iter().map(|p| p.len() as u64).sum());
        }
        if self.expect {
            req.expect_continue();
        }
        Next::write()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        // One piece per call: a chunk each when chunked.
        if !self.pieces.is_empty() {
            body.write_all(self.pieces.remove(0)).unwrap();
        }
        if self.pieces.is_empty() {
            Next::read()
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        self.status = res.status();
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0; 1024];
        loop {
            match body.read(&mut buf) {
                Ok(0) => {
                    let body = std::mem::take(&mut self.body);
                    let _ = self.done.send(Ok((self.status, body)));
                    return Next::end();
                }
                Ok(n) => self.body.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                // The connection reports the error through on_error.
                Err(_) => return Next::read(),
            }
        }
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.done.send(Err(err));
        Next::remove()
    }
}

fn outcome(rx: &mpsc::Receiver<Outcome>) -> Outcome {
    rx.recv_timeout(IO_TIMEOUT).expect("an outcome in time")
}

fn native(configure: impl FnOnce(client::Builder) -> client::Builder) -> client::Client {
    configure(client::Client::builder()).build().unwrap()
}

fn hyper(configure: impl FnOnce(client::Builder) -> client::Builder) -> Client {
    Client::from(native(configure))
}

// ---- against nextloop's own server ----

mod own_server {
    use super::*;

    #[test]
    fn get_gives_status_headers_and_body() {
        let server = echo_server();
        let client = Client::new();
        let res = client
            .get(&format!("http://{}/hello", server.addr()))
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.reason(), "OK");
        assert_eq!(res.header_str("x-method"), Some("GET"));
        assert_eq!(res.header_str("Content-Length"), Some("13"));
        assert!(res.headers().any(|(n, _)| n.eq_ignore_ascii_case("date")));
        assert_eq!(body_of(res), "Hello, World!");
    }

    #[test]
    fn post_sends_the_body() {
        let server = echo_server();
        let client = Client::new();
        let url = format!("http://{}/echo", server.addr());
        let res = client.post(&url, "ping pong").unwrap();
        assert_eq!(res.header_str("x-method"), Some("POST"));
        assert_eq!(body_of(res), "ping pong");
        let res = client
            .request("PUT", &url)
            .header("X-Thing", "1")
            .body(vec![b'x'; 100_000])
            .send()
            .unwrap();
        assert_eq!(res.header_str("x-method"), Some("PUT"));
        assert_eq!(body_of(res).len(), 100_000);
    }

    #[test]
    fn body_of_unknown_length_goes_chunked() {
        let server = echo_server();
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        let handler = Collect {
            method: "POST",
            pieces: vec![b"one ", b"two ", b"three"],
            ..Collect::get(&tx)
        };
        client
            .request(&format!("http://{}/", server.addr()), handler)
            .unwrap();
        assert_eq!(outcome(&rx).unwrap(), (200, b"one two three".to_vec()));
    }

    #[test]
    fn head_has_no_body_and_the_connection_goes_on() {
        let server = echo_server();
        let client = Client::new();
        let url = format!("http://{}/", server.addr());
        for _ in 0..3 {
            let res = client.request("HEAD", &url).send().unwrap();
            assert_eq!(res.header_str("content-length"), Some("13"));
            assert_eq!(body_of(res), "");
            assert_eq!(body_of(client.get(&url).unwrap()), "Hello, World!");
        }
    }

    #[test]
    fn a_large_body_streams_through_a_slow_reader() {
        let server = echo_server();
        let client = Client::new();
        let mut res = client
            .get(&format!("http://{}/big", server.addr()))
            .unwrap();
        assert_eq!(res.header_str("transfer-encoding"), Some("chunked"));
        let mut got = 0u32;
        let mut buf = [0; 7000];
        loop {
            let n = res.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                assert_eq!(b, (got % 251) as u8, "byte {got}");
                got += 1;
            }
            if got < 300_000 {
                // Slow at first: the loop must park, not buffer it all.
                thread::sleep(Duration::from_millis(1));
            }
        }
        assert_eq!(got, 4 << 20);
    }

    #[test]
    fn a_response_dropped_mid_body_does_not_hold_the_client() {
        let server = echo_server();
        let client = Client::new();
        let url = format!("http://{}/big", server.addr());
        let mut res = client.get(&url).unwrap();
        let mut buf = [0; 10];
        res.read_exact(&mut buf).unwrap();
        drop(res);
        let hello = format!("http://{}/", server.addr());
        assert_eq!(body_of(client.get(&hello).unwrap()), "Hello, World!");
    }

    #[test]
    fn localhost_is_resolved_off_the_loop() {
        let server = echo_server();
        let client = Client::new();
        let url = format!("http://localhost:{}/", server.addr().port());
        assert_eq!(body_of(client.get(&url).unwrap()), "Hello, World!");
    }

    /// A listener on `ip:port` that never accepts, its backlog full: the
    /// kernel ignores further handshakes, so connecting to it times out.
    fn black_hole(ip: [u8; 4], port: u16) -> (socket2::Socket, Vec<TcpStream>) {
        use socket2::{Domain, Socket, Type};
        let addr = SocketAddr::from((ip, port));
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&addr.into()).unwrap();
        listener.listen(0).unwrap();
        let queued = (0..4)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok())
            .collect();
        (listener, queued)
    }

    // "localhost" is pinned so that a broken pin falls back to the hosts
    // file, never to a DNS query.

    #[test]
    fn pinned_addresses_are_tried_in_order_past_refusals() {
        let server = echo_server();
        let port = server.addr().port();
        let url = format!("http://localhost:{port}/");
        // Nothing listens on 127.0.0.3 at that port: refused.
        let refused = hyper(|b| b.resolve("LocalHost", [[127, 0, 0, 3].into()]));
        let err = refused.get(&url).unwrap_err();
        assert!(err.to_string().contains("127.0.0.3"), "{err}");
        let client =
            hyper(|b| b.resolve("LocalHost", [[127, 0, 0, 3].into(), [127, 0, 0, 1].into()]));
        assert_eq!(body_of(client.get(&url).unwrap()), "Hello, World!");
    }

    #[test]
    fn a_connect_timeout_moves_on_to_the_next_address() {
        let server = echo_server();
        let port = server.addr().port();
        let _hole = black_hole([127, 0, 0, 2], port);
        let timeout = Duration::from_millis(300);
        let client = hyper(|b| {
            b.connect_timeout(timeout)
                .resolve("localhost", [[127, 0, 0, 2].into(), [127, 0, 0, 1].into()])
        });
        let start = Instant::now();
        let res = client.get(&format!("http://localhost:{port}/"));
        // The first address was tried, and given up only at its timeout.
        assert!(start.elapsed() >= timeout, "{:?}", start.elapsed());
        assert_eq!(body_of(res.unwrap()), "Hello, World!");
    }

    #[test]
    fn a_host_pinned_to_no_address_fails_to_resolve() {
        let client = hyper(|b| b.resolve("localhost", []));
        let err = client.get("http://localhost:1/").unwrap_err();
        assert!(matches!(err, Error::Resolve { .. }), "{err:?}");
    }

    #[test]
    fn clones_share_the_client_across_threads() {
        let server = echo_server();
        let client = Client::new();
        let url = format!("http://{}/", server.addr());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                thread::spawn(move || {
                    for _ in 0..20 {
                        assert_eq!(body_of(client.get(&url).unwrap()), "Hello, World!");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
}

// ---- the pool ----

mod pool {
    use super::*;

    #[test]
    fn sequential_requests_reuse_one_connection() {
        let server = keep_alive_server();
        let client = Client::new();
        for i in 0..10 {
            let res = client.get(&server.url(&format!("/n/{i}"))).unwrap();
            assert_eq!(body_of(res), format!("GET /n/{i} 0"));
        }
        assert_eq!(server.accepted(), 1);
    }

    #[test]
    fn connections_per_host_are_bounded() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while read_head(&mut r).is_some() {
                thread::sleep(Duration::from_millis(30));
                if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .is_err()
                {
                    return;
                }
            }
        });
        let client = hyper(|b| b.max_per_host(2));
        let url = server.url("/");
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                thread::spawn(move || body_of(client.get(&url).unwrap()))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), "ok");
        }
        assert!(server.accepted() <= 2, "{} connections", server.accepted());
    }

    #[test]
    fn endless_timeouts_mean_no_deadline() {
        let server = keep_alive_server();
        let forever = Duration::MAX;
        let client = hyper(|b| {
            b.connect_timeout(forever)
                .response_timeout(forever)
                .read_timeout(forever)
                .idle_timeout(forever)
                .continue_timeout(forever)
        });
        for _ in 0..2 {
            assert_eq!(body_of(client.get(&server.url("/")).unwrap()), "GET / 0");
        }
        assert_eq!(server.accepted(), 1);
    }

    #[test]
    fn idle_connections_expire() {
        let server = keep_alive_server();
        let client = hyper(|b| b.idle_timeout(Duration::from_millis(100)));
        body_of(client.get(&server.url("/a")).unwrap());
        thread::sleep(Duration::from_millis(400));
        body_of(client.get(&server.url("/b")).unwrap());
        assert_eq!(server.accepted(), 2);
    }

    #[test]
    fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            }
            // Close the keep-alive connection soon after, like a server's
            // idle timeout.
            thread::sleep(Duration::from_millis(50));
        });
        let client = Client::new();
        assert_eq!(body_of(client.get(&server.url("/")).unwrap()), "ok");
        thread::sleep(Duration::from_millis(300));
        assert_eq!(body_of(client.get(&server.url("/")).unwrap()), "ok");
        assert_eq!(server.accepted(), 2);
    }

    #[test]
    fn a_stale_connection_is_retried_for_idempotent_requests_only() {
        // Answers the first request of each connection; closes it on the
        // second, unanswered (a keep-alive timeout racing the request).
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if let Some(head) = read_head(&mut r) {
                read_body(&mut r, &head);
                let text = head.path;
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
            }
            let _ = read_head(&mut r);
        });
        let client = Client::new();
        assert_eq!(body_of(client.get(&server.url("/1")).unwrap()), "/1");
        assert_eq!(body_of(client.get(&server.url("/2")).unwrap()), "/2");
        assert_eq!(server.accepted(), 2, "the GET was sent again");
        match client.post(&server.url("/3"), "data") {
            Err(Error::Closed) => {}
            other => panic!("a POST must not be retried: {other:?}"),
        }
        assert_eq!(server.accepted(), 2);
    }

    #[test]
    fn pipelined_requests_share_a_connection_and_answers_keep_their_order() {
        // Answers only once four requests are in: without pipelining on
        // one connection this would never answer.
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            let mut paths = Vec::new();
            while paths.len() < 4 {
                match read_head(&mut r) {
                    Some(head) => paths.push(head.path),
                    None => return,
                }
            }
            let mut out = String::new();
            for p in paths {
                out.push_str(&format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{p}",
                    p.len()
                ));
            }
            let _ = w.write_all(out.as_bytes());
            let _ = read_head(&mut r);
        });
        let client = native(|b| b.max_per_host(1).pipelining(4));
        let receivers: Vec<_> = (0..4)
            .map(|i| {
                let (tx, rx) = mpsc::channel();
                client
                    .request(&server.url(&format!("/p{i}")), Collect::get(&tx))
                    .unwrap();
                rx
            })
            .collect();
        for (i, rx) in receivers.iter().enumerate() {
            let (status, body) = outcome(rx).unwrap();
            assert_eq!((status, body), (200, format!("/p{i}").into_bytes()));
        }
        assert_eq!(server.accepted(), 1);
    }
}

// ---- framing ----

mod framing {
    use super::*;

    #[test]
    fn http10_close_delimited_bodies() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");
                thread::sleep(Duration::from_millis(20));
                let _ = w.write_all(b"until the end");
            }
        });
        let client = Client::new();
        for _ in 0..2 {
            let res = client.get(&server.url("/")).unwrap();
            assert_eq!(res.version(), nextloop::Version::Http10);
            assert_eq!(body_of(res), "until the end");
        }
        assert_eq!(
            server.accepted(),
            2,
            "a close-delimited connection is not reused"
        );
    }

    #[test]
    fn chunked_bodies_in_pieces_with_trailers() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while read_head(&mut r).is_some() {
                let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n";
                for piece in wire.chunks(7) {
                    if w.write_all(piece).is_err() {
                        return;
                    }
                    thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let client = Client::new();
        for _ in 0..2 {
            assert_eq!(
                body_of(client.get(&server.url("/")).unwrap()),
                "hello, world"
            );
        }
        assert_eq!(server.accepted(), 1);
    }

    #[test]
    fn no_body_for_204_and_304_whatever_they_say() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while let Some(head) = read_head(&mut r) {
                let res: &[u8] = if head.path == "/204" {
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
                } else {
                    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
                };
                if w.write_all(res).is_err() {
                    return;
                }
            }
        });
        let client = Client::new();
        for path in ["/204", "/304", "/204"] {
            let res = client.get(&server.url(path)).unwrap();
            assert_eq!(res.status(), path[1..].parse::<u16>().unwrap());
            assert_eq!(body_of(res), "");
        }
        assert_eq!(server.accepted(), 1);
    }

    #[test]
    fn expect_100_continue() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while let Some(head) = read_head(&mut r) {
                if head.path == "/refuse" {
                    // A final answer instead of 100: the body never comes.
                    let _ = w
                        .write_all(b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n");
                    continue;
                }
                assert_eq!(head.header("expect"), Some("100-continue"));
                w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                let body = read_body(&mut r, &head);
                let res = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                w.write_all(res.as_bytes()).unwrap();
                w.write_all(&body).unwrap();
            }
        });
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        let put = |tx: &mpsc::Sender<Outcome>| Collect {
            method: "PUT",
            pieces: vec![b"the ", b"payload"],
            length: true,
            expect: true,
            ..Collect::get(tx)
        };
        client.request(&server.url("/ok"), put(&tx)).unwrap();
        assert_eq!(outcome(&rx).unwrap(), (200, b"the payload".to_vec()));
        client.request(&server.url("/refuse"), put(&tx)).unwrap();
        assert_eq!(outcome(&rx).unwrap(), (417, Vec::new()));
        client.request(&server.url("/ok"), put(&tx)).unwrap();
        assert_eq!(outcome(&rx).unwrap(), (200, b"the payload".to_vec()));
        assert_eq!(server.accepted(), 2, "not reused after the unsent body");
    }

    // Once a bug: obs-fold in a response was refused instead of replaced
    // with spaces.
    #[test]
    fn obs_fold_in_a_response_is_replaced_not_refused() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(
                    b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nContent-Length: 2\r\n\r\nok",
                );
                until_closed(&mut r);
            }
        });
        let client = nextloop::hypersync::Client::new();
        let mut res = client
            .get(&server.url("/"))
            .expect("RFC 9112 §5.2: a user agent MUST replace obs-fold in a response with SP");
        assert_eq!(res.status(), 200);
        // The line break became spaces; the continuation is part of the value.
        assert_eq!(res.header_str("X-Folded"), Some("first    second"));
        let mut body = String::new();
        res.read_to_string(&mut body).unwrap();
        assert_eq!(body, "ok");
    }

    // Once a bug: an HTTP/1.0 response with `Transfer-Encoding` kept its
    // connection.
    #[test]
    fn an_http10_response_with_transfer_encoding_closes_the_connection() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while read_head(&mut r).is_some() {
                let _ = w.write_all(
                    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                );
            }
        });
        let client = client::Client::new().unwrap();
        let a = get(&client, &server.url("/a"));
        let b = get(&client, &server.url("/b"));
        assert_eq!(a, Ok((200, b"ok".to_vec())));
        assert_eq!(b, Ok((200, b"ok".to_vec())));
        assert_eq!(
            server.accepted(),
            2,
            "RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing; \
             close the connection after it"
        );
    }

    // Once a bug (found by the review of the obs-fold fix): the obs-fold
    // rewrite ran past a head without fields into the body.
    #[test]
    fn a_body_after_a_head_without_fields_is_not_unfolded() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                // Close-delimited body, pretty-printed JSON, one write.
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\n\r\n{\n  \"a\": 1\n}\n");
            }
        });
        let client = client::Client::new().unwrap();
        let got = get(&client, &server.url("/"));
        assert_eq!(got, Ok((200, b"{\n  \"a\": 1\n}\n".to_vec())));
    }

    #[test]
    fn a_body_starting_with_whitespace_after_a_head_without_fields() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(b"HTTP/1.0 200 OK\r\n\r\n  indented text\n");
            }
        });
        let client = client::Client::new().unwrap();
        let got = get(&client, &server.url("/"));
        assert_eq!(got, Ok((200, b"  indented text\n".to_vec())));
    }
}

// ---- errors ----

mod errors {
    use super::*;

    // Lookups of "localhost" go through a resolver of the test's own: were
    // it bypassed, the hosts file would answer, never a DNS server.

    #[test]
    fn a_slow_lookup_is_bounded_by_the_connect_timeout() {
        let server = echo_server();
        let client = hyper(|b| {
            b.connect_timeout(Duration::from_millis(200))
                .resolver(|_, port| {
                    thread::sleep(Duration::from_secs(2));
                    Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
                })
        });
        let url = format!("http://localhost:{}/", server.addr().port());
        let err = client.get(&url).unwrap_err();
        assert!(matches!(err, Error::Resolve { .. }), "{err:?}");
        assert!(err.is_timeout(), "{err:?}");
    }

    #[test]
    fn one_slow_lookup_does_not_hold_up_another() {
        let server = echo_server();
        let fast = server.addr().port();
        let slow = fast.wrapping_add(1);
        let client = native(|b| {
            b.resolver(move |_, port| {
                if port == slow {
                    thread::sleep(Duration::from_secs(2));
                    return Err(io::Error::new(io::ErrorKind::NotFound, "slow and unknown"));
                }
                Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
            })
        });
        let (slow_tx, slow_rx) = mpsc::channel();
        let (fast_tx, fast_rx) = mpsc::channel();
        client
            .request(&format!("http://localhost:{slow}/"), Collect::get(&slow_tx))
            .unwrap();
        // Give the slow lookup a head start on the resolver.
        thread::sleep(Duration::from_millis(100));
        client
            .request(&format!("http://localhost:{fast}/"), Collect::get(&fast_tx))
            .unwrap();
        assert_eq!(outcome(&fast_rx).unwrap().0, 200);
        // The fast one did not wait for the slow lookup to end.
        assert!(slow_rx.try_recv().is_err(), "the slow lookup ended first");
        let slow = outcome(&slow_rx).unwrap_err();
        assert!(matches!(slow, Error::Resolve { .. }), "{slow:?}");
    }

    fn answer_with(bytes: &'static [u8]) -> Raw {
        raw(move |stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(bytes);
                // Keep the connection open until the client goes.
                let _ = read_head(&mut r);
            }
        })
    }

    #[test]
    fn connection_refused() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Client::new().get(&format!("http://{addr}/")).unwrap_err();
        assert!(matches!(err, Error::Refused(a) if a == addr), "{err:?}");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[test]
    fn connect_timeout() {
        // A listener that never accepts, with a backlog of zero: once one
        // connection waits in it, the kernel ignores further handshakes.
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let _queued: Vec<_> = (0..4)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok())
            .collect();
        let client = hyper(|b| b.connect_timeout(Duration::from_millis(200)));
        let start = Instant::now();
        let err = client.get(&format!("http://{addr}/")).unwrap_err();
        assert!(matches!(err, Error::ConnectTimeout), "{err:?}");
        assert!(err.is_timeout());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn malformed_status_line() {
        let server = answer_with(b"HTTP/1.1 2OO OK\r\n\r\n");
        let err = Client::new().get(&server.url("/")).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{err:?}");
        assert!(err.to_string().starts_with("malformed response"), "{err}");
    }

    #[test]
    fn not_http_at_all() {
        let server = answer_with(b"SSH-2.0-OpenSSH_9.6\r\n");
        let err = Client::new().get(&server.url("/")).unwrap_err();
        assert!(matches!(err, Error::Malformed(_)), "{err:?}");
    }

    #[test]
    fn ambiguous_framing() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ] {
            let server = answer_with(bytes);
            let err = Client::new().get(&server.url("/")).unwrap_err();
            assert!(matches!(err, Error::Malformed(_)), "{err:?}");
        }
    }

    #[test]
    fn malformed_chunk_mid_body() {
        let server =
            answer_with(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
        let mut res = Client::new().get(&server.url("/")).unwrap();
        assert_eq!(res.status(), 200);
        let mut body = Vec::new();
        let err = res.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("malformed"), "{err}");
    }

    #[test]
    fn closed_before_the_response() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream);
            let _ = read_head(&mut r);
        });
        let err = Client::new().get(&server.url("/")).unwrap_err();
        assert!(matches!(err, Error::Closed), "{err:?}");
    }

    #[test]
    fn reset_mid_body() {
        // Sends a head and part of the body, then closes with the request
        // still unread: the kernel answers with a reset.
        let server = raw(|stream, _| {
            let mut w = stream;
            thread::sleep(Duration::from_millis(50));
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some");
            thread::sleep(Duration::from_millis(100));
        });
        let mut res = Client::new().get(&server.url("/")).unwrap();
        let mut body = Vec::new();
        let err = res.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(
            err.to_string()
                .contains("in the middle of the response body"),
            "{err}"
        );
    }

    #[test]
    fn cut_short_by_a_clean_close() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            if read_head(&mut r).is_some() {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
            }
        });
        let mut res = Client::new().get(&server.url("/")).unwrap();
        let mut body = Vec::new();
        let err = res.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body, b"short");
    }

    #[test]
    fn response_timeout() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream);
            let _ = read_head(&mut r);
            let _ = read_head(&mut r);
        });
        let client = hyper(|b| b.response_timeout(Duration::from_millis(200)));
        let start = Instant::now();
        let err = client.get(&server.url("/")).unwrap_err();
        assert!(matches!(err, Error::ResponseTimeout), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn read_timeout_mid_body() {
        let server = answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        let client = hyper(|b| b.read_timeout(Duration::from_millis(200)));
        let mut res = client.get(&server.url("/")).unwrap();
        let mut body = Vec::new();
        let err = res.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(body, b"abc");
    }

    #[test]
    fn a_slow_reader_is_not_a_read_timeout() {
        let server = echo_server();
        let client = hyper(|b| b.read_timeout(Duration::from_millis(100)));
        let mut res = client
            .get(&format!("http://{}/big", server.addr()))
            .unwrap();
        let mut buf = vec![0; 1 << 20];
        res.read_exact(&mut buf).unwrap();
        // The client is parked with a full channel: no timeout runs.
        thread::sleep(Duration::from_millis(400));
        let mut rest = Vec::new();
        res.read_to_end(&mut rest).unwrap();
        assert_eq!(buf.len() + rest.len(), 4 << 20);
    }

    #[test]
    fn too_many_requests_in_flight() {
        let server = raw(|stream, _| {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut w = stream;
            while read_head(&mut r).is_some() {
                thread::sleep(Duration::from_millis(200));
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let client = native(|b| b.max_requests(1));
        let (tx, rx) = mpsc::channel();
        client
            .request(&server.url("/1"), Collect::get(&tx))
            .unwrap();
        client
            .request(&server.url("/2"), Collect::get(&tx))
            .unwrap();
        let first = outcome(&rx);
        assert!(matches!(first, Err(Error::TooManyRequests)), "{first:?}");
        assert_eq!(outcome(&rx).unwrap().0, 200);
    }

    #[test]
    fn invalid_urls_and_requests() {
        let client = Client::new();
        for (url, what) in [
            ("ftp://example.com/", "only http:// and https:// URLs"),
            ("example.com", "missing the http:// or https:// scheme"),
            ("http://h:99999/", "port out of range"),
        ] {
            let err = client.get(url).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
            assert!(err.to_string().contains(what), "{err}");
        }
        let err = client
            .request("GE T", "http://127.0.0.1:1/")
            .send()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
        let err = client
            .request("GET", "http://127.0.0.1:1/")
            .header("X", "a\r\nb")
            .send()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    }
}

// ---- native handlers ----

mod handlers {
    use super::*;

    /// Announces a body, then keeps asking to write without writing.
    struct Stalled(Collect);

    impl Handler for Stalled {
        fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
            req.set_method("POST");
            req.set_content_length(10);
            Next::write()
        }

        fn on_request_writable(&mut self, _body: &mut Encoder<'_>) -> Next {
            Next::write()
        }

        fn on_response(&mut self, res: client::Response<'_>) -> Next {
            self.0.on_response(res)
        }

        fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
            self.0.on_response_readable(body)
        }

        fn on_error(&mut self, err: Error) -> Next {
            self.0.on_error(err)
        }
    }

    #[test]
    fn an_answer_is_read_while_the_writer_yields() {
        // The server answers before the body and stops reading.
        let server = raw(|mut s, _| {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let _ = read_head(&mut r);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
                .unwrap();
            thread::sleep(Duration::from_secs(5));
        });
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        client
            .request(&server.url("/"), Stalled(Collect::get(&tx)))
            .unwrap();
        assert_eq!(outcome(&rx).unwrap(), (200, b"early".to_vec()));
    }

    /// Parks after the head until the test thread wakes it.
    struct Parked {
        controls: mpsc::Sender<Control>,
        inner: Collect,
    }

    impl Handler for Parked {
        fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
            self.controls.send(req.control()).unwrap();
            Next::read()
        }

        fn on_response(&mut self, res: client::Response<'_>) -> Next {
            self.inner.on_response(res);
            Next::wait()
        }

        fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
            self.inner.on_response_readable(body)
        }

        fn on_error(&mut self, err: Error) -> Next {
            self.inner.on_error(err)
        }
    }

    #[test]
    fn control_wakes_a_parked_exchange() {
        let server = echo_server();
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        let (ctl_tx, ctl_rx) = mpsc::channel();
        let handler = Parked {
            controls: ctl_tx,
            inner: Collect::get(&tx),
        };
        client
            .request(&format!("http://{}/", server.addr()), handler)
            .unwrap();
        let control = ctl_rx.recv_timeout(IO_TIMEOUT).unwrap();
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "parked"
        );
        control.ready(Next::read()).unwrap();
        assert_eq!(outcome(&rx).unwrap(), (200, b"Hello, World!".to_vec()));
        thread::sleep(Duration::from_millis(50));
        assert!(control.ready(Next::read()).is_err(), "stale once ended");
    }

    struct Panics;

    impl Handler for Panics {
        fn on_response(&mut self, _: client::Response<'_>) -> Next {
            panic!("handler bug (expected by the test)");
        }
    }

    #[test]
    fn a_panicking_handler_costs_only_its_exchange() {
        let server = echo_server();
        let client = native(|b| b);
        let url = format!("http://{}/", server.addr());
        client.request(&url, Panics).unwrap();
        let (tx, rx) = mpsc::channel();
        client.request(&url, Collect::get(&tx)).unwrap();
        assert_eq!(outcome(&rx).unwrap().0, 200);
    }

    #[test]
    fn a_handler_timeout_reaches_on_error() {
        struct Slow(mpsc::Sender<bool>);
        impl Handler for Slow {
            fn on_response(&mut self, _: client::Response<'_>) -> Next {
                Next::wait().timeout(Duration::from_millis(50))
            }
            fn on_error(&mut self, err: Error) -> Next {
                let _ = self.0.send(matches!(err, Error::Timeout));
                Next::end()
            }
        }
        let server = echo_server();
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        client
            .request(&format!("http://{}/", server.addr()), Slow(tx))
            .unwrap();
        assert!(rx.recv_timeout(IO_TIMEOUT).unwrap());
        // The handler ended the exchange after its timeout: the connection
        // is reused.
        let (tx, rx) = mpsc::channel();
        client
            .request(&format!("http://{}/", server.addr()), Collect::get(&tx))
            .unwrap();
        assert_eq!(outcome(&rx).unwrap().0, 200);
    }

    #[test]
    fn dropping_the_client_finishes_exchanges_in_flight() {
        let server = keep_alive_server();
        let client = native(|b| b);
        let (tx, rx) = mpsc::channel();
        client
            .request(&server.url("/last"), Collect::get(&tx))
            .unwrap();
        drop(client);
        assert_eq!(outcome(&rx).unwrap(), (200, b"GET /last 0".to_vec()));
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
}
