//! Client upgrades and CONNECT over real TCP on 127.0.0.1: raw mode under
//! the same handler after a `101` (or a `2xx` to CONNECT), against small
//! raw-socket servers written here. The early bytes after the head, the
//! tunnel both ways, half-close in each direction, declined switches
//! staying HTTP, timeouts and `Control` in raw mode, the pool, and the
//! blocking client's `upgrade`.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

use std::io::{BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use client_kit::{get, raw, read_head_lines, signal, until_closed, Raw};
use common::IO_TIMEOUT;
use nextloop::client::{self, Error, Handler};
use nextloop::{hypersync, Control, Decoder, Encoder, Next};

// ---- the handler under test ----

/// What a [`Tunnel`] saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// The response head: status, and whether the connection went raw.
    Head(u16, bool),
    /// Bytes read (raw bytes, or a normal response's body).
    Data(Vec<u8>),
    /// `read` returned `Ok(0)`.
    Eof,
    Error(String),
    /// The handler was dropped.
    Dropped,
}

/// How a [`Tunnel`] behaves once raw.
#[derive(Clone, Default)]
struct Script {
    method: &'static str,
    target: Option<&'static str>,
    /// Adds `Connection: upgrade` and `Upgrade: <this>`.
    upgrade: Option<&'static str>,
    /// Written right after the switch.
    first: &'static [u8],
    /// `Next::end()` from `on_request_writable` once `first` is out
    /// (our half-close), unless `after_eof` is still to go.
    half_close: bool,
    /// Written after the server's FIN, then our side is shut.
    after_eof: &'static [u8],
    /// The timeout of every raw-mode `Next`.
    timeout: Option<Duration>,
    /// After the switch, wait for `Control::ready` (the `Control` goes to
    /// the test through `controls`); `pending` is then written.
    park: bool,
}

/// Bytes the test gives a parked handler before it wakes it.
type Mailbox = Arc<Mutex<Vec<u8>>>;

struct Tunnel {
    script: Script,
    events: mpsc::Sender<Event>,
    /// Bytes still to write, and how far.
    pending: Vec<u8>,
    pos: usize,
    raw: bool,
    eof: bool,
    controls: Option<mpsc::Sender<(Control, Mailbox)>>,
    /// Filled by the test before it wakes a parked handler.
    mailbox: Mailbox,
}

impl Tunnel {
    fn new(script: Script, events: &mpsc::Sender<Event>) -> Tunnel {
        Tunnel {
            script,
            events: events.clone(),
            pending: Vec::new(),
            pos: 0,
            raw: false,
            eof: false,
            controls: None,
            mailbox: Arc::default(),
        }
    }

    fn bound(&self, next: Next) -> Next {
        match self.script.timeout {
            Some(d) => next.timeout(d),
            None => next,
        }
    }

    /// What to ask for in raw mode.
    fn raw_next(&self) -> Next {
        let writing = self.pos < self.pending.len();
        let next = match (writing, self.eof) {
            (true, false) => Next::read_and_write(),
            (true, true) => Next::write(),
            (false, _) => Next::read(),
        };
        self.bound(next)
    }
}

