//! The blocking client (`hypersync::Client`): request bodies streamed
//! from an `io::Read`, a timeout for the whole exchange, the declared
//! body length, and header lookups of the same types as the server's
//! `Request`. Against a real nextloop server or a raw one on 127.0.0.1;
//! every wait is bounded.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{self, BufReader, Read, Write};
use std::time::{Duration, Instant};

use client_kit::{hold, raw, read_head};
use common::handlers::{Echo, Hello};
use common::{serve, BOUND};
use nextloop::client::Error;
use nextloop::hypersync::Client;

/// Gives `total` bytes (a repeating pattern) in reads of at most `step`,
/// counting how many it gave.
struct Pattern {
    given: usize,
    total: usize,
    step: usize,
}

impl Read for Pattern {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.step).min(self.total - self.given);
        for (i, b) in out[..n].iter_mut().enumerate() {
            *b = ((self.given + i) % 251) as u8;
        }
        self.given += n;
        Ok(n)
    }
}

fn pattern(total: usize) -> Vec<u8> {
    (0..total).map(|i| (i % 251) as u8).collect()
}

fn read_all(mut res: nextloop::hypersync::ClientResponse) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    res.read_to_end(&mut body)?;
    Ok(body)
}

#[test]
fn a_body_streamed_from_a_reader_goes_chunked() {
    let server = serve(|_| Echo::new());
    let total = 1 << 20;
    let res = Client::new()
        .request("POST", &format!("http://{}/echo", server.addr()))
        .body_reader(
            Pattern {
                given: 0,
                total,
                step: 7_000,
            },
            None,
        )
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    // Echo answers chunked to a chunked request.
    assert_eq!(res.header_str("transfer-encoding"), Some("chunked"));
    assert_eq!(res.content_length(), None);
    assert!(
        read_all(res).unwrap() == pattern(total),
        "the body came back whole"
    );
}

#[test]
fn a_body_streamed_with_its_length_goes_with_content_length() {
    let server = serve(|_| Echo::new());
    let total = 300_000;
    let res = Client::new()
        .request("PUT", &format!("http://{}/echo", server.addr()))
        .body_reader(
            Pattern {
                given: 0,
                total,
                step: 65_536,
            },
            Some(total as u64),
        )
        .send()
        .unwrap();
    assert_eq!(res.content_length(), Some(total as u64));
    assert_eq!(
        res.header("content-length"),
        Some(total.to_string().as_bytes())
    );
    assert!(read_all(res).unwrap() == pattern(total));
}

/// Fails after giving some bytes.
struct Broken(usize);

impl Read for Broken {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("deliberate read error"));
        }
        let n = out.len().min(self.0);
        out[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_reader_error_fails_the_request_and_the_client_goes_on() {
    let server = serve(|_| Echo::new());
    let url = format!("http://{}/echo", server.addr());
    let client = Client::new();
    let err = client
        .request("POST", &url)
        .body_reader(Broken(100_000), None)
        .send()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io(e) if e.to_string().contains("deliberate")),
        "{err:?}"
    );
    let res = client.post(&url, "after").unwrap();
    assert_eq!(read_all(res).unwrap(), b"after");
}

#[test]
fn the_timeout_bounds_waiting_for_the_head() {
    // Reads the request, never answers.
    let silent = raw(|stream, _| {
        let mut r = BufReader::new(stream);
        let _ = read_head(&mut r);
        hold(&mut r);
    });
    let start = Instant::now();
    let err = Client::new()
        .request("GET", &silent.url("/"))
        .timeout(Duration::from_millis(300))
        .send()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(start.elapsed() < BOUND);
}

#[test]
fn the_timeout_bounds_reading_the_body() {
    // A head and half the body, then nothing.
    let stalls = raw(|mut stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let _ = read_head(&mut r);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
        hold(&mut r);
    });
    let start = Instant::now();
    let mut res = Client::new()
        .request("GET", &stalls.url("/"))
        .timeout(Duration::from_millis(400))
        .send()
        .unwrap();
    assert_eq!(res.content_length(), Some(10));
    let mut body = Vec::new();
    let err = res.read_to_end(&mut body).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err:?}");
    assert_eq!(body, b"hello");
    assert!(start.elapsed() < BOUND);
}

