//! HTTP/1.x semantics over real TCP: keep-alive and close, HTTP/1.0,
//! pipelining, chunked bodies split anywhere, `Expect: 100-continue`,
//! bodiless responses (HEAD, 204, 304), unread request bodies, and
//! response bodies that miss their declared length.
//!
//! Every test talks raw bytes to a real server on 127.0.0.1 and checks
//! exact statuses, bodies, fields, order, and whether the connection closed.

mod common;

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use common::handlers::{DuplexOrHello, Echo};
use common::{client, read_response, serve, serve_with, Client, Response as Parsed};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Decoder, Encoder, Next};

// ---------------------------------------------------------------------------
// Test handlers
// ---------------------------------------------------------------------------

/// Answers 200 with the request target as the body, never reading the
/// request body. A target starting with `/close-header` makes it set
/// `Connection: close`; `/close-method` makes it call `Response::close`;
/// `/stream` makes it write the body from `on_response_writable` (chunked)
/// instead of giving it whole with `Response::body`.
#[derive(Default)]
struct Target {
    target: String,
}

impl Handler for Target {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.target = req.target().to_owned();
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.target.starts_with("/close-header") {
            res.header("Connection", "close");
        }
        if self.target.starts_with("/close-method") {
            res.close();
        }
        res.header("Content-Type", "text/plain");
        if self.target.starts_with("/stream") {
            return Next::write();
        }
        res.body(self.target.as_bytes());
        Next::end()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        match body.write_all(self.target.as_bytes()) {
            Ok(()) => Next::end(),
            Err(_) => Next::remove(),
        }
    }
}

/// How a [`Scripted`] handler answers. It never reads the request body.
#[derive(Clone)]
struct Script {
    status: u16,
    /// Declared with `Response::set_content_length`.
    length: Option<u64>,
    /// Given whole with `Response::body`.
    body: Option<&'static [u8]>,
    /// Written with `write_all` from `on_response_writable`, one per call.
    pieces: &'static [&'static [u8]],
    /// Where to report the result of each piece's `write_all`.
    writes: Option<Sender<Result<(), io::ErrorKind>>>,
}

impl Default for Script {
    fn default() -> Script {
        Script {
            status: 200,
            length: None,
            body: None,
            pieces: &[],
            writes: None,
        }
    }
}

/// Answers as its [`Script`] says.
struct Scripted {
    script: Script,
    written: usize,
}

/// A factory for [`Scripted`] handlers following `script`.
fn scripted(script: Script) -> impl FnMut(nextloop::Control) -> Scripted + Clone + Send + 'static {
    move |_| Scripted {
        script: script.clone(),
        written: 0,
    }
}

impl Handler for Scripted {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(self.script.status);
        if let Some(n) = self.script.length {
            res.set_content_length(n);
        }
        if let Some(body) = self.script.body {
            res.body(body);
        }
        if self.script.pieces.is_empty() {
            Next::end()
        } else {
            Next::write()
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let Some(piece) = self.script.pieces.get(self.written) else {
            return Next::end();
        };
        self.written += 1;
        let result = body.write_all(piece).map_err(|e| e.kind());
        if let Some(tx) = &self.script.writes {
            let _ = tx.send(result);
        }
        Next::write()
    }
}

// ---------------------------------------------------------------------------
// Client-side helpers
// ---------------------------------------------------------------------------

/// A GET for `path` on HTTP/1.1, with extra header lines (each ending CRLF).
fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n")
}

/// A request whose bytes, if ever parsed as a request, get answered.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

/// `n` bytes of back-to-back copies of [`SMUGGLED`] (the last one cut).
fn smuggled_body(n: usize) -> Vec<u8> {
    SMUGGLED.bytes().cycle().take(n).collect()
}

/// `body` in chunks of `chunk` bytes, then the last chunk.
fn chunked_body(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in body.chunks(chunk) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Sends `bytes` from a thread (the server may stop reading, or close,
/// before all are sent: errors are ignored).
fn send_in_background(c: &mut Client, bytes: Vec<u8>) -> thread::JoinHandle<()> {
    let mut writer = c.stream().try_clone().expect("clone stream");
    thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    })
}

/// Reads until the server closes (EOF or reset) and returns what came.
/// Panics if the connection stays open for the client's read timeout.
fn rest_until_close(c: &mut Client) -> Vec<u8> {
    let mut out = Vec::new();
    match c.reader.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "connection not closed ({e}); received {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
    out
}

