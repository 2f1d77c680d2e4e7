//! The client over HTTP/2 (h2c with prior knowledge) against nextloop's
//! own server: many exchanges multiplexed on one connection, bodies both
//! ways past the flow-control windows, the pool's limits; and
//! `examples/client.rs --http2-prior-knowledge`.

#[path = "common/client_kit.rs"]
mod client_kit;
mod common;

#[path = "../examples/client.rs"]
#[allow(dead_code)]
mod client_example;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc;

use client_kit::{get, Outcome};
use common::handlers::{Gather, Seen};
use common::{serve, IO_TIMEOUT};
use nextloop::client::{self, Client, Handler};
use nextloop::server::{self, Response};
use nextloop::{Decoder, Encoder, Next, Version};

fn gather_server(n: usize) -> (nextloop::server::Listening, Seen) {
    let (factory, seen) = Gather::factory(n);
    (serve(factory), seen)
}

fn h2_client(addr: SocketAddr) -> Client {
    Client::builder()
        .http2_prior_knowledge(&format!("http://{addr}"))
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn many_requests_in_flight_at_once_share_one_connection() {
    const N: usize = 20;
    let (server, seen) = gather_server(N);
    let addr = server.addr();
    let client = h2_client(addr);
    let (tx, rx) = mpsc::channel();
    for i in 0..N {
        let tx = tx.clone();
        let url = format!("http://{addr}/r{i}");
        let c = client.clone();
        std::thread::spawn(move || tx.send((i, get(&c, &url))).unwrap());
    }
    let mut got = 0;
    for _ in 0..N {
        let (i, outcome) = rx.recv_timeout(2 * IO_TIMEOUT).expect("an outcome");
        let (status, body) = outcome.expect("a response");
        assert_eq!(status, 200);
        assert_eq!(body, format!("/r{i}").as_bytes());
        got += 1;
    }
    assert_eq!(got, N);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), N);
    let first = seen[0].0;
    for (remote, version, _) in seen.iter() {
        assert_eq!(*remote, first, "every request on one connection");
        assert_eq!(*version, Version::Http2);
    }
}

/// The example sends its URLs at once (the server answers only when all
/// three are in), over one connection, and writes the bodies in order.
#[test]
fn the_client_example_multiplexes_its_urls_over_one_connection() {
    let (server, seen) = gather_server(3);
    let addr = server.addr();
    let mut args = vec!["--http2-prior-knowledge".to_string()];
    args.extend(["/a", "/b", "/c"].map(|p| format!("http://{addr}{p}")));
    let mut out = Vec::new();
    let code = client_example::run(args, &mut out);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    assert_eq!(out, b"/a/b/c");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.0 == seen[0].0 && s.1 == Version::Http2));
}

#[test]
fn requests_beyond_the_stream_limit_wait_for_a_stream_on_the_same_connection() {
    // The client allows 4 streams: 12 requests go 4 at a time, on one
    // connection (the server answers each group of 4 once it is whole).
    let (server, seen) = gather_server(4);
    let addr = server.addr();
    let client = Client::builder()
        .http2_prior_knowledge(&format!("http://{addr}"))
        .unwrap()
        .http2_max_streams(4)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..12 {
        client
            .request(
                &format!("http://{addr}/q{i}"),
                client_kit::Collect::new("GET", &tx),
            )
            .unwrap();
    }
    for _ in 0..12 {
        let outcome: Outcome = rx.recv_timeout(2 * IO_TIMEOUT).expect("an outcome");
        assert_eq!(outcome.expect("a response").0, 200);
    }
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.0 == seen[0].0), "one connection");
}

/// What an [`Upload`] reports: status, version and body, or what went
/// wrong.
type Uploaded = Result<(u16, Version, Vec<u8>), String>;

/// Sends `body` (with its length, or chunked-style without) and collects
/// the response.
struct Upload {
    body: Vec<u8>,
    sent: usize,
    with_length: bool,
    status: u16,
    version: Option<Version>,
    got: Vec<u8>,
    done: mpsc::Sender<Uploaded>,
}

impl Handler for Upload {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        req.set_method("POST");
        if self.with_length {
            req.set_content_length(self.body.len() as u64);
        }
        // Full duplex: the echo comes back while the body goes out (the
        // windows allow neither side to get far ahead of the other).
        Next::read_and_write()
    }

    fn on_request_writable(&mut self, enc: &mut Encoder<'_>) -> Next {
        use std::io::Write;
        while self.sent < self.body.len() {
            match enc.write(&self.body[self.sent..]) {
                Ok(0) => return Next::read_and_write(),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Next::read_and_write()
                }
                Err(e) => panic!("{e}"),
            }
        }
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        self.status = res.status();
        self.version = Some(res.version());
        self.next()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 8192];
        loop {
            match body.read(&mut buf) {
                Ok(0) => {
                    let got = std::mem::take(&mut self.got);
                    let _ = self
                        .done
                        .send(Ok((self.status, self.version.unwrap(), got)));
                    return Next::end();
                }
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(_) => return self.next(),
            }
        }
    }

    fn on_error(&mut self, err: client::Error) -> Next {
        let _ = self.done.send(Err(err.to_string()));
        Next::end()
    }
}

impl Upload {
    /// From the response side: read, and write on while the body is not
    /// all out.
    fn next(&self) -> Next {
        if self.sent < self.body.len() {
            Next::read_and_write()
        } else {
            Next::read()
        }
    }
}

