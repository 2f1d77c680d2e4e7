//! Connection errors, case by case (RFC 9113 §4–6): each frame that
//! breaks a connection-wide rule ends in GOAWAY with its code.

use super::support::*;
use crate::proto::h2::frame::{flag, kind};
use crate::proto::h2::ErrorCode;

const PROTOCOL: ErrorCode = ErrorCode::PROTOCOL_ERROR;
const FRAME_SIZE: ErrorCode = ErrorCode::FRAME_SIZE_ERROR;
const FLOW: ErrorCode = ErrorCode::FLOW_CONTROL_ERROR;

/// `case!(name, |peer| bytes, code)`: on a fresh server (stream 1 open,
/// its request body still due), `bytes` end the connection with `code`.
macro_rules! case {
    ($name:ident, $bytes:expr, $code:expr) => {
        #[test]
        fn $name() {
            let mut e = Engine::server();
            let mut peer = Peer::new();
            let evs = e.feed(&peer.post(1, &[])).unwrap();
            assert_eq!(evs.len(), 1);
            let f: fn(&mut Peer) -> Vec<u8> = $bytes;
            let bytes = f(&mut peer);
            assert_eq!(e.conn_error(&bytes), $code);
            // Nothing more is read.
            assert!(e.feed(&ping([0; 8])).is_err());
        }
    };
}

