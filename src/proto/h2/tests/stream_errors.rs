//! Stream errors (RFC 9113 §5.4.2, §8.1.1): RST_STREAM with the code,
//! the connection goes on — and requests malformed by §8.2–8.3.

use super::support::*;
use crate::proto::h2::frame::{flag, kind};
use crate::proto::h2::{ErrorCode, HeadKind};

const PROTOCOL: ErrorCode = ErrorCode::PROTOCOL_ERROR;

/// A request with `fields` (pseudo-headers included) on stream 1 is
/// refused with PROTOCOL_ERROR and no event; stream 3 still works (the
/// HPACK context stayed in sync).
macro_rules! malformed {
    ($name:ident, $fields:expr) => {
        malformed!($name, $fields, true);
    };
    ($name:ident, $fields:expr, $end:expr) => {
        #[test]
        fn $name() {
            let mut e = Engine::server();
            let mut peer = Peer::new();
            let fields: &[(&str, &str)] = $fields;
            let block = peer.headers(1, fields, $end);
            assert_eq!(e.rst_of(&block, 1), PROTOCOL);
            assert_eq!(e.conn.streams_held(), 0);
            let evs = e.feed(&peer.get(3, "/next")).unwrap();
            assert!(matches!(&evs[..], [Ev::Head { id: 3, .. }]), "{evs:?}");
        }
    };
}

const M: (&str, &str) = (":method", "GET");
const S: (&str, &str) = (":scheme", "https");
const A: (&str, &str) = (":authority", "example.test");
const P: (&str, &str) = (":path", "/");

malformed!(no_method, &[S, A, P]);
malformed!(no_scheme, &[M, A, P]);
malformed!(no_path, &[M, S, A]);
malformed!(an_empty_path, &[M, S, A, (":path", "")]);
malformed!(a_path_not_starting_with_a_slash, &[M, S, A, (":path", "x")]);
malformed!(an_asterisk_path_for_get, &[M, S, A, (":path", "*")]);
malformed!(a_repeated_path, &[M, S, A, P, P]);
malformed!(a_repeated_method, &[M, M, S, A, P]);
malformed!(an_unknown_pseudo_header, &[M, S, A, P, (":foo", "x")]);
malformed!(
    a_response_pseudo_header_in_a_request,
    &[M, S, A, P, (":status", "200")]
);
malformed!(
    protocol_without_extended_connect,
    &[(":method", "CONNECT"), (":protocol", "websocket"), S, A, P]
);
malformed!(
    a_pseudo_header_after_a_regular_field,
    &[M, S, ("x-a", "1"), A, P]
);
malformed!(an_uppercase_field_name, &[M, S, A, P, ("X-Upper", "1")]);
malformed!(a_field_name_with_a_space, &[M, S, A, P, ("x a", "1")]);
malformed!(an_empty_field_name, &[M, S, A, P, ("", "1")]);
malformed!(connection, &[M, S, A, P, ("connection", "keep-alive")]);
malformed!(keep_alive, &[M, S, A, P, ("keep-alive", "5")]);
malformed!(proxy_connection, &[M, S, A, P, ("proxy-connection", "x")]);
malformed!(
    transfer_encoding,
    &[M, S, A, P, ("transfer-encoding", "chunked")]
);
malformed!(upgrade, &[M, S, A, P, ("upgrade", "h2c")]);
malformed!(te_other_than_trailers, &[M, S, A, P, ("te", "gzip")]);
malformed!(
    a_value_with_a_newline,
    &[M, S, A, P, ("x-a", "1\r\nx-b: 2")]
);
malformed!(a_value_with_a_nul, &[M, S, A, P, ("x-a", "1\0")]);
malformed!(a_value_with_leading_space, &[M, S, A, P, ("x-a", " 1")]);
malformed!(a_value_with_trailing_tab, &[M, S, A, P, ("x-a", "1\t")]);
malformed!(a_bad_authority, &[M, S, (":authority", "a b"), P]);
malformed!(
    userinfo_in_the_authority,
    &[M, S, (":authority", "user@example.test"), P]
);
malformed!(connect_with_a_path, &[(":method", "CONNECT"), A, P]);
malformed!(connect_without_authority, &[(":method", "CONNECT")], false);
malformed!(
    a_bad_content_length,
    &[M, S, A, P, ("content-length", "1x")]
);
malformed!(
    differing_content_lengths,
    &[M, S, A, P, ("content-length", "1"), ("content-length", "2")],
    false
);
malformed!(
    a_content_length_without_a_body,
    &[M, S, A, P, ("content-length", "3")]
);

