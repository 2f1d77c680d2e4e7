//! `nextloop::hypersync`: blocking handlers on a thread pool (push) and the
//! `Incoming` queue (pull), over real TCP on 127.0.0.1.
//!
//! Memory is measured, not guessed: a counting `#[global_allocator]`
//! tracks the live heap bytes of every thread except those that marked
//! themselves as clients — so what it sees is the server (event loop and
//! workers). Tests that measure take the write side of `EXCLUSIVE`, all
//! others the read side, so no other server runs while they measure.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::{read_response, Client, IO_TIMEOUT};
use nextloop::hypersync::{Incoming, Listening, Request, Response, Server};

use counting::{client_thread, HeapWindow};

static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    client_thread();
    EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    client_thread();
    EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------
// Helpers

const MIB: u64 = 1024 * 1024;
const BIG: u64 = 64 * MIB;

/// Body bytes are `i % 251` at offset `i`; `PATTERN[o..o + n]` is the run
/// at any offset `o ≡ i (mod 251)`, for `n` up to 1 MiB.
fn pattern() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| (0..MIB as usize + 251).map(|i| (i % 251) as u8).collect())
}

fn expected(offset: u64, n: usize) -> &'static [u8] {
    let o = (offset % 251) as usize;
    &pattern()[o..o + n]
}

/// Writes `len` pattern bytes, in runs of up to 1 MiB.
fn write_pattern(w: &mut impl Write, len: u64, sent: &AtomicU64) -> io::Result<()> {
    let mut off = 0;
    while off < len {
        let n = (len - off).min(MIB) as usize;
        w.write_all(expected(off, n))?;
        off += n as u64;
        sent.store(off, Ordering::SeqCst);
    }
    Ok(())
}

/// Writes `len` pattern bytes as a chunked body (1 MiB chunks).
fn write_pattern_chunked(w: &mut impl Write, len: u64) -> io::Result<()> {
    let mut off = 0;
    while off < len {
        let n = (len - off).min(MIB) as usize;
        write!(w, "{n:x}\r\n")?;
        w.write_all(expected(off, n))?;
        w.write_all(b"\r\n")?;
        off += n as u64;
    }
    w.write_all(b"0\r\n\r\n")
}

/// Reads a body and checks it is the pattern; returns its length.
fn read_pattern(r: &mut impl Read) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut off = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(off);
        }
        if buf[..n] != *expected(off, n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body differs from the pattern near offset {off}"),
            ));
        }
        off += n as u64;
    }
}

fn line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    r.read_line(&mut l).expect("read line");
    assert!(l.ends_with("\r\n"), "line without CRLF: {l:?}");
    l.truncate(l.len() - 2);
    l
}

/// Reads a response head: status and `(lowercase name, value)` fields.
fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let status_line = line(r);
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut fields = Vec::new();
    loop {
        let l = line(r);
        if l.is_empty() {
            return (status, fields);
        }
        let (n, v) = l.split_once(':').unwrap();
        fields.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A chunked body as a reader (for checking big bodies without keeping them).
struct Dechunk<'a, R> {
    r: &'a mut R,
    left: u64,
    done: bool,
}

impl<R: BufRead> Read for Dechunk<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let size = line(self.r);
            self.left = u64::from_str_radix(size.split(';').next().unwrap(), 16).unwrap();
            if self.left == 0 {
                while !line(self.r).is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let want = out.len().min(self.left as usize);
        let n = self.r.read(&mut out[..want])?;
        assert!(n > 0, "chunked body cut short");
        self.left -= n as u64;
        if self.left == 0 {
            assert_eq!(line(self.r), "", "chunk data too long");
        }
        Ok(n)
    }
}

