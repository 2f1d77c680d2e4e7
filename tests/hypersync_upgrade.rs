//! hypersync's blocking hand-off of an upgraded connection (issue 16,
//! item 2): a blocking handler answers `101` to an `Upgrade` request (or
//! `2xx` to `CONNECT`) and gets the connection as a blocking `Read +
//! Write` on its thread — push and pull mode, raw bytes over real TCP on
//! 127.0.0.1.

mod common;
#[cfg(any(feature = "tls", feature = "tls-ring"))]
#[path = "common/tls_kit.rs"]
mod tls_kit;

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{Client, IO_TIMEOUT};
use nextloop::hypersync::{Listening, Request, Response, Server, Upgraded};
use nextloop::server;

const UPGRADE: &str =
    "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";
const CONNECT: &str = "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n";

/// What a handler saw on its upgraded connection.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Every byte read, up to the client's FIN.
    read: Vec<u8>,
    /// `read` returned 0 (the client's FIN).
    eof: bool,
}

/// Echoes everything until the client's FIN, then half-closes ours.
fn echo(conn: &mut Upgraded) -> Seen {
    let mut read = Vec::new();
    let mut buf = [0u8; 4096];
    let eof = loop {
        match conn.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => {
                read.extend_from_slice(&buf[..n]);
                if conn.write_all(&buf[..n]).is_err() {
                    break false;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = conn.shutdown_write();
    Seen { read, eof }
}

/// Push mode: upgrades every request that asks (`101`, `Upgrade: echo`),
/// echoes on the upgraded connection and reports what it saw; answers
/// `200 http` otherwise.
fn push_echo() -> (Listening, mpsc::Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let listening = Server::bind("127.0.0.1:0")
        .unwrap()
        .threads(2)
        .handle(move |req: &mut Request, res: &mut Response| {
            if req.header("upgrade").is_none() && req.method() != "CONNECT" {
                res.header("Content-Type", "text/plain");
                let _ = res.write_all(b"http");
                return;
            }
            if req.method() == "CONNECT" {
                res.set_status(200);
            } else {
                res.set_status(101).header("Upgrade", "echo");
            }
            let mut conn = res.upgrade().expect("the switch");
            let seen = echo(&mut conn);
            let _ = tx.lock().unwrap().send(seen);
        })
        .unwrap();
    (listening, rx)
}

/// The response head's lines (status line first), read up to the blank
/// line and no further.
fn head(c: &mut Client) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(c.reader.read_line(&mut line).unwrap() > 0, "head cut short");
        let line = line.trim_end().to_string();
        if line.is_empty() {
            return lines;
        }
        lines.push(line);
    }
}

fn has(lines: &[String], name: &str) -> bool {
    lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
}

fn read_n(c: &mut Client, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    c.reader.read_exact(&mut buf).unwrap();
    buf
}

/// The client's part of an echo: early bytes in the head's packet come
/// back first, then more, then the client's FIN ends both sides.
fn echo_with_early_bytes(request: &str, status: &str) {
    let (listening, rx) = push_echo();
    let mut c = Client::connect(listening.addr());
    c.send(format!("{request}EARLY"));
    let lines = head(&mut c);
    assert_eq!(lines[0], status);
    assert!(!has(&lines, "content-length"), "{lines:?}");
    assert!(!has(&lines, "transfer-encoding"), "{lines:?}");
    assert_eq!(read_n(&mut c, 5), b"EARLY", "the early bytes first");
    c.send("more bytes");
    assert_eq!(read_n(&mut c, 10), b"more bytes");
    // Our FIN: the handler reads 0, then shuts its side.
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"", "its FIN after ours");
    let seen = rx.recv_timeout(IO_TIMEOUT).expect("the handler reports");
    assert_eq!(
        seen,
        Seen {
            read: b"EARLYmore bytes".to_vec(),
            eof: true
        }
    );
}

// ---------------------------------------------------------------------
// Push mode

#[test]
fn push_an_upgrade_gets_the_early_bytes_first_and_echoes_both_ways() {
    echo_with_early_bytes(UPGRADE, "HTTP/1.1 101 Switching Protocols");
}

#[test]
fn push_a_101_carries_the_upgrade_field_and_connection_upgrade() {
    let (listening, _rx) = push_echo();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    let lines = head(&mut c);
    assert_eq!(lines[0], "HTTP/1.1 101 Switching Protocols");
    assert!(lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("upgrade: echo")));
    assert!(lines
        .iter()
        .any(|l| l.eq_ignore_ascii_case("connection: upgrade")));
}

#[test]
fn push_a_connect_tunnel_gets_the_early_bytes_first() {
    echo_with_early_bytes(CONNECT, "HTTP/1.1 200 OK");
}

