//! The server over real TLS on 127.0.0.1: keep-alive, pipelining, chunked
//! bodies split at every byte, a handshake fed byte by byte, the handshake
//! under the head timeout, garbage and plain HTTP on the TLS port, a peer
//! that closes without `close_notify`, SNI with two certificates, what a
//! handler sees (`Request::tls`), `Next::remove()` over TLS, and graceful
//! shutdown with a TLS request in flight. Certificates are made here with
//! rcgen; the client is rustls in-process.
#![cfg(any(feature = "tls", feature = "tls-ring"))]

mod common;
#[path = "common/sockets.rs"]
mod sockets;
#[path = "common/tls_kit.rs"]
mod tls_kit;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nextloop::server::{Handler, Request, Response, Server};
use nextloop::{Detached, Next};

use common::handlers::{Echo, Hello};
use common::{get, serve_with, BOUND};
use tls_kit::{client_config, pki, serve_tls, TlsClient};

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let config = client_config(&ca);
    let mut c = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
    assert_eq!(c.conn().alpn_protocol(), Some(&b"http/1.1"[..]));
    for _ in 0..20 {
        c.send(get("/"));
        let res = c.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("text/plain"));
        assert_eq!(res.body_str(), "Hello, World!");
        assert!(!res.closes());
    }
}

#[test]
fn pipelined_requests_in_one_record_are_answered_in_order() {
    let (ca, leaf) = pki();
    let server = serve_with(
        {
            let config = leaf.server_config();
            move |s| s.tls(config)
        },
        |_| PathEcho::default(),
    );
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    let mut all = String::new();
    for i in 0..40 {
        all.push_str(&get(&format!("/{i}")));
    }
    c.send(all);
    for i in 0..40 {
        let res = c.response();
        assert_eq!(res.status, 200);
        assert_eq!(res.body_str(), format!("/{i}"));
    }
}

#[test]
fn chunked_request_and_response_split_at_every_byte() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| Echo::new());
    let client = client_config(&ca);
    let raw = b"POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
    for cut in 1..raw.len() {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        // Two writes, two records: the server sees the message cut here.
        c.send(&raw[..cut]);
        c.send(&raw[cut..]);
        let res = c.response();
        assert_eq!(res.status, 200, "cut at {cut}");
        assert_eq!(
            res.header("transfer-encoding"),
            Some("chunked"),
            "cut at {cut}"
        );
        assert_eq!(res.body_str(), "helloabc", "cut at {cut}");
    }
}

#[test]
fn a_handshake_fed_byte_by_byte_completes() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let config = client_config(&ca);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(BOUND)).unwrap();
    sock.set_nodelay(true).unwrap();
    let mut request_sent = false;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !got.ends_with(b"Hello, World!") {
        assert!(Instant::now() < deadline, "no response; got {got:?}");
        if !conn.is_handshaking() && !request_sent {
            conn.writer().write_all(get("/").as_bytes()).unwrap();
            request_sent = true;
        }
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        for b in &out {
            // One byte per segment (TCP_NODELAY, a pause between).
            sock.write_all(std::slice::from_ref(b)).unwrap();
            std::thread::sleep(Duration::from_micros(50));
        }
        if conn.wants_read() && out.is_empty() {
            let mut buf = [0; 4096];
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "server closed; got {got:?}");
            conn.read_tls(&mut &buf[..n]).unwrap();
            conn.process_new_packets().unwrap();
            let _ = conn.reader().read_to_end(&mut got);
        }
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_closed_at_the_head_timeout() {
    let (_, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(
        move |s| {
            s.tls(config)
                .head_timeout(Duration::from_millis(300))
                .keep_alive_timeout(Duration::from_secs(30))
        },
        |_| Hello,
    );
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(BOUND)).unwrap();
    // Half a record header, then nothing.
    sock.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let start = Instant::now();
    let mut buf = [0; 1024];
    let mut got = Vec::new();
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed: {e}"),
        }
    }
    assert!(
        start.elapsed() < BOUND,
        "closed only after {:?}",
        start.elapsed()
    );
    // No plaintext 408 leaks out of a connection that never had a session.
    assert!(!got.starts_with(b"HTTP/"), "got {got:?}");
}