/// The test handler: like `examples/sync_echo.rs`, plus a few routes.
fn handler(req: &mut Request, res: &mut Response) {
    let path = req.path().to_string();
    if let Some(ms) = path.strip_prefix("/sleep/") {
        thread::sleep(Duration::from_millis(ms.parse().unwrap()));
        res.header("Content-Type", "text/plain");
        res.write_all(b"slept").unwrap();
    } else if path == "/panic" {
        panic!("asked to panic");
    } else if path == "/panic-after-flush" {
        res.write_all(b"partial").unwrap();
        res.flush().unwrap();
        panic!("asked to panic after the head went out");
    } else if let Some(n) = path.strip_prefix("/download/") {
        // A pattern body of n bytes, chunked, written in 1 MiB writes.
        let sent = AtomicU64::new(0);
        let _ = write_pattern(res, n.parse().unwrap(), &sent);
    } else if path == "/count" {
        // Reads the whole body, checking it is the pattern.
        match read_pattern(req) {
            Ok(n) => write!(res, "{n}").unwrap(),
            Err(e) => {
                res.set_status(400);
                write!(res, "{e}").unwrap();
            }
        }
    } else if path == "/ignore" {
        res.write_all(b"ignored").unwrap();
    } else {
        // Echo, streamed, with the request's length when it had one.
        if let Some(n) = req.content_length() {
            res.set_content_length(n);
        }
        let _ = io::copy(req, res);
    }
}

fn push(threads: usize, queue: usize) -> Listening {
    quiet_worker_panics();
    Server::bind("127.0.0.1:0")
        .unwrap()
        .threads(threads)
        .queue(queue)
        .handle(handler)
        .unwrap()
}

fn pull(queue: usize) -> Incoming {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .queue(queue)
        .incoming()
        .unwrap()
}

/// Panics on purpose in worker threads would print a message (and maybe a
/// backtrace) each; keep the output for everything else.
fn quiet_worker_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let worker = thread::current()
                .name()
                .is_some_and(|n| n.starts_with("hypersync-"));
            let deliberate = info
                .payload()
                .downcast_ref::<&str>()
                .is_some_and(|m| m.starts_with("asked to panic"));
            if !(worker && deliberate) {
                default(info);
            }
        }));
    });
}

fn get(addr: SocketAddr, path: &str) -> common::Response {
    let mut c = Client::connect(addr);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    c.response()
}