#[test]
fn push_the_handler_half_closing_first_still_reads_the_rest() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let listening = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(move |_req: &mut Request, res: &mut Response| {
            res.set_status(101).header("Upgrade", "echo");
            let mut conn = res.upgrade().unwrap();
            conn.write_all(b"bye").unwrap();
            conn.shutdown_write().unwrap();
            let mut rest = Vec::new();
            let got = conn.read_to_end(&mut rest).map(|_| rest);
            let _ = tx.lock().unwrap().send(got.map_err(|e| e.kind()));
        })
        .unwrap();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    head(&mut c);
    assert_eq!(read_n(&mut c, 3), b"bye");
    let mut byte = [0u8; 1];
    assert_eq!(c.reader.read(&mut byte).unwrap(), 0, "the handler's FIN");
    c.send("after your FIN");
    c.stream().shutdown(Shutdown::Write).unwrap();
    let got = rx.recv_timeout(IO_TIMEOUT).expect("the handler reports");
    assert_eq!(got.unwrap(), b"after your FIN");
    // Dropping the `Upgraded` closed the connection.
    assert_eq!(c.read_to_close().unwrap(), b"");
}

#[test]
fn push_a_declined_upgrade_stays_http() {
    let listening = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(|req: &mut Request, res: &mut Response| {
            let _ = write!(res, "no switch for {}", req.path());
        })
        .unwrap();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "no switch for /chat");
    // Still HTTP: the next request is parsed and answered.
    c.send(common::get("/next"));
    let res = c.response();
    assert_eq!(res.body_str(), "no switch for /next");
}

#[test]
fn push_upgrade_without_a_switching_status_or_request_fails_and_http_goes_on() {
    let listening = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(|req: &mut Request, res: &mut Response| {
            // A 200 to an Upgrade request and anything to a plain GET do
            // not switch: refused before anything is sent.
            let err = res.upgrade().expect_err("no switch");
            let _ = write!(res, "{:?} {}", err.kind(), req.path());
        })
        .unwrap();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    assert_eq!(c.response().body_str(), "InvalidInput /chat");
    c.send(common::get("/plain"));
    assert_eq!(c.response().body_str(), "InvalidInput /plain");
}

#[test]
#[should_panic(expected = "response status must be in 200..=999, got 101")]
fn a_101_to_a_request_without_upgrade_panics_like_the_native_one() {
    // Run on the test thread: a pull-mode response to a plain GET.
    let incoming = Server::bind("127.0.0.1:0").unwrap().incoming().unwrap();
    let mut c = Client::connect(incoming.addr());
    c.send(common::get("/"));
    let mut req = incoming.recv().unwrap();
    let mut res = req.take_response().unwrap();
    res.set_status(101);
}

// ---------------------------------------------------------------------
// Pull mode

#[test]
fn pull_an_upgrade_and_a_connect_are_handed_over_on_the_receiving_thread() {
    let incoming = Server::bind("127.0.0.1:0").unwrap().incoming().unwrap();
    let addr = incoming.addr();
    let worker = thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let mut req = incoming.recv().unwrap();
            let mut res = req.take_response().unwrap();
            if req.method() == "CONNECT" {
                res.set_status(200);
            } else {
                res.set_status(101).header("Upgrade", "echo");
            }
            let mut conn = res.upgrade().unwrap();
            seen.push(echo(&mut conn));
        }
        seen
    });
    for request in [UPGRADE, CONNECT] {
        let mut c = Client::connect(addr);
        c.send(format!("{request}early"));
        head(&mut c);
        assert_eq!(read_n(&mut c, 5), b"early");
        c.send("late");
        assert_eq!(read_n(&mut c, 4), b"late");
        c.stream().shutdown(Shutdown::Write).unwrap();
        assert_eq!(c.read_to_close().unwrap(), b"");
    }
    let seen = worker.join().unwrap();
    for s in seen {
        assert_eq!(
            s,
            Seen {
                read: b"earlylate".to_vec(),
                eof: true
            }
        );
    }
}

// ---------------------------------------------------------------------
// A blocking WebSocket library on top

