//! Raw mode on the server, over TCP: a `101` to an `Upgrade` request or a
//! `2xx` to `CONNECT` goes out with no framing field, and the exchange
//! goes on with raw bytes under the same handler — the bytes that came
//! behind the head first, each direction closed on its own, timeouts and
//! `Control` as in HTTP. A declined upgrade stays HTTP.

mod common;
#[cfg(any(feature = "tls", feature = "tls-ring"))]
#[path = "common/tls_kit.rs"]
mod tls_kit;

use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{serve, Client, IO_TIMEOUT};
use nextloop::server::{Handler, Request, Response};
use nextloop::{Control, Decoder, Detached, Encoder, Error, Next};

/// What a raw-mode handler saw, reported as it happens.
#[derive(Debug, PartialEq)]
enum Seen {
    Bytes(Vec<u8>),
    Eof,
    Done,
}

/// Answers `101` (with a `Content-Length` that must not go out) to an
/// `Upgrade`, `200` to `CONNECT`, `200 no` to anything else; in raw mode
/// echoes what it reads, upper-cased, and half-closes after the client's
/// FIN. `greeting`: written first, then our side is shut (the client may
/// still send).
struct RawEcho {
    switch: bool,
    buf: Vec<u8>,
    eof: bool,
    greeting: Option<&'static [u8]>,
    /// Our side is shut (after the greeting): nothing more is echoed.
    shut: bool,
    seen: mpsc::Sender<Seen>,
}

impl RawEcho {
    fn factory(
        greeting: Option<&'static [u8]>,
    ) -> (
        impl Fn(Control) -> RawEcho + Clone + Send,
        mpsc::Receiver<Seen>,
    ) {
        let (tx, rx) = mpsc::channel();
        let factory = move |_: Control| RawEcho {
            switch: false,
            buf: Vec::new(),
            eof: false,
            greeting,
            shut: false,
            seen: tx.clone(),
        };
        (factory, rx)
    }

    fn next(&self) -> Next {
        if self.greeting.is_some() {
            return Next::write();
        }
        match (self.eof, self.buf.is_empty()) {
            (true, true) => Next::end(),
            (false, true) => Next::read(),
            _ => Next::read_and_write(),
        }
    }
}

impl Handler for RawEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.switch = req.method() == "CONNECT" || req.header("upgrade").is_some();
        Next::write()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut chunk = [0u8; 4096];
        loop {
            match body.read(&mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    let _ = self.seen.send(Seen::Eof);
                    break;
                }
                Ok(n) => {
                    let _ = self.seen.send(Seen::Bytes(chunk[..n].to_vec()));
                    if !self.shut {
                        self.buf
                            .extend(chunk[..n].iter().map(u8::to_ascii_uppercase));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("raw read failed: {e}"),
            }
        }
        self.next()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if !self.switch {
            res.body(b"no");
            return Next::end();
        }
        if res.switches() {
            // Already 2xx for CONNECT.
        } else {
            res.set_status(101);
        }
        res.header("Upgrade", "shout")
            .header("X-Raw", "1")
            .set_content_length(5);
        assert!(res.switches());
        self.next()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if let Some(greeting) = self.greeting.take() {
            body.write_all(greeting).unwrap();
            self.shut = true;
            // Our side is done; reading goes on.
            return Next::end();
        }
        match body.write(&self.buf) {
            Ok(n) => {
                self.buf.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("raw write failed: {e}"),
        }
        self.next()
    }

    fn on_error(&mut self, err: Error) -> Next {
        panic!("unexpected error in raw mode: {err:?}");
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        if self.switch {
            let _ = self.seen.send(Seen::Done);
        }
    }
}

/// The head lines of the response on `c`, up to the empty line; the
/// reader keeps what follows.
fn head(c: &mut Client) -> Vec<String> {
    head_of(&mut c.reader)
}

fn head_of(reader: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("head line");
        assert!(!line.is_empty(), "closed inside the head: {lines:?}");
        if line == "\r\n" {
            return lines;
        }
        lines.push(line.trim_end().to_owned());
    }
}

fn has(lines: &[String], name: &str) -> bool {
    let name = format!("{}:", name.to_ascii_lowercase());
    lines
        .iter()
        .any(|l| l.to_ascii_lowercase().starts_with(&name))
}