impl Handler for Tunnel {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method(self.script.method);
        if let Some(target) = self.script.target {
            req.set_target(target);
        }
        if let Some(protocol) = self.script.upgrade {
            req.header("Connection", "upgrade")
                .header("Upgrade", protocol);
        }
        if let Some(controls) = &self.controls {
            let _ = controls.send((req.control(), Arc::clone(&self.mailbox)));
        }
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let _ = self.events.send(Event::Head(res.status(), res.upgraded()));
        if !res.upgraded() {
            return Next::read();
        }
        self.raw = true;
        if self.script.park {
            return Next::wait();
        }
        self.pending = self.script.first.to_vec();
        if self.pending.is_empty() && self.script.half_close {
            // Nothing to send: shut our side at the first chance.
            return Next::write();
        }
        self.raw_next()
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        if self.script.park && self.pending.is_empty() {
            self.pending = std::mem::take(&mut *self.mailbox.lock().unwrap());
        }
        while self.pos < self.pending.len() {
            match body.write(&self.pending[self.pos..]) {
                Ok(n) => self.pos += n,
                Err(_) => return self.raw_next(),
            }
        }
        if self.eof || self.script.half_close || self.script.park {
            return Next::end();
        }
        self.raw_next()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 4096];
        for _ in 0..1024 {
            match body.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    let _ = self.events.send(Event::Eof);
                    if !self.raw {
                        return Next::end();
                    }
                    if !self.script.after_eof.is_empty() {
                        self.pending = self.script.after_eof.to_vec();
                        self.pos = 0;
                        return self.raw_next();
                    }
                    return Next::end();
                }
                Ok(n) => {
                    let _ = self.events.send(Event::Data(buf[..n].to_vec()));
                }
                Err(_) => return self.raw_next(),
            }
        }
        self.raw_next()
    }

    fn on_error(&mut self, err: Error) -> Next {
        let _ = self.events.send(Event::Error(err.to_string()));
        Next::end()
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Dropped);
    }
}

/// Events until the handler is dropped (at most [`IO_TIMEOUT`]), with
/// consecutive data joined.
fn events(rx: &mpsc::Receiver<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    let end = Instant::now() + IO_TIMEOUT;
    while let Ok(e) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        match (out.last_mut(), e) {
            (Some(Event::Data(a)), Event::Data(b)) => a.extend_from_slice(&b),
            (_, Event::Dropped) => {
                out.push(Event::Dropped);
                break;
            }
            (_, e) => out.push(e),
        }
    }
    out
}

fn data(s: &str) -> Event {
    Event::Data(s.as_bytes().to_vec())
}

fn upgrade_script() -> Script {
    Script {
        method: "GET",
        upgrade: Some("echo"),
        ..Script::default()
    }
}

fn connect_script() -> Script {
    Script {
        method: "CONNECT",
        target: Some("example.test:443"),
        ..Script::default()
    }
}

/// Runs `script` against `server` on a fresh client; what it saw.
fn run(server: &Raw, script: Script) -> Vec<Event> {
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/chat"), Tunnel::new(script, &tx))
        .unwrap();
    events(&rx)
}

/// What a raw server's thread reports back to the test.
type Report = Arc<Mutex<mpsc::Sender<String>>>;

fn report() -> (Report, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(Mutex::new(tx)), rx)
}

fn send(report: &Report, what: impl Into<String>) {
    let _ = report.lock().unwrap().send(what.into());
}

fn recv(rx: &mpsc::Receiver<String>) -> String {
    rx.recv_timeout(IO_TIMEOUT).expect("the server reported")
}

/// Reads exactly `n` bytes (or what came before the end).
fn read_n(r: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    buf.truncate(got);
    buf
}

/// Reads until the peer's FIN: what came, and whether the FIN did.
fn read_to_fin(r: &mut impl Read) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// The request head's lines, joined with `|`, lower-cased.
fn head_of(r: &mut impl std::io::BufRead) -> String {
    read_head_lines(r)
        .map(|lines| lines.join("|").to_ascii_lowercase())
        .unwrap_or_default()
}

// ---- upgrades ----

#[test]
fn bytes_after_the_101_head_in_the_same_write_come_first_then_the_stream() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        send(&rep, head_of(&mut r));
        // The head and the first bytes of the new protocol in one write.
        w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nEARLY")
            .unwrap();
        let ping = read_n(&mut r, 4);
        send(&rep, String::from_utf8_lossy(&ping));
        w.write_all(b"LATE").unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        until_closed(&mut r);
    });
    let seen = run(
        &server,
        Script {
            first: b"ping",
            ..upgrade_script()
        },
    );
    assert_eq!(
        seen,
        [
            Event::Head(101, true),
            data("EARLYLATE"),
            Event::Eof,
            Event::Dropped
        ]
    );
    let head = recv(&reports);
    assert!(head.starts_with("get /chat http/1.1|"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    // No framing field for an upgrade without a body.
    assert!(
        !head.contains("content-length") && !head.contains("transfer-encoding"),
        "{head}"
    );
    assert_eq!(recv(&reports), "ping");
}

#[test]
fn a_101_to_a_request_without_upgrade_is_malformed() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        let _ = w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nxx");
        until_closed(&mut r);
    });
    let seen = run(
        &server,
        Script {
            method: "GET",
            ..Script::default()
        },
    );
    assert!(
        matches!(&seen[..], [Event::Error(e), Event::Dropped] if e.contains("without Upgrade")),
        "{seen:?}"
    );
}