case!(data_on_stream_0, |_| data(0, b"x", false), PROTOCOL);
case!(headers_on_stream_0, |p| p.get(0, "/"), PROTOCOL);
case!(headers_on_an_even_stream, |p| p.get(2, "/"), PROTOCOL);
case!(
    headers_on_a_lower_stream_id,
    |p| [p.get(5, "/"), p.get(3, "/")].concat(),
    PROTOCOL
);
case!(
    a_frame_over_max_frame_size,
    |_| data(1, &[0; 16_385], false),
    FRAME_SIZE
);
case!(
    an_unknown_frame_over_max_frame_size,
    |_| frame(0x42, 0, 0, &[0; 16_385]),
    FRAME_SIZE
);
case!(
    settings_on_a_stream,
    |_| frame(kind::SETTINGS, 0, 1, &[]),
    PROTOCOL
);
case!(
    settings_not_a_multiple_of_6,
    |_| frame(kind::SETTINGS, 0, 0, &[0; 5]),
    FRAME_SIZE
);
case!(
    settings_ack_with_a_payload,
    |_| frame(kind::SETTINGS, flag::ACK, 0, &[0; 6]),
    FRAME_SIZE
);
case!(enable_push_2, |_| settings(&[(0x2, 2)]), PROTOCOL);
case!(
    initial_window_size_over_2_31_minus_1,
    |_| settings(&[(0x4, 1 << 31)]),
    FLOW
);
case!(
    max_frame_size_below_2_14,
    |_| settings(&[(0x5, 16_383)]),
    PROTOCOL
);
case!(
    max_frame_size_over_2_24_minus_1,
    |_| settings(&[(0x5, 1 << 24)]),
    PROTOCOL
);
case!(
    ping_of_7_octets,
    |_| frame(kind::PING, 0, 0, &[0; 7]),
    FRAME_SIZE
);
case!(
    ping_on_a_stream,
    |_| frame(kind::PING, 0, 1, &[0; 8]),
    PROTOCOL
);
case!(
    goaway_on_a_stream,
    |_| frame(kind::GOAWAY, 0, 1, &[0; 8]),
    PROTOCOL
);
case!(
    goaway_of_7_octets,
    |_| frame(kind::GOAWAY, 0, 0, &[0; 7]),
    FRAME_SIZE
);
case!(
    window_update_of_3_octets,
    |_| frame(kind::WINDOW_UPDATE, 0, 0, &[0; 3]),
    FRAME_SIZE
);
case!(
    window_update_of_0_on_the_connection,
    |_| window_update(0, 0),
    PROTOCOL
);
case!(
    connection_window_over_2_31_minus_1,
    |_| window_update(0, (1 << 31) - 1),
    FLOW
);
case!(
    window_update_on_an_idle_stream,
    |_| window_update(3, 1),
    PROTOCOL
);
case!(
    rst_stream_of_3_octets,
    |_| frame(kind::RST_STREAM, 0, 1, &[0; 3]),
    FRAME_SIZE
);
case!(
    rst_stream_on_stream_0,
    |_| rst(0, ErrorCode::CANCEL),
    PROTOCOL
);
case!(
    rst_stream_on_an_idle_stream,
    |_| rst(3, ErrorCode::CANCEL),
    PROTOCOL
);
case!(
    priority_on_stream_0,
    |_| frame(kind::PRIORITY, 0, 0, &[0, 0, 0, 1, 16]),
    PROTOCOL
);
case!(
    push_promise_from_a_client,
    |_| frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &[0, 0, 0, 2]),
    PROTOCOL
);
case!(
    continuation_without_headers,
    |_| frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]),
    PROTOCOL
);
case!(data_on_an_idle_stream, |_| data(3, b"x", false), PROTOCOL);
case!(
    padding_as_long_as_the_payload,
    |_| frame(kind::DATA, flag::PADDED, 1, &[4, 0, 0, 0]),
    PROTOCOL
);
case!(
    a_header_block_interrupted_by_data,
    |p| {
        let b = p.block(&[(":method", "GET"), (":scheme", "https"), (":path", "/")]);
        [
            frame(kind::HEADERS, flag::END_STREAM, 3, &b),
            data(1, b"x", false),
        ]
        .concat()
    },
    PROTOCOL
);
case!(
    a_header_block_interrupted_by_an_unknown_frame,
    |p| {
        let b = p.block(&[(":method", "GET"), (":scheme", "https"), (":path", "/")]);
        [
            frame(kind::HEADERS, flag::END_STREAM, 3, &b),
            frame(0x42, 0, 0, b""),
        ]
        .concat()
    },
    PROTOCOL
);
case!(
    continuation_on_another_stream,
    |p| {
        let b = p.block(&[(":method", "GET"), (":scheme", "https"), (":path", "/")]);
        [
            frame(kind::HEADERS, flag::END_STREAM, 3, &b[..2]),
            frame(kind::CONTINUATION, flag::END_HEADERS, 5, &b[2..]),
        ]
        .concat()
    },
    PROTOCOL
);
case!(
    an_hpack_index_of_0,
    |_| frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &[0x80]
    ),
    ErrorCode::COMPRESSION_ERROR
);
case!(
    an_hpack_index_past_the_tables,
    |_| frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &[0xff, 0x10]
    ),
    ErrorCode::COMPRESSION_ERROR
);
#[test]
fn headers_on_a_stream_ended_both_ways_and_done() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    e.conn.send_response(1, 204, [], true, &mut e.out).unwrap();
    e.conn.stream_done(1, &mut e.out);
    e.frames();
    assert_eq!(e.conn_error(&peer.get(1, "/")), ErrorCode::STREAM_CLOSED);
}

#[test]
fn the_first_frame_must_be_settings() {
    let settings = crate::proto::h2::Settings::default();
    let mut scratch = crate::proto::h2::Scratch::new(&settings);
    let mut out = Vec::new();
    let mut conn =
        crate::proto::h2::Connection::new(crate::proto::h2::Role::Server, settings, &mut out);
    let mut input = crate::proto::h2::PREFACE.to_vec();
    input.extend(ping([0; 8]));
    let e = conn.recv(&input, &mut scratch, &mut out).unwrap_err();
    assert_eq!(e.code, PROTOCOL);
}

#[test]
fn goaway_carries_the_last_stream_processed() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&[peer.get(1, "/"), peer.get(7, "/")].concat())
        .unwrap();
    e.feed(&data(0, b"", false)).unwrap_err();
    let f = e.frames();
    let g = f.iter().find(|f| f.kind == kind::GOAWAY).unwrap();
    assert_eq!(g.u32_at(0), 7);
    assert_eq!(g.code(), PROTOCOL);
}
