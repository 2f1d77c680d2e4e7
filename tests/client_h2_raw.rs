//! The HTTP/2 client (h2c with prior knowledge) against raw servers that
//! speak frames by hand: GOAWAY and RST_STREAM in the middle of
//! exchanges, flow-control windows far smaller than the bodies, a server
//! that never acknowledges our SETTINGS, HPACK table changes, header
//! blocks at and past the client's limits, a server that allows one
//! stream at a time, responses without a valid `:status`, and PING
//! keep-alive against a server that answers and one that does not.
//!
//! Each raw server is a std `TcpListener` on 127.0.0.1:0, one thread per
//! connection ([`ServerConn`] keeps the books: windows both ways — a
//! client that sends past its window fails an assertion there — streams
//! open, requests as they arrive). Server threads are joined at the end
//! of each test, so their assertions count. Every read is bounded (10 s),
//! every loop is bounded, and no test sleeps to order events: frame
//! exchanges (a PING round trip, a signal from the test) do that.

mod common;
#[path = "common/h2.rs"]
mod h2;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::IO_TIMEOUT;
use h2::*;
use nextloop::client::{self, Client, Error, Handler};
use nextloop::{Decoder, Encoder, Next};

// ---- the raw server -------------------------------------------------------

/// A raw HTTP/2 server: each accepted connection is served by
/// `serve(stream, index)` on a thread of its own (`index` counts
/// connections from 0).
struct RawServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

fn raw_server(serve: impl Fn(TcpStream, usize) + Send + Sync + 'static) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let (count, list) = (Arc::clone(&accepted), Arc::clone(&threads));
    let serve = Arc::new(serve);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let i = count.fetch_add(1, Ordering::SeqCst);
            let serve = Arc::clone(&serve);
            let t = thread::spawn(move || serve(stream, i));
            list.lock().unwrap().push(t);
        }
    });
    RawServer {
        addr,
        accepted,
        threads,
    }
}

impl RawServer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits for every connection's thread (call it once the client is
    /// dropped, so that each sees its connection close) and passes on
    /// the first panic: a raw server's assertion fails the test.
    fn join(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap());
        for t in threads {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// A GOAWAY's last id and code.
type Goaway = (u32, u32);

/// What a raw server's threads and the test share.
type Shared<T> = Arc<Mutex<T>>;

/// What the raw servers saw: (connection, stream, method, path, body).
type Log = Arc<Mutex<Vec<(usize, u32, String, String, Vec<u8>)>>>;

fn record(log: &Log, conn: usize, req: &ServerRequest) {
    log.lock().unwrap().push((
        conn,
        req.id,
        req.method().to_string(),
        req.path().to_string(),
        req.body.clone(),
    ));
}

/// The paths the raw servers saw on connection `conn`, in stream order.
fn paths_on(log: &Log, conn: usize) -> Vec<String> {
    let mut on: Vec<(u32, String)> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.0 == conn)
        .map(|e| (e.1, e.3.clone()))
        .collect();
    on.sort();
    on.into_iter().map(|e| e.1).collect()
}

/// Answers every further request on `s` with 200 and `<conn>:<path>`,
/// until the client closes (or 10 s pass without a frame).
fn serve_rest(s: &mut ServerConn, conn: usize, seen: &Log) {
    s.conn.timeout_ends = true;
    while let Some(req) = s.next_request() {
        record(seen, conn, &req);
        let body = format!("{conn}:{}", req.path());
        s.respond(req.id, "200", &[], body.as_bytes());
    }
}

// ---- the client side ------------------------------------------------------

fn builder(addr: SocketAddr) -> client::Builder {
    Client::builder()
        .http2_prior_knowledge(&format!("http://{addr}"))
        .unwrap()
}

fn h2_client(addr: SocketAddr) -> Client {
    builder(addr).build().unwrap()
}

/// What one exchange came to, as its handler saw it.
#[derive(Debug, Default)]
struct Got {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    error: Option<Error>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A complete response: its status and body.
    fn ok(&self) -> (u16, &str) {
        assert!(self.error.is_none(), "the exchange failed: {self:?}");
        let body = std::str::from_utf8(&self.body).expect("a UTF-8 body");
        (self.status.expect("a status"), body)
    }

    fn error(&self) -> &Error {
        self.error
            .as_ref()
            .unwrap_or_else(|| panic!("the exchange succeeded: {self:?}"))
    }
}

/// One exchange: a GET, or a POST of `upload` (with its length); the
/// response collected into a [`Got`], sent when the exchange ends.
struct Fetch {
    method: &'static str,
    upload: Option<Vec<u8>>,
    sent: usize,
    /// Park after the head (`Next::wait`): nothing is read, so no window
    /// is granted back.
    park: bool,
    got: Got,
    done: Option<mpsc::Sender<Got>>,
}

impl Fetch {
    fn get() -> Fetch {
        Fetch {
            method: "GET",
            upload: None,
            sent: 0,
            park: false,
            got: Got::default(),
            done: None,
        }
    }

    fn post(body: Vec<u8>) -> Fetch {
        Fetch {
            method: "POST",
            upload: Some(body),
            ..Fetch::get()
        }
    }

    fn parked() -> Fetch {
        Fetch {
            park: true,
            ..Fetch::get()
        }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(std::mem::take(&mut self.got));
        }
    }

    /// Read on, and write on while the body is not all out.
    fn next(&self) -> Next {
        match &self.upload {
            Some(body) if self.sent < body.len() => Next::read_and_write(),
            _ => Next::read(),
        }
    }
}

impl Handler for Fetch {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        // (Called again when the exchange is sent again.)
        self.sent = 0;
        self.got = Got::default();
        req.set_method(self.method);
        match &self.upload {
            Some(body) => {
                req.set_content_length(body.len() as u64);
                Next::read_and_write()
            }
            None => Next::read(),
        }
    }

    fn on_request_writable(&mut self, enc: &mut Encoder<'_>) -> Next {
        let body = self.upload.as_deref().unwrap_or_default();
        while self.sent < body.len() {
            match enc.write(&body[self.sent..]) {
                Ok(0) => return Next::read_and_write(),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read_and_write(),
                Err(e) => panic!("writing the body: {e}"),
            }
        }
        Next::read()
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        self.got.status = Some(res.status());
        self.got.headers = res
            .headers()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        if self.park {
            return Next::wait().timeout(IO_TIMEOUT);
        }
        self.next()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 8192];
        // Bounded: a body that keeps coming gets the loop back in between.
        for _ in 0..1024 {
            match body.read(&mut buf) {
                Ok(0) => {
                    self.finish();
                    return Next::end();
                }
                Ok(n) => self.got.body.extend_from_slice(&buf[..n]),
                Err(_) => return self.next(),
            }
        }
        self.next()
    }

    fn on_error(&mut self, err: Error) -> Next {
        self.got.error = Some(err);
        self.finish();
        Next::end()
    }
}

