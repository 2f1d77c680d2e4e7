//! The client over real TLS on 127.0.0.1: `https://` against nextloop's
//! own TLS server and against a rustls server scripted here; certificate
//! verification failures, each with its own `Error`; a peer that is not
//! TLS; a close-delimited body with and without `close_notify`; a chunked
//! response split at every byte; a certificate larger than a TLS record;
//! the pool keyed on scheme, host and port; HTTP/2 chosen by ALPN.
#![cfg(any(feature = "tls", feature = "tls-ring"))]

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;
#[path = "common/tls_kit.rs"]
mod tls_kit;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use nextloop::client::{self, Error};
use nextloop::hypersync;
use nextloop::Version;

use common::handlers::{Gather, Seen};
use tls_kit::{pki, serve_tls, Ca, Leaf};

fn client_trusting(ca: &Ca) -> hypersync::Client {
    let native = client::Client::builder()
        .no_system_roots()
        .add_root(ca.der())
        .build()
        .unwrap();
    hypersync::Client::from(native)
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://localhost:{}{path}", addr.port())
}

#[test]
fn https_get_with_an_added_root_and_keep_alive() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let client = client_trusting(&ca);
    for _ in 0..5 {
        let mut res = client.get(&https(server.addr(), "/")).unwrap();
        assert_eq!(res.status(), 200);
        let mut body = String::new();
        res.read_to_string(&mut body).unwrap();
        assert_eq!(body, "Hello, World!");
    }
    // By IP address too (the certificate names 127.0.0.1).
    let mut res = client
        .get(&format!("https://127.0.0.1:{}/", server.addr().port()))
        .unwrap();
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "Hello, World!");
}

#[test]
fn the_pool_keeps_http_and_https_to_one_host_and_port_apart() {
    // The same port answers TLS: an http:// request to it must not reuse
    // the pooled TLS connection (and gets the plain-HTTP 400).
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let client = client_trusting(&ca);
    let res = client.get(&https(server.addr(), "/")).unwrap();
    assert_eq!(res.status(), 200);
    drop(res);
    let res = client
        .get(&format!("http://localhost:{}/", server.addr().port()))
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[test]
fn a_certificate_from_an_unknown_ca_is_unknown_issuer() {
    let (_, leaf) = pki();
    let server = serve_tls(&leaf);
    let other = Ca::new("someone else");
    let err = client_trusting(&other)
        .get(&https(server.addr(), "/"))
        .unwrap_err();
    assert!(matches!(err, Error::UnknownIssuer), "{err:?}");
    assert!(err.to_string().contains("trusted authority"), "{err}");
}

#[test]
fn a_certificate_for_another_name_is_name_mismatch() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf(&["other.test"]);
    let server = serve_tls(&leaf);
    let err = client_trusting(&ca)
        .get(&https(server.addr(), "/"))
        .unwrap_err();
    assert!(matches!(err, Error::NameMismatch), "{err:?}");
}

#[test]
fn an_expired_certificate_is_certificate_expired() {
    let ca = Ca::new("test CA");
    let leaf = ca.leaf_with(&["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let server = serve_tls(&leaf);
    let err = client_trusting(&ca)
        .get(&https(server.addr(), "/"))
        .unwrap_err();
    assert!(matches!(err, Error::CertificateExpired), "{err:?}");
}

#[test]
fn a_plain_http_server_is_not_tls() {
    let server = common::serve(|_| common::handlers::Hello);
    let ca = Ca::new("test CA");
    let err = client_trusting(&ca)
        .get(&https(server.addr(), "/"))
        .unwrap_err();
    assert!(matches!(err, Error::NotTls), "{err:?}");
}

#[test]
fn a_server_closing_during_the_handshake_is_a_handshake_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        // The whole ClientHello, so that closing sends a FIN, not a reset.
        let mut buf = [0; 5];
        sock.read_exact(&mut buf).unwrap();
        let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        let mut hello = vec![0; len];
        sock.read_exact(&mut hello).unwrap();
    });
    let ca = Ca::new("test CA");
    let err = client_trusting(&ca).get(&https(addr, "/")).unwrap_err();
    assert!(matches!(err, Error::Handshake(_)), "{err:?}");
    t.join().unwrap();
}

/// A rustls server for one connection: reads a request head, writes each
/// of `parts` as its own record, then ends with `close_notify` or not.
fn scripted(leaf: &Leaf, parts: Vec<Vec<u8>>, close_notify: bool) -> (SocketAddr, JoinHandle<()>) {
    let config = leaf.server_config();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(common::BOUND)).unwrap();
        let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
        let mut tls = BufReader::new(rustls::StreamOwned::new(conn, sock));
        let mut line = String::new();
        while tls.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let s = tls.get_mut();
        for part in parts {
            s.write_all(&part).unwrap();
            s.flush().unwrap();
        }
        if close_notify {
            s.conn.send_close_notify();
            let _ = s.conn.complete_io(&mut s.sock);
        }
        let _ = s.sock.shutdown(std::net::Shutdown::Both);
    });
    (addr, t)
}

