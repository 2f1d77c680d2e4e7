//! The client skips the unread rest of a response body to reuse the
//! connection, reading at most `max_drain` bytes (64 KiB) to do it —
//! every byte read, chunk framing included, as the server counts them.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;

use client_kit::{get, raw, Raw};
use common::IO_TIMEOUT;
use nextloop::client::{self, Handler};
use nextloop::Next;

/// The client's default drain budget.
const MAX_DRAIN: usize = 64 * 1024;

/// Ends the exchange as soon as the head is in, leaving the body unread;
/// says when.
struct HeadOnly(mpsc::Sender<u16>);

impl Handler for HeadOnly {
    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.0.send(res.status());
        Next::end()
    }
}

/// Answers `/unread` with a chunked body of `chunks` one-byte chunks (6
/// bytes on the wire each), anything else with `ok`.
fn server(chunks: usize) -> Raw {
    raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
            }
            let response = if path == "/unread" {
                let mut res = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..chunks {
                    res.extend_from_slice(b"1\r\nx\r\n");
                }
                res.extend_from_slice(b"0\r\n\r\n");
                res
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()
            };
            if w.write_all(&response).is_err() {
                return;
            }
        }
    })
}

/// Leaves the body of `/unread` unread, then GETs `/next`: how many
/// connections the server saw.
fn connections_for_unread_then_next(chunks: usize) -> usize {
    let server = server(chunks);
    let client = client::Client::builder().max_per_host(1).build().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/unread"), HeadOnly(tx))
        .unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT), Ok(200));
    assert_eq!(
        get(&client, &server.url("/next")),
        Ok((200, b"ok".to_vec()))
    );
    server.accepted()
}

#[test]
fn an_unread_body_within_the_budget_is_drained_and_the_connection_reused() {
    // 2,000 body bytes in 12,005 bytes of chunked body.
    assert_eq!(connections_for_unread_then_next(2_000), 1);
}

#[test]
fn chunk_framing_counts_against_the_drain_budget() {
    // 20,000 body bytes — well within the budget — in 120,005 bytes of
    // chunked body, well over it: the client gives the connection up.
    let chunks = 20_000;
    assert!(chunks < MAX_DRAIN && chunks * 6 > MAX_DRAIN);
    assert_eq!(connections_for_unread_then_next(chunks), 2);
}