/// Starts `f` on `url`; its [`Got`] comes on the receiver.
fn start(client: &Client, url: &str, mut f: Fetch) -> mpsc::Receiver<Got> {
    let (tx, rx) = mpsc::channel();
    f.done = Some(tx);
    client.request(url, f).unwrap();
    rx
}

/// The exchange's outcome (bounded).
fn wait(rx: &mpsc::Receiver<Got>) -> Got {
    rx.recv_timeout(3 * IO_TIMEOUT)
        .expect("the exchange ends in time")
}

fn get(client: &Client, url: &str) -> Got {
    wait(&start(client, url, Fetch::get()))
}

/// A one-shot signal from the test to a raw server's thread.
struct Signal(Mutex<mpsc::Receiver<()>>);

fn signal() -> (mpsc::Sender<()>, Arc<Signal>) {
    let (tx, rx) = mpsc::channel();
    (tx, Arc::new(Signal(Mutex::new(rx))))
}

impl Signal {
    fn wait(&self) {
        self.0
            .lock()
            .unwrap()
            .recv_timeout(IO_TIMEOUT)
            .expect("the test's signal");
    }
}

/// `n` bytes of a pattern that shows reordering and loss.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

// ---- 1. GOAWAY in the middle of exchanges ---------------------------------

/// Three GETs in flight on one connection; the server answers stream 1,
/// sends GOAWAY(last 3, NO_ERROR), still answers stream 3 (below its last
/// id), and closes. Stream 5, which it did not process, goes out again on
/// a new connection and succeeds there; streams 1 and 3 are not sent
/// again.
#[test]
fn goaway_sends_what_the_server_did_not_process_again_on_a_new_connection() {
    let seen: Log = Arc::default();
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        if i > 0 {
            return serve_rest(&mut s, i, &log_);
        }
        let reqs = s.requests(3);
        for r in &reqs {
            record(&log_, 0, r);
        }
        assert_eq!(
            reqs.iter().map(|r| r.id).collect::<Vec<_>>(),
            [1, 3, 5],
            "three streams in flight on one connection"
        );
        s.respond(1, "200", &[], format!("0:{}", reqs[0].path()).as_bytes());
        s.conn.send(&goaway(3, NO_ERROR));
        s.respond(3, "200", &[], format!("0:{}", reqs[1].path()).as_bytes());
        s.finish();
    });
    let client = h2_client(server.addr);
    let paths = ["/a", "/b", "/c"];
    let rxs: Vec<_> = paths
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    drop(client);
    server.join();

    let first = paths_on(&seen, 0);
    assert_eq!(first.len(), 3, "conn 0 saw all three: {first:?}");
    let (processed, unprocessed) = (&first[..2], &first[2]);
    for (path, got) in paths.iter().zip(&gots) {
        let (status, body) = got.ok();
        assert_eq!(status, 200);
        let conn = if processed.iter().any(|p| p == path) {
            0
        } else {
            1
        };
        assert_eq!(body, format!("{conn}:{path}"), "who answered {path}");
    }
    assert_eq!(
        paths_on(&seen, 1),
        std::slice::from_ref(unprocessed),
        "only the stream above the GOAWAY's last id is sent again"
    );
    assert_eq!(server.accepted(), 2);
}

/// GOAWAY(last 1) with a GET and a POST above it: the POST, whose body
/// had gone out, is not sent again silently — its handler is told
/// `Error::Http2(NO_ERROR)` — while the GET goes out again on a new
/// connection. The new connection never sees the POST.
#[test]
fn goaway_does_not_silently_resend_a_started_upload() {
    let seen: Log = Arc::default();
    let log_ = Arc::clone(&seen);
    let (got_first_tx, got_first) = mpsc::channel::<()>();
    let got_first_tx = Mutex::new(got_first_tx);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        if i > 0 {
            return serve_rest(&mut s, i, &log_);
        }
        let a = s.next_request().expect("GET /a");
        record(&log_, 0, &a);
        assert_eq!((a.id, a.path()), (1, "/a"));
        got_first_tx.lock().unwrap().send(()).unwrap();
        // The test sends the POST and the second GET now.
        for r in s.requests(2) {
            record(&log_, 0, &r);
        }
        s.respond(1, "200", &[], b"0:/a");
        s.conn.send(&goaway(1, NO_ERROR));
        s.finish();
    });
    let client = h2_client(server.addr);
    let a = start(&client, &server.url("/a"), Fetch::get());
    got_first
        .recv_timeout(IO_TIMEOUT)
        .expect("the server has /a");
    let upload = pattern(1000, 7);
    let post = start(&client, &server.url("/up"), Fetch::post(upload.clone()));
    let c = start(&client, &server.url("/c"), Fetch::get());
    let (a, post, c) = (wait(&a), wait(&post), wait(&c));
    drop(client);
    server.join();

    assert_eq!(a.ok(), (200, "0:/a"));
    assert_eq!(c.ok(), (200, "1:/c"), "the GET is sent again elsewhere");
    assert!(
        matches!(post.error(), Error::Http2(0)),
        "the started POST: {post:?}"
    );
    assert_eq!(post.status, None);
    let log = seen.lock().unwrap();
    let posts: Vec<_> = log.iter().filter(|e| e.2 == "POST").collect();
    assert_eq!(posts.len(), 1, "the POST reached one server only: {log:?}");
    assert_eq!((posts[0].0, &posts[0].4), (0, &upload), "whole, on conn 0");
    drop(log);
    assert_eq!(paths_on(&seen, 1), ["/c"]);
}

// ---- 2. RST_STREAM(REFUSED_STREAM) ----------------------------------------

/// A stream refused (RST_STREAM REFUSED_STREAM) before any answer is sent
/// again — here on the same connection, a new stream — and succeeds.
#[test]
fn a_refused_stream_is_sent_again_and_succeeds() {
    let seen: Log = Arc::default();
    let attempts = Arc::new(AtomicUsize::new(0));
    let (log_, n) = (Arc::clone(&seen), Arc::clone(&attempts));
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        s.conn.timeout_ends = true;
        while let Some(req) = s.next_request() {
            record(&log_, i, &req);
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                s.reset(req.id, REFUSED_STREAM);
            } else {
                s.respond(req.id, "200", &[], format!("ok:{}", req.path()).as_bytes());
            }
        }
    });
    let client = h2_client(server.addr);
    let got = get(&client, &server.url("/x"));
    drop(client);
    server.join();

    assert_eq!(got.ok(), (200, "ok:/x"));
    let log = seen.lock().unwrap();
    let tries: Vec<_> = log.iter().map(|e| (e.0, e.1, e.3.as_str())).collect();
    assert_eq!(tries.len(), 2, "refused once, then answered: {tries:?}");
    assert!(tries.iter().all(|t| t.2 == "/x"));
    assert_eq!(tries[0].1, 1);
    // On the same connection (a new stream), or on a new one.
    assert!(tries[1] == (0, 3, "/x") || tries[1].0 == 1, "{tries:?}");
}