#[test]
fn garbage_instead_of_a_client_hello_costs_only_that_connection() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let config = client_config(&ca);
    for garbage in [
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
        &[0x00; 64][..],
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        &[0x17, 0x03, 0x03, 0x00, 0x02, 0, 0][..],
    ] {
        let mut sock = TcpStream::connect(server.addr()).unwrap();
        sock.set_read_timeout(Some(BOUND)).unwrap();
        sock.write_all(garbage).unwrap();
        let mut got = Vec::new();
        let _ = sock.read_to_end(&mut got);
        // A TLS alert record (content type 21), or nothing; never HTTP.
        assert!(got.is_empty() || got[0] == 21, "for {garbage:?}: {got:?}");
    }
    // The server is fine.
    let mut c = TlsClient::connect(server.addr(), &config, "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().status, 200);
}

#[test]
fn plain_http_to_the_tls_port_gets_a_short_400_in_clear() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(BOUND)).unwrap();
    sock.write_all(get("/").as_bytes()).unwrap();
    let mut got = Vec::new();
    sock.read_to_end(&mut got).unwrap();
    let got = String::from_utf8(got).unwrap();
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    assert!(got.contains("Connection: close\r\n"), "{got}");
    assert!(got.ends_with("use an https:// URL.\n"), "{got}");
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().status, 200);
}

#[test]
fn a_client_closing_without_close_notify_still_gets_its_answers() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(format!("{}{}", get("/"), get("/")));
    // FIN with no close_notify: the requests before it are still served.
    c.stream().sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.response().status, 200);
    assert_eq!(c.response().status, 200);
    // Then the server closes, with close_notify: a clean end.
    assert_eq!(c.read_to_close().unwrap(), b"");
}

#[test]
fn connection_close_sends_close_notify_before_the_fin() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let res = c.response();
    assert_eq!(res.status, 200);
    assert!(res.closes());
    // rustls's reader says UnexpectedEof for a FIN without close_notify.
    assert_eq!(c.read_to_close().unwrap(), b"");
}

/// Answers with the SNI name and ALPN protocol the handshake settled.
struct WhoAmI(String);

impl Handler for WhoAmI {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.0 = match req.tls() {
            Some(tls) => format!(
                "sni={} alpn={} version={:?}",
                tls.server_name().unwrap_or("-"),
                tls.alpn()
                    .map_or("-".into(), |a| String::from_utf8_lossy(a).into_owned()),
                tls.version().unwrap(),
            ),
            None => "clear".into(),
        };
        Next::write()
    }

    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(self.0.as_bytes());
        Next::end()
    }
}

#[test]
fn sni_picks_one_of_two_certificates_and_the_handler_sees_it() {
    let ca = tls_kit::Ca::new("two names CA");
    let a = ca.leaf(&["a.test"]);
    let b = ca.leaf(&["b.test"]);
    let provider = nextloop::tls::provider();
    let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
    for (name, leaf) in [("a.test", &a), ("b.test", &b)] {
        let key = provider.key_provider.load_private_key(leaf.key()).unwrap();
        let certified = rustls::sign::CertifiedKey::new(leaf.chain.clone(), key);
        resolver.add(name, certified).unwrap();
    }
    let config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // No ALPN in the config: the server adds http/1.1.
    let config = Arc::new(config);
    let server = serve_with(move |s| s.tls(config), |_| WhoAmI(String::new()));
    let client = client_config(&ca);
    for name in ["a.test", "b.test"] {
        let mut c = TlsClient::connect(server.addr(), &client, name).unwrap();
        let leaf = if name == "a.test" { &a } else { &b };
        let presented = c.conn().peer_certificates().unwrap()[0].clone();
        assert_eq!(presented, leaf.chain[0], "{name}");
        c.send(get("/"));
        let body = c.response().body_str().to_string();
        assert!(
            body.starts_with(&format!("sni={name} alpn=http/1.1 version=TLSv1_")),
            "{body}"
        );
    }
    // A name the resolver does not know: the handshake fails, the server
    // goes on.
    assert!(TlsClient::connect(server.addr(), &client, "c.test").is_err());
    let mut c = TlsClient::connect(server.addr(), &client, "a.test").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().status, 200);
}

#[test]
fn request_tls_is_none_in_clear_and_sni_absent_for_an_ip() {
    let (ca, leaf) = pki();
    let server = common::serve(|_| WhoAmI(String::new()));
    let mut c = common::client(server.addr());
    c.send(get("/"));
    assert_eq!(c.response().body_str(), "clear");
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| WhoAmI(String::new()));
    // rustls sends no SNI for an IP address.
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "127.0.0.1").unwrap();
    c.send(get("/"));
    assert!(c.response().body_str().starts_with("sni=- alpn=http/1.1"));
}

