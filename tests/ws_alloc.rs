//! The WebSocket echo's budgets over TCP, counted by a
//! `#[global_allocator]` on the server's loop thread only: 0 heap
//! allocations per message in steady state (small text and binary
//! messages, one at a time and 16 in flight), and an idle WebSocket
//! connection (handshake done, a message echoed, nothing in flight)
//! holding at most 2 KiB of heap.

mod common;
#[path = "common/counting.rs"]
mod counting;

#[path = "../examples/websocket.rs"]
#[allow(dead_code)]
mod websocket;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;

use common::{serve, IO_TIMEOUT};
use counting::{allocations, count_marked_only, live_bytes, server_thread};
use nextloop::server::HandlerFactory;
use nextloop::ws::{Event, Limits, OpCode, Reader, Role, Writer};
use nextloop::Control;
use websocket::WsEcho;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The echo handler, on a loop thread marked as the one to count.
fn counted() -> impl HandlerFactory<Output = WsEcho> + Clone {
    count_marked_only();
    move |_: Control| {
        server_thread();
        WsEcho::new()
    }
}

const UPGRADE: &[u8] = b"GET /bench HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// A connection past the handshake.
fn open(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(UPGRADE).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed during the handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// `batch` (masked client frames) is sent `rounds` times; each time the
/// answer is read back and must be `answer`, message for message (the
/// echo may fragment a message differently when a read cuts it).
fn exchange(s: &mut TcpStream, batch: &[u8], answer: &[(OpCode, &[u8])], rounds: usize) {
    let mut reader = Reader::new(Role::Client, Limits::default());
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..rounds {
        s.write_all(batch).unwrap();
        let mut expected = answer.iter();
        let mut message = Vec::new();
        let mut want = expected.next();
        while want.is_some() {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed");
            let mut at = 0;
            while at < n {
                let step = reader.read(&mut buf[at..n]).expect("a valid echo");
                at += step.consumed;
                let got = match step.event {
                    Some(Event::Data {
                        kind,
                        payload,
                        first,
                        last,
                    }) => {
                        if first {
                            message.clear();
                        }
                        message.extend_from_slice(payload);
                        last.then_some((kind.opcode(), &message[..]))
                    }
                    Some(Event::Pong(p)) => Some((OpCode::Pong, p)),
                    Some(other) => panic!("{other:?} in the echo"),
                    None => None,
                };
                if let Some((op, payload)) = got {
                    let &(want_op, want_payload) = want.expect("more than was sent");
                    assert_eq!((op, payload), (want_op, want_payload));
                    want = expected.next();
                }
            }
        }
    }
}

/// Client frames for `messages`.
fn frames(messages: &[(OpCode, &[u8])]) -> Vec<u8> {
    let mut client = Writer::new(Role::Client);
    let mut batch = Vec::new();
    for (op, payload) in messages {
        client.encode(&mut batch, *op, true, payload);
    }
    batch
}

fn assert_zero_allocations(messages: &[(OpCode, &[u8])], rounds: usize) {
    let server = serve(counted());
    let mut s = open(server.addr());
    let batch = frames(messages);
    exchange(&mut s, &batch, messages, 200);
    let before = allocations();
    exchange(&mut s, &batch, messages, rounds);
    let allocs = allocations() - before;
    drop(s);
    server.shutdown();
    server.join().unwrap();
    let n = rounds * messages.len();
    assert_eq!(
        allocs, 0,
        "server allocated {allocs} times over {n} messages"
    );
}

#[test]
fn small_text_messages_one_at_a_time_allocate_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_zero_allocations(&[(OpCode::Text, b"Hello, World!")], 5_000);
}

#[test]
fn small_binary_messages_one_at_a_time_allocate_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_zero_allocations(&[(OpCode::Binary, &[0xAB; 64])], 5_000);
}

#[test]
fn sixteen_messages_in_flight_with_pings_allocate_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut messages: Vec<(OpCode, &[u8])> = Vec::new();
    for i in 0..16 {
        messages.push(if i % 2 == 0 {
            (OpCode::Text, b"a text message")
        } else {
            (OpCode::Binary, &[7; 100])
        });
    }
    messages.push((OpCode::Ping, b"ping"));
    let server = serve(counted());
    let mut s = open(server.addr());
    let batch = frames(&messages);
    // The ping's answer is a pong.
    let answer: Vec<(OpCode, &[u8])> = messages
        .iter()
        .map(|&(op, p)| {
            if op == OpCode::Ping {
                (OpCode::Pong, p)
            } else {
                (op, p)
            }
        })
        .collect();
    exchange(&mut s, &batch, &answer, 100);
    let before = allocations();
    exchange(&mut s, &batch, &answer, 500);
    let allocs = allocations() - before;
    drop(s);
    server.shutdown();
    server.join().unwrap();
    assert_eq!(
        allocs,
        0,
        "server allocated {allocs} times over {} messages",
        500 * messages.len()
    );
}

#[test]
fn an_idle_websocket_connection_holds_at_most_2_kib() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const CONNS: usize = 500;
    let server = serve(counted());
    let hello: &[(OpCode, &[u8])] = &[(OpCode::Text, b"Hello, World!")];
    let batch = frames(hello);
    // A warm connection: the loop's one-time allocations are done.
    let mut first = open(server.addr());
    exchange(&mut first, &batch, hello, 10);
    let before = live_bytes();
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| open(server.addr())).collect();
    for s in &mut conns {
        exchange(s, &batch, hello, 1);
    }
    // Every echo has been read: each connection is idle, waiting.
    exchange(&mut first, &batch, hello, 1);
    let per_conn = (live_bytes() - before) / CONNS as i64;
    drop(conns);
    drop(first);
    server.shutdown();
    server.join().unwrap();
    println!("heap per idle WebSocket connection: {per_conn} bytes");
    assert!(
        per_conn <= 2048,
        "{per_conn} bytes of heap per idle WebSocket connection"
    );
}