#[test]
fn the_timeout_bounds_a_stalled_streamed_body() {
    // Takes the head, then reads nothing: the upload stalls.
    let deaf = raw(|stream, _| {
        let mut r = BufReader::new(stream);
        let _ = read_head(&mut r);
        std::thread::sleep(BOUND);
    });
    let start = Instant::now();
    let err = Client::new()
        .request("POST", &deaf.url("/"))
        .body_reader(
            Pattern {
                given: 0,
                total: 64 << 20,
                step: 65_536,
            },
            None,
        )
        .timeout(Duration::from_millis(500))
        .send()
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < BOUND);
}

#[test]
fn header_lookups_have_the_server_request_types() {
    let server = serve(|_| Hello);
    let res = Client::new()
        .get(&format!("http://{}/", server.addr()))
        .unwrap();
    // The same signatures as `server::Request`: bytes, and str if UTF-8.
    let bytes: Option<&[u8]> = res.header("Content-Type");
    let text: Option<&str> = res.header_str("content-type");
    assert_eq!(bytes, Some(&b"text/plain"[..]));
    assert_eq!(text, Some("text/plain"));
    assert_eq!(res.content_length(), Some(13));
    assert_eq!(read_all(res).unwrap(), b"Hello, World!");
}

/// Gives three bytes, then blocks (for the test's bound).
struct Stuck(bool);

impl Read for Stuck {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if std::mem::replace(&mut self.0, true) {
            std::thread::sleep(BOUND);
            return Ok(0);
        }
        out[..3].copy_from_slice(b"abc");
        Ok(3)
    }
}

#[test]
fn the_timeout_bounds_a_reader_that_blocks() {
    let server = serve(|_| Echo::new());
    let start = Instant::now();
    let err = Client::new()
        .request("POST", &format!("http://{}/echo", server.addr()))
        .body_reader(Stuck(false), None)
        .timeout(Duration::from_millis(300))
        .send()
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(start.elapsed() < BOUND / 2);
}

#[test]
fn a_reader_shorter_than_its_declared_length_fails_the_request() {
    let server = serve(|_| Echo::new());
    let client = Client::new();
    let url = format!("http://{}/echo", server.addr());
    let result = client
        .request("PUT", &url)
        .body_reader(
            Pattern {
                given: 0,
                total: 1000,
                step: 100,
            },
            Some(2000),
        )
        .timeout(Duration::from_secs(2))
        .send()
        .and_then(|res| read_all(res).map_err(Error::Io));
    assert!(
        result.is_err(),
        "a 1000-byte body declared 2000 long went through"
    );
    assert!(!matches!(result, Err(Error::Timeout)), "{result:?}");
    let res = client.post(&url, "after").unwrap();
    assert_eq!(read_all(res).unwrap(), b"after");
}

#[test]
fn a_reader_longer_than_its_declared_length_fails_the_request() {
    let server = serve(|_| Echo::new());
    let client = Client::new();
    let url = format!("http://{}/echo", server.addr());
    let result = client
        .request("PUT", &url)
        .body_reader(
            Pattern {
                given: 0,
                total: 3000,
                step: 100,
            },
            Some(2000),
        )
        .timeout(Duration::from_secs(2))
        .send()
        .and_then(|res| read_all(res).map_err(Error::Io));
    assert!(!matches!(result, Err(Error::Timeout)), "{result:?}");
    if let Ok(body) = &result {
        // Sent as declared at most: the extra bytes never went out as a
        // second request.
        assert_eq!(body.len(), 2000);
    }
    let res = client.post(&url, "after").unwrap();
    assert_eq!(read_all(res).unwrap(), b"after");
}
