//! `examples/websocket.rs` over TCP, raw bytes: the handshake (101 with
//! the right accept value and no framing field; 426 and 400 refusals),
//! the echo (text, binary, fragmented with control frames between the
//! fragments, a frame split across packets, bytes behind the handshake
//! in its packet), ping/pong, the close handshake, and every failure
//! closed with its code: 1002, 1007, 1009.

mod common;

#[path = "../examples/websocket.rs"]
#[allow(dead_code)]
mod websocket;

use std::io::Read;
use std::time::Duration;

use common::{serve, Client};
use nextloop::server::Listening;
use nextloop::ws::{accept_value, Event, Limits, OpCode, Reader, Role, Writer};
use websocket::{WsEcho, MAX_MESSAGE};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn upgrade(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

fn server() -> Listening {
    serve(|_| WsEcho::new())
}

/// A WebSocket connection after the handshake, with `early` sent in the
/// same packet as the request.
struct Ws {
    c: Client,
    reader: Reader,
    writer: Writer,
    buf: Vec<u8>,
    /// The message being read (control frames may come between its
    /// fragments).
    message: Vec<u8>,
}

impl Ws {
    fn open(server: &Listening, early: &[u8]) -> Ws {
        let mut c = Client::connect(server.addr());
        c.stream().set_nodelay(true).unwrap();
        c.send([upgrade("/chat").as_bytes(), early].concat());
        let res = c.response();
        assert_eq!(res.status, 101, "{res:?}");
        assert_eq!(res.header("upgrade"), Some("websocket"));
        assert!(res
            .header("connection")
            .unwrap()
            .eq_ignore_ascii_case("upgrade"));
        assert_eq!(
            res.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(res.header("content-length"), None);
        assert_eq!(res.header("transfer-encoding"), None);
        assert_eq!(res.header("sec-websocket-extensions"), None);
        Ws {
            c,
            reader: Reader::new(Role::Client, Limits::default()),
            writer: Writer::new(Role::Client),
            buf: Vec::new(),
            message: Vec::new(),
        }
    }

    fn send(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        let mut out = Vec::new();
        self.writer.encode(&mut out, opcode, fin, payload);
        self.c.send(out);
    }

    /// Reads the next whole message or control frame the server sent.
    fn next(&mut self) -> Got {
        loop {
            let message = &mut self.message;
            let mut at = 0;
            let mut got = None;
            while at < self.buf.len() && got.is_none() {
                let step = self
                    .reader
                    .read(&mut self.buf[at..])
                    .expect("a valid server stream");
                at += step.consumed;
                got = match step.event {
                    Some(Event::Data {
                        kind,
                        payload,
                        last,
                        ..
                    }) => {
                        message.extend_from_slice(payload);
                        last.then(|| match kind {
                            nextloop::ws::MessageKind::Text => {
                                Got::Text(String::from_utf8(std::mem::take(message)).unwrap())
                            }
                            nextloop::ws::MessageKind::Binary => {
                                Got::Binary(std::mem::take(message))
                            }
                        })
                    }
                    Some(Event::Ping(p)) => Some(Got::Ping(p.to_vec())),
                    Some(Event::Pong(p)) => Some(Got::Pong(p.to_vec())),
                    Some(Event::Close(c)) => {
                        Some(Got::Close(c.code.map(|c| c.0), c.reason.to_string()))
                    }
                    None => None,
                };
            }
            self.buf.drain(..at);
            if let Some(got) = got {
                return got;
            }
            let mut chunk = [0u8; 65536];
            let n = self.c.reader.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed before the next frame");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The server closes the TCP connection (after its close frame).
    fn closed(&mut self) -> bool {
        self.buf.is_empty() && self.c.is_closed()
    }
}

#[derive(Debug, PartialEq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

#[test]
fn plain_http_gets_426_with_the_upgrade_to_ask_for() {
    let server = server();
    let mut c = Client::connect(server.addr());
    c.send(common::get("/"));
    let res = c.response();
    assert_eq!(res.status, 426);
    assert_eq!(res.header("upgrade"), Some("websocket"));
    assert_eq!(res.header("sec-websocket-version"), Some("13"));
    // Still HTTP: the next request is answered too.
    c.send(common::get("/again"));
    assert_eq!(c.response().status, 426);
}

#[test]
fn a_bad_handshake_is_refused_and_stays_http() {
    let server = server();
    let cases = [
        (upgrade("/").replace("Version: 13", "Version: 8"), 426),
        (upgrade("/").replace(KEY, "c2hvcnQ="), 400),
        (
            upgrade("/").replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
        ),
        (upgrade("/").replace("GET", "POST"), 400),
    ];
    for (request, status) in cases {
        let mut c = Client::connect(server.addr());
        c.send(&request);
        let res = c.response();
        assert_eq!(res.status, status, "{request}");
        if status == 426 {
            assert_eq!(res.header("sec-websocket-version"), Some("13"));
        }
    }
}

#[test]
fn the_accept_value_is_computed_for_each_key() {
    let server = server();
    let key = nextloop::ws::ClientKey::new();
    let mut c = Client::connect(server.addr());
    c.send(upgrade("/").replace(KEY, key.as_str()));
    let res = c.response();
    assert_eq!(res.status, 101);
    let want = accept_value(key.as_str().as_bytes());
    assert_eq!(res.header("sec-websocket-accept").unwrap().as_bytes(), want);
}

#[test]
fn text_binary_and_fragmented_messages_are_echoed() {
    let server = server();
    let mut ws = Ws::open(&server, &[]);
    ws.send(OpCode::Text, true, "héllo".as_bytes());
    assert_eq!(ws.next(), Got::Text("héllo".into()));
    ws.send(OpCode::Binary, true, &[0, 1, 2, 255]);
    assert_eq!(ws.next(), Got::Binary(vec![0, 1, 2, 255]));
    ws.send(OpCode::Text, true, b"");
    assert_eq!(ws.next(), Got::Text(String::new()));
    // Fragmented, a code point split between fragments, a ping between.
    ws.send(OpCode::Text, false, b"frag \xe2\x82");
    ws.send(OpCode::Ping, true, b"between");
    ws.send(OpCode::Continuation, false, b"\xac ");
    ws.send(OpCode::Continuation, true, b"end");
    assert_eq!(ws.next(), Got::Pong(b"between".to_vec()));
    assert_eq!(ws.next(), Got::Text("frag € end".into()));
    // Large: echoed piece by piece through the 1 KiB echo buffer.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    ws.send(OpCode::Binary, true, &big);
    assert_eq!(ws.next(), Got::Binary(big));
}

#[test]
fn frames_behind_the_handshake_in_its_packet_and_split_at_every_byte() {
    let server = server();
    let mut w = Writer::new(Role::Client);
    let mut frame = Vec::new();
    w.encode(&mut frame, OpCode::Text, true, b"early");
    let mut ws = Ws::open(&server, &frame);
    assert_eq!(ws.next(), Got::Text("early".into()));
    // One message sent a byte per packet.
    let mut frame = Vec::new();
    w.encode(&mut frame, OpCode::Text, true, b"slowly, byte by byte");
    for b in &frame {
        ws.c.send([*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ws.next(), Got::Text("slowly, byte by byte".into()));
}

#[test]
fn ping_is_answered_with_pong_and_pong_is_ignored() {
    let server = server();
    let mut ws = Ws::open(&server, &[]);
    ws.send(OpCode::Pong, true, b"unsolicited");
    ws.send(OpCode::Ping, true, &[7; 125]);
    assert_eq!(ws.next(), Got::Pong(vec![7; 125]));
    ws.send(OpCode::Ping, true, b"");
    assert_eq!(ws.next(), Got::Pong(vec![]));
}

#[test]
fn a_close_is_echoed_with_its_code_then_the_server_closes() {
    for (code, payload, echoed) in [
        (Some(1000), &b"\x03\xe8bye"[..], Some(1000)),
        (Some(4000), b"\x0f\xa0", Some(4000)),
        (None, b"", None),
    ] {
        let server = server();
        let mut ws = Ws::open(&server, &[]);
        ws.send(OpCode::Close, true, payload);
        assert_eq!(ws.next(), Got::Close(echoed, String::new()), "{code:?}");
        assert!(ws.closed());
    }
}

/// Sends `frames` raw (already masked, or not) and expects a close with
/// `code`, then the end of the connection.
fn fails_with(frames: &[u8], code: u16) {
    let server = server();
    let mut ws = Ws::open(&server, &[]);
    ws.c.send(frames);
    match ws.next() {
        Got::Close(Some(c), _) => assert_eq!(c, code, "{frames:02x?}"),
        other => panic!("{other:?} where a close with {code} was expected"),
    }
    // The client answers the close; the server closes the connection.
    ws.send(OpCode::Close, true, &code.to_be_bytes());
    assert!(ws.closed());
}

fn masked(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Writer::new(Role::Client).encode(&mut out, opcode, fin, payload);
    out
}

#[test]
fn protocol_errors_are_closed_with_1002() {
    // Unmasked client frame.
    fails_with(b"\x81\x02hi", 1002);
    // Reserved bit, reserved opcode, fragmented ping, long ping.
    fails_with(&[0xC1, 0x80, 0, 0, 0, 0], 1002);
    fails_with(&[0x83, 0x80, 0, 0, 0, 0], 1002);
    fails_with(&[0x09, 0x80, 0, 0, 0, 0], 1002);
    fails_with(&[0x89, 0xFE, 0x00, 0x7E, 0, 0, 0, 0], 1002);
    // A continuation with no message; a new message inside one.
    fails_with(&masked(OpCode::Continuation, true, b"x"), 1002);
    fails_with(
        &[
            masked(OpCode::Text, false, b"a"),
            masked(OpCode::Text, true, b"b"),
        ]
        .concat(),
        1002,
    );
    // A close code that may not be sent.
    fails_with(&masked(OpCode::Close, true, &1005u16.to_be_bytes()), 1002);
}

#[test]
fn text_that_is_not_utf8_is_closed_with_1007() {
    fails_with(&masked(OpCode::Text, true, b"\xff"), 1007);
    // Split across fragments, then invalid.
    fails_with(
        &[
            masked(OpCode::Text, false, b"ok \xe2\x82"),
            masked(OpCode::Continuation, true, b"("),
        ]
        .concat(),
        1007,
    );
}

#[test]
fn a_message_over_1_mib_is_closed_with_1009_before_its_payload() {
    // The header alone declares it: nothing more need be sent.
    let len = MAX_MESSAGE + 1;
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    fails_with(&header, 1009);
    // Fragments that add up to more than the limit.
    let half = vec![0u8; (MAX_MESSAGE / 2) as usize + 1];
    fails_with(
        &[
            masked(OpCode::Binary, false, &half),
            masked(OpCode::Continuation, true, &half),
        ]
        .concat(),
        1009,
    );
}

#[test]
fn a_message_of_exactly_1_mib_is_echoed() {
    let server = server();
    let mut ws = Ws::open(&server, &[]);
    let data = vec![b'a'; MAX_MESSAGE as usize];
    ws.send(OpCode::Text, true, &data);
    assert_eq!(ws.next(), Got::Text(String::from_utf8(data).unwrap()));
}

#[test]
fn a_client_that_vanishes_costs_only_its_connection() {
    let server = server();
    let mut gone = Ws::open(&server, &[]);
    gone.send(OpCode::Text, false, b"half a mess");
    drop(gone);
    let mut ws = Ws::open(&server, &[]);
    ws.send(OpCode::Text, true, b"still here");
    assert_eq!(ws.next(), Got::Text("still here".into()));
}
