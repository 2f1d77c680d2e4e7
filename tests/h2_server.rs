//! HTTP/2 in the server: every kind of handler over raw frames on real
//! TCP (127.0.0.1), one handler per stream.

mod common;
#[path = "common/h2.rs"]
mod h2;

use common::handlers::{Echo, Hello};
use common::serve;
use h2::*;

#[test]
fn hello_over_h2c() {
    let server = serve(|_| Hello);
    let mut c = Conn::connect(server.addr());
    let res = c.get(1, "/");
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "Hello, World!");
    assert_eq!(res.field("content-type"), Some("text/plain"));
    assert_eq!(res.field("content-length"), Some("13"));
    assert!(res.field("date").is_some());
    let res = c.get(3, "/again");
    assert_eq!(res.body_str(), "Hello, World!");
}

#[test]
fn echo_over_h2c() {
    let server = serve(|_| Echo::new());
    let mut c = Conn::connect(server.addr());
    let block = c.request("POST", "/", &[("content-length", "5")]);
    c.send(&headers(1, &block, END_HEADERS));
    c.send(&data(1, b"hel", false));
    c.send(&data(1, b"lo", true));
    let (outcome, res) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    assert_eq!(res.unwrap().body, b"hello");
}

use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Encoder, Next, Version};

/// Answers with what the request said: method, path, authority, scheme,
/// version, a field, the cookie.
struct Describe {
    text: String,
}

impl Handler for Describe {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.text = format!(
            "{} {} {:?} {} {:?} x={:?} cookie={:?}",
            req.method(),
            req.path(),
            req.authority(),
            req.scheme(),
            req.version(),
            req.header_str("x-a"),
            req.header_str("cookie"),
        );
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Connection", "keep-alive")
            .header("Keep-Alive", "timeout=5")
            .header("X-Upper", "v")
            .body(self.text.as_bytes());
        Next::end()
    }
}

#[test]
fn request_gives_pseudo_headers_fields_and_joined_cookies() {
    let server = serve(|_| Describe {
        text: String::new(),
    });
    let mut c = Conn::connect(server.addr());
    let block = c.request(
        "GET",
        "/p?q=1",
        &[("x-a", "1"), ("cookie", "a=1"), ("cookie", "b=2")],
    );
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    let (_, res) = c.outcome(1);
    let res = res.unwrap();
    assert_eq!(
        res.body_str(),
        "GET /p Some(\"localhost\") http Http2 x=Some(\"1\") cookie=Some(\"a=1; b=2\")"
    );
    // Connection-specific fields are not sent; names are lowercase.
    assert_eq!(res.field("connection"), None);
    assert_eq!(res.field("keep-alive"), None);
    assert_eq!(res.field("x-upper"), Some("v"));
    assert!(res.fields.iter().all(|(n, _)| *n == n.to_lowercase()));
    // Without :authority, Host is the authority.
    let block = c.block(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/h"),
        ("host", "example.com"),
    ]);
    c.send(&headers(3, &block, END_HEADERS | END_STREAM));
    let (_, res) = c.outcome(3);
    assert!(res
        .unwrap()
        .body_str()
        .starts_with("GET /h Some(\"example.com\") https Http2"));
}

/// Sets the status from the path, with a body given: HEAD, 204 and 304
/// get a HEADERS with END_STREAM and no DATA.
struct StatusFromPath(u16);

impl Handler for StatusFromPath {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.0 = req.path()[1..].parse().unwrap_or(200);
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(self.0).body(b"body");
        Next::end()
    }
}

#[test]
fn head_204_and_304_end_with_their_headers() {
    let server = serve(|_| StatusFromPath(200));
    let mut c = Conn::connect(server.addr());
    for (id, method, path, status) in [
        (1, "HEAD", "/200", 200),
        (3, "GET", "/204", 204),
        (5, "GET", "/304", 304),
    ] {
        let block = c.request(method, path, &[]);
        c.send(&headers(id, &block, END_HEADERS | END_STREAM));
        let f = c.next_frame().unwrap();
        assert_eq!((f.ty, f.stream), (HEADERS, id), "{f:?}");
        assert_ne!(
            f.flags & END_STREAM,
            0,
            "{method} {path}: no END_STREAM on HEADERS"
        );
        let fields = c.decode(&f.payload);
        assert_eq!(fields[0], (":status".into(), status.to_string()));
    }
    // And the connection goes on.
    assert_eq!(c.get(7, "/200").body_str(), "body");
}

/// Parks until its `Control` is used; answers `woken`.
struct Parked {
    tx: mpsc::Sender<Control>,
    control: Option<Control>,
}

impl Handler for Parked {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/park" {
            self.tx.send(self.control.take().unwrap()).unwrap();
            return Next::wait();
        }
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"woken");
        Next::end()
    }
}