#[test]
fn te_trailers_and_connect_with_authority_are_well_formed() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let evs = e
        .feed(&peer.headers(1, &[M, S, A, P, ("te", "trailers")], true))
        .unwrap();
    assert_eq!(evs.len(), 1);
    let evs = e
        .feed(&peer.headers(3, &[(":method", "CONNECT"), A], false))
        .unwrap();
    assert_eq!(evs.len(), 1);
    let evs = e
        .feed(&peer.headers(5, &[(":method", "OPTIONS"), S, A, (":path", "*")], true))
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert!(e.frames().is_empty());
}

#[test]
fn cookie_crumbs_come_joined() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let fields = [
        M,
        S,
        A,
        P,
        ("cookie", "a=1"),
        ("x-b", "2"),
        ("cookie", "c=3"),
    ];
    let evs = e.feed(&peer.headers(1, &fields, true)).unwrap();
    let Ev::Head { fields, .. } = &evs[0] else {
        panic!()
    };
    assert_eq!(
        fields,
        &[
            ("x-b".to_string(), "2".to_string()),
            ("cookie".to_string(), "a=1; c=3".to_string())
        ]
    );
}

fn open_post(e: &mut Engine, peer: &mut Peer, extra: &[(&str, &str)]) {
    let evs = e.feed(&peer.post(1, extra)).unwrap();
    assert_eq!(evs.len(), 1);
}

#[test]
fn a_body_longer_than_its_content_length() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[("content-length", "2")]);
    assert_eq!(e.rst_of(&data(1, b"abc", true), 1), PROTOCOL);
}

#[test]
fn a_body_shorter_than_its_content_length_reset_and_told() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[("content-length", "4")]);
    let evs = e.feed(&data(1, b"abc", true)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: PROTOCOL,
            remote: false
        }]
    );
    let f = e.frames();
    assert_eq!((f[0].kind, f[0].code()), (kind::RST_STREAM, PROTOCOL));
    // Held until the owner is done.
    assert_eq!(e.conn.streams_held(), 1);
    e.conn.stream_done(1, &mut e.out);
    assert_eq!(e.conn.streams_held(), 0);
    assert!(
        e.frames().iter().all(|f| f.kind != kind::RST_STREAM),
        "no second RST"
    );
}

#[test]
fn trailers_end_the_body_and_must_hold_no_pseudo_header() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[]);
    let evs = e
        .feed(
            &[
                data(1, b"ab", false),
                peer.headers(1, &[("x-sum", "9")], true),
            ]
            .concat(),
        )
        .unwrap();
    assert_eq!(evs.len(), 2);
    assert!(
        matches!(&evs[1], Ev::Head { id: 1, kind: HeadKind::Trailers, end_stream: true, fields, .. } if fields.len() == 1)
    );

    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[]);
    let evs = e.feed(&peer.headers(1, &[(":path", "/x")], true)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: PROTOCOL,
            remote: false
        }]
    );

    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[]);
    let evs = e.feed(&peer.headers(1, &[("x-a", "1")], false)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: PROTOCOL,
            remote: false
        }]
    );
}

#[test]
fn data_after_end_stream_is_stream_closed() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let evs = e.feed(&data(1, b"x", false)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: ErrorCode::STREAM_CLOSED,
            remote: false
        }]
    );
    // Its bytes still count on the connection, and come back.
    e.frames();
}

#[test]
fn headers_after_end_stream_is_stream_closed() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let evs = e.feed(&peer.headers(1, &[("x-a", "1")], true)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: ErrorCode::STREAM_CLOSED,
            remote: false
        }]
    );
}

