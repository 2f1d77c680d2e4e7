//! Floods (research §B.4): each ends in GOAWAY(ENHANCE_YOUR_CALM) or
//! stalls itself, with the output bounded.

use super::support::*;
use crate::proto::h2::frame::kind;
use crate::proto::h2::{ErrorCode, Settings};

/// Feeds `make(id)` for new streams 1, 3, 5, … as the owner would: done
/// with each stream as soon as it is reset. The number of streams before
/// the connection error, if one came within `max` streams.
fn churn(e: &mut Engine, max: u32, mut make: impl FnMut(&mut Peer, u32) -> Vec<u8>) -> Option<u32> {
    let mut peer = Peer::new();
    for n in 0..max {
        let id = 2 * n + 1;
        match e.feed(&make(&mut peer, id)) {
            Ok(evs) => {
                for ev in evs {
                    if let Ev::Reset { id, .. } = ev {
                        e.conn.stream_done(id, &mut e.out);
                    }
                }
                // Streams never surfaced, or refused, are not held.
                e.out.clear();
            }
            Err(err) => {
                assert_eq!(err.code, ErrorCode::ENHANCE_YOUR_CALM);
                return Some(n);
            }
        }
    }
    None
}

#[test]
fn rapid_reset_ends_in_enhance_your_calm() {
    let mut e = Engine::server();
    let n = churn(&mut e, 1000, |p, id| {
        [p.get(id, "/"), rst(id, ErrorCode::CANCEL)].concat()
    });
    assert_eq!(n, Some(200));
}

#[test]
fn resets_among_completed_streams_are_forgiven() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let mut id = 1;
    for round in 0..10 {
        for _ in 0..150 {
            let evs = e
                .feed(&[peer.get(id, "/"), rst(id, ErrorCode::CANCEL)].concat())
                .unwrap();
            assert_eq!(evs.len(), 2, "{round}");
            e.conn.stream_done(id, &mut e.out);
            id += 2;
        }
        for _ in 0..150 {
            e.feed(&peer.get(id, "/")).unwrap();
            e.conn.send_response(id, 204, [], true, &mut e.out).unwrap();
            e.conn.stream_done(id, &mut e.out);
            id += 2;
        }
        e.out.clear();
    }
}

#[test]
fn made_you_reset_ends_in_enhance_your_calm() {
    let mut e = Engine::server();
    let n = churn(&mut e, 1000, |p, id| {
        [p.get(id, "/"), window_update(id, 0)].concat()
    });
    assert_eq!(n, Some(200));
    let mut e = Engine::server();
    let n = churn(&mut e, 1000, |p, id| {
        [
            p.post(id, &[("content-length", "1")]),
            data(id, b"xx", true),
        ]
        .concat()
    });
    assert_eq!(n, Some(200));
    let mut e = Engine::server();
    let n = churn(&mut e, 1000, |p, id| {
        p.headers(id, &[(":method", "GET")], true)
    });
    assert_eq!(n, Some(200));
}

#[test]
fn refusing_streams_over_the_limit_is_bounded_too() {
    let mut e = Engine::server_with(Settings {
        max_concurrent_streams: 1,
        ..Settings::default()
    });
    // Stream 1 is held (its handler never finishes); every later one is
    // refused, which costs the provoked-resets budget.
    let n = churn(&mut e, 1000, |p, id| p.get(id, "/"));
    assert_eq!(n, Some(201));
}

#[test]
fn a_ping_flood_stalls_itself_with_one_ack_written() {
    let mut e = Engine::server();
    let input: Vec<u8> = (0..10_000u32).flat_map(|i| ping([i as u8; 8])).collect();
    assert!(e.feed(&input).unwrap().is_empty());
    assert_eq!(e.frames().len(), 1);
    assert!(e.pending.len() >= input.len() - 2 * 17);
}

#[test]
fn a_settings_flood_stalls_itself_too() {
    let mut e = Engine::server();
    let input: Vec<u8> = (0..10_000u32).flat_map(|_| settings(&[(0x3, 5)])).collect();
    assert_eq!(e.feed(&input).unwrap(), [Ev::Settings]);
    assert_eq!(e.frames().len(), 1);
}

#[test]
fn framing_without_payload_ends_in_enhance_your_calm() {
    for (name, one) in [
        ("WINDOW_UPDATE", window_update(0, 1)),
        ("PRIORITY", frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 1, 16])),
        ("unknown", frame(0x42, 0, 0, b"")),
        ("empty DATA", data(1, b"", false)),
    ] {
        let mut e = Engine::server();
        let mut peer = Peer::new();
        e.feed(&peer.post(1, &[])).unwrap();
        let frames_needed = 8 * (1 << 20) / one.len() + 1;
        // Not before 8 MiB of it...
        e.feed(&one.repeat(frames_needed - 100)).expect(name);
        e.out.clear();
        // ...and soon after.
        let err = e.feed(&one.repeat(200)).expect_err(name);
        assert_eq!(err.code, ErrorCode::ENHANCE_YOUR_CALM, "{name}");
    }
}

#[test]
fn a_body_in_many_small_frames_is_not_a_flood() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.post(1, &[])).unwrap();
    // 1-byte DATA frames: 10 bytes of framing per payload byte, over
    // 1 MiB-ish of frames: under the ratio's allowance... up to a point.
    for _ in 0..60_000 {
        let evs = e.feed(&data(1, b"x", false)).unwrap();
        assert_eq!(evs.len(), 1);
        e.conn.release(1, 1, &mut e.out);
    }
}