#[test]
fn control_wakes_one_stream_while_others_are_served() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |control| Parked {
        tx: tx.clone(),
        control: Some(control),
    });
    let mut c = Conn::connect(server.addr());
    let a = c.request("GET", "/park", &[]);
    c.send(&headers(1, &a, END_HEADERS | END_STREAM));
    let b = c.request("GET", "/park", &[]);
    c.send(&headers(3, &b, END_HEADERS | END_STREAM));
    let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // Another stream is served while both wait.
    assert_eq!(c.get(5, "/other").body_str(), "woken");
    second.ready(Next::write()).unwrap();
    let (outcome, _) = c.outcome(3);
    assert_eq!(outcome, Outcome::Status(200));
    first.ready(Next::write()).unwrap();
    let (outcome, _) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    // Their exchanges are over: the Controls are stale.
    assert!(first.ready(Next::write()).is_err());
}

/// `Next::remove()` from `/remove`.
struct Remover;

impl Handler for Remover {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/remove" {
            Next::remove()
        } else {
            Next::write()
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"ok");
        Next::end()
    }
}

#[test]
fn next_remove_resets_the_stream_not_the_connection() {
    let server = serve(|_| Remover);
    let mut c = Conn::connect(server.addr());
    let block = c.request("GET", "/remove", &[]);
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    assert_eq!(c.outcome(1).0, Outcome::Reset(CANCEL));
    assert_eq!(c.get(3, "/").body_str(), "ok");
}

/// Streams `n` bytes of `b'a' + stream order`, a byte per callback.
struct Dribble {
    left: usize,
}

impl Handler for Dribble {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_content_length(self.left as u64);
        Next::write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let chunk = [b'z'; 1000];
        while self.left > 0 {
            match body.write(&chunk[..self.left.min(1000)]) {
                Ok(n) => self.left -= n,
                Err(_) => return Next::write(),
            }
        }
        Next::end()
    }
}

/// A client window of 100 bytes: the body comes as the client grants
/// more, whole; with windows of 0, nothing until it does.
#[test]
fn a_small_client_window_paces_the_body() {
    let server = serve(|_| Dribble { left: 50_000 });
    let mut c = Conn::connect_with(server.addr(), &[(INITIAL_WINDOW_SIZE, 100)]);
    let block = c.request("GET", "/", &[]);
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    let (outcome, res) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    assert_eq!(res.unwrap().body.len(), 50_000);
}

#[test]
fn streams_are_served_side_by_side() {
    let server = serve(|_| Dribble { left: 100_000 });
    let mut c = Conn::connect(server.addr());
    // All four in one write: sent one by one, a loaded machine may let
    // stream 1 finish before stream 3's HEADERS arrive.
    let mut all = Vec::new();
    for id in [1, 3, 5, 7] {
        let block = c.request("GET", "/", &[]);
        all.extend_from_slice(&headers(id, &block, END_HEADERS | END_STREAM));
    }
    c.send(&all);
    // The first DATA frames of all four come before any stream ends.
    let mut seen = std::collections::HashSet::new();
    let mut ended = false;
    while seen.len() < 4 {
        let f = c.next_frame().expect("a frame");
        if f.ty == DATA {
            seen.insert(f.stream);
            ended |= f.flags & END_STREAM != 0;
            c.send(&window_update(0, f.payload.len() as u32));
            c.send(&window_update(f.stream, f.payload.len() as u32));
        }
    }
    assert!(!ended, "a stream ended before all four had sent DATA");
}

#[test]
fn expect_100_continue_is_an_interim_headers() {
    let server = serve(|_| Echo::new());
    let mut c = Conn::connect(server.addr());
    let block = c.request(
        "POST",
        "/",
        &[("content-length", "2"), ("expect", "100-continue")],
    );
    c.send(&headers(1, &block, END_HEADERS));
    let f = c.next_frame().unwrap();
    assert_eq!(f.ty, HEADERS);
    assert_eq!(f.flags & END_STREAM, 0);
    assert_eq!(c.decode(&f.payload)[0].1, "100");
    c.send(&data(1, b"hi", true));
    let (_, res) = c.outcome(1);
    assert_eq!(res.unwrap().body, b"hi");
}

/// Waits without a wake: its own timeout fires, `on_error` answers 504.
struct Slow;

impl Handler for Slow {
    fn on_request(&mut self, _: Request<'_>) -> Next {
        Next::wait().timeout(Duration::from_millis(50))
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(504).body(b"late");
        Next::end()
    }

    fn on_error(&mut self, _: nextloop::Error) -> Next {
        Next::write()
    }
}