/// Asserts the server closes the connection without sending anything more.
fn assert_closed_silently(c: &mut Client) {
    let rest = rest_until_close(c);
    assert!(
        rest.is_empty(),
        "bytes after the last response: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// Parses `raw` as exactly the responses to requests whose HEAD-ness is
/// given, and panics on any bytes left over.
fn parse_exact(mut raw: &[u8], head_requests: &[bool]) -> Vec<Parsed> {
    let responses = head_requests
        .iter()
        .map(|&head| read_response(&mut raw, head).expect("parse response"))
        .collect();
    assert!(
        raw.is_empty(),
        "stray bytes after the responses: {:?}",
        String::from_utf8_lossy(raw)
    );
    responses
}

/// Splits a raw response at the end of its head: (head incl. CRLFCRLF, body).
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head")
        + 4;
    raw.split_at(end)
}

/// Asserts a 200 with exactly `body`.
fn assert_ok_body(res: &Parsed, body: &str) {
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body_str(), body, "{res:?}");
}

// ---------------------------------------------------------------------------
// Keep-alive and Connection: close (from the client or the handler)
// ---------------------------------------------------------------------------

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    for i in 0..10 {
        let path = format!("/req/{i}");
        c.send(get(&path, ""));
        let res = c.response();
        assert_ok_body(&res, &path);
        assert_eq!(res.version, "HTTP/1.1");
        assert_eq!(
            res.header("content-length"),
            Some(path.len().to_string().as_str())
        );
        assert_eq!(res.header("connection"), None, "{res:?}");
    }
}