fn read_n(c: &mut Client, n: usize) -> String {
    let mut buf = vec![0; n];
    c.reader.read_exact(&mut buf).expect("raw bytes");
    String::from_utf8(buf).unwrap()
}

/// Every report until the handler is dropped (bounded by IO_TIMEOUT).
fn reports(rx: &mpsc::Receiver<Seen>) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        let seen = rx.recv_timeout(IO_TIMEOUT).expect("the handler reports");
        let done = seen == Seen::Done;
        out.push(seen);
        if done {
            return out;
        }
    }
}

fn bytes_of(seen: &[Seen]) -> Vec<u8> {
    seen.iter()
        .flat_map(|s| match s {
            Seen::Bytes(b) => b.clone(),
            _ => Vec::new(),
        })
        .collect()
}

const UPGRADE: &str =
    "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: shout\r\nConnection: upgrade\r\n\r\n";
const CONNECT: &str = "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n";

/// The whole life of an upgraded exchange: the 101 has no framing field
/// though the handler set a length, the bytes sent in the same packet as
/// the head (and a request pipelined behind it) are raw bytes echoed, the
/// client's FIN reads as the end, and our side closes after it.
fn switch_keeps_early_bytes(request: &str, status: u16) {
    let (factory, rx) = RawEcho::factory(None);
    let server = serve(factory);
    let mut c = Client::connect(server.addr());
    let pipelined = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    c.send(format!("{request}early {pipelined}"));
    let lines = head(&mut c);
    assert_eq!(
        lines[0],
        format!(
            "HTTP/1.1 {status} {}",
            if status == 101 {
                "Switching Protocols"
            } else {
                "OK"
            }
        )
    );
    assert!(!has(&lines, "content-length"), "{lines:?}");
    assert!(!has(&lines, "transfer-encoding"), "{lines:?}");
    assert!(has(&lines, "x-raw"), "{lines:?}");
    if status == 101 {
        assert!(
            lines.iter().any(|l| l == "Connection: upgrade"),
            "{lines:?}"
        );
        assert!(lines.iter().any(|l| l == "Upgrade: shout"), "{lines:?}");
    } else {
        assert!(!has(&lines, "connection"), "{lines:?}");
    }
    let echoed = format!("early {pipelined}").to_ascii_uppercase();
    assert_eq!(read_n(&mut c, echoed.len()), echoed);
    c.send("later");
    assert_eq!(read_n(&mut c, 5), "LATER");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"", "closed after the FIN");
    let seen = reports(&rx);
    assert_eq!(
        bytes_of(&seen),
        format!("early {pipelined}later").as_bytes()
    );
    assert_eq!(&seen[seen.len() - 2..], [Seen::Eof, Seen::Done]);
}

#[test]
fn an_upgrade_keeps_the_bytes_behind_the_head_and_sends_no_framing() {
    switch_keeps_early_bytes(UPGRADE, 101);
}

#[test]
fn a_connect_keeps_the_bytes_behind_the_head_and_sends_no_framing() {
    switch_keeps_early_bytes(CONNECT, 200);
}

/// A CONNECT whose client waits for the 200 before it sends a byte.
#[test]
fn a_connect_without_early_bytes_relays_what_comes_after_the_200() {
    let (factory, rx) = RawEcho::factory(None);
    let server = serve(factory);
    let mut c = Client::connect(server.addr());
    c.send(CONNECT);
    let lines = head(&mut c);
    assert_eq!(lines[0], "HTTP/1.1 200 OK");
    assert!(!has(&lines, "content-length") && !has(&lines, "transfer-encoding"));
    for word in ["one", "two", "three"] {
        c.send(word);
        assert_eq!(read_n(&mut c, word.len()), word.to_ascii_uppercase());
    }
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"");
    assert_eq!(bytes_of(&reports(&rx)), b"onetwothree");
}

/// The client half-closes first: it still gets everything owed after its
/// FIN (the echo of its last bytes), then our FIN.
#[test]
fn the_client_half_closing_first_still_gets_the_rest() {
    let (factory, rx) = RawEcho::factory(None);
    let server = serve(factory);
    let mut c = Client::connect(server.addr());
    c.send(UPGRADE);
    head(&mut c);
    c.send("last words");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"LAST WORDS");
    let seen = reports(&rx);
    assert_eq!(&seen[seen.len() - 2..], [Seen::Eof, Seen::Done]);
}