/// A server that refuses every stream: the GET is sent again a bounded
/// number of times, then fails with `StreamReset(REFUSED_STREAM)`. A POST
/// whose body has gone out is not sent again at all: it fails at once.
#[test]
fn refusals_are_retried_a_bounded_number_of_times_and_never_for_a_started_body() {
    let seen: Log = Arc::default();
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        s.conn.timeout_ends = true;
        while let Some(req) = s.next_request() {
            record(&log_, i, &req);
            s.reset(req.id, REFUSED_STREAM);
        }
    });
    let client = h2_client(server.addr);
    let started = Instant::now();
    let g = get(&client, &server.url("/g"));
    let body = pattern(5000, 1);
    let p = wait(&start(
        &client,
        &server.url("/p"),
        Fetch::post(body.clone()),
    ));
    assert!(started.elapsed() < 2 * IO_TIMEOUT);
    drop(client);
    server.join();

    assert!(matches!(g.error(), Error::StreamReset(7)), "{g:?}");
    assert!(matches!(p.error(), Error::StreamReset(7)), "{p:?}");
    let log = seen.lock().unwrap();
    let gets = log.iter().filter(|e| e.3 == "/g").count();
    assert!((2..=4).contains(&gets), "the GET went {gets} times");
    let posts: Vec<_> = log.iter().filter(|e| e.3 == "/p").collect();
    assert_eq!(posts.len(), 1, "the POST went once: {posts:?}");
    assert_eq!(posts[0].4, body);
}

// ---- 3. RST_STREAM with another code --------------------------------------

/// Three streams on one connection: one reset before its head
/// (INTERNAL_ERROR), one reset in the middle of its body (CANCEL), and one
/// whose frames are interleaved with theirs. The two reset ones get
/// `StreamReset(code)`; the third its whole body; the connection goes on.
#[test]
fn a_reset_fails_only_its_own_exchange() {
    let seen: Log = Arc::default();
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        if i > 0 {
            return serve_rest(&mut s, i, &log_);
        }
        let reqs = s.requests(3);
        let id = |p: &str| reqs.iter().find(|r| r.path() == p).expect(p).id;
        let (a, b, c) = (id("/a"), id("/b"), id("/c"));
        s.send_head(a, "200", &[("content-length", "8")], false);
        s.send_head(c, "200", &[("content-length", "1000")], false);
        assert!(s.send_body(a, b"aaaa", false));
        assert!(s.send_body(c, b"cccc", false));
        s.reset(b, INTERNAL_ERROR);
        s.reset(c, CANCEL);
        assert!(s.send_body(a, b"AAAA", true));
        serve_rest(&mut s, 0, &log_);
    });
    let client = h2_client(server.addr);
    let rxs: Vec<_> = ["/a", "/b", "/c"]
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    assert_eq!(gots[0].ok(), (200, "aaaaAAAA"));
    assert!(
        matches!(gots[1].error(), Error::StreamReset(2)),
        "{:?}",
        gots[1]
    );
    assert_eq!(gots[1].status, None, "reset before its head");
    assert!(
        matches!(gots[2].error(), Error::StreamReset(8)),
        "{:?}",
        gots[2]
    );
    assert_eq!(gots[2].status, Some(200), "reset after its head");
    assert_eq!(after.ok(), (200, "0:/after"), "the connection goes on");
    assert_eq!(server.accepted(), 1);
}

// ---- 4. flow control: windows far smaller than the bodies -----------------

/// Window increments the raw servers grant, in turn: from 1 byte up.
const INCREMENTS: [u32; 12] = [1, 1, 2, 3, 5, 8, 13, 100, 1000, 4093, 16_384, 30_000];

/// Uploads 100 KB against a stream window of 1 byte (SETTINGS
/// INITIAL_WINDOW_SIZE=1), the server granting more only once the window
/// is used up, a few bytes at a time. The client never sends past the
/// window (the raw server's books assert it, frame by frame), stalls at
/// each zero, resumes at each WINDOW_UPDATE, and the body arrives whole
/// and in order.
#[test]
fn an_upload_never_exceeds_a_tiny_stream_window() {
    const SIZE: usize = 100 * 1024;
    let stalls = Arc::new(AtomicUsize::new(0));
    let got_body: Arc<Mutex<Vec<u8>>> = Arc::default();
    let (st, gb) = (Arc::clone(&stalls), Arc::clone(&got_body));
    let server = raw_server(move |stream, _| {
        let mut s = ServerConn::accept(stream, &[(INITIAL_WINDOW_SIZE, 1)]);
        // A first exchange: the client has our SETTINGS before the upload.
        let warm = s.next_request().expect("the first GET");
        s.respond(warm.id, "200", &[], b"warm");
        let id = s.next_head().expect("the upload");
        assert!(s.settings_acked, "the upload starts under our SETTINGS");
        assert_eq!(s.recv_streams[&id], 1, "a 1-byte window");
        s.auto_window = false;
        let mut next = INCREMENTS.iter().cycle();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s.requests[&id].ended {
            assert!(Instant::now() < deadline, "the upload stalled");
            if s.recv_streams[&id] == 0 {
                st.fetch_add(1, Ordering::SeqCst);
                s.grant(id, *next.next().unwrap());
            }
            // The connection window is not the limit here.
            if s.recv_conn < 32 * 1024 {
                s.grant(0, 64 * 1024);
            }
            s.pump().expect("the upload goes on");
        }
        let body = s.requests[&id].body.clone();
        *gb.lock().unwrap() = body.clone();
        s.respond(id, "200", &[], body.len().to_string().as_bytes());
        s.drain();
    });
    let client = h2_client(server.addr);
    assert_eq!(get(&client, &server.url("/warm")).ok(), (200, "warm"));
    let upload = pattern(SIZE, 3);
    let got = wait(&start(
        &client,
        &server.url("/up"),
        Fetch::post(upload.clone()),
    ));
    drop(client);
    server.join();

    assert_eq!(got.ok(), (200, SIZE.to_string().as_str()));
    assert!(
        *got_body.lock().unwrap() == upload,
        "the body, whole and in order"
    );
    assert!(
        stalls.load(Ordering::SeqCst) > 20,
        "the window was the limit time and again"
    );
}

