//! Flow control (§5.2, §6.9) and SETTINGS (§6.5): windows both ways,
//! INITIAL_WINDOW_SIZE changes, ours in force only once acknowledged.

use super::support::*;
use crate::proto::h2::frame::{flag, kind};
use crate::proto::h2::{ErrorCode, Settings};

#[test]
fn send_data_takes_what_the_smaller_window_allows() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&settings(&[(0x4, 10)])).unwrap();
    e.conn.flushed();
    e.frames();
    e.feed(&peer.get(1, "/")).unwrap();
    e.conn.send_response(1, 200, [], false, &mut e.out).unwrap();
    assert_eq!(e.conn.send_capacity(1), 10);
    assert_eq!(e.conn.send_data(1, &[b'x'; 100], true, &mut e.out), Ok(10));
    assert_eq!(e.conn.send_capacity(1), 0);
    assert_eq!(e.conn.send_data(1, &[b'x'; 90], true, &mut e.out), Ok(0));
    let f = e.frames();
    assert_eq!(
        (f[1].kind, f[1].flags, f[1].payload.len()),
        (kind::DATA, 0, 10)
    );
    assert_eq!(f.len(), 2, "no END_STREAM while data is left");
    // The window opens: the owner hears of it, and the rest goes.
    assert_eq!(
        e.feed(&window_update(1, 1000)).unwrap(),
        [Ev::Window(Some(1))]
    );
    assert_eq!(e.conn.send_data(1, &[b'x'; 90], true, &mut e.out), Ok(90));
    let f = e.frames();
    assert_eq!((f[0].flags, f[0].payload.len()), (flag::END_STREAM, 90));
}

#[test]
fn the_connection_window_bounds_all_streams() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&[peer.get(1, "/"), peer.get(3, "/")].concat())
        .unwrap();
    e.feed(&[window_update(1, 100_000), window_update(3, 100_000)].concat())
        .unwrap();
    for id in [1, 3] {
        e.conn
            .send_response(id, 200, [], false, &mut e.out)
            .unwrap();
    }
    let big = vec![0u8; 70_000];
    assert_eq!(e.conn.send_data(1, &big, false, &mut e.out), Ok(65_535));
    assert_eq!(e.conn.send_data(3, &big, false, &mut e.out), Ok(0));
    assert_eq!(e.conn.next_to_send(), None);
    // DATA frames no larger than the peer's MAX_FRAME_SIZE.
    let f = e.frames();
    assert!(f
        .iter()
        .filter(|f| f.kind == kind::DATA)
        .all(|f| f.payload.len() <= 16_384));
    assert_eq!(e.feed(&window_update(0, 10)).unwrap(), [Ev::Window(None)]);
    assert_eq!(e.conn.send_capacity(3), 10);
}

#[test]
fn an_initial_window_change_moves_open_streams_windows_even_below_zero() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    e.conn.send_response(1, 200, [], false, &mut e.out).unwrap();
    assert_eq!(e.conn.send_data(1, &[0; 1000], false, &mut e.out), Ok(1000));
    e.feed(&settings(&[(0x4, 500)])).unwrap();
    e.conn.flushed();
    // 500 - 1000: the window is -500.
    assert_eq!(e.conn.send_capacity(1), 0);
    assert!(
        e.feed(&window_update(1, 400)).unwrap().is_empty(),
        "still below zero"
    );
    assert_eq!(e.conn.send_capacity(1), 0);
    assert_eq!(
        e.feed(&window_update(1, 200)).unwrap(),
        [Ev::Window(Some(1))]
    );
    assert_eq!(e.conn.send_capacity(1), 100);
    // Raised past 2^31-1 on an open stream: a connection error.
    e.feed(&window_update(1, (1 << 31) - 200)).unwrap();
    assert_eq!(
        e.conn_error(&settings(&[(0x4, 1 << 30)])),
        ErrorCode::FLOW_CONTROL_ERROR
    );
}

