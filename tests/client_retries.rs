//! When the client sends a request again, and when it must not: a request
//! that may have reached the server (a POST, a pipelined request behind
//! one abandoned mid-body) is never sent twice, and a retry after a stale
//! pooled connection goes out on a fresh connection.
//!
//! Raw servers on 127.0.0.1 play the peer and count what reaches them;
//! every wait is bounded.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{BufReader, Write};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use client_kit::{get, hold, raw, read_head, read_head_lines, Collect};
use common::IO_TIMEOUT;
use nextloop::client::{self, Handler};
use nextloop::Next;

// ---- a request that may have reached the server is not sent again ----

/// Ends the exchange as soon as the head is in (abandoning a large body).
struct HeadOnly;

impl Handler for HeadOnly {
    fn on_response(&mut self, _: client::Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn a_pipelined_post_is_never_sent_twice() {
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&posts);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        while let Some(head) = read_head(&mut r) {
            if head.method == "POST" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            if head.path == "/big" {
                // Wait for the pipelined POST, then start a body far larger
                // than the client will drain.
                if let Some(next) = read_head(&mut r) {
                    if next.method == "POST" {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let mut res = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
                res.extend_from_slice(&[b'x'; 1000]);
                let _ = w.write_all(&res);
                hold(&mut r);
                return;
            }
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let client = client::Client::builder()
        .max_per_host(1)
        .pipelining(2)
        .build()
        .unwrap();
    client.request(&server.url("/big"), HeadOnly).unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/post"), Collect::new("POST", &tx))
        .unwrap();
    let outcome = rx.recv_timeout(IO_TIMEOUT).expect("the POST ends");
    assert_eq!(
        posts.load(Ordering::SeqCst),
        1,
        "the POST reached the server twice (connections: {}; its outcome: {outcome:?})",
        server.accepted.load(Ordering::SeqCst)
    );
}

#[test]
fn a_post_on_a_stale_keep_alive_connection_is_not_retried() {
    // The server answers one request per connection, then closes without
    // saying so: the second request finds a dead pooled connection.
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&posts);
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if let Some(head) = read_head(&mut r) {
            if head.method == "POST" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/1"), Collect::new("GET", &tx))
        .unwrap();
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Ok((200, b"ok".to_vec()))
    );
    thread::sleep(Duration::from_millis(100));
    client
        .request(&server.url("/2"), Collect::new("POST", &tx))
        .unwrap();
    let outcome = rx.recv_timeout(IO_TIMEOUT).unwrap();
    // Either the close was noticed while idle (a fresh connection, one
    // POST) or the POST failed; never two POSTs.
    assert!(posts.load(Ordering::SeqCst) <= 1, "{outcome:?}");
}

// ---- a retry goes out on a fresh connection ----

// Once a bug: a request retried after a stale pooled connection went to
// another pooled connection, not a fresh one.
#[test]
fn a_retry_after_a_stale_pooled_connection_gets_a_fresh_one() {
    // Connections 0 and 1 answer their first request once both are open
    // (so that the client keeps two in its pool), then close on the next
    // request without answering — a keep-alive timeout racing the request.
    // Later connections answer `b`.
    let heads = Arc::new(AtomicUsize::new(0));
    let server = raw(move |stream, i| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if i < 2 {
            if read_head_lines(&mut r).is_some() {
                heads.fetch_add(1, Ordering::SeqCst);
                let start = Instant::now();
                while heads.load(Ordering::SeqCst) < 2 && start.elapsed() < IO_TIMEOUT {
                    thread::sleep(Duration::from_millis(1));
                }
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na");
            }
            read_head_lines(&mut r);
            return;
        }
        while read_head_lines(&mut r).is_some() {
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb");
        }
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    for path in ["/1", "/2"] {
        client
            .request(&server.url(path), Collect::new("GET", &tx))
            .unwrap();
    }
    for _ in 0..2 {
        assert_eq!(
            rx.recv_timeout(IO_TIMEOUT).unwrap(),
            Ok((200, b"a".to_vec()))
        );
    }
    assert_eq!(server.accepted(), 2);
    let out = get(&client, &server.url("/3"));
    assert_eq!(
        out,
        Ok((200, b"b".to_vec())),
        "the GET was sent again on another stale pooled connection, not a fresh one \
         (connections accepted: {})",
        server.accepted()
    );
    assert_eq!(server.accepted(), 3);
}