/// Two 100 KB uploads at once against a connection window granted a few
/// bytes at a time (their stream windows are large): together they never
/// send past it, and both bodies arrive whole.
#[test]
fn uploads_share_a_tiny_connection_window() {
    const SIZE: usize = 100 * 1024;
    let stalls = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (st, bs) = (Arc::clone(&stalls), Arc::clone(&bodies));
    let server = raw_server(move |stream, _| {
        let mut s = ServerConn::accept(stream, &[(INITIAL_WINDOW_SIZE, 1 << 20)]);
        let warm = s.next_request().expect("the first GET");
        s.respond(warm.id, "200", &[], b"warm");
        s.auto_window = false;
        let ids = [s.next_head().unwrap(), s.next_head().unwrap()];
        let mut next = INCREMENTS.iter().cycle();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ids.iter().all(|id| s.requests[id].ended) {
            assert!(Instant::now() < deadline, "the uploads stalled");
            if s.recv_conn == 0 {
                st.fetch_add(1, Ordering::SeqCst);
                s.grant(0, *next.next().unwrap());
            }
            s.pump().expect("the uploads go on");
        }
        for id in ids {
            let body = s.requests[&id].body.clone();
            bs.lock().unwrap().push(body.clone());
            s.respond(id, "200", &[], body.len().to_string().as_bytes());
        }
        s.auto_window = true;
        s.drain();
    });
    let client = h2_client(server.addr);
    assert_eq!(get(&client, &server.url("/warm")).ok(), (200, "warm"));
    let uploads = [pattern(SIZE, 5), pattern(SIZE, 6)];
    let rxs: Vec<_> = uploads
        .iter()
        .map(|u| start(&client, &server.url("/up"), Fetch::post(u.clone())))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    drop(client);
    server.join();

    for got in &gots {
        assert_eq!(got.ok(), (200, SIZE.to_string().as_str()));
    }
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    for u in &uploads {
        assert!(bodies.contains(u), "each body whole and in order");
    }
    assert!(
        stalls.load(Ordering::SeqCst) > 10,
        "the window was the limit"
    );
}

/// A 300 KB response, far past the client's stream window: the raw
/// server sends only what the client's windows allow, so the body
/// completes only because the client grants window as its handler reads —
/// and it reads every byte, in order.
#[test]
fn a_large_response_flows_as_the_client_grants_window() {
    const SIZE: usize = 300 * 1024;
    let body = pattern(SIZE, 9);
    let sent = body.clone();
    let granted = Arc::new(AtomicUsize::new(0));
    let g = Arc::clone(&granted);
    let server = raw_server(move |stream, _| {
        let mut s = ServerConn::accept(stream, &[]);
        let req = s.next_request().expect("GET /big");
        let window = s.client_setting(INITIAL_WINDOW_SIZE).unwrap_or(65_535);
        assert!((window as usize) < SIZE, "the stream window is the limit");
        s.respond(req.id, "200", &[], &sent);
        let to_stream: u64 = s
            .window_updates
            .iter()
            .filter(|w| w.0 == req.id)
            .map(|w| u64::from(w.1))
            .sum();
        g.store(to_stream as usize, Ordering::SeqCst);
        s.drain();
    });
    let client = h2_client(server.addr);
    let got = get(&client, &server.url("/big"));
    drop(client);
    server.join();

    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.status, Some(200));
    assert!(
        got.body == body,
        "every byte, in order ({})",
        got.body.len()
    );
    assert!(granted.load(Ordering::SeqCst) >= SIZE - 16 * 1024);
}

/// DATA past the client's stream window (its handler parked, reading
/// nothing, so none is granted back): the client resets that stream with
/// FLOW_CONTROL_ERROR and fails its exchange; the next exchange on the
/// same connection succeeds.
#[test]
fn data_past_the_clients_window_resets_only_that_stream() {
    let resets: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let (r, seen) = (Arc::clone(&resets), Log::default());
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        let req = s.next_request().expect("GET /over");
        let window = s.client_setting(INITIAL_WINDOW_SIZE).unwrap_or(65_535) as usize;
        s.send_head(req.id, "200", &[], false);
        // Past the window, frame sizes within the client's limit.
        let over = vec![b'x'; window + 1];
        let mut out = Vec::new();
        for part in over.chunks(16_384) {
            out.extend(data(req.id, part, false));
        }
        s.conn.send(&out);
        for _ in 0..1000 {
            if s.resets.iter().any(|r| r.0 == req.id) {
                break;
            }
            s.pump().expect("the client's RST_STREAM");
        }
        *r.lock().unwrap() = s.resets.clone();
        serve_rest(&mut s, i, &seen);
    });
    let client = h2_client(server.addr);
    let over = wait(&start(&client, &server.url("/over"), Fetch::parked()));
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    assert!(matches!(over.error(), Error::Malformed(_)), "{over:?}");
    assert_eq!(resets.lock().unwrap()[0], (1, FLOW_CONTROL_ERROR));
    assert_eq!(after.ok(), (200, "0:/after"));
    assert_eq!(server.accepted(), 1);
}

// ---- 5. SETTINGS never acknowledged ---------------------------------------

/// A server that sends its SETTINGS but never acknowledges ours: once
/// `http2_ack_timeout` passes, the client sends GOAWAY(SETTINGS_TIMEOUT)
/// and the exchange in flight fails with `Error::Http2(SETTINGS_TIMEOUT)`.
#[test]
fn settings_never_acknowledged_time_out_with_settings_timeout() {
    let goaway: Arc<Mutex<Option<(u32, u32)>>> = Arc::default();
    let g = Arc::clone(&goaway);
    let server = raw_server(move |stream, _| {
        let mut s = ServerConn::accept_with(stream, &[], false);
        s.next_head().expect("the request");
        for _ in 0..1000 {
            if s.goaway.is_some() {
                break;
            }
            if s.pump().is_none() {
                break;
            }
        }
        *g.lock().unwrap() = s.goaway;
        s.drain();
    });
    let client = builder(server.addr)
        .http2_ack_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let got = get(&client, &server.url("/"));
    let took = started.elapsed();
    drop(client);
    server.join();

    assert!(matches!(got.error(), Error::Http2(4)), "{got:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(goaway.lock().unwrap().map(|g| g.1), Some(SETTINGS_TIMEOUT));
}

// ---- 6. HPACK: the dynamic table and its size ----------------------------

/// The parts of the HPACK static table the tests name.
fn static_name(index: usize) -> &'static str {
    match index {
        8 => ":status",
        24 => "cache-control",
        _ => unimplemented!("static index {index}"),
    }
}