#[test]
fn a_close_delimited_body_ends_cleanly_with_close_notify() {
    let (ca, leaf) = pki();
    let parts = vec![
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec(),
        b"all of ".to_vec(),
        b"it".to_vec(),
    ];
    let (addr, t) = scripted(&leaf, parts, true);
    let mut res = client_trusting(&ca).get(&https(addr, "/")).unwrap();
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "all of it");
    t.join().unwrap();
}

#[test]
fn a_close_delimited_body_without_close_notify_is_truncated() {
    let (ca, leaf) = pki();
    let parts = vec![
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec(),
        b"some of it".to_vec(),
    ];
    let (addr, t) = scripted(&leaf, parts, false);
    let mut res = client_trusting(&ca).get(&https(addr, "/")).unwrap();
    let mut body = Vec::new();
    let err = res.read_to_end(&mut body).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    t.join().unwrap();
}

#[test]
fn a_chunked_response_split_at_every_byte() {
    let (ca, leaf) = pki();
    let client = client_trusting(&ca);
    let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
    for cut in 1..raw.len() {
        let parts = vec![raw[..cut].to_vec(), raw[cut..].to_vec()];
        let (addr, t) = scripted(&leaf, parts, true);
        let mut res = client.get(&https(addr, "/")).unwrap();
        let mut body = String::new();
        res.read_to_string(&mut body).unwrap();
        assert_eq!(body, "helloabc", "cut at {cut}");
        t.join().unwrap();
    }
}

#[test]
fn a_certificate_larger_than_a_record_passes_both_ways() {
    // About 40 KiB of names: the Certificate message spans three records,
    // which the server encodes and the client joins.
    let ca = Ca::new("test CA");
    let mut names: Vec<String> = (0..1500)
        .map(|i| format!("name-{i:04}.padding.test"))
        .collect();
    names.push("localhost".into());
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let leaf = ca.leaf(&names);
    assert!(leaf.chain[0].len() > 32 * 1024, "{}", leaf.chain[0].len());
    let server = serve_tls(&leaf);
    let mut res = client_trusting(&ca)
        .get(&https(server.addr(), "/"))
        .unwrap();
    let mut body = String::new();
    res.read_to_string(&mut body).unwrap();
    assert_eq!(body, "Hello, World!");
}

/// nextloop's TLS server (ALPN `h2` and `http/1.1`) with [`Gather`].
fn gather_tls(leaf: &Leaf, n: usize) -> (nextloop::server::Listening, Seen) {
    let config = leaf.server_config();
    let (factory, seen) = Gather::factory(n);
    (
        common::serve_with(move |srv| srv.tls(config), factory),
        seen,
    )
}

/// GETs `/{tag}{i}` for `i` in `0..n`, all at once, and checks each body.
fn get_all_at_once(client: &client::Client, addr: SocketAddr, tag: &str, n: usize) {
    let (tx, rx) = mpsc::channel();
    for i in 0..n {
        let tx = tx.clone();
        let url = https(addr, &format!("/{tag}{i}"));
        let c = client.clone();
        std::thread::spawn(move || tx.send((i, client_kit::get(&c, &url))).unwrap());
    }
    for _ in 0..n {
        let (i, outcome) = rx.recv_timeout(2 * common::IO_TIMEOUT).expect("an outcome");
        let (status, body) = outcome.expect("a response");
        assert_eq!(status, 200);
        assert_eq!(body, format!("/{tag}{i}").as_bytes());
    }
}

#[test]
fn https_chooses_http2_by_alpn_and_http1_only_turns_it_off() {
    const N: usize = 5;
    let (ca, leaf) = pki();
    let (server, seen) = gather_tls(&leaf, N);
    let addr = server.addr();
    let builder = || {
        client::Client::builder()
            .no_system_roots()
            .add_root(ca.der())
    };

    // By default `h2` is offered, chosen, and the N exchanges (all in
    // flight together, or the server answers none) share one connection.
    get_all_at_once(&builder().build().unwrap(), addr, "h2-", N);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), N);
        for (remote, version, _) in seen.iter() {
            assert_eq!(*remote, seen[0].0, "every request on one connection");
            assert_eq!(*version, Version::Http2);
        }
    }

    // With `http1_only` the same server speaks HTTP/1.1: one exchange per
    // connection, so N connections (within `max_per_host`).
    get_all_at_once(&builder().http1_only().build().unwrap(), addr, "h1-", N);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2 * N);
    let h1 = &seen[N..];
    assert!(h1.iter().all(|s| s.1 == Version::Http11), "{h1:?}");
    let mut remotes: Vec<_> = h1.iter().map(|s| s.0).collect();
    remotes.sort();
    remotes.dedup();
    assert_eq!(remotes.len(), N, "one connection per exchange");
}
