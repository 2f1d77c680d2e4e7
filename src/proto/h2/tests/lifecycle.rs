//! Streams over their life (§5.1, §5.1.2, §6.8): the concurrency slot
//! held until the owner is done, GOAWAY both ways, the scheduler, and
//! the client role.

use super::support::*;
use crate::proto::h2::frame::{flag, kind, MAX_WINDOW, PREFACE};
use crate::proto::h2::{Connection, ErrorCode, HeadKind, Role, Scratch, Settings};

#[test]
fn a_stream_holds_its_slot_until_the_owner_is_done_whatever_the_peer_says() {
    let mut e = Engine::server_with(Settings {
        max_concurrent_streams: 2,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    assert_eq!(
        e.feed(&[peer.get(1, "/"), peer.post(3, &[])].concat())
            .unwrap()
            .len(),
        2
    );
    assert_eq!(e.rst_of(&peer.get(5, "/"), 5), ErrorCode::REFUSED_STREAM);
    // The peer resets 3 and 1 has ended its side: both still count.
    assert_eq!(
        e.feed(&rst(3, ErrorCode::CANCEL)).unwrap(),
        [Ev::Reset {
            id: 3,
            code: ErrorCode::CANCEL,
            remote: true
        }]
    );
    assert_eq!(e.rst_of(&peer.get(7, "/"), 7), ErrorCode::REFUSED_STREAM);
    e.conn.stream_done(3, &mut e.out);
    assert!(e.frames().is_empty(), "no RST for a stream the peer reset");
    assert_eq!(e.feed(&peer.get(9, "/")).unwrap().len(), 1);
}

#[test]
fn done_with_an_unfinished_stream_resets_it() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&[peer.post(1, &[]), peer.post(3, &[])].concat())
        .unwrap();
    // 1: the response ended, the request body never read: NO_ERROR.
    e.conn.send_response(1, 200, [], true, &mut e.out).unwrap();
    e.frames();
    e.conn.stream_done(1, &mut e.out);
    let f = e.frames();
    assert_eq!(
        (f[0].kind, f[0].id, f[0].code()),
        (kind::RST_STREAM, 1, ErrorCode::NO_ERROR)
    );
    // 3: no response at all: CANCEL.
    e.conn.stream_done(3, &mut e.out);
    let f = e.frames();
    assert_eq!((f[0].id, f[0].code()), (3, ErrorCode::CANCEL));
    // Sends on a stream done are refused.
    assert!(e.conn.send_data(3, b"x", true, &mut e.out).is_err());
}

#[test]
fn body_bytes_never_read_are_granted_back_to_the_connection_when_done() {
    let mut e = Engine::server_with(Settings {
        connection_window_size: 65_535,
        ..Settings::default()
    });
    let mut peer = Peer::new();
    for round in 0..4u32 {
        let id = 1 + 2 * round;
        e.feed(&peer.post(id, &[])).unwrap();
        let chunk = vec![0u8; 16_000];
        for _ in 0..3 {
            assert_eq!(
                e.feed(&data(id, &chunk, false)).unwrap().len(),
                1,
                "{round}"
            );
        }
        e.conn.reset(id, ErrorCode::CANCEL, &mut e.out);
        e.conn.stream_done(id, &mut e.out);
        e.out.clear();
    }
}

#[test]
fn graceful_shutdown_is_goaway_max_and_ping_then_goaway_last_id() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    e.conn.go_away_gracefully(&mut e.out);
    let f = e.frames();
    assert_eq!(
        (f[0].kind, f[0].u32_at(0), f[0].code()),
        (kind::GOAWAY, MAX_WINDOW, ErrorCode::NO_ERROR)
    );
    assert_eq!(f[1].kind, kind::PING);
    // Streams the peer opened before it saw the GOAWAY are served.
    assert_eq!(e.feed(&peer.get(3, "/")).unwrap().len(), 1);
    let ack = frame(kind::PING, flag::ACK, 0, &f[1].payload);
    assert!(e.feed(&ack).unwrap().is_empty());
    let f = e.frames();
    assert_eq!((f[0].kind, f[0].u32_at(0)), (kind::GOAWAY, 3));
    // Later ones are ignored (their block still decoded), and so is
    // their body, its connection window given back.
    assert!(e.feed(&peer.post(5, &[])).unwrap().is_empty());
    assert!(e.feed(&data(5, &[0; 16_000], true)).unwrap().is_empty());
    assert!(e.frames().is_empty());
    assert!(!e.conn.is_finished());
    for id in [1, 3] {
        e.conn.send_response(id, 204, [], true, &mut e.out).unwrap();
        e.conn.stream_done(id, &mut e.out);
    }
    assert!(e.conn.is_finished());
}