/// One representation in a header block the raw server builds.
#[derive(Clone, Debug)]
enum Rep {
    /// A dynamic table size update (§6.3).
    Size(usize),
    /// An indexed field (§6.1).
    Indexed(usize),
    /// A literal with incremental indexing, new name (§6.2.1).
    Insert(String, String),
    /// A literal with incremental indexing, indexed name.
    InsertNamed(usize, String),
    /// A literal without indexing, indexed name (§6.2.2).
    LiteralNamed(usize, String),
}

/// The client's HPACK decoding table as the raw server models it: the
/// encoder side of the connection (RFC 7541 §2.3, §4).
struct Table {
    entries: std::collections::VecDeque<(String, String)>,
    max: usize,
}

impl Table {
    fn size(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| n.len() + v.len() + 32)
            .sum()
    }

    fn evict(&mut self) {
        while self.size() > self.max {
            self.entries.pop_back();
        }
    }

    fn insert(&mut self, name: String, value: String) {
        self.entries.push_front((name, value));
        self.evict();
    }

    fn get(&self, index: usize) -> (String, String) {
        if index == 8 {
            return (":status".into(), "200".into());
        }
        self.entries
            .get(index - 62)
            .cloned()
            .unwrap_or_else(|| panic!("no entry {index}"))
    }

    fn name(&self, index: usize) -> String {
        if index < 62 {
            return static_name(index).into();
        }
        self.get(index).0
    }

    /// Encodes `reps`: the block, and the regular fields the client
    /// must decode from it.
    fn encode(&mut self, reps: &[Rep]) -> (Vec<u8>, Vec<(String, String)>) {
        fn string(out: &mut Vec<u8>, s: &str) {
            hpack_int(out, 0, 7, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        let (mut out, mut fields) = (Vec::new(), Vec::new());
        for rep in reps {
            let field = match rep.clone() {
                Rep::Size(n) => {
                    hpack_int(&mut out, 0x20, 5, n);
                    self.max = n;
                    self.evict();
                    continue;
                }
                Rep::Indexed(i) => {
                    hpack_int(&mut out, 0x80, 7, i);
                    self.get(i)
                }
                Rep::Insert(n, v) => {
                    out.push(0x40);
                    string(&mut out, &n);
                    string(&mut out, &v);
                    self.insert(n.clone(), v.clone());
                    (n, v)
                }
                Rep::InsertNamed(i, v) => {
                    hpack_int(&mut out, 0x40, 6, i);
                    string(&mut out, &v);
                    let n = self.name(i);
                    self.insert(n.clone(), v.clone());
                    (n, v)
                }
                Rep::LiteralNamed(i, v) => {
                    hpack_int(&mut out, 0x00, 4, i);
                    string(&mut out, &v);
                    (self.name(i), v)
                }
            };
            if !field.0.starts_with(':') {
                fields.push(field);
            }
        }
        (out, fields)
    }
}

/// Five responses on one connection, each decoded with the table the ones
/// before left: entries inserted (new and indexed names) and referenced
/// in later blocks, two size updates at the start of a block (RFC 7541
/// §4.2), the table shrunk below its content (evictions) and emptied, a
/// ring of entries wrapping as 30 more go in; SETTINGS_HEADER_TABLE_SIZE
/// changes from the server on the way. The client sees every value as
/// the model says.
#[test]
fn hpack_dynamic_table_and_size_updates_across_responses() {
    use Rep::*;
    let expected: Shared<Vec<Vec<(String, String)>>> = Arc::default();
    let exp = Arc::clone(&expected);
    let server = raw_server(move |stream, _| {
        let mut s = ServerConn::accept(stream, &[]);
        let limit = s.client_setting(HEADER_TABLE_SIZE).unwrap_or(4096) as usize;
        assert_eq!(s.size_update, Some(limit as u32), "the client lowers 4,096");
        s.size_update = None; // (the blocks below carry it)
        let mut table = Table {
            entries: Default::default(),
            max: 4096,
        };
        let s_ = |v: &str| v.to_string();
        let big = "b".repeat(130);
        let ring: Vec<Rep> = (0..30)
            .flat_map(|i| {
                [
                    Insert(format!("x-k{i}"), format!("{i:02}-{}", "r".repeat(60))),
                    Indexed(62 + i % 7),
                ]
            })
            .collect();
        let scripts: Vec<Vec<Rep>> = vec![
            // The smallest size since the last block, then the final one.
            vec![
                Size(0),
                Size(limit),
                Indexed(8),
                InsertNamed(24, s_("max-age=60")),
                Insert(s_("x-one"), s_("alpha")),
            ],
            vec![
                Indexed(8),
                Indexed(62),
                Indexed(63),
                InsertNamed(62, s_("beta")),
                LiteralNamed(64, s_("no-store")),
            ],
            // Shrunk below the content: the oldest entries go.
            vec![
                Size(200),
                Indexed(8),
                Insert(s_("x-big"), big.clone()),
                Indexed(62),
            ],
            // Emptied, then back to the limit.
            vec![
                Size(0),
                Size(limit),
                Indexed(8),
                Insert(s_("x-four"), s_("d")),
                Indexed(62),
            ],
            [vec![Indexed(8)], ring].concat(),
        ];
        for (k, reps) in scripts.iter().enumerate() {
            let req = s.next_request().expect("a request");
            if k == 2 {
                // The server's own table (the client's encoder): the
                // client acknowledges, and its requests still decode.
                s.conn.send(&settings(&[(HEADER_TABLE_SIZE, 0)]));
                s.conn.send(&settings(&[(HEADER_TABLE_SIZE, 65_536)]));
                s.ping_round_trip();
            }
            let (block, fields) = table.encode(reps);
            exp.lock().unwrap().push(fields);
            s.send_block(req.id, &block, true);
        }
        s.drain();
    });
    let client = h2_client(server.addr);
    let gots: Vec<Got> = (0..5)
        .map(|k| get(&client, &server.url(&format!("/{k}"))))
        .collect();
    drop(client);
    server.join();

    let expected = expected.lock().unwrap();
    assert_eq!(expected.len(), 5);
    for (k, (got, want)) in gots.iter().zip(expected.iter()).enumerate() {
        assert_eq!(got.ok().0, 200, "response {k}");
        assert_eq!(&got.headers, want, "response {k}");
    }
    // The model, checked by hand where it matters.
    let pairs = |g: &Got| -> Vec<(String, String)> { g.headers.clone() };
    let p = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        pairs(&gots[1]),
        [
            p("x-one", "alpha"),
            p("cache-control", "max-age=60"),
            p("x-one", "beta"),
            p("cache-control", "no-store"),
        ]
    );
    assert_eq!(gots[2].header("x-big"), Some("b".repeat(130).as_str()));
    assert_eq!(gots[2].headers.len(), 2);
    assert_eq!(pairs(&gots[3]), [p("x-four", "d"), p("x-four", "d")]);
    assert_eq!(gots[4].headers.len(), 60);
}

