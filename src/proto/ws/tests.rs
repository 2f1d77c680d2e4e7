//! The codec against RFC 6455's examples (§5.7) and malformed input —
//! every close-code path — each case fed whole, split at every byte, and
//! a byte at a time: the verdict must not depend on how bytes arrive.

use super::{CloseCode, Event, Limits, MessageKind, OpCode, Reader, Role, Writer};

/// What a reader made of a stream, independent of how it was split:
/// data pieces joined into whole messages.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    /// A message begun but not ended when the input ran out.
    Partial(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Fail(u16),
}

/// Feeds `bytes` in pieces cut at `cuts`; what the reader saw.
fn feed(role: Role, limits: Limits, bytes: &[u8], cuts: &[usize]) -> Vec<Seen> {
    let mut reader = Reader::new(role, limits);
    let mut seen = Vec::new();
    let mut message: Option<(MessageKind, Vec<u8>)> = None;
    let mut start = 0;
    for end in cuts.iter().copied().chain([bytes.len()]) {
        let mut piece = bytes[start..end].to_vec();
        start = end;
        let mut at = 0;
        while at < piece.len() {
            let step = match reader.read(&mut piece[at..]) {
                Ok(step) => step,
                Err(e) => {
                    // Every later read fails the same way.
                    assert_eq!(reader.read(&mut [0]).unwrap_err(), e);
                    seen.push(Seen::Fail(e.close_code().0));
                    return seen;
                }
            };
            assert!(step.consumed > 0, "no progress");
            at += step.consumed;
            match step.event {
                None => {}
                Some(Event::Data {
                    kind,
                    payload,
                    first,
                    last,
                }) => {
                    assert_eq!(first, message.is_none(), "first flag");
                    let (k, body) = message.get_or_insert((kind, Vec::new()));
                    assert_eq!(*k, kind);
                    body.extend_from_slice(payload);
                    if last {
                        let (k, body) = message.take().unwrap();
                        seen.push(match k {
                            MessageKind::Text => Seen::Text(body),
                            MessageKind::Binary => Seen::Binary(body),
                        });
                    }
                }
                Some(Event::Ping(p)) => seen.push(Seen::Ping(p.to_vec())),
                Some(Event::Pong(p)) => seen.push(Seen::Pong(p.to_vec())),
                Some(Event::Close(c)) => {
                    seen.push(Seen::Close(c.code.map(|c| c.0), c.reason.to_string()))
                }
            }
        }
    }
    if let Some((k, body)) = message {
        seen.push(Seen::Partial(k, body));
    }
    seen
}

/// Checks `bytes` gives `expected` whole, split in two at every byte,
/// and a byte at a time.
fn check(role: Role, limits: Limits, bytes: &[u8], expected: &[Seen]) {
    let whole = feed(role, limits, bytes, &[]);
    assert_eq!(whole, expected, "whole: {bytes:02x?}");
    for cut in 0..=bytes.len() {
        assert_eq!(feed(role, limits, bytes, &[cut]), expected, "cut at {cut}");
    }
    let every: Vec<usize> = (1..bytes.len()).collect();
    assert_eq!(
        feed(role, limits, bytes, &every),
        expected,
        "byte at a time"
    );
}

fn server(bytes: &[u8], expected: &[Seen]) {
    check(Role::Server, Limits::default(), bytes, expected);
}

fn client(bytes: &[u8], expected: &[Seen]) {
    check(Role::Client, Limits::default(), bytes, expected);
}

/// A frame as a client sends it: `b0` (FIN, RSV, opcode), masked with a
/// fixed key.
fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    push_len(&mut out, 0x80, payload.len() as u64);
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A frame as a server sends it.
fn unmasked(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    push_len(&mut out, 0, payload.len() as u64);
    out.extend_from_slice(payload);
    out
}