#[test]
fn connection_close_from_client_or_handler_closes() {
    let cases = [
        (
            "client Connection: close",
            get("/a", "Connection: close\r\n"),
        ),
        (
            "client Connection: keep-alive, close",
            get("/a", "Connection: keep-alive, close\r\n"),
        ),
        ("handler header Connection: close", get("/close-header", "")),
        ("handler Response::close()", get("/close-method", "")),
        (
            "HTTP/1.0 keep-alive, handler header Connection: close",
            "GET /close-header HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".into(),
        ),
        (
            "HTTP/1.0 keep-alive, handler Response::close()",
            "GET /close-method HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".into(),
        ),
    ];
    let server = serve(|_| Target::default());
    for (name, request) in cases {
        let path = request.split(' ').nth(1).unwrap();
        let mut c = Client::connect(server.addr());
        // A pipelined follow-up that must never be answered.
        c.send(request.clone() + &get("/after", ""));
        let res = c.response();
        assert_ok_body(&res, path);
        assert!(res.closes(), "{name}: no Connection: close in {res:?}");
        assert_closed_silently(&mut c);
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.0: close by default, opt-in keep-alive, close-delimited bodies
// ---------------------------------------------------------------------------

#[test]
fn http10_closes_after_response_by_default() {
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    c.send(format!("GET /one HTTP/1.0\r\n\r\n{}", get("/after", "")));
    let res = c.response();
    assert_ok_body(&res, "/one");
    assert!(res.version.starts_with("HTTP/1."), "{res:?}");
    assert!(res.closes(), "{res:?}");
    assert_closed_silently(&mut c);
}

#[test]
fn http10_keep_alive_keeps_connection_open() {
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    for path in ["/one", "/two"] {
        c.send(format!(
            "GET {path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        ));
        let res = c.response();
        assert_ok_body(&res, path);
        assert_eq!(res.header("connection"), Some("keep-alive"), "{res:?}");
    }
    // Without the token the third one closes.
    c.send("GET /three HTTP/1.0\r\n\r\n");
    let res = c.response();
    assert_ok_body(&res, "/three");
    assert!(res.closes(), "{res:?}");
    assert_closed_silently(&mut c);
}

#[test]
fn http10_body_without_length_is_close_delimited() {
    let server = serve(scripted(Script {
        pieces: &[b"hello", b", ", b"world"],
        ..Script::default()
    }));
    for request in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let mut c = Client::connect(server.addr());
        c.send(request);
        let raw = rest_until_close(&mut c);
        let (head, body) = split_head(&raw);
        let res = parse_exact(head, &[true]).remove(0);
        assert_eq!(res.status, 200);
        assert_eq!(
            res.header("transfer-encoding"),
            None,
            "{request:?}: {res:?}"
        );
        assert_eq!(res.header("content-length"), None, "{request:?}: {res:?}");
        assert!(res.closes(), "{request:?}: {res:?}");
        assert_eq!(body, b"hello, world", "{request:?}");
    }
}

// ---------------------------------------------------------------------------
// Pipelining: responses in request order
// ---------------------------------------------------------------------------

#[test]
fn pipelined_requests_in_one_write_answered_in_order() {
    // 40 crosses the default share of 16 per loop turn; 1 yields after each.
    for max_pipelined in [1, 16, 1000] {
        let server = serve_with(|s| s.max_pipelined(max_pipelined), |_| Target::default());
        let mut c = Client::connect(server.addr());
        let n = 40;
        let mut all = String::new();
        for i in 0..n {
            let extra = if i == n - 1 {
                "Connection: close\r\n"
            } else {
                ""
            };
            all += &get(&format!("/p/{i}"), extra);
        }
        c.send(all);
        for i in 0..n {
            let res = c.response();
            assert_ok_body(&res, &format!("/p/{i}"));
            assert_eq!(
                res.closes(),
                i == n - 1,
                "max_pipelined {max_pipelined}: {res:?}"
            );
        }
        assert_closed_silently(&mut c);
    }
}

#[test]
fn pipelined_requests_after_a_close_are_never_answered() {
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    let requests: String = (0..6)
        .map(|i| {
            let extra = if i == 2 { "Connection: close\r\n" } else { "" };
            get(&format!("/p/{i}"), extra)
        })
        .collect();
    c.send(requests);
    for i in 0..3 {
        let res = c.response();
        assert_ok_body(&res, &format!("/p/{i}"));
        assert_eq!(res.closes(), i == 2, "{res:?}");
    }
    assert_closed_silently(&mut c);
}

#[test]
fn thousand_pipelined_requests_sent_first_read_late() {
    const N: usize = 1000;
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    let mut all = Vec::new();
    for i in 0..N {
        let extra = if i == N - 1 {
            "Connection: close\r\n"
        } else {
            ""
        };
        all.extend_from_slice(get(&format!("/p/{i}"), extra).as_bytes());
    }
    let mut writer = c.stream().try_clone().expect("clone stream");
    let sender = thread::spawn(move || writer.write_all(&all));
    // Let the server answer into a client that is not reading.
    thread::sleep(Duration::from_millis(200));
    for i in 0..N {
        let res = c.response();
        assert_ok_body(&res, &format!("/p/{i}"));
        assert_eq!(res.closes(), i == N - 1, "{res:?}");
    }
    assert_closed_silently(&mut c);
    sender.join().unwrap().expect("send all requests");
}

#[test]
fn pipelined_requests_with_bodies_answered_in_order() {
    let server = serve(|_| Echo::new());
    let mut c = Client::connect(server.addr());
    c.send(concat!(
        "POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst",
        "POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        "3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n",
        "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /4 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfifth",
    ));
    for (body, chunked) in [
        ("first", false),
        ("second", true),
        ("", false),
        ("fifth", false),
    ] {
        let res = c.response();
        assert_ok_body(&res, body);
        assert_eq!(
            res.header("transfer-encoding").is_some(),
            chunked,
            "{res:?}"
        );
    }
    assert_closed_silently(&mut c);
}

// ---------------------------------------------------------------------------
// Chunked bodies: requests split at every byte, responses framed exactly
// ---------------------------------------------------------------------------

const CHUNKED_REQUEST: &str = concat!(
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    "5;name=value\r\nhello\r\n",
    "7\r\n, world\r\n",
    "10\r\n0123456789abcdef\r\n",
    "0\r\nX-Trailer: yes\r\n\r\n",
);

const LENGTH_REQUEST: &str = concat!(
    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 28\r\n\r\n",
    "hello, world0123456789abcdef",
);

#[test]
fn request_body_split_at_every_byte_decodes() {
    let server = serve(|_| Echo::new());
    for (name, request) in [("chunked", CHUNKED_REQUEST), ("length", LENGTH_REQUEST)] {
        // A follow-up on the same connection proves the body's end (and
        // the trailer) were consumed exactly.
        let bytes = format!("{request}{}", get("/after", "Connection: close\r\n"));
        let bytes = bytes.as_bytes();
        for k in 1..bytes.len() {
            let mut c = Client::connect(server.addr());
            c.stream().set_nodelay(true).unwrap();
            c.send(&bytes[..k]);
            thread::sleep(Duration::from_millis(1));
            c.send(&bytes[k..]);
            let res = c.response();
            assert_eq!(res.status, 200, "{name}, split at {k}: {res:?}");
            assert_eq!(
                res.body_str(),
                "hello, world0123456789abcdef",
                "{name}, split at {k}"
            );
            let after = c.response();
            assert_eq!(after.status, 200, "{name}, split at {k}: {after:?}");
            assert_eq!(after.body_str(), "", "{name}, split at {k}");
            assert!(after.closes(), "{name}, split at {k}: {after:?}");
            assert_closed_silently(&mut c);
        }
    }
}

#[test]
fn chunked_request_body_trickled_byte_by_byte() {
    let server = serve(|_| Echo::new());
    let mut c = Client::connect(server.addr());
    c.stream().set_nodelay(true).unwrap();
    let (head, body) = split_head(CHUNKED_REQUEST.as_bytes());
    c.send(head);
    for &b in body {
        c.send([b]);
        thread::sleep(Duration::from_micros(200));
    }
    let res = c.response();
    assert_ok_body(&res, "hello, world0123456789abcdef");
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    // Still usable.
    c.send(get("/", ""));
    assert_ok_body(&c.response(), "");
}

#[test]
fn large_bodies_stream_through_and_keep_the_connection() {
    // Far over the drain limit and the write high-water mark: the handler
    // reads it all, so the connection stays usable.
    let body: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let length = [
        format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
        body.clone(),
    ]
    .concat();
    let chunked = [
        b"Transfer-Encoding: chunked\r\n\r\n".to_vec(),
        chunked_body(&body, 8192),
    ]
    .concat();
    let server = serve(|_| Echo::new());
    for (name, framed_body) in [("length", length), ("chunked", chunked)] {
        let mut c = Client::connect(server.addr());
        let request = [b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec(), framed_body].concat();
        let sender = send_in_background(&mut c, request);
        let res = c.response();
        assert_eq!(res.status, 200, "{name}");
        assert!(!res.closes(), "{name}: {res:?}");
        assert!(res.body == body, "{name}: echoed body differs");
        sender.join().unwrap();
        c.send(get("/", "Connection: close\r\n"));
        assert_ok_body(&c.response(), "");
        assert_closed_silently(&mut c);
    }
}

#[test]
fn chunked_response_is_framed_exactly_and_ends_with_zero_chunk() {
    let server = serve(scripted(Script {
        pieces: &[b"hello", b", ", b"world", &[b'x'; 300]],
        ..Script::default()
    }));
    let mut c = Client::connect(server.addr());
    c.send(get("/", "Connection: close\r\n"));
    let raw = rest_until_close(&mut c);
    let (head, body) = split_head(&raw);
    let res = parse_exact(head, &[true]).remove(0);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"), "{res:?}");
    assert_eq!(res.header("content-length"), None, "{res:?}");
    // One chunk per callback; the size line is reserved before the data,
    // fixed-width (as wide as the output buffer's 64 KiB needs).
    let mut expected = b"00005\r\nhello\r\n00002\r\n, \r\n00005\r\nworld\r\n0012c\r\n".to_vec();
    expected.extend_from_slice(&[b'x'; 300]);
    expected.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn chunked_responses_keep_the_connection_alive() {
    let server = serve(scripted(Script {
        pieces: &[b"hello", b", ", b"world"],
        ..Script::default()
    }));
    let mut c = Client::connect(server.addr());
    for _ in 0..3 {
        c.send(get("/", ""));
        let res = c.response();
        assert_ok_body(&res, "hello, world");
        assert_eq!(res.header("transfer-encoding"), Some("chunked"));
        assert!(!res.closes());
    }
}

// ---------------------------------------------------------------------------
// Expect: 100-continue
// ---------------------------------------------------------------------------

#[test]
fn expect_continue_sends_100_before_the_body_is_read() {
    let cases = [
        ("Content-Length: 5\r\n", &b"hello"[..]),
        (
            "Transfer-Encoding: chunked\r\n",
            &b"2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n"[..],
        ),
    ];
    let server = serve(|_| Echo::new());
    for (framing, body) in cases {
        let mut c = Client::connect(server.addr());
        c.send(format!(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n{framing}\r\n"
        ));
        // The body has not been sent: only a 100 can come now.
        let interim = c.response();
        assert_eq!(interim.version, "HTTP/1.1", "{framing:?}");
        assert_eq!(interim.status, 100, "{framing:?}: {interim:?}");
        c.send(body);
        let res = c.response();
        assert_ok_body(&res, "hello");
        assert!(!res.closes(), "{framing:?}: {res:?}");
        // The connection goes on, with no second 100.
        c.send(get("/", ""));
        let next = c.response();
        assert_ok_body(&next, "");
    }
}

#[test]
fn expect_continue_without_need_for_100() {
    // (case, request head, body sent after a pause)
    let cases = [
        (
            "no body",
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "",
        ),
        (
            "HTTP/1.0 (MUST NOT get 100)",
            "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            "hello",
        ),
    ];
    let server = serve(|_| Echo::new());
    for (name, head, body) in cases {
        let mut c = Client::connect(server.addr());
        c.send(head);
        if !body.is_empty() {
            // Were a 100 sent, it would now precede the final response.
            thread::sleep(Duration::from_millis(20));
            c.send(body);
        }
        let res = c.response();
        assert_ok_body(&res, body);
        assert_ne!(res.status, 100, "{name}");
    }
}

#[test]
fn expect_continue_with_body_already_sent_keeps_order() {
    // A client that does not wait for the 100: the server may skip it,
    // but a 100 must never come after the final response.
    let server = serve(|_| Echo::new());
    let mut c = Client::connect(server.addr());
    c.send(format!(
        "POST /1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello{}",
        get("/2", "Connection: close\r\n")
    ));
    let mut res = c.response();
    if res.status == 100 {
        res = c.response();
    }
    assert_ok_body(&res, "hello");
    let next = c.response();
    assert_ok_body(&next, "");
    assert!(next.closes(), "{next:?}");
    assert_closed_silently(&mut c);
}

#[test]
fn expect_continue_answered_without_reading_sends_no_100_and_closes() {
    let cases = [
        ("417, body held back", 417, false),
        ("200, body held back", 200, false),
        ("417, body sent anyway", 417, true),
        ("200, body sent anyway", 200, true),
    ];
    for (name, status, body_with_head) in cases {
        let server = serve(scripted(Script {
            status,
            body: Some(b"no"),
            ..Script::default()
        }));
        let mut c = Client::connect(server.addr());
        // The body looks like a request: it must never be answered as one.
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            SMUGGLED.len()
        );
        if body_with_head {
            c.send(head + SMUGGLED);
        } else {
            c.send(head);
        }
        let res = c.response();
        assert_eq!(res.status, status, "{name}: {res:?}");
        assert_eq!(res.body_str(), "no", "{name}");
        assert!(res.closes(), "{name}: {res:?}");
        if !body_with_head {
            // A client that sends the body after all; the server may
            // already be gone, so a failed write is fine.
            let _ = c.stream().write_all(SMUGGLED.as_bytes());
        }
        assert_closed_silently(&mut c);
    }
}

// Once a bug: Expect: 100-continue with a read_and_write() handler: no 100 is
// sent (step_exchange goes to step_write while the body is not readable, and
// only step_read sends the 100), so a client that waits for it stalls.

#[test]
fn expect_continue_is_answered_100_for_a_read_and_write_handler() {
    let server = serve(|_| DuplexOrHello::Undecided);
    let mut c = client(server.addr());
    c.send("PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    // A client that waits for 100 before sending its body.
    let mut line = String::new();
    c.reader.read_line(&mut line).expect("a status line");
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    c.reader.read_line(&mut blank).unwrap();
    c.send("hello");
    let res = read_response(&mut c.reader, false).expect("the echo");
    assert_eq!(res.body, b"hello");
}

// ---------------------------------------------------------------------------
// Bodiless responses: HEAD, 204, 304
// ---------------------------------------------------------------------------

/// Three ways a handler can try to give a 5-byte body.
fn five_byte_bodies(status: u16) -> [(&'static str, Script); 3] {
    [
        (
            "Response::body",
            Script {
                status,
                body: Some(b"hello"),
                ..Script::default()
            },
        ),
        (
            "Content-Length + writes",
            Script {
                status,
                length: Some(5),
                pieces: &[b"hel", b"lo"],
                ..Script::default()
            },
        ),
        (
            "writes without length",
            Script {
                status,
                pieces: &[b"hel", b"lo"],
                ..Script::default()
            },
        ),
    ]
}

#[test]
fn head_response_has_no_body_but_keeps_content_length() {
    for (name, script) in five_byte_bodies(200) {
        let declared = script.length.is_some() || script.body.is_some();
        let server = serve(scripted(script));
        let mut c = Client::connect(server.addr());
        // HEAD, then GET on the same connection: any stray body byte
        // after the HEAD response would corrupt the next status line.
        c.send(format!(
            "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n{}",
            get("/", "Connection: close\r\n")
        ));
        let raw = rest_until_close(&mut c);
        let [head, next] = <[Parsed; 2]>::try_from(parse_exact(&raw, &[true, false])).unwrap();
        assert_eq!(head.status, 200, "{name}: {head:?}");
        assert!(!head.closes(), "{name}: {head:?}");
        if declared {
            assert_eq!(head.header("content-length"), Some("5"), "{name}: {head:?}");
        }
        assert_ok_body(&next, "hello");
    }
}

#[test]
fn head_request_then_more_requests_on_keep_alive() {
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    for path in ["/a", "/bb", "/ccc"] {
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let res = c.head_response();
        assert_eq!(res.status, 200);
        assert_eq!(
            res.header("content-length"),
            Some(path.len().to_string().as_str())
        );
        c.send(get(path, ""));
        assert_ok_body(&c.response(), path);
    }
}

#[test]
fn no_body_on_204_and_304_whatever_the_handler_writes() {
    for status in [204, 304] {
        for (name, script) in five_byte_bodies(status) {
            let server = serve(scripted(script));
            let mut c = Client::connect(server.addr());
            // Two on one connection; the raw bytes must be exactly two heads.
            c.send(get("/", "") + &get("/", "Connection: close\r\n"));
            let raw = rest_until_close(&mut c);
            let responses = parse_exact(&raw, &[true, true]);
            for res in &responses {
                assert_eq!(res.status, status, "{status} {name}: {res:?}");
                assert_eq!(
                    res.header("transfer-encoding"),
                    None,
                    "{status} {name}: {res:?}"
                );
                if status == 204 {
                    assert_eq!(
                        res.header("content-length"),
                        None,
                        "{status} {name}: {res:?}"
                    );
                }
            }
            assert!(!responses[0].closes(), "{status} {name}");
            assert!(responses[1].closes(), "{status} {name}");
        }
    }
}

#[test]
fn ending_without_a_body_claims_no_length_where_there_is_no_body() {
    // `Next::end()` with no body and no length: a 200 to GET declares an
    // empty body; to HEAD, and for 204 and 304, a length would claim what
    // the GET or the 200 would have carried (RFC 9110 §8.6), so none.
    for (method, status, length) in [
        ("GET", 200, Some("0")),
        ("HEAD", 200, None),
        ("GET", 204, None),
        ("GET", 304, None),
        ("HEAD", 304, None),
    ] {
        let server = serve(scripted(Script {
            status,
            ..Script::default()
        }));
        let mut c = Client::connect(server.addr());
        // Two on one connection; the raw bytes must be exactly two heads.
        let request = format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n");
        c.send(format!("{request}{}", get("/", "Connection: close\r\n")));
        let raw = rest_until_close(&mut c);
        let responses = parse_exact(&raw, &[method == "HEAD", true]);
        let (first, case) = (&responses[0], format!("{method} {status}"));
        assert_eq!(first.status, status, "{case}: {first:?}");
        assert_eq!(first.header("content-length"), length, "{case}: {first:?}");
        assert_eq!(first.header("transfer-encoding"), None, "{case}: {first:?}");
        assert!(!first.closes(), "{case}: {first:?}");
    }
}

// ---------------------------------------------------------------------------
// Unread request bodies: drained within the limit, else close
// ---------------------------------------------------------------------------

/// The two ways `Target` answers: whole body then `Next::end()`, or a
/// streamed (chunked) body.
const STYLES: [&str; 2] = ["/whole", "/stream"];

#[test]
fn unread_small_body_is_drained_not_parsed() {
    let length = format!("Content-Length: {}\r\n\r\n{SMUGGLED}", SMUGGLED.len());
    let chunked = format!(
        "Transfer-Encoding: chunked\r\n\r\n{}",
        String::from_utf8(chunked_body(SMUGGLED.as_bytes(), 10)).unwrap()
    );
    let server = serve(|_| Target::default());
    for (framing, framed_body) in [("length", &length), ("chunked", &chunked)] {
        for style in STYLES {
            let (a, b) = (format!("{style}/a"), format!("{style}/b"));
            let mut c = Client::connect(server.addr());
            c.send(format!(
                "POST {a} HTTP/1.1\r\nHost: x\r\n{framed_body}{}",
                get(&b, "Connection: close\r\n")
            ));
            let first = c.response();
            assert_ok_body(&first, &a);
            assert!(!first.closes(), "{framing} {style}: {first:?}");
            assert_ok_body(&c.response(), &b);
            assert_closed_silently(&mut c);
        }
    }
}

#[test]
fn unread_body_arriving_after_the_response_is_drained() {
    let server = serve(|_| Target::default());
    for style in STYLES {
        let (a, b) = (format!("{style}/a"), format!("{style}/b"));
        let mut c = Client::connect(server.addr());
        c.send(format!(
            "POST {a} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            SMUGGLED.len()
        ));
        let first = c.response();
        assert_ok_body(&first, &a);
        assert!(!first.closes(), "{style}: {first:?}");
        c.send(format!("{SMUGGLED}{}", get(&b, "Connection: close\r\n")));
        assert_ok_body(&c.response(), &b);
        assert_closed_silently(&mut c);
    }
}

#[test]
fn unread_length_body_at_and_over_the_drain_limit() {
    const LIMIT: usize = 64 * 1024;
    // (declared length, bytes actually sent, drained and kept alive?)
    let cases = [
        (LIMIT, LIMIT, true),
        (LIMIT + 1, LIMIT + 1, false),
        (1024 * 1024, 2 * LIMIT, false),
    ];
    let server = serve(|_| Target::default());
    for (declared, sent, kept) in cases {
        for style in STYLES {
            let (a, b) = (format!("{style}/a"), format!("{style}/b"));
            let mut c = Client::connect(server.addr());
            let mut bytes =
                format!("POST {a} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n")
                    .into_bytes();
            bytes.extend_from_slice(&smuggled_body(sent));
            bytes.extend_from_slice(get(&b, "Connection: close\r\n").as_bytes());
            let sender = send_in_background(&mut c, bytes);
            let first = c.response();
            assert_ok_body(&first, &a);
            // A streamed head announcing the close is checked on its own
            // (see `oversized_unread_body_with_streamed_response_announces_close`).
            if style == "/whole" || kept {
                assert_eq!(
                    first.closes(),
                    !kept,
                    "declared {declared}, {style}: {first:?}"
                );
            }
            if kept {
                assert_ok_body(&c.response(), &b);
            }
            assert_closed_silently(&mut c);
            sender.join().unwrap();
        }
    }
}

#[test]
fn oversized_unread_body_with_streamed_response_announces_close() {
    // The handler never asks for the body and streams its answer: the
    // server knows when writing the head that it will not drain 1 MiB.
    let server = serve(|_| Target::default());
    let mut c = Client::connect(server.addr());
    c.send(format!(
        "POST /stream/a HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        1024 * 1024
    ));
    let first = c.response();
    assert_ok_body(&first, "/stream/a");
    assert!(first.closes(), "{first:?}");
    assert_closed_silently(&mut c);
}

#[test]
fn unread_chunked_body_over_the_drain_limit_closes() {
    // The size of a chunked body is unknown when the response head goes
    // out, so only the close is checked, and that the follow-up request
    // (and the body's bytes) are never answered.
    let body = chunked_body(&smuggled_body(4 * 64 * 1024), 4096);
    let server = serve(|_| Target::default());
    for style in STYLES {
        let (a, b) = (format!("{style}/a"), format!("{style}/b"));
        let mut c = Client::connect(server.addr());
        let mut bytes =
            format!("POST {a} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                .into_bytes();
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(get(&b, "").as_bytes());
        let sender = send_in_background(&mut c, bytes);
        assert_ok_body(&c.response(), &a);
        assert_closed_silently(&mut c);
        sender.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Response bodies that miss their declared Content-Length
// ---------------------------------------------------------------------------

#[test]
fn writing_past_content_length_is_an_error() {
    let cases = [
        (
            "set_content_length(5), write 12",
            Script {
                length: Some(5),
                pieces: &[b"hello, world"],
                ..Script::default()
            },
        ),
        (
            "body(\"hello\"), then write 1",
            Script {
                body: Some(b"hello"),
                pieces: &[b"!"],
                ..Script::default()
            },
        ),
    ];
    for (name, script) in cases {
        let (tx, rx) = mpsc::channel();
        let server = serve(scripted(Script {
            writes: Some(tx),
            ..script
        }));
        let mut c = Client::connect(server.addr());
        c.send(get("/", ""));
        let res = c.response();
        assert_ok_body(&res, "hello");
        assert_eq!(res.header("content-length"), Some("5"), "{name}");
        let result = rx.recv_timeout(common::IO_TIMEOUT).expect("write reported");
        assert_eq!(result, Err(io::ErrorKind::InvalidInput), "{name}");
        // The declared body went out whole: the connection goes on.
        c.send(get("/", "Connection: close\r\n"));
        assert_ok_body(&c.response(), "hello");
        assert_closed_silently(&mut c);
    }
}

#[test]
fn ending_short_of_content_length_closes() {
    let server = serve(scripted(Script {
        length: Some(10),
        pieces: &[b"hello"],
        ..Script::default()
    }));
    let mut c = Client::connect(server.addr());
    // The second request must never be answered.
    c.send(get("/", "") + &get("/", ""));
    let raw = rest_until_close(&mut c);
    let (head, body) = split_head(&raw);
    let res = parse_exact(head, &[true]).remove(0);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("10"), "{res:?}");
    assert_eq!(
        String::from_utf8_lossy(body),
        "hello",
        "short body, then close"
    );
}

// ---------------------------------------------------------------------------
// Next::read_and_write(): a handler that streams while it reads must not
// spin the loop when neither side can progress.

/// Echoes the body while reading it, asking for both sides at once.
/// `GET /` is answered at once, so a second connection can probe the loop.
#[derive(Default)]
struct DuplexEcho {
    probe: bool,
    pending: Vec<u8>,
    body_done: bool,
}

impl Handler for DuplexEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.probe = req.method() == "GET";
        Next::write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 256];
        match body.read(&mut buf) {
            Ok(0) => self.body_done = true,
            Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Next::remove(),
        }
        Next::read_and_write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.probe {
            res.body(b"probe");
            return Next::end();
        }
        Next::read_and_write()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if !self.pending.is_empty() {
            match body.write(&self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Next::remove(),
            }
        }
        if self.body_done && self.pending.is_empty() {
            Next::end()
        } else {
            // Often nothing to write and nothing to read: must park, not spin.
            Next::read_and_write()
        }
    }
}

#[test]
fn read_and_write_with_nothing_to_do_parks_instead_of_spinning() {
    let server = serve_with(|s| s, |_| DuplexEcho::default());
    let mut c = Client::connect(server.addr());
    c.send("POST /rw HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello");
    // While that exchange waits for the rest of its body, the same loop
    // must answer another connection (a spinning loop would not).
    for _ in 0..3 {
        let mut probe = Client::connect(server.addr());
        probe.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let res = probe.response();
        assert_eq!(res.body_str(), "probe");
        thread::sleep(Duration::from_millis(20));
    }
    c.send("world");
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.body_str(), "helloworld");
}

// ---------------------------------------------------------------------------
// Fairness: a client sending as fast as the loop reads gets a share of each
// turn (a read budget), not the loop.

/// Counts the body it is sent; `GET` is answered at once.
#[derive(Default)]
struct Sink {
    get: bool,
    received: u64,
}

impl Handler for Sink {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.get = req.method() == "GET";
        if self.get {
            Next::write()
        } else {
            Next::read()
        }
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match body.read(&mut buf) {
                Ok(0) => return Next::write(),
                Ok(n) => self.received += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                Err(_) => return Next::remove(),
            }
        }
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        let text = if self.get {
            "probe".to_string()
        } else {
            format!("received {}", self.received)
        };
        res.body(text.as_bytes());
        Next::end()
    }
}

#[test]
fn a_fast_upload_does_not_keep_other_connections_waiting() {
    const UPLOAD: usize = 32 << 20;
    let server = serve(|_| Sink::default());
    let addr = server.addr();
    let uploader = thread::spawn(move || {
        let mut c = Client::connect(addr);
        c.send(format!(
            "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {UPLOAD}\r\n\r\n"
        ));
        let chunk = vec![b'u'; 256 * 1024];
        for _ in 0..UPLOAD / chunk.len() {
            c.send(&chunk);
        }
        c.response()
    });
    // While the upload streams, other connections are answered.
    for _ in 0..20 {
        let mut probe = Client::connect(addr);
        probe.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(probe.response().body_str(), "probe");
    }
    let res = uploader.join().unwrap();
    assert_eq!(res.body_str(), format!("received {UPLOAD}"));
}