#[test]
fn goaway_from_the_peer_lets_open_streams_finish() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&peer.get(1, "/")).unwrap();
    let mut p = 1u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(b"bye");
    let evs = e.feed(&frame(kind::GOAWAY, 0, 0, &p)).unwrap();
    assert_eq!(
        evs,
        [Ev::GoAway {
            last_id: 1,
            code: ErrorCode::NO_ERROR
        }]
    );
    assert!(!e.conn.is_finished());
    e.conn.send_response(1, 200, [], true, &mut e.out).unwrap();
    e.conn.stream_done(1, &mut e.out);
    assert!(e.conn.is_finished());
}

#[test]
fn the_scheduler_takes_streams_in_turn_and_skips_those_without_window() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    e.feed(&[peer.get(1, "/"), peer.get(3, "/"), peer.get(5, "/")].concat())
        .unwrap();
    for id in [1, 3, 5] {
        e.conn
            .send_response(id, 200, [], false, &mut e.out)
            .unwrap();
        e.conn.set_wants_send(id, true);
    }
    let order: Vec<_> = (0..6).map(|_| e.conn.next_to_send().unwrap()).collect();
    assert_eq!(order, [1, 3, 5, 1, 3, 5]);
    // 3 uses up its window (the connection's is larger).
    e.feed(&window_update(0, 1 << 20)).unwrap();
    assert_eq!(
        e.conn.send_data(3, &vec![0; 65_535], false, &mut e.out),
        Ok(65_535)
    );
    let order: Vec<_> = (0..4).map(|_| e.conn.next_to_send().unwrap()).collect();
    assert_eq!(order, [1, 5, 1, 5]);
    // Ending a stream takes it out.
    e.conn.send_data(1, b"", true, &mut e.out).unwrap();
    assert_eq!(e.conn.next_to_send(), Some(5));
    assert_eq!(e.conn.next_to_send(), Some(5));
}

/// A client engine past the server's SETTINGS.
fn client() -> (Connection, Scratch, Vec<u8>) {
    let settings = Settings::default();
    let mut scratch = Scratch::new(&settings);
    let mut out = Vec::new();
    let mut conn = Connection::new(Role::Client, settings, &mut out);
    assert!(out.starts_with(PREFACE));
    let first = settings_frame_empty();
    let r = conn.recv(&first, &mut scratch, &mut out).unwrap();
    assert!(r.event.is_some());
    conn.flushed();
    out.clear();
    (conn, scratch, out)
}

fn recv_all(
    conn: &mut Connection,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
    mut input: &[u8],
) -> Vec<Ev> {
    let mut evs = Vec::new();
    for _ in 0..1000 {
        let r = conn.recv(input, scratch, out).unwrap();
        let Some(ev) = r.event.as_ref().map(Ev::of) else {
            break;
        };
        evs.push(ev);
        input = &input[r.consumed..];
    }
    evs
}

#[test]
fn a_client_opens_odd_streams_and_reads_1xx_response_body_and_trailers() {
    let (mut conn, mut scratch, mut out) = client();
    let fields: [(&[u8], &[u8]); 1] = [(b"accept", b"*/*")];
    let id = conn
        .send_request(
            b"GET",
            b"https",
            b"example.test",
            b"/",
            fields,
            true,
            &mut out,
        )
        .unwrap();
    assert_eq!(id, 1);
    let id3 = conn
        .send_request(
            b"POST",
            b"https",
            b"example.test",
            b"/up",
            [],
            false,
            &mut out,
        )
        .unwrap();
    assert_eq!(id3, 3);
    let f = frames(&mut out);
    let mut server = Peer::new();
    let got = server.decode(&f[0].payload);
    assert_eq!(got[0], (":method".into(), "GET".into()));
    assert_eq!(got[3], (":path".into(), "/".into()));
    assert_eq!(got[4], ("accept".into(), "*/*".into()));
    assert_eq!(f[0].flags, flag::END_HEADERS | flag::END_STREAM);

    let mut input = server.headers(1, &[(":status", "103"), ("link", "</a>")], false);
    input.extend(server.headers(1, &[(":status", "200"), ("content-length", "2")], false));
    input.extend(data(1, b"ok", false));
    input.extend(server.headers(1, &[("x-t", "1")], true));
    let evs = recv_all(&mut conn, &mut scratch, &mut out, &input);
    let kinds: Vec<_> = evs
        .iter()
        .map(|e| match e {
            Ev::Head { kind, .. } => format!("{kind:?}"),
            Ev::Data { data, .. } => String::from_utf8_lossy(data).into_owned(),
            e => format!("{e:?}"),
        })
        .collect();
    assert_eq!(kinds, ["Informational", "Response", "ok", "Trailers"]);
}

