//! `examples/websocket.rs` against two other WebSocket implementations
//! over TCP: tungstenite (Rust, a dev-dependency) and Python's
//! `websockets` (installed by `.ci/run`; skipped with a notice where it
//! is missing). Echo of text, binary and fragmented messages, ping/pong,
//! close codes both ways, and a message over the limit closed with 1009.

mod common;

#[path = "../examples/websocket.rs"]
#[allow(dead_code)]
mod websocket;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{serve, IO_TIMEOUT};
use nextloop::server::Listening;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::{Message, WebSocket};
use websocket::{WsEcho, MAX_MESSAGE};

fn server() -> Listening {
    serve(|_| WsEcho::new())
}

fn connect(server: &Listening) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let url = format!("ws://{}/any/path", server.addr());
    let (ws, res) = tungstenite::client(url, stream).expect("handshake");
    assert_eq!(res.status(), 101);
    ws
}

#[test]
fn tungstenite_text_binary_and_fragmented_messages_are_echoed() {
    let server = server();
    let mut ws = connect(&server);
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
    // Fragmented, with a ping between the fragments.
    ws.send(Message::Frame(Frame::message(
        "frag ",
        OpCode::Data(Data::Text),
        false,
    )))
    .unwrap();
    ws.send(Message::Ping(b"mid"[..].into())).unwrap();
    ws.send(Message::Frame(Frame::message(
        "ment",
        OpCode::Data(Data::Continue),
        false,
    )))
    .unwrap();
    ws.send(Message::Frame(Frame::message(
        "ed",
        OpCode::Data(Data::Continue),
        true,
    )))
    .unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"mid"[..].into()));
    assert_eq!(ws.read().unwrap(), Message::text("frag mented"));
    let big: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(big));
}

#[test]
fn tungstenite_many_messages_in_flight_come_back_in_order() {
    let server = server();
    let mut ws = connect(&server);
    for i in 0..2000 {
        ws.write(Message::text(format!("message {i}"))).unwrap();
    }
    ws.flush().unwrap();
    for i in 0..2000 {
        assert_eq!(ws.read().unwrap(), Message::text(format!("message {i}")));
    }
}

#[test]
fn tungstenite_ping_and_close_codes() {
    for code in [CloseCode::Normal, CloseCode::Away, CloseCode::Library(4000)] {
        let server = server();
        let mut ws = connect(&server);
        ws.send(Message::Ping(b"are you there"[..].into())).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Message::Pong(b"are you there"[..].into())
        );
        ws.close(Some(CloseFrame {
            code,
            reason: "bye".into(),
        }))
        .unwrap();
        match ws.read() {
            Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, code),
            other => panic!("{other:?} where the echoed close was expected"),
        }
        // Then the connection ends cleanly.
        match ws.read() {
            Err(tungstenite::Error::ConnectionClosed) => {}
            other => panic!("{other:?} where the end was expected"),
        }
    }
}

#[test]
fn tungstenite_gets_1009_for_a_message_over_the_limit() {
    let server = server();
    let mut ws = connect(&server);
    ws.send(Message::binary(vec![0u8; MAX_MESSAGE as usize + 1]))
        .unwrap();
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Size),
        other => panic!("{other:?} where a close with 1009 was expected"),
    }
}

/// The Python side: each check raises on failure; prints "ok" at the end.
const PYTHON: &str = r#"
import asyncio, sys
import websockets
from websockets.exceptions import ConnectionClosedError

async def main(url):
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01\xff")
        assert await ws.recv() == b"\x00\x01\xff"
        await ws.send(["frag", "men", "ted"])  # one message in three frames
        assert await ws.recv() == "fragmented"
        big = bytes(range(256)) * 2000
        await ws.send(big)
        assert await ws.recv() == big
        pong = await ws.ping(b"ping!")
        await asyncio.wait_for(pong, 10)
        await ws.close(4001, "done")
        assert ws.close_code == 4001, ws.close_code
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(b"x" * (1024 * 1024 + 1))
        try:
            await ws.recv()
            raise AssertionError("no close for an oversized message")
        except ConnectionClosedError as e:
            assert e.rcvd.code == 1009, e.rcvd
    print("ok")

asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
"#;

#[test]
fn python_websockets_interop() {
    let has = Command::new("python3")
        .args(["-c", "import websockets"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        println!("SKIPPED python_websockets_interop: python3 with `websockets` not found (.ci/run installs it)");
        return;
    }
    let server = server();
    let mut child = Command::new("python3")
        .args(["-c", PYTHON, &format!("ws://{}/", server.addr())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the Python client did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "stdout: {stdout}\nstderr: {stderr}"
    );
}