#[test]
fn a_declined_upgrade_is_a_normal_response_and_the_connection_is_reused() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        for answer in ["no", "second"] {
            if read_head_lines(&mut r).is_none() {
                return;
            }
            let res = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            w.write_all(res.as_bytes()).unwrap();
        }
        until_closed(&mut r);
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(
            &server.url("/chat"),
            Tunnel::new(
                Script {
                    first: b"never sent",
                    ..upgrade_script()
                },
                &tx,
            ),
        )
        .unwrap();
    assert_eq!(
        events(&rx),
        [
            Event::Head(200, false),
            data("no"),
            Event::Eof,
            Event::Dropped
        ]
    );
    assert_eq!(
        get(&client, &server.url("/")),
        Ok((200, b"second".to_vec()))
    );
    assert_eq!(
        server.accepted(),
        1,
        "the declined upgrade's connection was not reused"
    );
}

// ---- CONNECT ----

#[test]
fn connect_tunnels_bytes_both_ways_and_our_half_close_reaches_the_server() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        send(&rep, head_of(&mut r));
        w.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .unwrap();
        // Upper-cases what comes until the client's FIN, then says bye:
        // the client reads on after shutting its side.
        let (got, fin) = read_to_fin(&mut r);
        send(&rep, format!("{} {fin}", String::from_utf8_lossy(&got)));
        w.write_all(&got.to_ascii_uppercase()).unwrap();
        w.write_all(b" BYE").unwrap();
    });
    let seen = run(
        &server,
        Script {
            first: b"hello tunnel",
            half_close: true,
            ..connect_script()
        },
    );
    assert_eq!(
        seen,
        [
            Event::Head(200, true),
            data("HELLO TUNNEL BYE"),
            Event::Eof,
            Event::Dropped
        ]
    );
    let head = recv(&reports);
    assert_eq!(
        head, "connect example.test:443 http/1.1|host: example.test:443",
        "the CONNECT head: authority-form target, its Host, no framing"
    );
    assert_eq!(
        recv(&reports),
        "hello tunnel true",
        "our FIN reached the server"
    );
}

#[test]
fn after_the_servers_half_close_the_client_still_writes() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        w.write_all(b"HTTP/1.1 200 OK\r\n\r\nserver done").unwrap();
        w.shutdown(Shutdown::Write).unwrap();
        let (got, fin) = read_to_fin(&mut r);
        send(&rep, format!("{} {fin}", String::from_utf8_lossy(&got)));
    });
    let seen = run(
        &server,
        Script {
            after_eof: b"client still talking",
            ..connect_script()
        },
    );
    assert_eq!(
        seen,
        [
            Event::Head(200, true),
            data("server done"),
            Event::Eof,
            Event::Dropped
        ]
    );
    assert_eq!(recv(&reports), "client still talking true");
}

#[test]
fn a_407_to_connect_is_a_normal_response() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        let _ = w.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 4\r\n\r\nauth",
        );
        until_closed(&mut r);
    });
    let seen = run(
        &server,
        Script {
            first: b"never sent",
            ..connect_script()
        },
    );
    assert_eq!(
        seen,
        [
            Event::Head(407, false),
            data("auth"),
            Event::Eof,
            Event::Dropped
        ]
    );
}

// ---- timeouts, Control, the pool ----

#[test]
fn a_handler_timeout_in_raw_mode_is_told_and_end_closes_the_connection() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n")
            .unwrap();
        // Silent: only the handler's own timeout ends this.
        let (_, fin) = read_to_fin(&mut r);
        send(&rep, format!("closed {fin}"));
    });
    let started = Instant::now();
    let seen = run(
        &server,
        Script {
            timeout: Some(Duration::from_millis(200)),
            ..upgrade_script()
        },
    );
    assert_eq!(
        seen,
        [
            Event::Head(101, true),
            Event::Error(Error::Timeout.to_string()),
            Event::Dropped
        ]
    );
    assert!(started.elapsed() < IO_TIMEOUT);
    assert_eq!(recv(&reports), "closed true");
}

