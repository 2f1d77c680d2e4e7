//! Header blocks (§4.3, §6.2, §6.10): CONTINUATION, the budgets on a
//! block while it is read and decoded, the HPACK table size in force.

use super::support::*;
use crate::proto::h2::frame::{flag, kind};
use crate::proto::h2::{ErrorCode, HeadKind, Settings};

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "https"),
    (":authority", "example.test"),
    (":path", "/"),
];

#[test]
fn a_block_over_continuations_decodes_whole_at_any_split() {
    let mut peer = Peer::new();
    let mut fields = GET.to_vec();
    fields.push(("x-long", "0123456789abcdef0123456789abcdef"));
    let b = peer.block(&fields);
    let (x, y) = (b.len() / 3, 2 * b.len() / 3);
    let input = [
        frame(kind::HEADERS, flag::END_STREAM, 1, &b[..x]),
        frame(kind::CONTINUATION, 0, 1, &b[x..y]),
        frame(kind::CONTINUATION, flag::END_HEADERS, 1, &b[y..]),
    ]
    .concat();
    for split in 0..input.len() {
        let mut e = Engine::server();
        let mut evs = e.feed(&input[..split]).unwrap();
        evs.extend(e.feed(&input[split..]).unwrap());
        assert_eq!(evs.len(), 1, "{split}");
        let Ev::Head {
            kind: HeadKind::Request,
            fields,
            end_stream: true,
            ..
        } = &evs[0]
        else {
            panic!()
        };
        assert_eq!(fields[0].1, "0123456789abcdef0123456789abcdef");
    }
}

#[test]
fn a_continuation_flood_ends_before_it_is_buffered() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let b = peer.block(&GET);
    let mut input = frame(kind::HEADERS, 0, 1, &b);
    for _ in 0..10 {
        input.extend(frame(kind::CONTINUATION, 0, 1, &[]));
    }
    assert_eq!(e.conn_error(&input), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn a_block_over_the_budget_ends_at_the_frame_header_that_passes_it() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let b = peer.block(&GET);
    let mut input = frame(kind::HEADERS, 0, 1, &b);
    // Only the header of a 16 KiB CONTINUATION: its payload never comes.
    input.extend_from_slice(&frame(kind::CONTINUATION, 0, 1, &[0; 16_384])[..9]);
    assert_eq!(e.conn_error(&input), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn a_header_list_too_large_is_answered_431_and_the_connection_goes_on() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let big = "a".repeat(1000);
    let mut fields = GET.to_vec();
    // The peer indexes it once and refers to it 19 times: a small block
    // that decodes to 20 KiB.
    for _ in 0..20 {
        fields.push(("x-big", &big));
    }
    let input = peer.headers(1, &fields, false);
    assert!(input.len() < 2000);
    assert!(e.feed(&input).unwrap().is_empty());
    let f = e.frames();
    assert_eq!(
        (f[0].kind, f[0].id, f[0].flags & flag::END_STREAM),
        (kind::HEADERS, 1, flag::END_STREAM)
    );
    assert_eq!(
        peer.decode(&f[0].payload),
        [(":status".to_string(), "431".to_string())]
    );
    assert_eq!(
        (f[1].kind, f[1].code()),
        (kind::RST_STREAM, ErrorCode::NO_ERROR)
    );
    assert_eq!(e.conn.streams_held(), 0);
    assert_eq!(e.feed(&peer.headers(3, &GET, true)).unwrap().len(), 1);
}

#[test]
fn one_field_larger_than_the_list_budget_is_enhance_your_calm() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let big = "a".repeat(20_000);
    let mut fields = GET.to_vec();
    fields.push(("x-big", &big));
    let b = peer.block(&fields);
    assert!(b.len() < 16_000, "Huffman: {}", b.len());
    let input = frame(kind::HEADERS, flag::END_HEADERS | flag::END_STREAM, 1, &b);
    assert_eq!(e.conn_error(&input), ErrorCode::ENHANCE_YOUR_CALM);
}

#[test]
fn the_peer_may_fill_4096_until_it_acknowledges_our_smaller_table() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let v = "x".repeat(2500);
    let mut fields = GET.to_vec();
    fields.push(("x-fill", &v));
    assert_eq!(e.feed(&peer.headers(1, &fields, true)).unwrap().len(), 1);
    let before = e.conn.heap_bytes();
    assert!(before > 4096, "{before}");
    // The ack: our 1,024 is in force; the table's memory is cut down.
    assert_eq!(e.feed(&settings_ack()).unwrap(), [Ev::SettingsAcked]);
    assert!(
        e.conn.heap_bytes() < 1300 + 4 * 40,
        "{}",
        e.conn.heap_bytes()
    );
    // A block that does not start with the size update owed is refused.
    let mut e2 = Engine::server();
    let mut peer2 = Peer::new();
    e2.feed(&peer2.headers(1, &fields, true)).unwrap();
    e2.feed(&settings_ack()).unwrap();
    assert_eq!(
        e2.conn_error(&peer2.headers(3, &GET, true)),
        ErrorCode::COMPRESSION_ERROR
    );
    // The peer that heeds it goes on.
    peer.enc.set_peer_limit(1024);
    assert_eq!(e.feed(&peer.headers(3, &GET, true)).unwrap().len(), 1);
}

#[test]
fn a_table_size_update_above_ours_is_a_compression_error() {
    let mut e = Engine::server();
    e.feed(&settings_ack()).unwrap();
    // 0x3f e1 1f: size update to 4096 > 1024.
    let input = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        1,
        &[0x3f, 0xe1, 0x1f],
    );
    assert_eq!(e.conn_error(&input), ErrorCode::COMPRESSION_ERROR);
}

#[test]
fn a_refused_streams_block_still_updates_the_table() {
    let mut e = Engine::server_with(Settings {
        max_concurrent_streams: 1,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    e.feed(&peer.post(1, &[])).unwrap();
    let mut fields = GET.to_vec();
    fields.push(("x-once", "indexed-here"));
    assert_eq!(
        e.rst_of(&peer.headers(3, &fields, true), 3),
        ErrorCode::REFUSED_STREAM
    );
    e.conn.stream_done(1, &mut e.out);
    e.frames();
    let evs = e.feed(&peer.headers(5, &fields, true)).unwrap();
    let Ev::Head { fields, .. } = &evs[0] else {
        panic!()
    };
    assert_eq!(fields[0].1, "indexed-here");
}
