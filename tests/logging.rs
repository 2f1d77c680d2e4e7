//! Diagnostics through the `log` facade, and the access log.
//!
//! A logger of the test's own collects every record; each test looks for
//! the records its own connection caused (by a path or a marker unique to
//! it). Over real TCP on 127.0.0.1; waits are bounded.

mod common;

use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use common::handlers::{Echo, Hello};
use common::{client, get, serve, serve_with, BOUND};
use log::{Level, Log, Metadata, Record};
use nextloop::server::{Access, AccessLog, Handler, Request, Response, ACCESS_LOG_TARGET};
use nextloop::Next;

/// Every record logged: (level, target, message).
static RECORDS: Mutex<Vec<(Level, String, String)>> = Mutex::new(Vec::new());

struct Collect;

impl Log for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let entry = (
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        );
        RECORDS.lock().unwrap().push(entry);
    }

    fn flush(&self) {}
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Collect).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Waits (bounded) for a record that `matches`, and returns it.
fn wait_for(
    what: &str,
    matches: impl Fn(&(Level, String, String)) -> bool,
) -> (Level, String, String) {
    let deadline = Instant::now() + BOUND;
    loop {
        if let Some(r) = RECORDS.lock().unwrap().iter().find(|r| matches(r)) {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no record {what}: {:?}",
            RECORDS.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn access_log_writes_a_line_per_exchange_through_log() {
    install();
    let server = serve(AccessLog::new(|_| Hello));
    let mut c = client(server.addr());
    c.send(get("/access-through-log?q=1"));
    let res = c.response();
    assert_eq!(res.status, 200);
    let (level, target, line) =
        wait_for("for the request", |r| r.2.contains("/access-through-log"));
    assert_eq!(level, Level::Info);
    assert_eq!(target, ACCESS_LOG_TARGET);
    let peer = c.reader.get_ref().local_addr().unwrap();
    assert!(line.starts_with(&format!("{peer} ")), "{line}");
    assert!(
        line.contains("\"GET /access-through-log?q=1 HTTP/1.1\" 200 13 "),
        "{line}"
    );
    assert!(line.ends_with("ms"), "{line}");
}

#[test]
fn access_log_counts_streamed_bytes_and_gives_the_fields_to_a_sink() {
    type Seen = (String, String, Option<u16>, u64, Duration);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = {
        let seen = Arc::clone(&seen);
        move |a: &Access<'_>| {
            let entry = (
                a.method.to_string(),
                a.target.to_string(),
                a.status,
                a.bytes,
                a.duration,
            );
            seen.lock().unwrap().push(entry);
        }
    };
    let server = serve(AccessLog::with(|_| Echo::new(), sink));
    let mut c = client(server.addr());
    // Chunked in, chunked out: the bytes are counted as they stream.
    c.send(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let res = c.response();
    assert_eq!(res.body_str(), "hello world");
    let deadline = Instant::now() + BOUND;
    while seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the sink was never called");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (method, target, status, bytes, duration) = seen.lock().unwrap()[0].clone();
    assert_eq!((method.as_str(), target.as_str()), ("POST", "/echo"));
    assert_eq!((status, bytes), (Some(200), 11));
    assert!(duration < BOUND);
}

#[test]
fn a_bad_request_is_logged_at_debug_with_its_status() {
    install();
    let server = serve(|_| Hello);
    let mut c = client(server.addr());
    c.send("GET /bad-request-logged HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(c.response().status, 400);
    let (level, target, line) = wait_for("for the 400", |r| r.2.contains(" 400 "));
    assert_eq!(level, Level::Debug);
    assert!(target.starts_with("nextloop"), "{target}");
    assert!(line.contains("Content-Length"), "{line}");
    let peer = c.reader.get_ref().local_addr().unwrap();
    assert!(line.starts_with(&peer.to_string()), "{line}");
}

struct Panics;

impl Handler for Panics {
    fn on_request(&mut self, _: Request<'_>) -> Next {
        panic!("deliberate panic for the log test");
    }

    fn on_response(&mut self, _: &mut Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn a_handler_panic_is_logged_at_error() {
    install();
    let server = serve(|_| Panics);
    let mut c = client(server.addr());
    c.send(get("/"));
    assert_eq!(c.response().status, 500);
    let (level, _, line) = wait_for("for the panic", |r| {
        r.2.contains("deliberate panic for the log test")
    });
    assert_eq!(level, Level::Error);
    assert!(line.contains("panicked"), "{line}");
}

struct Sleeps;

impl Handler for Sleeps {
    fn on_request(&mut self, _: Request<'_>) -> Next {
        Next::wait().timeout(Duration::from_millis(50))
    }

    fn on_response(&mut self, _: &mut Response<'_>) -> Next {
        Next::end()
    }
}

#[test]
fn a_timeout_is_logged_at_debug() {
    install();
    let server = serve_with(|s| s, |_| Sleeps);
    let mut c = client(server.addr());
    c.send(get("/"));
    assert!(c.is_closed());
    let (level, _, _) = wait_for("for the timeout", |r| r.2.contains("timed out"));
    assert_eq!(level, Level::Debug);
}

/// An access-log sink collecting `(target, status, bytes)`, and a wait
/// for `n` of them.
type Lines = Arc<Mutex<Vec<(String, Option<u16>, u64)>>>;

fn sink() -> (Lines, impl Fn(&Access<'_>) + Clone + Send + 'static) {
    let seen: Lines = Arc::default();
    let sink = {
        let seen = Arc::clone(&seen);
        move |a: &Access<'_>| {
            let entry = (a.target.to_string(), a.status, a.bytes);
            seen.lock().unwrap().push(entry);
        }
    };
    (seen, sink)
}

fn wait_lines(seen: &Lines, n: usize) -> Vec<(String, Option<u16>, u64)> {
    let deadline = Instant::now() + BOUND;
    while seen.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "{:?}", seen.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.lock().unwrap().clone()
}

#[test]
fn access_log_has_a_line_per_pipelined_request_and_head_counts_no_bytes() {
    let (seen, sink) = sink();
    let server = serve(AccessLog::with(|_| Hello, sink));
    let mut c = client(server.addr());
    c.send(format!(
        "{}HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n{}",
        get("/p1"),
        get("/p2")
    ));
    assert_eq!(c.response().status, 200);
    assert_eq!(c.head_response().status, 200);
    assert_eq!(c.response().status, 200);
    let lines = wait_lines(&seen, 3);
    assert_eq!(
        lines,
        [
            ("/p1".to_string(), Some(200), 13),
            ("/h".to_string(), Some(200), 0),
            ("/p2".to_string(), Some(200), 13),
        ]
    );
}

#[test]
fn access_log_records_the_status_the_server_answered_a_bad_body_with() {
    let (seen, sink) = sink();
    let server = serve_with(
        |s| s.max_body_size(4),
        AccessLog::with(|_| Echo::new(), sink),
    );
    let mut c = client(server.addr());
    c.send("POST /too-large HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(c.response().status, 413);
    let mut c = client(server.addr());
    c.send("POST /bad-chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(c.response().status, 400);
    let mut lines = wait_lines(&seen, 2);
    lines.sort();
    assert_eq!(lines[0].0, "/bad-chunk");
    assert_eq!(lines[0].1, Some(400), "{lines:?}");
    assert_eq!(lines[1].0, "/too-large");
    assert_eq!(lines[1].1, Some(413), "{lines:?}");
}
