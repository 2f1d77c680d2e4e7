//! The WebSocket codec allocates nothing per frame or message: a server
//! reading client frames (text, binary, fragmented, with pings between
//! fragments, split across reads anywhere) and encoding the echo into a
//! reused buffer, and a client encoding masked frames, make 0 heap
//! allocations after warm-up; the reader and writer hold no heap at all.

#[path = "common/counting.rs"]
mod counting;

use counting::{allocations, count_marked_only, live_bytes, server_thread};
use nextloop::ws::{CloseCode, Event, Limits, OpCode, Reader, Role, Writer};

/// One round of client traffic: a small text, a small binary, a text in
/// three fragments with a ping between them, and a 1 KiB binary.
fn client_round(writer: &mut Writer, out: &mut Vec<u8>) {
    writer.encode(out, OpCode::Text, true, b"hello, world");
    writer.encode(out, OpCode::Binary, true, &[0xAB; 40]);
    writer.encode(out, OpCode::Text, false, "frag é ".as_bytes());
    writer.encode(out, OpCode::Ping, true, b"are you there");
    writer.encode(out, OpCode::Continuation, false, &[0xC3]); // half of é
    writer.encode(out, OpCode::Continuation, true, &[0xA9, b'!']);
    writer.encode(out, OpCode::Binary, true, &[7; 1024]);
}

/// Feeds `input` to `reader` in reads of `chunk` bytes (as a socket
/// might deliver them) and encodes the echo into `out`; the messages
/// completed.
fn echo(
    reader: &mut Reader,
    writer: &mut Writer,
    input: &mut [u8],
    chunk: usize,
    out: &mut Vec<u8>,
) -> usize {
    let mut messages = 0;
    for piece in input.chunks_mut(chunk) {
        let mut at = 0;
        while at < piece.len() {
            let step = reader.read(&mut piece[at..]).expect("valid traffic");
            at += step.consumed;
            match step.event {
                Some(Event::Data {
                    kind,
                    payload,
                    first,
                    last,
                }) => {
                    let opcode = if first {
                        kind.opcode()
                    } else {
                        OpCode::Continuation
                    };
                    writer.encode(out, opcode, last, payload);
                    messages += usize::from(last);
                }
                Some(Event::Ping(p)) => writer.encode(out, OpCode::Pong, true, p),
                Some(Event::Close(_)) => panic!("no close sent"),
                Some(Event::Pong(_)) | None => {}
            }
        }
    }
    messages
}

#[test]
fn reading_and_echoing_messages_makes_no_allocation() {
    count_marked_only();
    server_thread();
    let held = live_bytes();
    let mut reader = Reader::new(Role::Server, Limits::default());
    let mut server = Writer::new(Role::Server);
    let mut client = Writer::new(Role::Client);
    assert_eq!(live_bytes() - held, 0, "reader and writer hold no heap");
    assert!(
        std::mem::size_of::<Reader>() <= 256,
        "Reader is {} bytes",
        std::mem::size_of::<Reader>()
    );

    let mut wire = Vec::with_capacity(64 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    // Warm up: buffers reach their size.
    for _ in 0..4 {
        client_round(&mut client, &mut wire);
    }
    let pristine = wire.clone();
    let rounds = 2_000;
    let before = allocations();
    let mut messages = 0;
    for i in 0..rounds {
        wire.clear();
        out.clear();
        for _ in 0..4 {
            client_round(&mut client, &mut wire);
        }
        // Reads of every size from 1 byte to 97, cutting frames anywhere.
        messages += echo(&mut reader, &mut server, &mut wire, 1 + i % 97, &mut out);
    }
    let allocs = allocations() - before;
    assert_eq!(messages, rounds * 16);
    assert_eq!(allocs, 0, "{allocs} allocations for {messages} messages");

    // What came out is a valid server stream: a client reads it back.
    let mut check = Reader::new(Role::Client, Limits::default());
    let mut back = Vec::new();
    let mut wire = pristine;
    let mut server = Writer::new(Role::Server);
    let mut reader = Reader::new(Role::Server, Limits::default());
    assert_eq!(echo(&mut reader, &mut server, &mut wire, 5, &mut back), 16);
    server.encode_close(&mut back, CloseCode::NORMAL, "");
    let mut at = 0;
    let mut pongs = 0;
    while at < back.len() {
        let step = check.read(&mut back[at..]).expect("valid echo");
        at += step.consumed;
        pongs += usize::from(matches!(step.event, Some(Event::Pong(b"are you there"))));
    }
    assert_eq!(pongs, 4);
    assert!(check.is_closed());
}