fn push_len(out: &mut Vec<u8>, mask_bit: u8, len: u64) {
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

fn cat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

fn text(s: &str) -> Seen {
    Seen::Text(s.as_bytes().to_vec())
}

const FIN: u8 = 0x80;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

mod rfc_6455_examples {
    use super::*;

    #[test]
    fn a_single_frame_unmasked_text_message() {
        client(b"\x81\x05\x48\x65\x6c\x6c\x6f", &[text("Hello")]);
    }

    #[test]
    fn a_single_frame_masked_text_message() {
        server(
            b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
            &[text("Hello")],
        );
    }

    #[test]
    fn a_fragmented_unmasked_text_message() {
        client(b"\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f", &[text("Hello")]);
    }

    #[test]
    fn unmasked_ping_and_masked_pong() {
        client(
            b"\x89\x05\x48\x65\x6c\x6c\x6f",
            &[Seen::Ping(b"Hello".to_vec())],
        );
        server(
            b"\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
            &[Seen::Pong(b"Hello".to_vec())],
        );
    }

    #[test]
    fn binary_messages_of_256_bytes_and_64_kib() {
        let small: Vec<u8> = (0..=255).collect();
        let mut wire = b"\x82\x7e\x01\x00".to_vec();
        wire.extend_from_slice(&small);
        client(&wire, &[Seen::Binary(small)]);
        // 64 KiB: whole and at a few cuts (every byte would be slow).
        let big: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let mut wire = b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00".to_vec();
        wire.extend_from_slice(&big);
        for cuts in [&[][..], &[1], &[9], &[10], &[11, 40000], &[5, 65545]] {
            assert_eq!(
                feed(Role::Client, Limits::default(), &wire, cuts),
                [Seen::Binary(big.clone())]
            );
        }
    }
}

mod valid_streams {
    use super::*;

    #[test]
    fn control_frames_between_fragments() {
        let wire = cat(&[
            masked(TEXT, b"fragment1 "),
            masked(FIN | PING, b"ping payload"),
            masked(0, b"fragment2 "),
            masked(FIN | PONG, b""),
            masked(FIN, b"fragment3"),
        ]);
        server(
            &wire,
            &[
                Seen::Ping(b"ping payload".to_vec()),
                Seen::Pong(vec![]),
                text("fragment1 fragment2 fragment3"),
            ],
        );
    }

    #[test]
    fn a_code_point_split_between_frames() {
        let euro = "€".as_bytes(); // e2 82 ac
        let wire = cat(&[
            masked(TEXT, &[b'a', euro[0]]),
            masked(0, &euro[1..2]),
            masked(FIN, &[euro[2], b'b']),
        ]);
        server(&wire, &[text("a€b")]);
    }

    #[test]
    fn empty_messages_and_empty_fragments() {
        let wire = cat(&[
            masked(FIN | TEXT, b""),
            masked(FIN | BINARY, b""),
            masked(BINARY, b""),
            masked(0, b""),
            masked(0, b"x"),
            masked(0, b""),
            masked(FIN, b""),
            masked(FIN | PING, b""),
        ]);
        server(
            &wire,
            &[
                text(""),
                Seen::Binary(vec![]),
                Seen::Binary(b"x".to_vec()),
                Seen::Ping(vec![]),
            ],
        );
    }

    #[test]
    fn control_frames_of_125_bytes() {
        let p = [b'p'; 125];
        server(&masked(FIN | PING, &p), &[Seen::Ping(p.to_vec())]);
        let mut close = vec![0x03, 0xe8];
        close.extend_from_slice(&[b'r'; 123]);
        server(
            &masked(FIN | CLOSE, &close),
            &[Seen::Close(Some(1000), "r".repeat(123))],
        );
    }

    #[test]
    fn close_frames_and_whatever_follows_them_ignored() {
        server(
            &masked(FIN | CLOSE, b""),
            &[Seen::Close(None, String::new())],
        );
        let wire = cat(&[
            masked(FIN | TEXT, b"bye"),
            masked(FIN | CLOSE, b"\x0f\xa0done \xc3\xa9"),
            b"\xff\xff garbage after close".to_vec(),
        ]);
        server(
            &wire,
            &[text("bye"), Seen::Close(Some(4000), "done é".into())],
        );
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            server(
                &masked(FIN | CLOSE, &code.to_be_bytes()),
                &[Seen::Close(Some(code), String::new())],
            );
        }
    }

    #[test]
    fn a_close_in_the_middle_of_a_fragmented_message() {
        let wire = cat(&[masked(TEXT, b"half"), masked(FIN | CLOSE, b"\x03\xe9")]);
        server(
            &wire,
            &[
                Seen::Close(Some(1001), String::new()),
                Seen::Partial(MessageKind::Text, b"half".to_vec()),
            ],
        );
    }

    #[test]
    fn frames_at_the_limits_pass() {
        let limits = Limits {
            max_frame: 10,
            max_message: 20,
        };
        let wire = cat(&[masked(BINARY, &[1; 10]), masked(FIN, &[2; 10])]);
        check(
            Role::Server,
            limits,
            &wire,
            &[Seen::Binary([[1; 10], [2; 10]].concat())],
        );
    }
}