#[test]
fn data_beyond_the_connection_window_is_a_connection_error() {
    let mut e = Engine::server_with(Settings {
        connection_window_size: 65_535,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    e.feed(&[peer.post(1, &[]), peer.post(3, &[])].concat())
        .unwrap();
    let chunk = vec![0u8; 16_383];
    for id in [1, 3] {
        assert_eq!(e.feed(&data(id, &chunk, false)).unwrap().len(), 1);
        assert_eq!(e.feed(&data(id, &chunk, false)).unwrap().len(), 1);
    }
    assert_eq!(
        e.conn_error(&data(1, &chunk[..4], false)),
        ErrorCode::FLOW_CONTROL_ERROR
    );
}

#[test]
fn padding_counts_against_the_window_and_is_granted_back() {
    let mut e = Engine::server_with(Settings {
        connection_window_size: 65_535,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    e.feed(&peer.post(1, &[])).unwrap();
    // 1 + 3 data + 200 padding.
    let mut p = vec![200, b'a', b'b', b'c'];
    p.extend_from_slice(&[0; 200]);
    let mut granted = 0;
    for _ in 0..200 {
        let evs = e.feed(&frame(kind::DATA, flag::PADDED, 1, &p)).unwrap();
        assert_eq!(
            evs,
            [Ev::Data {
                id: 1,
                data: b"abc".to_vec(),
                end_stream: false
            }]
        );
        e.conn.release(1, 3, &mut e.out);
        granted += e
            .frames()
            .iter()
            .filter(|f| f.id == 0)
            .map(|f| f.u32_at(0))
            .sum::<u32>();
    }
    // 200 x 204 = 40,800 over a 65,535 window: only possible because the
    // padding and the read bytes came back.
    assert!(granted >= 32_767, "{granted}");
}

#[test]
fn our_settings_apply_once_acknowledged() {
    let mut e = Engine::server_with(Settings {
        max_frame_size: 32_768,
        initial_window_size: 200_000,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    e.feed(&peer.post(1, &[])).unwrap();
    assert!(e.conn.settings_pending());
    let big = vec![0u8; 20_000];
    // Before the ack, the default frame size binds the peer.
    let mut e2 = Engine::server_with(Settings {
        max_frame_size: 32_768,
        ..Settings::default()
    });
    assert_eq!(
        e2.conn_error(&frame(0x42, 0, 0, &big)),
        ErrorCode::FRAME_SIZE_ERROR
    );
    assert_eq!(e.feed(&settings_ack()).unwrap(), [Ev::SettingsAcked]);
    assert!(!e.conn.settings_pending());
    assert_eq!(e.feed(&data(1, &big, false)).unwrap().len(), 1);
    // The stream's window grew by the difference: 200,000 in all.
    let chunk = vec![0u8; 30_000];
    for _ in 0..6 {
        assert_eq!(e.feed(&data(1, &chunk, false)).unwrap().len(), 1);
    }
    let evs = e.feed(&data(1, &chunk, false)).unwrap();
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
fn settings_are_acked_in_order_and_unknown_ones_ignored() {
    let mut e = Engine::server();
    assert_eq!(
        e.feed(&settings(&[(0x99, 7), (0x5, 20_000), (0x3, 10)]))
            .unwrap(),
        [Ev::Settings]
    );
    assert_eq!(e.conn.peer_settings().max_frame_size, 20_000);
    assert_eq!(e.conn.peer_settings().max_concurrent_streams, 10);
    let f = e.frames();
    assert_eq!(
        (f[0].kind, f[0].flags, f[0].payload.len()),
        (kind::SETTINGS, flag::ACK, 0)
    );
}

#[test]
fn one_unflushed_ack_at_most_stops_reading() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let evs = e
        .feed(&[ping(*b"12345678"), ping(*b"abcdefgh"), peer.get(1, "/")].concat())
        .unwrap();
    assert!(evs.is_empty());
    assert!(e.conn.must_flush());
    let f = e.frames();
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].flags, &f[0].payload[..]),
        (kind::PING, flag::ACK, &b"12345678"[..])
    );
    e.conn.flushed();
    let evs = e.feed(&[]).unwrap();
    assert_eq!(evs.len(), 1, "the request after the second PING");
    let f = e.frames();
    assert_eq!(&f[0].payload[..], b"abcdefgh");
    // SETTINGS the same way.
    e.conn.flushed();
    assert_eq!(
        e.feed(&[settings(&[]), settings(&[])].concat()).unwrap(),
        [Ev::Settings]
    );
    assert_eq!(e.frames().len(), 1);
    e.conn.flushed();
    assert_eq!(e.feed(&[]).unwrap(), [Ev::Settings]);
}

#[test]
fn our_ping_is_answered_and_a_stray_ack_ignored() {
    let mut e = Engine::server();
    assert!(e
        .feed(&frame(kind::PING, flag::ACK, 0, b"stray!!!"))
        .unwrap()
        .is_empty());
    e.conn.ping(*b"probe123", &mut e.out);
    assert!(e.conn.ping_pending());
    assert_eq!(e.frames()[0].payload, b"probe123");
    assert_eq!(
        e.feed(&frame(kind::PING, flag::ACK, 0, b"probe123"))
            .unwrap(),
        [Ev::PingAck(*b"probe123")]
    );
    assert!(!e.conn.ping_pending());
}

#[test]
fn unknown_frame_types_are_ignored() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let evs = e
        .feed(&[frame(0x42, 0xff, 1, b"whatever"), peer.get(1, "/")].concat())
        .unwrap();
    assert_eq!(evs.len(), 1);
    assert!(e.frames().is_empty());
}

#[test]
fn a_large_response_head_goes_in_continuations() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let v = "v".repeat(10_000);
    let fields: Vec<(&[u8], &[u8])> = vec![(b"x-a", v.as_bytes()), (b"x-b", v.as_bytes())];
    e.conn
        .send_response(1, 200, fields, true, &mut e.out)
        .unwrap();
    let f = e.frames();
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].kind, f[0].flags), (kind::HEADERS, flag::END_STREAM));
    assert_eq!(
        (f[1].kind, f[1].flags),
        (kind::CONTINUATION, flag::END_HEADERS)
    );
    let block = [f[0].payload.clone(), f[1].payload.clone()].concat();
    let got = peer.decode(&block);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].1.len(), 10_000);
}
