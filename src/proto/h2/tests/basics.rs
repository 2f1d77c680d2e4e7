//! A request in, a response out: the path every other test varies.

use super::support::*;
use crate::proto::h2::frame::{flag, kind};
use crate::proto::h2::{ErrorCode, HeadKind, Settings};

#[test]
fn a_server_starts_with_its_settings_and_opens_the_connection_window() {
    let mut out = Vec::new();
    let _ = crate::proto::h2::Connection::new(
        crate::proto::h2::Role::Server,
        Settings::default(),
        &mut out,
    );
    let f = frames(&mut out);
    assert_eq!(f[0].kind, kind::SETTINGS);
    assert_eq!(f[0].id, 0);
    assert_eq!(f[1].kind, kind::WINDOW_UPDATE);
    assert_eq!(f[1].u32_at(0), (1 << 20) - 65_535);
    assert_eq!(f.len(), 2);
}

#[test]
fn the_preface_may_arrive_byte_by_byte() {
    let settings = Settings::default();
    let mut scratch = crate::proto::h2::Scratch::new(&settings);
    let mut out = Vec::new();
    let mut conn =
        crate::proto::h2::Connection::new(crate::proto::h2::Role::Server, settings, &mut out);
    let mut input = crate::proto::h2::PREFACE.to_vec();
    input.extend(settings_frame_empty());
    let mut buf = Vec::new();
    let mut got = false;
    for &b in &input {
        buf.push(b);
        let r = conn.recv(&buf, &mut scratch, &mut out).unwrap();
        got |= r.event.is_some();
        let n = r.consumed;
        buf.drain(..n);
    }
    assert!(got && buf.is_empty());
}

#[test]
fn a_bad_preface_is_a_protocol_error() {
    let settings = Settings::default();
    let mut scratch = crate::proto::h2::Scratch::new(&settings);
    let mut out = Vec::new();
    let mut conn =
        crate::proto::h2::Connection::new(crate::proto::h2::Role::Server, settings, &mut out);
    out.clear();
    let e = conn
        .recv(b"PRI * HTTP/1.1\r\n", &mut scratch, &mut out)
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::PROTOCOL_ERROR);
    assert_eq!(frames(&mut out)[0].kind, kind::GOAWAY);
}

#[test]
fn a_get_comes_out_as_a_request_head_and_the_response_goes_back() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let evs = e.feed(&peer.get(1, "/hello?x=1")).unwrap();
    assert_eq!(
        evs,
        [Ev::Head {
            id: 1,
            kind: HeadKind::Request,
            pseudo: vec![
                (":method".into(), "GET".into()),
                (":scheme".into(), "https".into()),
                (":authority".into(), "example.test".into()),
                (":path".into(), "/hello?x=1".into()),
            ],
            fields: vec![],
            end_stream: true,
        }]
    );
    assert_eq!(e.conn.streams_held(), 1);
    let fields: [(&[u8], &[u8]); 2] = [(b"Content-Type", b"text/plain"), (b"connection", b"close")];
    e.conn
        .send_response(1, 200, fields, false, &mut e.out)
        .unwrap();
    assert_eq!(e.conn.send_data(1, b"hello", true, &mut e.out), Ok(5));
    let f = e.frames();
    assert_eq!(f[0].kind, kind::HEADERS);
    assert_eq!(f[0].flags, flag::END_HEADERS);
    assert_eq!(
        peer.decode(&f[0].payload),
        [("content-type".to_string(), "text/plain".to_string())]
            .into_iter()
            .collect::<Vec<_>>()
            .into_iter()
            .fold(
                vec![(":status".to_string(), "200".to_string())],
                |mut v, x| {
                    v.push(x);
                    v
                }
            )
    );
    assert_eq!(
        (f[1].kind, f[1].flags, &f[1].payload[..]),
        (kind::DATA, flag::END_STREAM, &b"hello"[..])
    );
    // Closed both ways, still held until the owner is done.
    assert_eq!(e.conn.streams_held(), 1);
    e.conn.stream_done(1, &mut e.out);
    assert_eq!(e.conn.streams_held(), 0);
    assert!(e.frames().is_empty());
}

#[test]
fn a_post_body_arrives_as_data_and_its_window_comes_back_in_batches() {
    let mut e = Engine::server();
    let mut peer = Peer::new();
    let evs = e
        .feed(&peer.post(1, &[("content-length", "40000")]))
        .unwrap();
    assert!(matches!(
        evs[..],
        [Ev::Head {
            end_stream: false,
            ..
        }]
    ));
    let body = vec![7u8; 11_000];
    for i in 0..3 {
        let evs = e.feed(&data(1, &body, false)).unwrap();
        assert_eq!(
            evs,
            [Ev::Data {
                id: 1,
                data: body.clone(),
                end_stream: false
            }]
        );
        e.conn.release(1, 11_000, &mut e.out);
        if i < 2 {
            assert!(
                e.frames().is_empty(),
                "under half the window: no update yet"
            );
        }
    }
    let f = e.frames();
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].kind, f[0].id, f[0].u32_at(0)),
        (kind::WINDOW_UPDATE, 1, 33_000)
    );
    let evs = e.feed(&data(1, &body[..7000], true)).unwrap();
    assert_eq!(
        evs,
        [Ev::Data {
            id: 1,
            data: body[..7000].to_vec(),
            end_stream: true
        }]
    );
}

#[test]
fn a_frame_cut_anywhere_waits_for_the_rest() {
    let mut peer = Peer::new();
    let mut input = peer.post(1, &[("x-a", "b")]);
    input.extend(data(1, b"abc", true));
    let mut e = Engine::server();
    let mut evs = Vec::new();
    for &b in &input {
        evs.extend(e.feed(&[b]).unwrap());
    }
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[1],
        Ev::Data {
            id: 1,
            data: b"abc".to_vec(),
            end_stream: true
        }
    );
}