#[test]
fn a_stream_timeout_reaches_its_handler() {
    let server = serve(|_| Slow);
    let mut c = Conn::connect(server.addr());
    let block = c.request("GET", "/", &[]);
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    assert_eq!(c.outcome(1).0, Outcome::Status(504));
}

#[test]
fn max_requests_ends_the_connection_gracefully() {
    let server = common::serve_with(
        |s| s.http2(nextloop::server::Http2::default().max_requests(2)),
        |_| Hello,
    );
    let mut c = Conn::connect(server.addr());
    c.get(1, "/");
    c.get(3, "/");
    let (last, code) = c.goaway_and_close().expect("GOAWAY");
    assert_eq!(code, NO_ERROR);
    assert!(last == 3 || last == 0x7fff_ffff, "{last}");
}

#[test]
fn hypersync_push_and_pull_run_over_h2() {
    let listening = nextloop::hypersync::Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(|req, res| {
            let mut body = Vec::new();
            req.read_to_end(&mut body).unwrap();
            write!(
                res,
                "push {} {:?} {}",
                req.path(),
                req.version(),
                body.len()
            )
            .unwrap();
        })
        .unwrap();
    let mut c = Conn::connect(listening.addr());
    let block = c.request("POST", "/x", &[]);
    c.send(&headers(1, &block, END_HEADERS));
    c.send(&data(1, b"abc", true));
    let (_, res) = c.outcome(1);
    assert_eq!(res.unwrap().body_str(), "push /x Http2 3");

    let incoming = nextloop::hypersync::Server::bind("127.0.0.1:0")
        .unwrap()
        .incoming()
        .unwrap();
    let addr = incoming.addr();
    let client = thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.get(1, "/pulled").body
    });
    let req = incoming.recv().unwrap();
    assert_eq!(req.version(), Version::Http2);
    let body = format!("pull {}", req.path());
    req.respond(200, &[("Content-Type", "text/plain")], body)
        .unwrap();
    assert_eq!(client.join().unwrap(), b"pull /pulled");
}

/// Shutdown: GOAWAY(2^31-1) and a PING; after its ack GOAWAY(last id);
/// the open stream finishes; a later one is not served; then the close.
#[test]
fn graceful_shutdown_says_goaway_twice_and_lets_open_streams_finish() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |control| Parked {
        tx: tx.clone(),
        control: Some(control),
    });
    let mut c = Conn::connect(server.addr());
    c.auto_ack = false;
    let block = c.request("GET", "/park", &[]);
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    let control = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    server.shutdown();
    let first = c.read_skipping_windows().unwrap();
    assert_eq!(first.goaway(), (0x7fff_ffff, NO_ERROR));
    let ping = c.read_skipping_windows().unwrap();
    assert_eq!(ping.ty, PING);
    // A stream opened now (before the final GOAWAY) is still served, but
    // none after it; ack the PING.
    c.send(&frame(PING, ACK, 0, &ping.payload));
    let last = c.read_skipping_windows().unwrap();
    assert_eq!(last.goaway(), (1, NO_ERROR));
    let block = c.request("GET", "/late", &[]);
    c.send(&headers(3, &block, END_HEADERS | END_STREAM));
    control.ready(Next::write()).unwrap();
    c.auto_ack = true;
    let (outcome, res) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    assert_eq!(res.unwrap().body_str(), "woken");
    // Stream 3 gets nothing; the connection ends.
    while let Some(f) = c.next_frame() {
        assert_ne!(
            f.stream, 3,
            "a stream after the last GOAWAY was served: {f:?}"
        );
    }
    server.join().unwrap();
}

/// A GOAWAY from the client: the open stream still finishes.
#[test]
fn a_client_goaway_lets_open_streams_finish() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |control| Parked {
        tx: tx.clone(),
        control: Some(control),
    });
    let mut c = Conn::connect(server.addr());
    let block = c.request("GET", "/park", &[]);
    c.send(&headers(1, &block, END_HEADERS | END_STREAM));
    let control = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    c.send(&goaway(0, NO_ERROR));
    control.ready(Next::write()).unwrap();
    let (outcome, _) = c.outcome(1);
    assert_eq!(outcome, Outcome::Status(200));
    // Then the server closes.
    while c.next_frame().is_some() {}
}

/// An idle HTTP/2 connection at shutdown: GOAWAY, then the close, at once.
#[test]
fn shutdown_closes_an_idle_h2_connection_with_goaway() {
    let server = serve(|_| Hello);
    let mut c = Conn::connect(server.addr());
    c.get(1, "/");
    let started = std::time::Instant::now();
    server.shutdown();
    let (last, code) = c.goaway_and_close().expect("a GOAWAY");
    assert_eq!((last, code), (1, NO_ERROR));
    server.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
}