mod protocol_errors_1002 {
    use super::*;

    fn fails(role: Role, wire: &[u8]) {
        check(role, Limits::default(), wire, &[Seen::Fail(1002)]);
    }

    #[test]
    fn masking_the_wrong_way() {
        fails(Role::Server, &unmasked(FIN | TEXT, b"hi"));
        fails(Role::Client, &masked(FIN | TEXT, b"hi"));
        fails(Role::Server, &unmasked(FIN | PING, b""));
    }

    #[test]
    fn reserved_bits_and_opcodes() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            fails(Role::Server, &masked(FIN | rsv | TEXT, b"x"));
        }
        for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            fails(Role::Server, &masked(FIN | op, b""));
        }
    }

    #[test]
    fn control_frames_fragmented_or_long() {
        fails(Role::Server, &masked(PING, b"x"));
        fails(Role::Server, &masked(CLOSE, b""));
        fails(Role::Server, &masked(FIN | PING, &[0; 126]));
        fails(Role::Server, &masked(FIN | PONG, &[0; 200]));
    }

    #[test]
    fn fragmentation_out_of_order() {
        fails(Role::Server, &masked(FIN, b"no message"));
        fails(Role::Server, &masked(0, b"no message"));
        let wire = cat(&[masked(TEXT, b"a"), masked(FIN | TEXT, b"b")]);
        fails(Role::Server, &wire);
        let wire = cat(&[masked(BINARY, b"a"), masked(FIN | BINARY, b"b")]);
        fails(Role::Server, &wire);
        // Once a message ended, a continuation is out of place again.
        let wire = cat(&[masked(FIN | TEXT, b"ok"), masked(FIN, b"late")]);
        check(
            Role::Server,
            Limits::default(),
            &wire,
            &[text("ok"), Seen::Fail(1002)],
        );
    }

    #[test]
    fn lengths_not_in_their_shortest_form_or_too_long() {
        fails(Role::Server, b"\x82\xfe\x00\x05\x00\x00\x00\x00hello");
        fails(Role::Server, b"\x82\xff\x00\x00\x00\x00\x00\x00\x01\x00");
        fails(Role::Server, b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00");
        fails(Role::Client, b"\x82\x7e\x00\x7d");
    }

    #[test]
    fn close_payloads() {
        fails(Role::Server, &masked(FIN | CLOSE, b"\x03"));
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            fails(Role::Server, &masked(FIN | CLOSE, &code.to_be_bytes()));
        }
    }
}

mod invalid_data_1007 {
    use super::*;

    fn fails(wire: &[u8], before: &[Seen]) {
        let mut expected = before.to_vec();
        expected.push(Seen::Fail(1007));
        server(wire, &expected);
    }

    #[test]
    fn text_that_is_not_utf8() {
        fails(
            &masked(
                FIN | TEXT,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
            &[],
        );
        fails(&masked(FIN | TEXT, b"\xff"), &[]);
        fails(&masked(FIN | TEXT, b"\xc0\xaf"), &[]);
    }

    #[test]
    fn text_that_goes_wrong_in_a_later_frame() {
        let wire = cat(&[masked(TEXT, b"ok \xe2\x82"), masked(FIN, b"\x28")]);
        fails(&wire, &[]);
        let wire = cat(&[
            masked(FIN | TEXT, b"fine"),
            masked(TEXT, b"\xf4"),
            masked(FIN, b"\x90\x80\x80"),
        ]);
        fails(&wire, &[text("fine")]);
    }

    #[test]
    fn text_that_ends_inside_a_code_point() {
        fails(&masked(FIN | TEXT, b"cut \xe2\x82"), &[]);
        let wire = cat(&[masked(TEXT, b"cut \xf0\x9f"), masked(FIN, b"\x98")]);
        fails(&wire, &[]);
    }

    #[test]
    fn binary_is_not_checked() {
        server(
            &masked(FIN | BINARY, b"\xff\xfe"),
            &[Seen::Binary(b"\xff\xfe".to_vec())],
        );
    }

    #[test]
    fn a_close_reason_that_is_not_utf8() {
        fails(&masked(FIN | CLOSE, b"\x03\xe8\xff"), &[]);
    }
}

mod too_big_1009 {
    use super::*;