#[test]
fn pem_files_load_with_tls_pem() {
    let (ca, leaf) = pki();
    let dir = std::env::temp_dir().join(format!("nextloop-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls_pem(&cert, &key)
        .unwrap()
        .handle(|_| Hello)
        .unwrap();
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().body_str(), "Hello, World!");
    // A key file with no key in it: a clear error naming the file.
    let err = match Server::bind("127.0.0.1:0").unwrap().tls_pem(&cert, &cert) {
        Ok(_) => panic!("a certificate is not a key"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("cert.pem"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes the connection in `on_request`, telling whether `on_remove`
/// ran.
struct Remover(mpsc::Sender<&'static str>);

impl Handler for Remover {
    fn on_request(&mut self, _: Request<'_>) -> Next {
        Next::remove()
    }
    fn on_response(&mut self, _: &mut Response<'_>) -> Next {
        Next::end()
    }
    fn on_remove(self, _conn: Detached) {
        let _ = self.0.send("on_remove");
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

#[test]
fn next_remove_over_tls_closes_without_a_handover() {
    let (ca, leaf) = pki();
    let (tx, rx) = mpsc::channel();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), move |_| Remover(tx.clone()));
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(rx.recv_timeout(BOUND).unwrap(), "dropped");
    assert!(rx.try_recv().is_err(), "no on_remove over TLS");
    // Closed with close_notify: a clean end, no response.
    assert_eq!(c.read_to_close().unwrap(), b"");
}

#[test]
fn an_idle_connection_closed_at_its_keep_alive_timeout_says_close_notify() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(
        move |s| s.tls(config).keep_alive_timeout(Duration::from_millis(200)),
        |_| Hello,
    );
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().status, 200);
    let start = Instant::now();
    assert_eq!(c.read_to_close().unwrap(), b"");
    assert!(start.elapsed() < BOUND);
}

/// Answers after a delay given by a channel: a request in flight.
struct Slow(Option<mpsc::Receiver<()>>, nextloop::Control);

impl Handler for Slow {
    fn on_request(&mut self, _: Request<'_>) -> Next {
        let rx = self.0.take().unwrap();
        let control = self.1.clone();
        std::thread::spawn(move || {
            let _ = rx.recv_timeout(BOUND);
            let _ = control.ready(Next::write());
        });
        Next::wait()
    }
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(b"late");
        Next::end()
    }
}

#[test]
fn shutdown_lets_a_tls_request_in_flight_finish() {
    let (ca, leaf) = pki();
    let (go_tx, go_rx) = mpsc::channel();
    let go_rx = Arc::new(std::sync::Mutex::new(Some(go_rx)));
    let config = leaf.server_config();
    let server = serve_with(
        move |s| s.tls(config),
        move |control| Slow(go_rx.lock().unwrap().take(), control),
    );
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    std::thread::sleep(Duration::from_millis(100));
    server.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    go_tx.send(()).unwrap();
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "late");
    assert!(res.closes());
    assert_eq!(c.read_to_close().unwrap(), b"");
    server.join().unwrap();
}

/// Answers with the request's path.
#[derive(Default)]
struct PathEcho(String);

impl Handler for PathEcho {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.0 = req.path().to_string();
        Next::write()
    }
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.body(self.0.as_bytes());
        Next::end()
    }
}

#[test]
fn hypersync_requests_see_the_tls_handshake_too() {
    let (ca, leaf) = pki();
    let native = Server::bind("127.0.0.1:0")
        .unwrap()
        .tls(leaf.server_config());
    let server = nextloop::hypersync::Server::from(native)
        .threads(2)
        .handle(|req, res| {
            let tls = req.tls().expect("a TLS request");
            let alpn = String::from_utf8_lossy(tls.alpn().unwrap()).into_owned();
            let _ = write!(res, "{} {alpn}", tls.server_name().unwrap());
        })
        .unwrap();
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(get("/"));
    assert_eq!(c.response().body_str(), "localhost http/1.1");
}

#[test]
fn expect_100_continue_over_tls() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| Echo::new());
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.response();
    assert_eq!(interim.status, 100);
    c.send("hello");
    let res = c.response();
    assert_eq!(res.status, 200);
    assert_eq!(res.body_str(), "hello");
}

#[test]
fn strict_framing_over_tls_answers_400_then_closes_cleanly() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    let res = c.response();
    assert_eq!(res.status, 400);
    assert!(res.closes());
    assert_eq!(c.read_to_close().unwrap(), b"");
}

#[test]
fn workers_each_serve_tls() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config).workers(2), |_| Hello);
    let client = client_config(&ca);
    for _ in 0..8 {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        c.send(get("/"));
        assert_eq!(c.response().body_str(), "Hello, World!");
    }
}