/// `Next::end()` shuts our side only: the client reads our FIN, and what
/// it sends after that still reaches the handler, up to its own FIN.
#[test]
fn next_end_half_closes_our_side_and_reading_goes_on() {
    let (factory, rx) = RawEcho::factory(Some(b"bye"));
    let server = serve(factory);
    let mut c = Client::connect(server.addr());
    c.send(UPGRADE);
    head(&mut c);
    assert_eq!(read_n(&mut c, 3), "bye");
    let mut byte = [0u8; 1];
    assert_eq!(c.reader.read(&mut byte).unwrap(), 0, "our FIN after bye");
    c.send("still talking");
    // The handler reads it although our side is shut.
    let mut got = Vec::new();
    while got.len() < b"still talking".len() {
        match rx.recv_timeout(IO_TIMEOUT).expect("read after our FIN") {
            Seen::Bytes(b) => got.extend(b),
            other => panic!("{other:?} before the bytes"),
        }
    }
    assert_eq!(got, b"still talking");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), Seen::Eof);
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), Seen::Done);
}

/// A handler that does not switch answers normally: framing as always,
/// and the request behind it is served as HTTP.
#[test]
fn a_declined_upgrade_stays_http() {
    let server = serve(|_: Control| Declines);
    let mut c = Client::connect(server.addr());
    c.send(format!("{UPGRADE}GET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("8"));
    assert_eq!(res.body_str(), "declined");
    let after = c.response();
    assert_eq!((after.status, after.body_str()), (200, "declined"));
}

struct Declines;

impl Handler for Declines {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        assert!(!res.switches());
        res.body(b"declined");
        Next::end()
    }
}

/// `101` without an `Upgrade` in the request, and other 1xx, are still
/// refused: the handler panics and the client gets a 500.
#[test]
fn a_101_without_an_upgrade_request_is_refused() {
    let server = serve(|_: Control| Sets(101));
    let mut c = Client::connect(server.addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().status, 500);
    let server = serve(|_: Control| Sets(102));
    let mut c = Client::connect(server.addr());
    c.send(UPGRADE);
    assert_eq!(c.response().status, 500);
    // An upgrade request with a body is not switched either.
    let server = serve(|_: Control| Sets(101));
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: a\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(c.response().status, 500);
}

struct Sets(u16);

impl Handler for Sets {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(self.0);
        Next::end()
    }
}

/// After the 101 the handler hands the connection over: the bytes that
/// came with the head are in the `Detached`.
#[test]
fn a_handover_after_the_101_keeps_the_early_bytes() {
    let (tx, rx) = mpsc::channel();
    let server = serve(move |_: Control| HandsOver(tx.clone()));
    let mut c = Client::connect(server.addr());
    c.send(format!("{UPGRADE}EARLY"));
    let lines = head(&mut c);
    assert_eq!(lines[0], "HTTP/1.1 101 Switching Protocols");
    let early = rx.recv_timeout(IO_TIMEOUT).expect("on_remove ran");
    assert_eq!(early, b"EARLY");
    assert_eq!(read_n(&mut c, 5), "EARLY", "the new owner echoes them");
}

struct HandsOver(mpsc::Sender<Vec<u8>>);

impl Handler for HandsOver {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.set_status(101).header("Upgrade", "x");
        Next::write()
    }

    fn on_response_writable(&mut self, _body: &mut Encoder<'_>) -> Next {
        Next::remove()
    }

    fn on_remove(self, conn: Detached) {
        let mut conn = conn;
        let early = conn.read_buf().to_vec();
        let mut buf = vec![0; early.len()];
        conn.read_exact(&mut buf).unwrap();
        conn.stream().set_nonblocking(false).unwrap();
        conn.write_all(&buf).unwrap();
        let _ = self.0.send(early);
    }
}