    #[test]
    fn a_frame_over_the_frame_limit_fails_at_its_header() {
        let limits = Limits {
            max_frame: 10,
            max_message: 100,
        };
        check(
            Role::Server,
            limits,
            &masked(FIN | BINARY, &[0; 11]),
            &[Seen::Fail(1009)],
        );
        // The header alone is enough: no payload needs to arrive.
        assert_eq!(
            feed(
                Role::Server,
                limits,
                b"\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00\x01\x02\x03\x04",
                &[]
            ),
            [Seen::Fail(1009)]
        );
    }

    #[test]
    fn a_message_over_the_message_limit_fails_at_the_frame_that_crosses_it() {
        let limits = Limits {
            max_frame: 10,
            max_message: 15,
        };
        let wire = cat(&[
            masked(FIN | TEXT, &[b'a'; 10]),
            masked(TEXT, &[b'b'; 10]),
            masked(FIN, &[b'c'; 6]),
        ]);
        check(
            Role::Server,
            limits,
            &wire,
            &[Seen::Text(vec![b'a'; 10]), Seen::Fail(1009)],
        );
    }

    #[test]
    fn control_frames_do_not_count_against_the_message() {
        let limits = Limits {
            max_frame: 10,
            max_message: 10,
        };
        let wire = cat(&[
            masked(BINARY, &[1; 5]),
            masked(FIN | PING, &[0; 100]),
            masked(FIN, &[2; 5]),
        ]);
        check(
            Role::Server,
            limits,
            &wire,
            &[
                Seen::Ping(vec![0; 100]),
                Seen::Binary([[1; 5], [2; 5]].concat()),
            ],
        );
    }
}

mod writer {
    use super::*;

    #[test]
    fn what_a_client_writes_a_server_reads_and_back() {
        let payloads: [&[u8]; 4] = [b"", b"Hello", &[7; 300], &[9; 70000]];
        for (role, peer) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut w = Writer::new(role);
            let mut wire = Vec::new();
            for p in payloads {
                w.encode(&mut wire, OpCode::Binary, true, p);
            }
            w.encode(&mut wire, OpCode::Text, false, "é".as_bytes());
            w.encode(&mut wire, OpCode::Ping, true, b"p");
            w.encode(&mut wire, OpCode::Continuation, true, "!".as_bytes());
            w.encode_close(&mut wire, CloseCode::GOING_AWAY, "bye");
            let mut expected: Vec<Seen> =
                payloads.iter().map(|p| Seen::Binary(p.to_vec())).collect();
            expected.push(Seen::Ping(b"p".to_vec()));
            expected.push(text("é!"));
            expected.push(Seen::Close(Some(1001), "bye".into()));
            assert_eq!(feed(peer, Limits::default(), &wire, &[]), expected);
            assert_eq!(
                feed(peer, Limits::default(), &wire, &[3, 100, 70010]),
                expected
            );
        }
    }

    #[test]
    fn client_frames_get_a_fresh_key_each() {
        let mut w = Writer::new(Role::Client);
        let a = w.header(OpCode::Text, true, 1).mask.unwrap();
        let b = w.header(OpCode::Text, true, 1).mask.unwrap();
        assert_ne!(a, b);
        assert_eq!(
            Writer::new(Role::Server).header(OpCode::Text, true, 1).mask,
            None
        );
    }

    #[test]
    fn encode_into_a_slice_that_is_too_small_writes_nothing() {
        let mut w = Writer::new(Role::Server);
        let mut out = [0u8; 6];
        assert_eq!(w.encode_into(&mut out, OpCode::Text, true, b"Hello"), None);
        let mut out = [0u8; 7];
        assert_eq!(
            w.encode_into(&mut out, OpCode::Text, true, b"Hello"),
            Some(7)
        );
        assert_eq!(&out, b"\x81\x05Hello");
    }
}