/// Four broken uses of the table, each on a connection of its own: a size
/// update above the client's SETTINGS_HEADER_TABLE_SIZE, the size update
/// owed after the client lowered it left out, one after a field, an
/// index past the table. Each is a connection error: GOAWAY
/// (COMPRESSION_ERROR) from the client and `Error::Http2(9)` for the
/// exchange. The next request, on a new connection, succeeds.
#[test]
fn hpack_violations_fail_the_connection_with_compression_error() {
    let goaways: Shared<Vec<(usize, Option<Goaway>)>> = Arc::default();
    let (g, seen) = (Arc::clone(&goaways), Log::default());
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        let req = s.next_request().expect("a request");
        let limit = s.size_update.take().expect("an update owed") as usize;
        let mut block = Vec::new();
        match i {
            0 => hpack_int(&mut block, 0x20, 5, 2 * limit),
            1 => {}
            2 => {
                hpack_int(&mut block, 0x20, 5, limit);
                block.push(0x88);
                hpack_int(&mut block, 0x20, 5, limit / 2);
            }
            3 => {
                hpack_int(&mut block, 0x20, 5, limit);
                block.push(0x88);
                hpack_int(&mut block, 0x80, 7, 62);
            }
            _ => {
                s.size_update = Some(limit as u32);
                s.respond(req.id, "200", &[], b"fine");
                return serve_rest(&mut s, i, &seen);
            }
        }
        block.push(0x88);
        s.send_block(req.id, &block, true);
        for _ in 0..1000 {
            if s.goaway.is_some() || s.pump().is_none() {
                break;
            }
        }
        g.lock().unwrap().push((i, s.goaway));
        s.drain();
    });
    let client = h2_client(server.addr);
    let gots: Vec<Got> = (0..5)
        .map(|k| get(&client, &server.url(&format!("/{k}"))))
        .collect();
    drop(client);
    server.join();

    for (k, got) in gots[..4].iter().enumerate() {
        assert!(matches!(got.error(), Error::Http2(9)), "case {k}: {got:?}");
    }
    assert_eq!(gots[4].ok(), (200, "fine"));
    let mut goaways = goaways.lock().unwrap().clone();
    goaways.sort();
    let codes: Vec<_> = goaways.iter().map(|g| g.1.map(|g| g.1)).collect();
    assert_eq!(codes, [Some(COMPRESSION_ERROR); 4]);
}

// ---- 7. header blocks at and past the client's limits ---------------------

/// `n` fields `x-h-NN` of `len` bytes each, every value different.
fn many_fields(n: usize, len: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let v: String = (0..len)
                .map(|j| (b'a' + ((i * 7 + j) % 26) as u8) as char)
                .collect();
            (format!("x-h-{i:02}"), v)
        })
        .collect()
}

fn as_refs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// 50 KB of response headers in HEADERS and three CONTINUATIONs, with
/// the client's `max_head_size` raised to 64 KiB: decoded whole, every
/// value as sent; and the connection goes on.
#[test]
fn a_50_kb_header_block_in_continuations_decodes_within_a_raised_limit() {
    let fields = many_fields(50, 1000);
    let sent = fields.clone();
    let frames = Arc::new(AtomicUsize::new(0));
    let (f, seen) = (Arc::clone(&frames), Log::default());
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        let req = s.next_request().expect("a request");
        let block = s.head_block("200", &as_refs(&sent));
        f.store(block.len().div_ceil(16_384), Ordering::SeqCst);
        s.send_block(req.id, &block, true);
        serve_rest(&mut s, i, &seen);
    });
    let client = builder(server.addr)
        .max_head_size(64 * 1024)
        .build()
        .unwrap();
    let got = get(&client, &server.url("/big-head"));
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    assert_eq!(frames.load(Ordering::SeqCst), 4, "HEADERS + 3 CONTINUATION");
    assert_eq!(got.ok().0, 200);
    assert_eq!(got.headers, fields);
    assert_eq!(after.ok(), (200, "0:/after"));
    assert_eq!(server.accepted(), 1);
}

/// What the client buffers of one header block is bounded (by default
/// 16 KiB, frame headers included, and HEADERS plus at most five
/// CONTINUATIONs): a block past either bound is a connection error —
/// GOAWAY(ENHANCE_YOUR_CALM), `Error::Http2(11)` for the exchange and for
/// the one in flight beside it on that connection — not a hang. Up to the
/// bound, the block decodes; and the next connection works.
#[test]
fn header_blocks_past_what_the_client_buffers_fail_their_connection_clearly() {
    let goaways: Shared<Vec<(usize, Option<Goaway>)>> = Arc::default();
    let (g, seen) = (Arc::clone(&goaways), Log::default());
    let small = many_fields(30, 100);
    let sent = small.clone();
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        match i {
            0 => {
                // 50 KB, with another request in flight.
                let reqs = s.requests(2);
                let huge = reqs.iter().find(|r| r.path() == "/huge").unwrap();
                let block = s.head_block("200", &as_refs(&many_fields(50, 1000)));
                s.send_block(huge.id, &block, true);
            }
            1 => {
                // 3 KB in HEADERS and six CONTINUATIONs.
                let req = s.next_request().unwrap();
                let block = s.head_block("200", &as_refs(&sent));
                let chunk = block.len().div_ceil(7);
                assert_eq!(block.len().div_ceil(chunk), 7);
                s.send_block_in(req.id, &block, true, chunk);
            }
            _ => {
                // The same in HEADERS and five CONTINUATIONs: fine.
                let req = s.next_request().unwrap();
                let block = s.head_block("200", &as_refs(&sent));
                let chunk = block.len().div_ceil(6);
                assert_eq!(block.len().div_ceil(chunk), 6);
                s.send_block_in(req.id, &block, true, chunk);
                return serve_rest(&mut s, i, &seen);
            }
        }
        for _ in 0..1000 {
            if s.goaway.is_some() || s.pump().is_none() {
                break;
            }
        }
        g.lock().unwrap().push((i, s.goaway));
        s.drain();
    });
    let client = h2_client(server.addr);
    let huge = start(&client, &server.url("/huge"), Fetch::get());
    let other = start(&client, &server.url("/other"), Fetch::get());
    let (huge, other) = (wait(&huge), wait(&other));
    let many = get(&client, &server.url("/many"));
    let six = get(&client, &server.url("/six"));
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    assert!(matches!(huge.error(), Error::Http2(11)), "{huge:?}");
    assert!(matches!(other.error(), Error::Http2(11)), "{other:?}");
    assert!(matches!(many.error(), Error::Http2(11)), "{many:?}");
    assert_eq!(six.ok().0, 200);
    assert_eq!(six.headers, small);
    assert_eq!(after.ok(), (200, "2:/after"));
    let mut goaways = goaways.lock().unwrap().clone();
    goaways.sort();
    let codes: Vec<_> = goaways.iter().map(|g| g.1.map(|g| g.1)).collect();
    assert_eq!(codes, [Some(ENHANCE_YOUR_CALM); 2]);
    assert_eq!(server.accepted(), 3);
}