/// Sends `GET path` on `n` connections at once; returns each response with
/// the time it took, in connection order.
fn parallel_gets(addr: SocketAddr, path: &str, n: usize) -> Vec<(common::Response, Duration)> {
    let start = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, path) = (Arc::clone(&start), path.to_string());
            thread::spawn(move || {
                client_thread();
                let mut c = Client::connect(addr);
                start.wait();
                let t0 = Instant::now();
                c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
                let res = c.response();
                (res, t0.elapsed())
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

// ---------------------------------------------------------------------
// Large bodies, bounded memory

#[test]
fn echo_of_64_mib_streams_both_ways_in_bounded_memory() {
    let _x = exclusive();
    pattern();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    let mut writer = c.stream().try_clone().unwrap();
    let window = HeapWindow::start();
    let t0 = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let sending = {
        let sent = Arc::clone(&sent);
        thread::spawn(move || {
            client_thread();
            write!(
                writer,
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n"
            )?;
            write_pattern(&mut writer, BIG, &sent)
        })
    };
    let (status, fields) = read_head(&mut c.reader);
    assert_eq!(status, 200);
    assert_eq!(field(&fields, "content-length"), Some(&*BIG.to_string()));
    let n = read_pattern(&mut (&mut c.reader).take(BIG)).unwrap();
    sending.join().unwrap().unwrap();
    let (elapsed, growth) = (t0.elapsed(), window.peak_growth());
    eprintln!(
        "echo 64 MiB: {elapsed:?}, server heap peak growth {} KiB",
        growth / 1024
    );
    assert_eq!(n, BIG);
    assert!(
        growth < 2 * MIB as i64,
        "server heap grew by {growth} bytes for a 64 MiB echo"
    );
    // The connection is still good.
    c.send("GET /sleep/0 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_str(), "slept");
}

#[test]
fn chunked_upload_of_64_mib_in_bounded_memory() {
    let _x = exclusive();
    pattern();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    let mut writer = c.stream().try_clone().unwrap();
    let window = HeapWindow::start();
    let t0 = Instant::now();
    let sending = thread::spawn(move || {
        client_thread();
        writer
            .write_all(b"POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        write_pattern_chunked(&mut writer, BIG)
    });
    let res = c.response();
    sending.join().unwrap().unwrap();
    let (elapsed, growth) = (t0.elapsed(), window.peak_growth());
    eprintln!(
        "chunked upload 64 MiB: {elapsed:?}, server heap peak growth {} KiB",
        growth / 1024
    );
    assert_eq!((res.status, res.body_str()), (200, &*BIG.to_string()));
    assert!(
        growth < 2 * MIB as i64,
        "server heap grew by {growth} bytes for a 64 MiB upload"
    );
}

#[test]
fn chunked_download_of_64_mib_in_bounded_memory() {
    let _x = exclusive();
    pattern();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    let window = HeapWindow::start();
    let t0 = Instant::now();
    c.send(format!("GET /download/{BIG} HTTP/1.1\r\nHost: x\r\n\r\n"));
    let (status, fields) = read_head(&mut c.reader);
    assert_eq!(status, 200);
    assert_eq!(field(&fields, "transfer-encoding"), Some("chunked"));
    let n = read_pattern(&mut Dechunk {
        r: &mut c.reader,
        left: 0,
        done: false,
    })
    .unwrap();
    let (elapsed, growth) = (t0.elapsed(), window.peak_growth());
    eprintln!(
        "chunked download 64 MiB: {elapsed:?}, server heap peak growth {} KiB",
        growth / 1024
    );
    assert_eq!(n, BIG);
    assert!(
        growth < 2 * MIB as i64,
        "server heap grew by {growth} bytes for a 64 MiB download"
    );
}

#[test]
fn a_slow_reader_applies_backpressure() {
    let _x = exclusive();
    pattern();
    // The handler reads nothing for a while; meanwhile the client tries to
    // send 64 MiB. Neither the loop nor the channel may take it in.
    let sent = Arc::new(AtomicU64::new(0));
    let at_first_read = Arc::new(AtomicU64::new(0));
    let growth_before_read = Arc::new(AtomicI64::new(0));
    let window = Arc::new(OnceLock::<HeapWindow>::new());
    let server = {
        let (sent, at_first_read) = (Arc::clone(&sent), Arc::clone(&at_first_read));
        let (growth_before_read, window) = (Arc::clone(&growth_before_read), Arc::clone(&window));
        Server::bind("127.0.0.1:0")
            .unwrap()
            .threads(1)
            .handle(move |req, res| {
                thread::sleep(Duration::from_millis(1000));
                at_first_read.store(sent.load(Ordering::SeqCst), Ordering::SeqCst);
                growth_before_read.store(window.get().unwrap().peak_growth(), Ordering::SeqCst);
                let n = read_pattern(req).unwrap();
                write!(res, "{n}").unwrap();
            })
            .unwrap()
    };
    let mut c = Client::connect(server.addr());
    let mut writer = c.stream().try_clone().unwrap();
    let _ = window.set(HeapWindow::start());
    let sending = {
        let sent = Arc::clone(&sent);
        thread::spawn(move || {
            client_thread();
            write!(
                writer,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {BIG}\r\n\r\n"
            )?;
            write_pattern(&mut writer, BIG, &sent)
        })
    };
    let res = c.response();
    sending.join().unwrap().unwrap();
    let stalled_at = at_first_read.load(Ordering::SeqCst);
    let growth = growth_before_read.load(Ordering::SeqCst);
    eprintln!(
        "slow reader: client stalled after {} KiB of 64 MiB; server heap growth {} KiB",
        stalled_at / 1024,
        growth / 1024
    );
    assert_eq!(res.body_str(), BIG.to_string());
    // What the client got rid of sits in kernel socket buffers (a few MiB
    // on loopback), not in the server's heap.
    assert!(
        stalled_at < BIG / 2,
        "client sent {stalled_at} bytes before the handler read any"
    );
    assert!(
        growth < 512 * 1024,
        "server heap grew by {growth} bytes while the handler did not read"
    );
}

// ---------------------------------------------------------------------
// The pool

#[test]
fn eight_parallel_sleeps_on_eight_threads_take_about_one_sleep() {
    let _s = shared();
    let server = push(8, 64);
    let t0 = Instant::now();
    let results = parallel_gets(server.addr(), "/sleep/500", 8);
    let total = t0.elapsed();
    eprintln!("8 x /sleep/500 on 8 threads: {total:?}");
    for (res, _) in &results {
        assert_eq!((res.status, res.body_str()), (200, "slept"));
    }
    assert!(total >= Duration::from_millis(500));
    assert!(total < Duration::from_millis(2500), "took {total:?}");
}

#[test]
fn a_full_queue_is_answered_503_at_once() {
    let _s = shared();
    // One worker, one waiting slot: of four requests at once, at most two
    // are taken; the others get 503 without waiting for the worker.
    let server = push(1, 1);
    let results = parallel_gets(server.addr(), "/sleep/1000", 4);
    let ok = results.iter().filter(|(r, _)| r.status == 200).count();
    let busy: Vec<_> = results.iter().filter(|(r, _)| r.status == 503).collect();
    for (res, took) in &busy {
        eprintln!("503 after {took:?}");
        assert_eq!(res.header("retry-after"), Some("1"));
        assert!(!res.closes(), "a 503 keeps the connection");
        assert!(*took < Duration::from_millis(750), "503 took {took:?}");
    }
    assert!((1..=2).contains(&ok), "{ok} requests were served");
    assert_eq!(ok + busy.len(), 4);
    // Once the worker is free again, requests are served.
    assert_eq!(get(server.addr(), "/sleep/0").status, 200);
}

#[test]
fn fifty_panics_leave_the_pool_at_full_strength() {
    let _s = shared();
    let server = push(8, 64);
    let mut c = Client::connect(server.addr());
    for _ in 0..25 {
        c.send("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
        let res = c.response();
        assert_eq!(res.status, 500);
        assert!(res.body_str().contains("panicked"));
        // A panic costs nothing but its own response: keep-alive goes on.
        assert!(!res.closes());
    }
    for (res, _) in parallel_gets(server.addr(), "/panic", 25) {
        assert_eq!(res.status, 500);
    }
    let t0 = Instant::now();
    let results = parallel_gets(server.addr(), "/sleep/500", 8);
    let total = t0.elapsed();
    eprintln!("8 x /sleep/500 after 50 panics: {total:?}");
    assert!(results.iter().all(|(r, _)| r.status == 200));
    assert!(total < Duration::from_millis(2500), "took {total:?}");
}

#[test]
fn a_panic_after_the_head_went_out_closes_the_connection() {
    let _s = shared();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    c.send("GET /panic-after-flush HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, fields) = read_head(&mut c.reader);
    assert_eq!(status, 200);
    assert_eq!(field(&fields, "transfer-encoding"), Some("chunked"));
    // The chunk that was flushed, then the end of the connection with no
    // last chunk: the client can tell the body is incomplete.
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert_eq!(rest, b"00007\r\npartial\r\n");
}

#[test]
fn one_pool_serves_several_event_loops() {
    let _s = shared();
    // Two loops (SO_REUSEPORT), one pool of 8: still one sleep's time.
    let native = nextloop::server::Server::bind("127.0.0.1:0")
        .unwrap()
        .workers(2);
    let server = Server::from(native).threads(8).handle(handler).unwrap();
    let t0 = Instant::now();
    let results = parallel_gets(server.addr(), "/sleep/300", 8);
    assert!(results.iter().all(|(r, _)| r.body_str() == "slept"));
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------------
// Protocol behaviour is the core's

#[test]
fn push_keep_alive_and_pipelining_answer_in_order() {
    let _s = shared();
    let server = push(4, 16);
    let mut c = Client::connect(server.addr());
    for i in 0..3 {
        let body = format!("sequential {i}");
        c.send(format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(c.response().body_str(), body);
    }
    // Pipelined, mixing slow and fast, bodies and none, lengths and chunks.
    let mut batch = String::new();
    batch += "GET /sleep/200 HTTP/1.1\r\nHost: x\r\n\r\n";
    batch += "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst";
    batch += "GET /sleep/0 HTTP/1.1\r\nHost: x\r\n\r\n";
    batch += "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n";
    batch += "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nunread";
    batch += "GET /sleep/0 HTTP/1.1\r\nHost: x\r\n\r\n";
    c.send(batch);
    for want in ["slept", "first", "slept", "second", "ignored", "slept"] {
        let res = c.response();
        assert_eq!((res.status, res.body_str()), (200, want));
        assert!(!res.closes());
    }
}

#[test]
fn expect_100_continue_is_sent_when_the_handler_reads() {
    let _s = shared();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.response().status, 100);
    c.send("hello");
    let res = c.response();
    assert_eq!((res.status, res.body_str()), (200, "hello"));
}

#[test]
fn head_requests_get_no_body() {
    let _s = shared();
    let server = push(2, 4);
    let mut c = Client::connect(server.addr());
    c.send("HEAD /sleep/0 HTTP/1.1\r\nHost: x\r\n\r\n");
    let res = c.head_response();
    assert_eq!((res.status, res.header("content-length")), (200, Some("5")));
    // Nothing but the next response follows.
    c.send("GET /sleep/0 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.response().body_str(), "slept");
}

#[test]
fn request_head_is_copied_whole() {
    let _s = shared();
    let seen = Arc::new(std::sync::Mutex::new(String::new()));
    let server = {
        let seen = Arc::clone(&seen);
        Server::bind("127.0.0.1:0")
            .unwrap()
            .handle(move |req, res| {
                let fields: Vec<String> = req
                    .headers()
                    .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
                    .collect();
                *seen.lock().unwrap() = format!(
                    "{} {} {:?} {:?} {:?} {} [{}]",
                    req.method(),
                    req.path(),
                    req.query(),
                    req.version(),
                    req.header_str("x-TWO"),
                    req.has_body(),
                    fields.join(", ")
                );
                res.set_status(204);
            })
            .unwrap()
    };
    let mut c = Client::connect(server.addr());
    c.send("DELETE /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-One: 1\r\nX-Two: zwei\r\n\r\n");
    assert_eq!(c.response().status, 204);
    assert_eq!(
        *seen.lock().unwrap(),
        "DELETE /a/b Some(\"c=d\") Http11 Some(\"zwei\") false [Host=x, X-One=1, X-Two=zwei]"
    );
}

#[test]
fn body_errors_reach_the_handler() {
    let _s = shared();
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(move |req, _res| {
            let mut body = Vec::new();
            let _ = tx.send(req.read_to_end(&mut body).map_err(|e| e.kind()));
        })
        .unwrap();
    // Malformed chunked framing: the handler sees InvalidData, the client 400.
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
    assert_eq!(c.response().status, 400);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Err(io::ErrorKind::InvalidData)
    );
    // The client stops half-way: UnexpectedEof.
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        Err(io::ErrorKind::UnexpectedEof)
    );
    // A complete body.
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), Ok(2));
    assert_eq!(c.response().status, 200);
}

#[test]
fn a_client_that_goes_away_frees_its_worker() {
    let _s = shared();
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .threads(1)
        .handle(move |_req, res| {
            // Endless body: only the client's departure ends it.
            let chunk = [b'x'; 64 * 1024];
            let _ = tx.send(loop {
                if let Err(e) = res.write_all(&chunk) {
                    break e.kind();
                }
            });
        })
        .unwrap();
    let mut c = Client::connect(server.addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut some = [0u8; 100_000];
    c.reader.read_exact(&mut some).unwrap();
    drop(c);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
fn response_length_is_enforced_and_finish_reports() {
    let _s = shared();
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .handle(move |req, res| {
            let outcome = if req.path() == "/long" {
                res.set_content_length(3);
                let over = res.write_all(b"abcd").map_err(|e| e.kind());
                (over, res.finish().map_err(|e| e.kind()))
            } else {
                res.set_content_length(10);
                let part = res.write_all(b"abc").map_err(|e| e.kind());
                (part, res.finish().map_err(|e| e.kind()))
            };
            let _ = tx.send(outcome);
        })
        .unwrap();
    // Longer than declared: the write fails past the length; 3 bytes go out.
    let mut c = Client::connect(server.addr());
    c.send("GET /long HTTP/1.1\r\nHost: x\r\n\r\n");
    let res = c.response();
    assert_eq!(res.body_str(), "abc");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        (Err(io::ErrorKind::InvalidInput), Ok(()))
    );
    // Shorter than declared: finish says so, and the connection closes.
    let mut c = Client::connect(server.addr());
    c.send("GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        (Ok(()), Err(io::ErrorKind::InvalidInput))
    );
    let got = c.read_to_close().unwrap_or_default();
    assert!(
        got.ends_with(b"\r\n\r\nabc"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

// ---------------------------------------------------------------------
// Pull mode

/// Serves `incoming` on a thread: each request is answered with its
/// method, path and body length. Returns how many it answered once the
/// iteration ends.
fn serve_pull(incoming: Arc<Incoming>) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut n = 0;
        for mut req in incoming.iter() {
            let mut body = Vec::new();
            req.read_to_end(&mut body).unwrap();
            let text = format!("{} {} {}", req.method(), req.path(), body.len());
            req.respond(200, &[("Content-Type", "text/plain")], text)
                .unwrap();
            n += 1;
        }
        n
    })
}

#[test]
fn pull_mode_with_keep_alive_and_pipelining() {
    let _s = shared();
    let incoming = Arc::new(pull(16));
    let serving = serve_pull(Arc::clone(&incoming));
    let mut c = Client::connect(incoming.addr());
    for i in 0..3 {
        c.send(format!("GET /seq/{i} HTTP/1.1\r\nHost: x\r\n\r\n"));
        let res = c.response();
        assert_eq!(res.body_str(), format!("GET /seq/{i} 0"));
        assert!(!res.closes());
    }
    let mut batch = String::new();
    for i in 0..5 {
        batch += &format!("POST /pipe/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {i}\r\n\r\n");
        batch += &"x".repeat(i);
    }
    batch += "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    c.send(batch);
    for i in 0..5 {
        assert_eq!(c.response().body_str(), format!("POST /pipe/{i} {i}"));
    }
    let last = c.response();
    assert_eq!(last.body_str(), "GET /last 0");
    assert!(last.closes());
    assert!(c.is_closed());
    incoming.unblock();
    assert_eq!(serving.join().unwrap(), 9);
}

#[test]
fn unblock_ends_incoming() {
    let _s = shared();
    let incoming = Arc::new(pull(4));
    let serving = serve_pull(Arc::clone(&incoming));
    assert_eq!(get(incoming.addr(), "/one").body_str(), "GET /one 0");
    // The serving thread is blocked waiting for the next request.
    thread::sleep(Duration::from_millis(50));
    incoming.unblock();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || done_tx.send(serving.join().unwrap()));
    assert_eq!(done_rx.recv_timeout(IO_TIMEOUT), Ok(1));

    // recv and friends.
    assert!(incoming.try_recv().unwrap().is_none());
    assert!(incoming
        .recv_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    incoming.unblock();
    let err = incoming.recv().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    // The server still runs: requests wait for the next receiver.
    let mut c = Client::connect(incoming.addr());
    c.send("GET /two HTTP/1.1\r\nHost: x\r\n\r\n");
    let req = incoming.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
    assert_eq!(req.path(), "/two");
    req.respond(202, &[], "").unwrap();
    assert_eq!(c.response().status, 202);
}

#[test]
fn owned_iteration_ends_when_the_server_stops() {
    let _s = shared();
    let incoming = pull(4);
    let addr = incoming.addr();
    incoming.shutdown();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    thread::spawn(move || done_tx.send(incoming.into_iter().count()));
    assert_eq!(done_rx.recv_timeout(IO_TIMEOUT), Ok(0));
    assert!(TcpStream::connect(addr).is_err() || get_fails(addr));
}

/// After shutdown nothing answers (the connect may still succeed on a
/// socket the kernel accepted before the listener closed).
fn get_fails(addr: SocketAddr) -> bool {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut buf = [0u8; 1];
    !matches!(s.read(&mut buf), Ok(1))
}

#[test]
fn pull_queue_full_is_answered_503_and_dropped_requests_500() {
    let _s = shared();
    let incoming = pull(1);
    let mut first = Client::connect(incoming.addr());
    first.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    // Nobody receives yet: /first fills the queue; /second is turned away.
    thread::sleep(Duration::from_millis(100));
    let busy = get(incoming.addr(), "/second");
    assert_eq!((busy.status, busy.header("retry-after")), (503, Some("1")));
    // A request dropped unanswered gets 500.
    let req = incoming.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
    assert_eq!(req.path(), "/first");
    drop(req);
    assert_eq!(first.response().status, 500);
}

#[test]
fn pull_response_streams_from_another_thread() {
    let _s = shared();
    let incoming = pull(4);
    let mut c = Client::connect(incoming.addr());
    c.send("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef");
    let mut req = incoming.recv_timeout(IO_TIMEOUT).unwrap().unwrap();
    let mut res = req.take_response().unwrap();
    assert!(req.take_response().is_none());
    // The response goes to one thread, the body is read on this one.
    let writer = thread::spawn(move || {
        res.header("X-Mode", "pull");
        for part in ["one ", "two ", "three"] {
            res.write_all(part.as_bytes()).unwrap();
            res.flush().unwrap();
        }
        res.finish()
    });
    let mut body = String::new();
    req.read_to_string(&mut body).unwrap();
    assert_eq!(body, "abcdef");
    writer.join().unwrap().unwrap();
    let res = read_response(&mut c.reader, false).unwrap();
    assert_eq!(res.header("x-mode"), Some("pull"));
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(res.body_str(), "one two three");
    // respond() on a request whose response was taken is an error.
    drop(req);
}

#[test]
fn incoming_is_send_and_sync_and_requests_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Incoming>();
    send::<Request>();
    send::<Response>();
}

// ---------------------------------------------------------------------
// A stalled client frees its worker after the server's io_timeout. (The
// bridge took every timeout for its own 100 ms body poll, so a body that
// never came, or a client that never read, held a worker for good.)

const STALL: Duration = Duration::from_millis(200);

fn stall_server(
    handler: impl Fn(&mut Request, &mut Response) + Send + Sync + 'static,
) -> Listening {
    let native = nextloop::server::Server::bind("127.0.0.1:0")
        .unwrap()
        .io_timeout(STALL);
    Server::from(native).threads(1).handle(handler).unwrap()
}

#[test]
fn a_body_that_never_comes_frees_the_worker() {
    let _g = shared();
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = stall_server(move |req, _res| {
        let mut body = Vec::new();
        let _ = tx.send(req.read_to_end(&mut body).map_err(|e| e.kind()));
    });
    let mut c = Client::connect(server.addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
    let outcome = rx.recv_timeout(IO_TIMEOUT);
    assert!(
        matches!(outcome, Ok(Err(_))),
        "the worker's read must fail once the body stalls for {STALL:?}: {outcome:?}"
    );
}

#[test]
fn a_client_that_stops_reading_frees_the_worker() {
    let _g = shared();
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = stall_server(move |_req, res| {
        let chunk = [b'x'; 64 * 1024];
        let _ = tx.send(loop {
            if let Err(e) = res.write_all(&chunk) {
                break e.kind();
            }
        });
    });
    let mut c = Client::connect(server.addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    // Never reads.
    let outcome = rx.recv_timeout(IO_TIMEOUT);
    assert!(
        outcome.is_ok(),
        "the worker's write must fail once the client stops reading for {STALL:?}"
    );
    drop(c);
}