/// Raw mode with `Control` and a `Next` timeout: a wake-up from another
/// thread gets the write callback, a read timeout arrives as
/// `on_error(Timeout)`, and the handler goes on from there.
#[test]
fn raw_mode_keeps_timeouts_and_control() {
    let server = serve(|ctl: Control| Timed {
        ctl: Some(ctl),
        out: None,
    });
    let mut c = Client::connect(server.addr());
    c.send(CONNECT);
    head(&mut c);
    let started = Instant::now();
    assert_eq!(read_n(&mut c, 5), "woken");
    assert_eq!(read_n(&mut c, 7), "timeout");
    assert!(started.elapsed() < IO_TIMEOUT);
    // Our side is shut; the handler ends at the client's FIN.
    let mut byte = [0u8; 1];
    assert_eq!(c.reader.read(&mut byte).unwrap(), 0);
    c.stream().shutdown(Shutdown::Write).unwrap();
}

struct Timed {
    ctl: Option<Control>,
    out: Option<&'static [u8]>,
}

impl Handler for Timed {
    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0; 16];
        match body.read(&mut buf) {
            Ok(0) => Next::end(),
            _ => Next::read(),
        }
    }

    fn on_response(&mut self, _res: &mut Response<'_>) -> Next {
        let ctl = self.ctl.take().unwrap();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            ctl.ready(Next::write()).unwrap();
        });
        self.out = Some(b"woken");
        Next::wait()
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let out = self
            .out
            .take()
            .expect("called only with something to write");
        body.write_all(out).unwrap();
        if out == b"woken" {
            Next::read().timeout(Duration::from_millis(50))
        } else {
            Next::end()
        }
    }

    fn on_error(&mut self, err: Error) -> Next {
        assert!(matches!(err, Error::Timeout), "{err:?}");
        self.out = Some(b"timeout");
        Next::write()
    }
}

/// Raw mode over TLS: the early bytes come through the TLS layer, and
/// each half-close is a `close_notify` (then the TCP shutdown).
#[cfg(any(feature = "tls", feature = "tls-ring"))]
mod tls {
    use super::*;
    use tls_kit::{client_config, pki, TlsClient};

    fn tls_server(
        greeting: Option<&'static [u8]>,
    ) -> (nextloop::server::Listening, mpsc::Receiver<Seen>, TlsClient) {
        let (ca, leaf) = pki();
        let config = leaf.server_config();
        let (factory, rx) = RawEcho::factory(greeting);
        let server = common::serve_with(move |s| s.tls(config), factory);
        let c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
        (server, rx, c)
    }

    #[test]
    fn an_upgrade_over_tls_echoes_and_ends_with_close_notify() {
        let (_server, rx, mut c) = tls_server(None);
        c.send(format!("{UPGRADE}early"));
        let lines = head_of(&mut c.reader);
        assert_eq!(lines[0], "HTTP/1.1 101 Switching Protocols");
        assert!(!has(&lines, "content-length"), "{lines:?}");
        let mut buf = [0u8; 5];
        c.reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"EARLY");
        c.send("more");
        let mut buf = [0u8; 4];
        c.reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"MORE");
        // Our half-close: close_notify, then the TCP FIN.
        c.conn().send_close_notify();
        c.stream().flush().unwrap();
        c.stream().sock.shutdown(Shutdown::Write).unwrap();
        assert_eq!(c.read_to_close().expect("a clean end (close_notify)"), b"");
        let seen = reports(&rx);
        assert_eq!(bytes_of(&seen), b"earlymore");
        assert_eq!(&seen[seen.len() - 2..], [Seen::Eof, Seen::Done]);
    }

    #[test]
    fn next_end_over_tls_sends_close_notify_and_reading_goes_on() {
        let (_server, rx, mut c) = tls_server(Some(b"bye"));
        c.send(UPGRADE);
        head_of(&mut c.reader);
        let mut buf = [0u8; 3];
        c.reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"bye");
        let mut byte = [0u8; 1];
        assert_eq!(c.reader.read(&mut byte).expect("close_notify"), 0);
        c.send("after");
        let mut got = Vec::new();
        while got.len() < 5 {
            match rx
                .recv_timeout(IO_TIMEOUT)
                .expect("read after our close_notify")
            {
                Seen::Bytes(b) => got.extend(b),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got, b"after");
        c.conn().send_close_notify();
        c.stream().flush().unwrap();
        assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), Seen::Eof);
        assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), Seen::Done);
    }
}