/// The decoded header list is bounded by the client's
/// SETTINGS_MAX_HEADER_LIST_SIZE (16,384: name + value + 32 per field,
/// `:status` included), the regular fields by `max_headers` (100). Exactly
/// at each limit the response is whole; one past it fails only its
/// exchange (`Error::Malformed`, the stream reset), while the streams
/// beside it on the connection, and the connection, go on.
#[test]
fn header_lists_past_the_clients_limits_fail_only_their_stream() {
    const LIST: usize = 16_384;
    // `:status: 200` (7 + 3 + 32) and `x-a: <n>` (3 + n + 32).
    let exact = LIST - 42 - 35;
    let resets: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let ids: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let (r, ids_, seen) = (Arc::clone(&resets), Arc::clone(&ids), Log::default());
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        for req in s.requests(5) {
            ids_.lock().unwrap().push((req.path().to_string(), req.id));
            let fields = match req.path() {
                "/exact" => vec![("x-a".to_string(), "e".repeat(exact))],
                "/over" => vec![("x-a".to_string(), "o".repeat(exact + 1))],
                "/hundred" => many_fields(100, 1),
                "/too-many" => many_fields(101, 1),
                _ => vec![("x-plain".to_string(), "p".to_string())],
            };
            let block = s.head_block("200", &as_refs(&fields));
            assert!(block.len() <= 16_384, "one frame");
            s.send_block(req.id, &block, true);
        }
        s.ping_round_trip();
        *r.lock().unwrap() = s.resets.clone();
        serve_rest(&mut s, i, &seen);
    });
    let client = h2_client(server.addr);
    let paths = ["/exact", "/over", "/hundred", "/too-many", "/plain"];
    let rxs: Vec<_> = paths
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    let [exact_, over, hundred, too_many, plain] = &gots[..] else {
        unreachable!()
    };
    assert_eq!(exact_.ok().0, 200);
    assert_eq!(exact_.header("x-a").map(str::len), Some(exact));
    assert!(matches!(over.error(), Error::Malformed(_)), "{over:?}");
    assert_eq!(hundred.ok().0, 200);
    assert_eq!(hundred.headers.len(), 100);
    assert!(
        matches!(too_many.error(), Error::Malformed("too many header fields")),
        "{too_many:?}"
    );
    assert_eq!(plain.ok().0, 200);
    assert_eq!(plain.header("x-plain"), Some("p"));
    assert_eq!(after.ok(), (200, "0:/after"));
    assert_eq!(server.accepted(), 1);
    let id = |p: &str| ids.lock().unwrap().iter().find(|e| e.0 == p).unwrap().1;
    assert!(
        resets
            .lock()
            .unwrap()
            .contains(&(id("/over"), PROTOCOL_ERROR)),
        "the client resets the stream whose list is too large"
    );
}

// ---- 8. MAX_CONCURRENT_STREAMS = 1 -----------------------------------------

/// A server that allows one stream at a time (SETTINGS
/// MAX_CONCURRENT_STREAMS=1): three requests submitted at once go out one
/// after the other on the one connection — before answering each, the
/// server gives the client two PING round trips to open another stream,
/// and it never does — and all three succeed.
#[test]
fn one_stream_at_a_time_when_the_server_allows_one() {
    let max_open = Arc::new(AtomicUsize::new(usize::MAX));
    let (all_in, all_submitted) = signal();
    let (m, seen) = (Arc::clone(&max_open), Log::default());
    let seen_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[(MAX_CONCURRENT_STREAMS, 1)]);
        if i > 0 {
            return serve_rest(&mut s, i, &seen_);
        }
        let warm = s.next_request().expect("the first GET");
        s.respond(warm.id, "200", &[], b"warm");
        all_submitted.wait();
        for _ in 0..3 {
            let req = s.next_request().expect("a request");
            record(&seen_, 0, &req);
            s.ping_round_trip();
            s.ping_round_trip();
            assert_eq!(s.open.len(), 1, "only {} is open: {:?}", req.id, s.open);
            s.respond(req.id, "200", &[], req.path().as_bytes());
        }
        m.store(s.max_open, Ordering::SeqCst);
        s.drain();
    });
    let client = h2_client(server.addr);
    assert_eq!(get(&client, &server.url("/warm")).ok(), (200, "warm"));
    let paths = ["/1", "/2", "/3"];
    let rxs: Vec<_> = paths
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    all_in.send(()).unwrap();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    drop(client);
    server.join();

    for (p, got) in paths.iter().zip(&gots) {
        assert_eq!(got.ok(), (200, *p));
    }
    assert_eq!(max_open.load(Ordering::SeqCst), 1);
    assert_eq!(paths_on(&seen, 0).len(), 3);
    assert_eq!(server.accepted(), 1);
}

/// Requests the client sent before the server's SETTINGS arrived may be
/// over its limit of one: the server refuses the extra streams
/// (REFUSED_STREAM), the client sends them again once a stream is free,
/// and all succeed on the one connection.
#[test]
fn streams_over_a_limit_not_yet_known_are_refused_and_sent_again() {
    let seen: Log = Arc::default();
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[(MAX_CONCURRENT_STREAMS, 1)]);
        s.conn.timeout_ends = true;
        let mut answered = 0;
        while answered < 3 {
            let Some(req) = s.next_request() else { break };
            // Whatever else the client opened is in by now: refused.
            s.ping_round_trip();
            let extra: Vec<u32> = s.open.iter().copied().filter(|&id| id != req.id).collect();
            for id in extra {
                s.reset(id, REFUSED_STREAM);
                s.requests.remove(&id);
            }
            record(&log_, i, &req);
            s.respond(req.id, "200", &[], req.path().as_bytes());
            answered += 1;
        }
        s.drain();
    });
    let client = h2_client(server.addr);
    let paths = ["/1", "/2", "/3"];
    let rxs: Vec<_> = paths
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    drop(client);
    server.join();

    for (p, got) in paths.iter().zip(&gots) {
        assert_eq!(got.ok(), (200, *p));
    }
    let mut answered = paths_on(&seen, 0);
    answered.sort();
    assert_eq!(answered, paths, "each answered once");
    assert_eq!(server.accepted(), 1);
}