// ---- Strict HTTP/1 meets TLS -------------------------------------------

/// Sends `raw` in two records cut at every byte and expects one `status`
/// answer, then a clean end (close_notify). The second part may meet a
/// connection the early verdict already closed: that write may fail.
fn refused_at_every_cut(raw: &[u8], status: u16, configure: fn(Server) -> Server) {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| configure(s.tls(config)), |_| PathEcho::default());
    let client = client_config(&ca);
    for cut in 1..raw.len() {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        c.send(&raw[..cut]);
        let s = c.stream();
        let _ = s.write_all(&raw[cut..]).and_then(|()| s.flush());
        let res = c.response();
        assert_eq!(res.status, status, "cut at {cut}");
        assert!(res.closes(), "cut at {cut}");
        assert_eq!(c.read_to_close().unwrap(), b"", "cut at {cut}");
    }
}

#[test]
fn a_bare_lf_over_tls_is_refused_and_closed_cleanly_at_every_cut() {
    refused_at_every_cut(b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400, |s| s);
}

#[test]
fn a_bad_host_over_tls_is_refused_and_closed_cleanly_at_every_cut() {
    refused_at_every_cut(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, |s| s);
}

#[test]
fn a_body_over_the_limit_over_tls_gets_413_and_the_next_request_is_not_run() {
    refused_at_every_cut(
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890GET /b HTTP/1.1\r\nHost: x\r\n\r\n",
        413,
        |s| s.max_body_size(10),
    );
}

#[test]
fn head_then_get_pipelined_over_tls() {
    let (ca, leaf) = pki();
    let server = serve_tls(&leaf);
    let mut c = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    c.send(format!("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n{}", get("/")));
    let head = common::read_response(&mut c.reader, true).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("13"));
    assert_eq!(head.body_str(), "");
    assert_eq!(c.response().body_str(), "Hello, World!");
}

/// `/rm` is dropped with `Next::remove()`; anything else gets its path.
#[derive(Default)]
struct RemoveOnRm(PathEcho);

impl Handler for RemoveOnRm {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        if req.path() == "/rm" {
            return Next::remove();
        }
        self.0.on_request(req)
    }
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        self.0.on_response(res)
    }
}

#[test]
fn next_remove_behind_pipelined_requests_over_tls_flushes_their_answers_first() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| RemoveOnRm::default());
    let client = client_config(&ca);
    for _ in 0..5 {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        c.send(format!("{}{}{}", get("/a"), get("/b"), get("/rm")));
        assert_eq!(c.response().body_str(), "/a");
        assert_eq!(c.response().body_str(), "/b");
        assert_eq!(c.read_to_close().unwrap(), b"");
    }
}

#[test]
fn shutdown_closes_a_connection_mid_handshake_at_once() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(
        move |s| {
            s.tls(config)
                .head_timeout(Duration::from_secs(30))
                .shutdown_grace(Duration::from_secs(30))
        },
        |_| Hello,
    );
    // One that sent half a record header, one that sent its ClientHello
    // and stopped reading; another finishes and is idle.
    let mut half = TcpStream::connect(server.addr()).unwrap();
    half.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut hello = TlsClient::start(server.addr(), &client_config(&ca), "localhost");
    {
        let s = hello.stream();
        s.conn.write_tls(&mut s.sock).unwrap();
    }
    let mut idle = TlsClient::connect(server.addr(), &client_config(&ca), "localhost").unwrap();
    idle.send(get("/"));
    assert_eq!(idle.response().status, 200);
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    server.shutdown();
    server.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for connections with no request",
        start.elapsed()
    );
    half.set_read_timeout(Some(BOUND)).unwrap();
    let mut buf = [0; 64];
    assert!(matches!(half.read(&mut buf), Ok(0) | Err(_)));
}

/// `/big`: 1 MiB in 16 KiB writes with its length; `/rm`:
/// `Next::remove()`; anything else: its path.
#[derive(Default)]
struct BigThenRemove {
    path: String,
    left: usize,
    /// `/big?N`: N bytes instead.
    size: Option<usize>,
}