#[test]
fn bodies_larger_than_every_window_go_both_ways_concurrently() {
    const STREAMS: usize = 4;
    let server = serve(|_| common::handlers::Echo::new());
    let addr = server.addr();
    let client = h2_client(addr);
    let (tx, rx) = mpsc::channel();
    // 1 MiB each way per stream, 4 streams at once: far past the 64 KiB
    // stream windows and the connection window both sides start with.
    let bodies: Vec<Vec<u8>> = (0..STREAMS as u8)
        .map(|k| {
            (0..1u32 << 20)
                .map(|i: u32| (i as u8) ^ k.wrapping_mul(31))
                .collect()
        })
        .collect();
    for (k, body) in bodies.iter().enumerate() {
        client
            .request(
                &format!("http://{addr}/up"),
                Upload {
                    body: body.clone(),
                    sent: 0,
                    with_length: k % 2 == 0,
                    status: 0,
                    version: None,
                    got: Vec::new(),
                    done: tx.clone(),
                },
            )
            .unwrap();
    }
    let mut results = Vec::new();
    for _ in 0..STREAMS {
        let r = rx.recv_timeout(4 * IO_TIMEOUT).expect("an outcome");
        results.push(r.expect("a response"));
    }
    for (status, version, got) in results {
        assert_eq!(status, 200);
        assert_eq!(version, Version::Http2);
        assert!(
            bodies.contains(&got),
            "an echo of one of the bodies ({} bytes)",
            got.len()
        );
    }
}

#[test]
fn head_and_no_content_responses_have_no_body() {
    struct NoBody;
    impl server::Handler for NoBody {
        fn on_response(&mut self, res: &mut Response<'_>) -> Next {
            res.set_status(204);
            Next::end()
        }
    }
    let server = serve(|_| NoBody);
    let client = h2_client(server.addr());
    let url = format!("http://{}/", server.addr());
    let (status, body) = get(&client, &url).expect("a response");
    assert_eq!((status, body.len()), (204, 0));
    let server = serve(|_| common::handlers::Hello);
    let client = h2_client(server.addr());
    let url = format!("http://{}/", server.addr());
    let (tx, rx) = mpsc::channel();
    client
        .request(&url, client_kit::Collect::new("HEAD", &tx))
        .unwrap();
    let (status, body) = rx.recv_timeout(IO_TIMEOUT).unwrap().expect("a response");
    assert_eq!((status, body.len()), (200, 0));
    let (status, body) = get(&client, &url).expect("a response");
    assert_eq!((status, &body[..]), (200, &b"Hello, World!"[..]));
}

#[test]
fn the_blocking_client_speaks_http2_unchanged() {
    let server = serve(|_| common::handlers::Hello);
    let addr = server.addr();
    let client = nextloop::hypersync::Client::from(h2_client(addr));
    for _ in 0..3 {
        let mut res = client.get(&format!("http://{addr}/")).expect("a response");
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), Version::Http2);
        let mut body = String::new();
        res.read_to_string(&mut body).unwrap();
        assert_eq!(body, "Hello, World!");
    }
    let res = client
        .post(&format!("http://{addr}/"), b"data".to_vec())
        .expect("a response");
    assert_eq!(res.status(), 200);
}

/// Sends GET `url/<chain>-<left>`; once the response has ended, its
/// handler sends the next of its chain itself, from the client's loop
/// thread (no wake-up is needed there: the loop takes such requests before
/// it sleeps).
struct Chain {
    client: Client,
    base: String,
    chain: usize,
    left: usize,
    body: Vec<u8>,
    done: mpsc::Sender<Result<Vec<u8>, String>>,
}

impl Chain {
    fn send(self) {
        let url = format!("{}/{}-{}", self.base, self.chain, self.left);
        let client = self.client.clone();
        client.request(&url, self).unwrap();
    }
}

impl Handler for Chain {
    fn on_request(&mut self, _req: &mut client::Request<'_>) -> Next {
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        assert_eq!(res.status(), 200);
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 64];
        match body.read(&mut buf) {
            Ok(0) => {
                let _ = self.done.send(Ok(std::mem::take(&mut self.body)));
                if self.left > 1 {
                    Chain {
                        client: self.client.clone(),
                        base: self.base.clone(),
                        chain: self.chain,
                        left: self.left - 1,
                        body: Vec::new(),
                        done: self.done.clone(),
                    }
                    .send();
                }
                Next::end()
            }
            Ok(n) => {
                self.body.extend_from_slice(&buf[..n]);
                Next::read()
            }
            Err(_) => Next::read(),
        }
    }

    fn on_error(&mut self, err: client::Error) -> Next {
        let _ = self.done.send(Err(err.to_string()));
        Next::end()
    }
}

/// Eight chains of requests, each request sent by its predecessor's
/// handler on the loop thread; the server answers only once eight are in
/// at once, so every round needs all eight successors sent without any
/// wake-up from outside. All on one connection.
#[test]
fn requests_sent_from_handlers_on_the_loop_thread_go_out_without_a_wake_up() {
    const CHAINS: usize = 8;
    const ROUNDS: usize = 10;
    let (server, seen) = gather_server(CHAINS);
    let addr = server.addr();
    let client = h2_client(addr);
    let (tx, rx) = mpsc::channel();
    for chain in 0..CHAINS {
        Chain {
            client: client.clone(),
            base: format!("http://{addr}"),
            chain,
            left: ROUNDS,
            body: Vec::new(),
            done: tx.clone(),
        }
        .send();
    }
    let mut bodies = Vec::new();
    for _ in 0..CHAINS * ROUNDS {
        let got = rx
            .recv_timeout(2 * IO_TIMEOUT)
            .expect("every round answered");
        bodies.push(String::from_utf8(got.expect("a response")).unwrap());
    }
    bodies.sort();
    let mut expected: Vec<String> = (0..CHAINS)
        .flat_map(|c| (1..=ROUNDS).map(move |l| format!("/{c}-{l}")))
        .collect();
    expected.sort();
    assert_eq!(bodies, expected);
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.0 == seen[0].0), "one connection");
}