// ---- responses without a valid :status ------------------------------------

/// Responses with no `:status`, a `:status` that is not three digits, or
/// an uppercase field name are malformed: each fails only its own
/// exchange (`Error::Malformed`, its stream reset PROTOCOL_ERROR); a
/// valid response beside them, and the next exchange on the same
/// connection, succeed.
#[test]
fn a_response_without_a_valid_status_fails_only_its_exchange() {
    let resets: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let bad_ids: Arc<Mutex<Vec<u32>>> = Arc::default();
    let (r, b, seen) = (Arc::clone(&resets), Arc::clone(&bad_ids), Log::default());
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        for req in s.requests(5) {
            let block = match req.path() {
                "/none" => {
                    let mut out = s.block_prefix();
                    out.extend(block(&[("x-a", "b")]));
                    out
                }
                "/letters" => s.head_block("2x0", &[]),
                "/two" => s.head_block("20", &[]),
                "/upper" => s.head_block("200", &[("X-Up", "1")]),
                _ => s.head_block("200", &[("x-ok", "1")]),
            };
            if req.path() != "/ok" {
                b.lock().unwrap().push(req.id);
            }
            s.send_block(req.id, &block, true);
        }
        s.ping_round_trip();
        *r.lock().unwrap() = s.resets.clone();
        serve_rest(&mut s, i, &seen);
    });
    let client = h2_client(server.addr);
    let paths = ["/none", "/letters", "/ok", "/two", "/upper"];
    let rxs: Vec<_> = paths
        .iter()
        .map(|p| start(&client, &server.url(p), Fetch::get()))
        .collect();
    let gots: Vec<Got> = rxs.iter().map(wait).collect();
    let after = get(&client, &server.url("/after"));
    drop(client);
    server.join();

    for (p, got) in paths.iter().zip(&gots) {
        if *p == "/ok" {
            assert_eq!(got.ok().0, 200);
            assert_eq!(got.header("x-ok"), Some("1"));
        } else {
            assert!(matches!(got.error(), Error::Malformed(_)), "{p}: {got:?}");
            assert_eq!(
                got.status, None,
                "{p}: no response head reached the handler"
            );
        }
    }
    assert_eq!(after.ok(), (200, "0:/after"));
    assert_eq!(server.accepted(), 1);
    let resets = resets.lock().unwrap();
    for id in bad_ids.lock().unwrap().iter() {
        assert!(resets.contains(&(*id, PROTOCOL_ERROR)), "{id}: {resets:?}");
    }
}

// ---- 8. PING keep-alive ---------------------------------------------------

const KEEP_ALIVE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(100));

/// With `http2_keep_alive(interval, timeout)`, an idle connection is
/// PINGed every interval; a server that acks each one keeps it: the next
/// request goes out on the same connection.
#[test]
fn keep_alive_pings_an_idle_connection_and_keeps_it_while_acked() {
    let seen = Log::default();
    let (pinged_tx, pinged) = mpsc::channel::<Vec<Vec<u8>>>();
    let pinged_tx = Mutex::new(pinged_tx);
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        let a = s.next_request().expect("GET /a");
        record(&log_, i, &a);
        s.respond(a.id, "200", &[], b"/a");
        // Three PINGs while idle, each acked.
        for _ in 0..10_000 {
            if s.pings.len() >= 3 {
                break;
            }
            assert!(s.pump().is_some(), "the client closed a live connection");
        }
        pinged_tx.lock().unwrap().send(s.pings.clone()).unwrap();
        serve_rest(&mut s, i, &log_);
    });
    let client = builder(server.addr)
        .http2_keep_alive(KEEP_ALIVE.0, KEEP_ALIVE.1)
        .build()
        .unwrap();
    assert_eq!(get(&client, &server.url("/a")).ok(), (200, "/a"));
    let pings = pinged.recv_timeout(IO_TIMEOUT).expect("three PINGs");
    let b = get(&client, &server.url("/b"));
    drop(client);
    server.join();

    assert_eq!(b.ok(), (200, "0:/b"));
    assert_eq!(pings.len(), 3);
    assert!(pings.iter().all(|p| p.len() == 8), "{pings:?}");
    assert_eq!(paths_on(&seen, 0), ["/a", "/b"]);
    assert_eq!(server.accepted(), 1, "the acked connection was kept");
}

/// A server that stops answering PINGs: once the ack is `timeout` late,
/// the client gives the connection up (it closes it) and the next request
/// opens a new one.
#[test]
fn keep_alive_gives_up_a_connection_whose_ping_goes_unanswered() {
    let seen = Log::default();
    let (closed_tx, closed) = mpsc::channel::<(usize, Option<(u32, u32)>)>();
    let closed_tx = Mutex::new(closed_tx);
    let log_ = Arc::clone(&seen);
    let server = raw_server(move |stream, i| {
        let mut s = ServerConn::accept(stream, &[]);
        if i > 0 {
            return serve_rest(&mut s, i, &log_);
        }
        let a = s.next_request().expect("GET /a");
        record(&log_, i, &a);
        s.respond(a.id, "200", &[], b"/a");
        s.answer_pings = false;
        // Read until the client closes (the read timeout, 10 s, would
        // fail the test: `pump` panics on it).
        for _ in 0..10_000 {
            if s.pump().is_none() {
                break;
            }
        }
        closed_tx
            .lock()
            .unwrap()
            .send((s.pings.len(), s.goaway))
            .unwrap();
    });
    let client = builder(server.addr)
        .http2_keep_alive(KEEP_ALIVE.0, KEEP_ALIVE.1)
        .build()
        .unwrap();
    assert_eq!(get(&client, &server.url("/a")).ok(), (200, "/a"));
    let (pings, goaway) = closed.recv_timeout(IO_TIMEOUT).expect("closed");
    let b = get(&client, &server.url("/b"));
    drop(client);
    server.join();

    assert_eq!(pings, 1, "one PING, then no more once it went unanswered");
    assert_eq!(goaway, None, "a dead peer is not sent a GOAWAY");
    assert_eq!(b.ok(), (200, "1:/b"));
    assert_eq!(server.accepted(), 2);
}
