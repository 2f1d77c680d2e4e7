//! The protocol choice: HTTP/2 by the client preface in clear (same port
//! as HTTP/1.1), by ALPN over TLS; everything else is HTTP/1, with every
//! byte kept. Real TCP on 127.0.0.1.

mod common;
#[path = "common/h2.rs"]
mod h2;

use std::io::Write;
use std::time::Duration;

use common::handlers::Hello;
use common::{client, serve, serve_with};
use h2::{Conn, PREFACE, SETTINGS};

/// The preface, even a byte at a time, is answered with the server's
/// SETTINGS: the connection speaks HTTP/2.
#[test]
fn the_preface_makes_a_cleartext_connection_http2_even_a_byte_at_a_time() {
    let server = serve(|_| Hello);
    for split in [PREFACE.len(), 1] {
        let mut c = Conn::connect_raw(server.addr());
        for piece in PREFACE.chunks(split) {
            c.send(piece);
            std::thread::sleep(Duration::from_millis(2));
        }
        c.send(&h2::settings(&[]));
        let f = c.read_frame().expect("a frame");
        assert_eq!(f.ty, SETTINGS, "{f:?}");
        assert_eq!(f.flags, 0);
    }
}

/// HTTP/1.1 on the same port is untouched.
#[test]
fn http1_is_served_on_the_same_port() {
    let server = serve(|_| Hello);
    let mut c = client(server.addr());
    common::ok(&mut c);
}

/// Bytes that start like the preface and then differ are HTTP/1, all of
/// them: `P` + `OST ...` is a POST.
#[test]
fn a_partial_preface_that_turns_out_otherwise_is_http1_with_its_bytes_kept() {
    let server = serve(|_| common::handlers::Echo::new());
    let mut c = client(server.addr());
    c.send("P");
    std::thread::sleep(Duration::from_millis(20));
    c.send("OST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hi");
    // "PRI * HTTP/2.0\r\n" then other bytes: HTTP/1 (and a bad request).
    let mut c = client(server.addr());
    c.send("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    let res = c.response();
    assert!(res.status >= 400, "{}", res.status);
}

/// `Upgrade: h2c` is not honoured (RFC 9113 §3.1): the request is served
/// as HTTP/1.1, no `101`.
#[test]
fn upgrade_h2c_is_served_as_http1() {
    let server = serve(|_| Hello);
    let mut c = client(server.addr());
    c.send(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
         Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    );
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.version, "HTTP/1.1");
    assert_eq!(res.body_str(), "Hello, World!");
    common::ok(&mut c);
}

/// With HTTP/2 off, the preface is only a bad HTTP/1 request.
#[test]
fn with_http2_off_the_preface_is_http1() {
    let server = serve_with(|s| s.http1_only(), |_| Hello);
    let mut c = client(server.addr());
    c.stream().write_all(PREFACE).unwrap();
    let res = c.response();
    assert!(res.status >= 400, "{}", res.status);
    assert!(res.closes());
}

#[cfg(feature = "__tls")]
#[path = "common/tls_kit.rs"]
mod tls_kit;

#[cfg(feature = "__tls")]
mod tls {
    use super::*;

    use crate::tls_kit::{self, pki, serve_tls, TlsClient};
    use std::sync::Arc;

    fn client_config(ca: &tls_kit::Ca, alpn: &[&[u8]]) -> Arc<nextloop::tls::ClientConfig> {
        let mut config = (*tls_kit::client_config(ca)).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A client offering `h2` gets it by ALPN and speaks HTTP/2.
    #[test]
    fn alpn_h2_makes_a_tls_connection_http2() {
        let (ca, leaf) = pki();
        let server = serve_tls(&leaf);
        let config = client_config(&ca, &[b"h2", b"http/1.1"]);
        let mut tls = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
        assert_eq!(tls.conn().alpn_protocol(), Some(&b"h2"[..]));
        let stream = tls.reader.into_inner();
        let mut c = Conn::over(Box::new(stream));
        c.handshake(&[]);
        let res = c.get(1, "/");
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), "Hello, World!");
        let res = c.get(3, "/again");
        assert_eq!(res.body_str(), "Hello, World!");
    }

    /// ALPN `h2` and then no preface: a connection error, over TLS.
    #[test]
    fn alpn_h2_without_the_preface_is_a_protocol_error() {
        let (ca, leaf) = pki();
        let server = serve_tls(&leaf);
        let config = client_config(&ca, &[b"h2"]);
        let mut tls = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
        tls.send(common::get("/"));
        let stream = tls.reader.into_inner();
        let mut c = Conn::over(Box::new(stream));
        let (_, code) = c.goaway_and_close().expect("a GOAWAY");
        assert_eq!(code, h2::PROTOCOL_ERROR);
    }

    /// A client offering only `http/1.1` (or nothing) gets HTTP/1.1.
    #[test]
    fn a_tls_client_without_h2_gets_http1() {
        let (ca, leaf) = pki();
        let server = serve_tls(&leaf);
        for alpn in [&[&b"http/1.1"[..]][..], &[]] {
            let config = client_config(&ca, alpn);
            let mut tls = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
            assert_ne!(tls.conn().alpn_protocol(), Some(&b"h2"[..]));
            tls.send(common::get("/"));
            let res = tls.response();
            assert_eq!(res.status, 200);
        }
    }

    /// With HTTP/2 off, `h2` is not offered.
    #[test]
    fn with_http2_off_tls_does_not_offer_h2() {
        let (ca, leaf) = pki();
        let config = leaf.server_config();
        let server = serve_with(move |s| s.tls(config).http1_only(), |_| Hello);
        let config = client_config(&ca, &[b"h2", b"http/1.1"]);
        let mut tls = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
        assert_eq!(tls.conn().alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.send(common::get("/"));
        assert_eq!(tls.response().status, 200);
    }
}