#[test]
fn the_clients_read_timeout_does_not_cut_an_idle_raw_connection() {
    let server = raw(|stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n")
            .unwrap();
        // Longer than the client's read timeout.
        thread::sleep(Duration::from_millis(600));
        let _ = w.write_all(b"late");
        let _ = w.shutdown(Shutdown::Write);
        until_closed(&mut r);
    });
    let client = client::Client::builder()
        .read_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/"), Tunnel::new(upgrade_script(), &tx))
        .unwrap();
    assert_eq!(
        events(&rx),
        [
            Event::Head(101, true),
            data("late"),
            Event::Eof,
            Event::Dropped
        ]
    );
}

#[test]
fn a_parked_raw_handler_is_woken_by_control_and_writes() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        read_head_lines(&mut r);
        w.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
        let (got, fin) = read_to_fin(&mut r);
        send(&rep, format!("{} {fin}", String::from_utf8_lossy(&got)));
    });
    let client = client::Client::new().unwrap();
    let (tx, rx) = mpsc::channel();
    let (controls, control) = mpsc::channel();
    let mut tunnel = Tunnel::new(
        Script {
            park: true,
            ..connect_script()
        },
        &tx,
    );
    tunnel.controls = Some(controls);
    client.request(&server.url("/"), tunnel).unwrap();
    let (control, mailbox) = control.recv_timeout(IO_TIMEOUT).unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT), Ok(Event::Head(200, true)));
    mailbox
        .lock()
        .unwrap()
        .extend_from_slice(b"from another thread");
    control.ready(Next::write()).unwrap();
    assert_eq!(
        recv(&reports),
        "from another thread true",
        "written, then our side shut"
    );
}

#[test]
fn a_raw_connection_leaves_the_pool_and_its_host_slot() {
    let (close_raw, closing) = signal();
    let server = raw(move |stream, i| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        if i == 0 {
            read_head_lines(&mut r);
            w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n")
                .unwrap();
            // Open until the test says, then our FIN ends the exchange.
            closing.wait();
            return;
        }
        while read_head_lines(&mut r).is_some() {
            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                return;
            }
        }
    });
    let client = client::Client::builder().max_per_host(1).build().unwrap();
    let (tx, rx) = mpsc::channel();
    client
        .request(&server.url("/"), Tunnel::new(upgrade_script(), &tx))
        .unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT), Ok(Event::Head(101, true)));
    // The raw connection is open, yet the host's one place is free.
    assert_eq!(get(&client, &server.url("/")), Ok((200, b"ok".to_vec())));
    assert_eq!(server.accepted(), 2);
    // The server ends the raw exchange; its connection is not pooled.
    close_raw.send(()).unwrap();
    assert_eq!(events(&rx), [Event::Eof, Event::Dropped]);
    assert_eq!(get(&client, &server.url("/")), Ok((200, b"ok".to_vec())));
    assert_eq!(server.accepted(), 2, "the GET connection was reused");
}

// ---- the blocking client ----

#[test]
fn blocking_upgrade_gives_a_read_write_stream_with_the_early_bytes_first() {
    let (rep, reports) = report();
    let server = raw(move |stream, _| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        send(&rep, head_of(&mut r));
        w.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nEARLY")
            .unwrap();
        // Echoes until the client's FIN, then closes.
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => w.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    let client = hypersync::Client::new();
    let (res, upgraded) = client
        .request("GET", &server.url("/chat"))
        .header("Connection", "upgrade")
        .header("Upgrade", "echo")
        .upgrade()
        .unwrap();
    assert_eq!(res.status(), 101);
    let mut conn = upgraded.expect("the server switched");
    conn.write_all(b"echo me").unwrap();
    conn.shutdown_write().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "EARLYecho me");
    let head = recv(&reports);
    assert!(head.contains("upgrade: echo"), "{head}");
}