#[test]
fn tungstenite_runs_a_blocking_websocket_server_on_the_upgraded_connection() {
    use tungstenite::protocol::Role;
    use tungstenite::{Message, WebSocket};

    let listening = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(|req: &mut Request, res: &mut Response| {
            let Some(key) = req.header("sec-websocket-key") else {
                res.set_status(426).header("Upgrade", "websocket");
                return;
            };
            let accept = tungstenite::handshake::derive_accept_key(key);
            res.set_status(101)
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Accept", accept);
            let Ok(conn) = res.upgrade() else { return };
            let (stream, early) = conn.into_parts();
            let mut ws = WebSocket::from_partially_read(stream, early, Role::Server, None);
            while let Ok(msg) = ws.read() {
                if msg.is_close() {
                    // tungstenite queued the answer to the close: flush it.
                    let _ = ws.flush();
                    return;
                }
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                    return;
                }
            }
        })
        .unwrap();
    let stream = TcpStream::connect(listening.addr()).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let url = format!("ws://{}/ws", listening.addr());
    let (mut ws, res) = tungstenite::client(url, stream).expect("handshake");
    assert_eq!(res.status(), 101);
    for i in 0..20 {
        ws.send(Message::text(format!("message {i}"))).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(format!("message {i}")));
    }
    ws.send(Message::binary(vec![7u8; 100_000])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![7u8; 100_000]));
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

// ---------------------------------------------------------------------
// Bounds

#[test]
fn a_slow_reader_blocks_the_writer_and_the_io_timeout_frees_it() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let native = server::Server::bind("127.0.0.1:0")
        .unwrap()
        .io_timeout(Duration::from_millis(500));
    let listening = Server::from(native)
        .handle(move |_req: &mut Request, res: &mut Response| {
            res.set_status(101).header("Upgrade", "firehose");
            let mut conn = res.upgrade().unwrap();
            let chunk = vec![b'x'; 64 * 1024];
            let mut written: u64 = 0;
            // Bounded: 1 GiB at most, which a client that reads nothing
            // never takes.
            let end = loop {
                match conn.write(&chunk) {
                    Ok(n) => written += n as u64,
                    Err(e) => break Some(e.kind()),
                }
                if written >= 1 << 30 {
                    break None;
                }
            };
            let _ = tx.lock().unwrap().send((written, end));
        })
        .unwrap();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    head(&mut c);
    // Read nothing more. The writer blocks once the socket buffers are
    // full (nothing is buffered between it and the socket), and the
    // write timeout (the server's io_timeout) ends it.
    let (written, end) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the writer gave up");
    let end = end.expect("the writer was stopped before 1 GiB");
    assert!(
        matches!(end, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "{end:?}"
    );
    assert!(
        written < 64 << 20,
        "{written} bytes taken by a client that reads nothing"
    );
    drop(c);
}

#[test]
fn the_upgraded_connection_has_the_io_timeout_as_read_timeout() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let native = server::Server::bind("127.0.0.1:0")
        .unwrap()
        .io_timeout(Duration::from_millis(300));
    let listening = Server::from(native)
        .handle(move |_req: &mut Request, res: &mut Response| {
            res.set_status(101).header("Upgrade", "quiet");
            let mut conn = res.upgrade().unwrap();
            let timeout = conn.stream().read_timeout().unwrap();
            let mut byte = [0u8; 1];
            let got = conn.read(&mut byte).map_err(|e| e.kind());
            let _ = tx.lock().unwrap().send((timeout, got));
        })
        .unwrap();
    let mut c = Client::connect(listening.addr());
    c.send(UPGRADE);
    head(&mut c);
    let (timeout, got) = rx.recv_timeout(IO_TIMEOUT).expect("the read ended");
    assert_eq!(timeout, Some(Duration::from_millis(300)));
    let kind = got.expect_err("a client that sends nothing");
    assert!(
        matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        "{kind:?}"
    );
    // The handler returned: the connection is closed.
    assert_eq!(c.read_to_close().unwrap(), b"");
}

// ---------------------------------------------------------------------
// TLS: refused before anything is sent

#[cfg(any(feature = "tls", feature = "tls-ring"))]
#[test]
fn over_tls_upgrade_is_unsupported_and_the_handler_answers_instead() {
    use tls_kit::{client_config, pki, TlsClient};

    let (ca, leaf) = pki();
    let native = server::Server::bind("127.0.0.1:0")
        .unwrap()
        .tls(leaf.server_config());
    let listening = Server::from(native)
        .handle(|_req: &mut Request, res: &mut Response| {
            res.set_status(101).header("Upgrade", "echo");
            let err = res.upgrade().expect_err("TLS cannot leave the loop");
            // Nothing was sent: the head is still ours to change.
            assert!(!res.head_sent());
            res.set_status(501);
            let _ = write!(res, "{:?}", err.kind());
        })
        .unwrap();
    let mut c = TlsClient::connect(listening.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(UPGRADE);
    let res = common::read_response(&mut c.reader, false).unwrap();
    assert_eq!(res.status, 501);
    assert_eq!(res.body_str(), "Unsupported");
}
