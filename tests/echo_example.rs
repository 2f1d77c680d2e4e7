//! `examples/echo.rs` itself, over TCP: the framing of its answers, and a
//! malformed body answered 400 by the server although the handler, written
//! the natural way, returns `Next::remove()` when its read fails.

mod common;

#[path = "../examples/echo.rs"]
#[allow(dead_code)]
mod echo;

use common::{read_response, serve, Client};
use echo::Echo;

const AFTER: &[u8] = b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n";

fn chunks(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn chunked_post(body: &[u8]) -> Vec<u8> {
    [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        body,
    ]
    .concat()
}

/// A small body, whole by the time the answer starts, is answered with
/// its length, chunked or not, however the request was split.
#[test]
fn small_bodies_get_a_content_length() {
    let server = serve(|_| Echo::new());
    let length = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let chunked = chunked_post(&chunks(b"hello, world", 5));
    for (name, request) in [("length", length), ("chunked", chunked)] {
        for split in [None, Some(request.len() - 3)] {
            let mut c = Client::connect(server.addr());
            c.stream().set_nodelay(true).unwrap();
            match split {
                None => c.send(&request),
                Some(k) => {
                    c.send(&request[..k]);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    c.send(&request[k..]);
                }
            }
            c.send(AFTER);
            let res = c.response();
            assert_eq!(res.status, 200, "{name}");
            assert_eq!(res.header("transfer-encoding"), None, "{name}: {res:?}");
            let want = if name == "length" {
                "hello"
            } else {
                "hello, world"
            };
            assert_eq!(res.header("content-length"), Some(&*want.len().to_string()));
            assert_eq!(res.body_str(), want, "{name}");
            let after = c.response();
            assert_eq!((after.status, after.body_str()), (200, ""), "{name}");
        }
    }
}

/// A chunked body larger than the handler's buffer streams through it,
/// chunked.
#[test]
fn large_chunked_bodies_stream_chunked() {
    let server = serve(|_| Echo::new());
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut c = Client::connect(server.addr());
    c.send(chunked_post(&chunks(&body, 8192)));
    c.send(AFTER);
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"), "{res:?}");
    assert!(res.body == body, "echoed body differs");
    assert_eq!(c.response().status, 200);
}

/// Malformed bodies: the handler's read fails and it returns
/// `Next::remove()`; the server still answers 400 with `Connection:
/// close` and serves nothing after it.
#[test]
fn a_malformed_body_is_answered_400_whatever_the_handler_returns() {
    let server = serve(|_| Echo::new());
    for (name, body) in [
        ("bad chunk size", &b"5\r\nhello\r\nzz\r\n\r\n"[..]),
        ("no CRLF after data", b"5\r\nhelloX0\r\n\r\n"),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
        ("empty extension name", b"5;\r\nhello\r\n0\r\n\r\n"),
        (
            "unclosed quote in extension",
            b"5;a=\"b\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "space inside extension name",
            b"5;a b=c\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "= without value on last chunk",
            b"5\r\nhello\r\n0;a=\r\n\r\n",
        ),
        (
            "trailer without colon",
            b"5\r\nhello\r\n0\r\nnot a field\r\n\r\n",
        ),
        ("trailer bare LF", b"5\r\nhello\r\n0\r\nX: y\n\r\n"),
    ] {
        let request = chunked_post(body);
        // Whole, then split at every byte of the body.
        let head_len = request.len() - body.len();
        for split in std::iter::once(None).chain((head_len + 1..request.len()).map(Some)) {
            let mut c = Client::connect(server.addr());
            c.stream().set_nodelay(true).unwrap();
            match split {
                None => c.send(&request),
                Some(k) => {
                    c.send(&request[..k]);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    c.send(&request[k..]);
                }
            }
            // A refused request may be reset while this is sent.
            let _ = std::io::Write::write_all(c.stream(), AFTER);
            let res = read_response(&mut c.reader, false)
                .unwrap_or_else(|e| panic!("{name} split {split:?}: no answer: {e}"));
            assert_eq!(res.status, 400, "{name} split {split:?}: {res:?}");
            assert!(res.closes(), "{name} split {split:?}: {res:?}");
            let rest = c.read_to_close().unwrap_or_default();
            assert!(
                rest.is_empty(),
                "{name}: answered after the bad body: {rest:?}"
            );
        }
    }
}

/// Once the response head is out, a malformed body cuts the response: no
/// last chunk, then the close; nothing after it is served.
#[test]
fn a_malformed_body_after_the_head_cuts_the_response() {
    let server = serve(|_| Echo::new());
    let mut body = chunks(&[b'x'; 10_000], 10_000);
    body.truncate(body.len() - 5);
    body.extend_from_slice(b"zz\r\n\r\n");
    let mut c = Client::connect(server.addr());
    c.send(chunked_post(&body));
    let _ = std::io::Write::write_all(c.stream(), AFTER);
    let out = c.read_to_close().unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text:?}");
    assert!(!text.ends_with("\r\n0\r\n\r\n"), "the response was not cut");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text:?}");
}