impl Handler for BigThenRemove {
    fn on_request(&mut self, req: Request<'_>) -> Next {
        self.path = req.path().to_string();
        self.size = req.query().and_then(|q| q.parse().ok());
        match req.path() {
            "/rm" => Next::remove(),
            _ => Next::write(),
        }
    }
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        if self.path != "/big" {
            res.body(self.path.as_bytes());
            return Next::end();
        }
        self.left = self.size.unwrap_or(1 << 20);
        res.set_content_length(self.left as u64);
        Next::write()
    }
    fn on_response_writable(&mut self, body: &mut nextloop::Encoder<'_>) -> Next {
        while self.left > 0 {
            match body.write(&[b'b'; 16 * 1024][..self.left.min(16 * 1024)]) {
                Ok(n) => self.left -= n,
                Err(_) => return Next::write(),
            }
        }
        Next::end()
    }
}

#[test]
fn a_large_response_goes_out_whole_before_a_remove_or_a_400_behind_it_over_tls() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| BigThenRemove::default());
    let client = client_config(&ca);
    for last in [
        &b"GET /rm HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    ] {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        let mut all = get("/big").into_bytes();
        all.extend_from_slice(get("/a").as_bytes());
        all.extend_from_slice(last);
        c.send(all);
        // Read slowly at first: the server's output backs up.
        std::thread::sleep(Duration::from_millis(200));
        let big = c.response();
        assert_eq!(big.status, 200);
        assert_eq!(big.body.len(), 1 << 20);
        assert_eq!(c.response().body_str(), "/a");
        let rest = c.read_to_close().unwrap();
        if last.starts_with(b"GET /rm") {
            assert_eq!(rest, b"");
        } else {
            assert!(
                rest.starts_with(b"HTTP/1.1 400"),
                "{:?}",
                String::from_utf8_lossy(&rest)
            );
        }
    }
}

#[test]
fn an_unknown_expectation_over_tls_gets_417_at_every_cut() {
    refused_at_every_cut(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi",
        417,
        |s| s,
    );
}

#[test]
fn a_head_too_large_over_tls_gets_431_at_every_cut() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
    raw.extend_from_slice(&[b'v'; 1024]);
    raw.extend_from_slice(b"\r\n\r\n");
    refused_at_every_cut(&raw, 431, |s| s.max_head_size(1024));
}

/// Sends `raw` over an established TLS session from another thread (all
/// of it encrypted beforehand), so that the answer is read while a large
/// body is still on its way.
fn send_in_background(c: &mut TlsClient, raw: &[u8]) -> std::thread::JoinHandle<()> {
    let s = c.stream();
    s.conn.set_buffer_limit(None);
    s.conn.writer().write_all(raw).unwrap();
    let mut records = Vec::new();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut records).unwrap();
    }
    let mut sock = s.sock.try_clone().unwrap();
    std::thread::spawn(move || {
        // The server may close before taking it all.
        let _ = sock.write_all(&records);
    })
}

#[test]
fn a_large_body_over_the_limit_over_tls_gets_its_413_before_the_close() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config).max_body_size(10), |_| Echo::new());
    let client = client_config(&ca);
    let body = vec![b'x'; 4 << 20];
    let declared = [
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.clone(),
    ]
    .concat();
    let chunked = [
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        )
        .into_bytes(),
        body,
        b"\r\n0\r\n\r\n".to_vec(),
    ]
    .concat();
    for raw in [declared, chunked] {
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        let writer = send_in_background(&mut c, &raw);
        let res = c.response();
        assert_eq!(res.status, 413);
        assert!(res.closes());
        let _ = c.read_to_close();
        writer.join().unwrap();
    }
}

#[test]
fn a_remove_right_behind_a_large_response_over_tls_loses_none_of_it() {
    let (ca, leaf) = pki();
    let config = leaf.server_config();
    let server = serve_with(move |s| s.tls(config), |_| BigThenRemove::default());
    // Little room in the kernel: the output backs up into the TLS layer.
    sockets::set_listener_send_buffer(server.addr(), 4096);
    let client = client_config(&ca);
    for extra in [0, 1000, 5000, 9000, 13000, 16000] {
        let size = (1 << 20) + extra;
        let mut c = TlsClient::connect(server.addr(), &client, "localhost").unwrap();
        c.send(format!("{}{}", get(&format!("/big?{size}")), get("/rm")));
        // Not read yet: the server's output backs up behind the socket.
        std::thread::sleep(Duration::from_millis(200));
        let big = c.response();
        assert_eq!(big.status, 200, "size {size}");
        assert_eq!(big.body.len(), size, "size {size}");
        // Nothing after it. (Its close_notify is one non-blocking write
        // when the connection goes, which a full socket may refuse.)
        match c.read_to_close() {
            Ok(rest) => assert_eq!(rest, b"", "size {size}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "size {size}"),
        }
    }
}