#[test]
fn priority_frames_are_validated_and_otherwise_ignored() {
    let mut e = Engine::server();
    assert!(e
        .feed(&frame(kind::PRIORITY, 0, 5, &[0, 0, 0, 3, 16]))
        .unwrap()
        .is_empty());
    assert!(e.frames().is_empty());
    assert_eq!(
        e.rst_of(&frame(kind::PRIORITY, 0, 5, &[0, 0, 0, 5, 16]), 5),
        PROTOCOL
    );
    assert_eq!(
        e.rst_of(&frame(kind::PRIORITY, 0, 7, &[0, 0, 0, 3]), 7),
        ErrorCode::FRAME_SIZE_ERROR
    );
    // A PRIORITY does not open the stream: 9 may still open, 3 after it
    // may not... 5 and 7 were never opened, so 9 is new.
    let mut peer = Peer::new();
    assert_eq!(e.feed(&peer.get(9, "/")).unwrap().len(), 1);
}

#[test]
fn headers_depending_on_themselves_are_refused_and_hpack_stays_in_sync() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let block = peer.block(&[M, S, A, (":path", "/indexed"), ("x-new", "value")]);
    let mut payload = vec![0, 0, 0, 1, 16];
    payload.extend_from_slice(&block);
    let f = frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM | flag::PRIORITY,
        1,
        &payload,
    );
    assert_eq!(e.rst_of(&f, 1), PROTOCOL);
    // The peer's encoder indexed x-new: the next block refers to it.
    let evs = e
        .feed(&peer.headers(3, &[M, S, A, P, ("x-new", "value")], true))
        .unwrap();
    let Ev::Head { fields, .. } = &evs[0] else {
        panic!("{evs:?}")
    };
    assert_eq!(fields, &[("x-new".to_string(), "value".to_string())]);
}

#[test]
fn window_update_of_0_on_a_stream() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let evs = e.feed(&window_update(1, 0)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: PROTOCOL,
            remote: false
        }]
    );
}

#[test]
fn a_stream_window_over_2_31_minus_1() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let evs = e.feed(&window_update(1, (1 << 31) - 1)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: ErrorCode::FLOW_CONTROL_ERROR,
            remote: false
        }]
    );
}

#[test]
fn data_beyond_the_stream_window() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[]);
    let chunk = vec![0u8; 16_384];
    for _ in 0..3 {
        assert_eq!(e.feed(&data(1, &chunk, false)).unwrap().len(), 1);
    }
    assert_eq!(e.feed(&data(1, &chunk[..16_383], false)).unwrap().len(), 1);
    let evs = e.feed(&data(1, b"xx", false)).unwrap();
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: ErrorCode::FLOW_CONTROL_ERROR,
            remote: false
        }]
    );
}

#[test]
fn frames_on_a_stream_we_reset_are_dropped_and_their_window_returned() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    open_post(&mut e, &mut peer, &[]);
    e.conn.reset(1, ErrorCode::CANCEL, &mut e.out);
    e.conn.stream_done(1, &mut e.out);
    let f = e.frames();
    assert_eq!(f.len(), 1, "one RST: {f:?}");
    let chunk = vec![0u8; 16_384];
    let mut returned = 0;
    for _ in 0..40 {
        assert!(e.feed(&data(1, &chunk, false)).unwrap().is_empty());
        for f in e.frames() {
            assert_eq!((f.kind, f.id), (kind::WINDOW_UPDATE, 0));
            returned += f.u32_at(0);
        }
    }
    // 640 KiB arrived: the connection window (1 MiB) was granted back
    // each time half of it was due.
    assert_eq!(returned, 16_384 * 32);
    assert!(e
        .feed(&peer.headers(1, &[("x", "1")], true))
        .unwrap()
        .is_empty());
    assert!(e.feed(&window_update(1, 5)).unwrap().is_empty());
    assert!(e.feed(&rst(1, ErrorCode::CANCEL)).unwrap().is_empty());
    assert!(e.frames().is_empty());
}