#[test]
fn a_client_refuses_push_and_heads_on_streams_it_did_not_open() {
    let (mut conn, mut scratch, mut out) = client();
    let mut server = Peer::new();
    let e = conn
        .recv(
            &server.headers(2, &[(":status", "200")], true),
            &mut scratch,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
    let (mut conn, mut scratch, mut out) = client();
    let e = conn
        .recv(
            &server.headers(1, &[(":status", "200")], true),
            &mut scratch,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
    let (mut conn, mut scratch, mut out) = client();
    let e = conn
        .recv(&settings(&[(0x2, 1)]), &mut scratch, &mut out)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
}

#[test]
fn a_client_honours_the_servers_stream_limit_and_goaway() {
    let (mut conn, mut scratch, mut out) = client();
    recv_all(&mut conn, &mut scratch, &mut out, &settings(&[(0x3, 1)]));
    conn.flushed();
    assert!(conn
        .send_request(b"GET", b"https", b"a.test", b"/", [], true, &mut out)
        .is_ok());
    assert!(!conn.can_open());
    let mut server = Peer::new();
    let evs = recv_all(
        &mut conn,
        &mut scratch,
        &mut out,
        &server.headers(1, &[(":status", "204")], true),
    );
    assert!(matches!(
        &evs[..],
        [Ev::Head {
            kind: HeadKind::Response,
            end_stream: true,
            ..
        }]
    ));
    conn.stream_done(1, &mut out);
    assert!(conn.can_open());
    let mut p = 0u32.to_be_bytes().to_vec();
    p.extend_from_slice(&0u32.to_be_bytes());
    recv_all(
        &mut conn,
        &mut scratch,
        &mut out,
        &frame(kind::GOAWAY, 0, 0, &p),
    );
    assert!(!conn.can_open());
    assert!(conn.is_finished());
}

#[test]
fn a_malformed_response_is_a_stream_error() {
    let (mut conn, mut scratch, mut out) = client();
    conn.send_request(b"GET", b"https", b"a.test", b"/", [], true, &mut out)
        .unwrap();
    out.clear();
    let mut server = Peer::new();
    let evs = recv_all(
        &mut conn,
        &mut scratch,
        &mut out,
        &server.headers(1, &[("x-a", "1")], true),
    );
    assert_eq!(
        evs,
        [Ev::Reset {
            id: 1,
            code: ErrorCode::PROTOCOL_ERROR,
            remote: false
        }]
    );
}

#[test]
fn the_connection_window_granted_back_never_exceeds_what_arrived() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let mut received = 0u64;
    let mut granted = 0u64;
    let chunk = vec![0u8; 10_000];
    for round in 0..200u32 {
        let id = 1 + 2 * round;
        e.feed(&peer.post(id, &[])).unwrap();
        for k in 0..3 {
            assert_eq!(e.feed(&data(id, &chunk, false)).unwrap().len(), 1);
            received += 10_000;
            // Some read, some not.
            if k < round % 3 {
                e.conn.release(id, 10_000, &mut e.out);
            }
        }
        e.conn.send_response(id, 200, [], true, &mut e.out).unwrap();
        e.conn.stream_done(id, &mut e.out);
        e.conn.release(id, 10_000, &mut e.out);
        for f in e.frames() {
            if f.kind == kind::WINDOW_UPDATE && f.id == 0 {
                granted += u64::from(f.u32_at(0));
            }
        }
        assert!(granted <= received, "{round}: {granted} > {received}");
    }
    assert!(granted + (1 << 19) >= received, "{granted} {received}");
}