#[test]
fn blocking_connect_tunnels_and_a_refusal_is_a_response() {
    let server = raw(|stream, i| {
        let mut r = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        let head = head_of(&mut r);
        if i == 0 {
            assert!(head.starts_with("connect 127.0.0.1:9 http/1.1|"), "{head}");
            w.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            let mut buf = [0u8; 4];
            if r.read_exact(&mut buf).is_ok() {
                w.write_all(&buf.to_ascii_uppercase()).unwrap();
            }
            until_closed(&mut r);
        } else {
            w.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\nno",
            )
            .unwrap();
            until_closed(&mut r);
        }
    });
    let client = hypersync::Client::new();
    let (res, tunnel) = client
        .connect(&server.url("/"), "127.0.0.1:9")
        .upgrade()
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut tunnel = tunnel.expect("a tunnel");
    tunnel.write_all(b"abcd").unwrap();
    assert_eq!(read_n(&mut tunnel, 4), b"ABCD");
    drop(tunnel);

    let (mut res, tunnel) = client
        .connect(&server.url("/"), "127.0.0.1:9")
        .upgrade()
        .unwrap();
    assert!(tunnel.is_none());
    assert_eq!(res.status(), 407);
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "no");
}

// ---- over TLS ----

#[cfg(any(feature = "tls", feature = "tls-ring"))]
#[path = "common/tls_kit.rs"]
mod tls_kit;

#[cfg(any(feature = "tls", feature = "tls-ring"))]
mod over_tls {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use tls_kit::{pki, Ca, Leaf};

    /// A rustls server for one connection: reads the request head, answers
    /// `answer` in one record, then runs `then` on the TLS stream.
    fn scripted(
        leaf: &Leaf,
        answer: &'static [u8],
        then: impl FnOnce(&mut rustls::StreamOwned<rustls::ServerConnection, std::net::TcpStream>)
            + Send
            + 'static,
    ) -> std::net::SocketAddr {
        let config = leaf.server_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
            let mut line = String::new();
            while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let s = tls.get_mut();
            s.write_all(answer).unwrap();
            s.flush().unwrap();
            then(s);
        });
        addr
    }

    fn native(ca: &Ca) -> client::Client {
        client::Client::builder()
            .no_system_roots()
            .add_root(ca.der())
            .build()
            .unwrap()
    }

    #[test]
    fn a_tunnel_over_tls_keeps_the_early_bytes_and_half_closes_with_close_notify() {
        let (ca, leaf) = pki();
        let (rep, reports) = report();
        let addr = scripted(&leaf, b"HTTP/1.1 200 OK\r\n\r\nEARLY", move |s| {
            // Our half-close is a close_notify: a clean end here.
            let (got, clean) = read_to_fin(s);
            send(&rep, format!("{} {clean}", String::from_utf8_lossy(&got)));
            let _ = s.write_all(b" BYE");
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
            let _ = s.sock.shutdown(Shutdown::Write);
            until_closed(&mut s.sock);
        });
        let client = native(&ca);
        let (tx, rx) = mpsc::channel();
        let script = Script {
            first: b"hello",
            half_close: true,
            ..connect_script()
        };
        client
            .request(
                &format!("https://localhost:{}/", addr.port()),
                Tunnel::new(script, &tx),
            )
            .unwrap();
        assert_eq!(
            events(&rx),
            [
                Event::Head(200, true),
                data("EARLY BYE"),
                Event::Eof,
                Event::Dropped
            ]
        );
        assert_eq!(recv(&reports), "hello true");
    }

    #[test]
    fn the_blocking_upgrade_over_tls_is_refused_clearly() {
        let (ca, leaf) = pki();
        let addr = scripted(
            &leaf,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n",
            |s| {
                until_closed(&mut s.sock);
            },
        );
        let client = hypersync::Client::from(native(&ca));
        let err = client
            .request("GET", &format!("https://localhost:{}/", addr.port()))
            .header("Connection", "upgrade")
            .header("Upgrade", "echo")
            .upgrade()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
    }
}
