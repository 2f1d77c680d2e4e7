//! nextloop's HTTP/2 client over one cleartext TCP connection with prior
//! knowledge (h2c), driven by non-blocking [`Handler`]s on the client's
//! one loop thread: the counterpart of `bench/peers/hyper-h2-client`.
//!
//!     nextloop-h2-client ADDR N INFLIGHT [--warmup W] [--cap SECS] [--body PATH]
//!
//! Sends W + N + INFLIGHT GETs of `http://ADDR/` on one connection: the
//! first INFLIGHT are submitted from the main thread, and each handler,
//! once its response has been read to its end, submits the next
//! (`Client::request` from the callback, on the loop thread), so INFLIGHT
//! are in flight at every moment. Every status must be 200; every body is
//! read fully (into a stack buffer, counting bytes, nothing kept). The
//! measured window runs from the W-th completed response to the
//! (W + N)-th, all at full concurrency (the last INFLIGHT are the tail,
//! outside it). W defaults to min(N / 10, 10 000). Prints one line of
//! `key=value` on stdout:
//!
//!   requests, inflight, warmup, elapsed_s, user_us, sys_us (getrusage
//!   RUSAGE_SELF over the window: every thread of the process — the loop
//!   thread, and the main thread waiting on a condition variable),
//!   cpu_us_per_request, allocs_per_request (heap allocations made by the
//!   loop thread over the window, counted by this program's global
//!   allocator; the main thread is asleep and makes none), of which
//!   submit_allocs_per_request inside `Client::request` (the boxed
//!   handler, the parsed URL, the channel to the loop), body_bytes (over
//!   the window), vcsw and ivcsw (context switches over the window).
//!
//! With W = 0 the window starts before the first request is submitted (the
//! connection's setup in it). `--body PATH` writes the first response's body to PATH (for comparing
//! with curl's). Exits non-zero on any error, non-200 status, or after
//! SECS (120).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use nextloop::client::{self, Client, Handler};
use nextloop::{Decoder, Next};

// ---- a counting allocator: per thread, so that counting costs no atomic ----

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs_here() -> u64 {
    ALLOCS.with(|c| c.get())
}

// ---- the measured window ----

/// One end of the measured window.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    user_us: i64,
    sys_us: i64,
    vcsw: i64,
    ivcsw: i64,
    allocs: u64,
    bytes: u64,
}

fn mark(bytes: u64) -> Mark {
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let us = |t: libc::timeval| t.tv_sec as i64 * 1_000_000 + t.tv_usec as i64;
    Mark {
        at: Instant::now(),
        user_us: us(ru.ru_utime),
        sys_us: us(ru.ru_stime),
        vcsw: ru.ru_nvcsw as i64,
        ivcsw: ru.ru_nivcsw as i64,
        allocs: allocs_here(),
        bytes,
    }
}

/// What the handlers share: counters (touched by the loop thread only,
/// atomics for a `static`), and how the run ended.
struct Run {
    url: String,
    total: u64,
    warmup: u64,
    window_end: u64,
    /// Requests submitted.
    started: AtomicU64,
    /// Responses read to their end.
    done: AtomicU64,
    body_bytes: AtomicU64,
    /// Allocations inside `Client::request` within the window.
    submit_allocs: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    start: Option<Mark>,
    end: Option<Mark>,
    body: Option<Vec<u8>>,
    error: Option<String>,
    finished: bool,
}

static RUN: OnceLock<Run> = OnceLock::new();
static CLIENT: OnceLock<Client> = OnceLock::new();

fn run() -> &'static Run {
    RUN.get().expect("set before the first request")
}

fn fail(why: String) {
    let run = run();
    let mut st = run.state.lock().unwrap();
    st.error.get_or_insert(why);
    run.changed.notify_all();
}

/// One GET: checks the status, reads the body to its end, then submits
/// the next GET while there are more to send.
struct Get {
    status: u16,
    got: u64,
    /// Keep the body (the first request, with `--body`).
    keep: Option<Vec<u8>>,
}

impl Get {
    fn new(keep: bool) -> Get {
        Get {
            status: 0,
            got: 0,
            keep: keep.then(Vec::new),
        }
    }

    fn finished(&mut self) {
        let run = run();
        let bytes = run.body_bytes.fetch_add(self.got, Ordering::Relaxed) + self.got;
        let done = run.done.fetch_add(1, Ordering::Relaxed) + 1;
        if done == run.warmup {
            run.state.lock().unwrap().start = Some(mark(bytes));
        } else if done == run.window_end {
            run.state.lock().unwrap().end = Some(mark(bytes));
        }
        if let Some(body) = self.keep.take() {
            run.state.lock().unwrap().body = Some(body);
        }
        if run.started.fetch_add(1, Ordering::Relaxed) < run.total {
            let before = allocs_here();
            let sent = CLIENT.get().unwrap().request(&run.url, Get::new(false));
            if done >= run.warmup && done < run.window_end {
                run.submit_allocs
                    .fetch_add(allocs_here() - before, Ordering::Relaxed);
            }
            if let Err(e) = sent {
                fail(format!("request: {e}"));
            }
        }
        if done == run.total {
            let mut st = run.state.lock().unwrap();
            st.finished = true;
            run.changed.notify_all();
        }
    }
}

impl Handler for Get {
    // on_request: the default, a GET of the URL's target without a body.

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        self.status = res.status();
        if self.status != 200 {
            fail(format!("status {}", self.status));
            return Next::end();
        }
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        // 1 KiB: the body is small, and the buffer is zeroed on every call.
        let mut buf = [0u8; 1024];
        // Bounded: a body that keeps coming gets the loop back in between.
        for _ in 0..64 {
            match body.read(&mut buf) {
                Ok(0) => {
                    self.finished();
                    return Next::end();
                }
                Ok(n) => {
                    self.got += n as u64;
                    if let Some(keep) = &mut self.keep {
                        keep.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Next::read(),
                Err(e) => {
                    fail(format!("body: {e}"));
                    return Next::end();
                }
            }
        }
        Next::read()
    }

    fn on_error(&mut self, err: client::Error) -> Next {
        fail(format!("exchange: {err}"));
        Next::end()
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: nextloop-h2-client ADDR N INFLIGHT [--warmup W] [--cap SECS] [--body PATH]"
    );
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(n), Some(inflight)) = (args.next(), args.next(), args.next()) else {
        usage()
    };
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let inflight: u64 = inflight.parse().unwrap_or_else(|_| usage());
    if n == 0 || inflight == 0 || inflight > 65_536 {
        usage();
    }
    let mut warmup = (n / 10).min(10_000);
    let mut cap = 120u64;
    let mut body_path = None;
    while let Some(flag) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--warmup" => warmup = v.parse().unwrap_or_else(|_| usage()),
            "--cap" => cap = v.parse().unwrap_or_else(|_| usage()),
            "--body" => body_path = Some(v),
            _ => usage(),
        }
    }
    let origin = format!("http://{addr}");
    let client = Client::builder()
        .http2_prior_knowledge(&origin)
        .unwrap_or_else(|e| {
            eprintln!("nextloop-h2-client: {origin}: {e}");
            std::process::exit(2)
        })
        .http2_max_streams(inflight as u32)
        .http2_connections(1)
        .max_requests(inflight as usize + 16)
        .build()
        .expect("a client");
    let _ = CLIENT.set(client);
    // The tail (the last `inflight`) keeps the window at full concurrency
    // to its end.
    let total = warmup + n + inflight;
    let _ = RUN.set(Run {
        url: format!("http://{addr}/"),
        total,
        warmup,
        window_end: warmup + n,
        started: AtomicU64::new(0),
        done: AtomicU64::new(0),
        body_bytes: AtomicU64::new(0),
        submit_allocs: AtomicU64::new(0),
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
    });
    let run = run();
    if warmup == 0 {
        // Taken here, on the main thread: the allocation count is the loop
        // thread's, from its start.
        let start = Mark { allocs: 0, ..mark(0) };
        run.state.lock().unwrap().start = Some(start);
    }
    let client = CLIENT.get().unwrap();
    let first = inflight.min(total);
    run.started.store(first, Ordering::Relaxed);
    for i in 0..first {
        if let Err(e) = client.request(&run.url, Get::new(i == 0 && body_path.is_some())) {
            eprintln!("nextloop-h2-client: request: {e}");
            std::process::exit(1);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(cap);
    let mut st = run.state.lock().unwrap();
    while !st.finished && st.error.is_none() {
        let now = Instant::now();
        if now >= deadline {
            st.error = Some(format!("not done within {cap} s"));
            break;
        }
        st = run.changed.wait_timeout(st, deadline - now).unwrap().0;
    }
    if let Some(e) = &st.error {
        eprintln!("nextloop-h2-client: {e}");
        std::process::exit(1);
    }
    let (Some(a), Some(b)) = (st.start, st.end) else {
        eprintln!("nextloop-h2-client: the window was not measured");
        std::process::exit(1);
    };
    if let Some(path) = body_path {
        let body = st.body.take().unwrap_or_default();
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("nextloop-h2-client: {path}: {e}");
            std::process::exit(1);
        }
    }
    let user = b.user_us - a.user_us;
    let sys = b.sys_us - a.sys_us;
    let submit = run.submit_allocs.load(Ordering::Relaxed);
    println!(
        "requests={n} inflight={inflight} warmup={warmup} elapsed_s={:.3} user_us={user} sys_us={sys} \
         cpu_us_per_request={:.3} allocs_per_request={:.2} submit_allocs_per_request={:.2} \
         body_bytes={} vcsw={} ivcsw={}",
        (b.at - a.at).as_secs_f64(),
        (user + sys) as f64 / n as f64,
        (b.allocs - a.allocs) as f64 / n as f64,
        submit as f64 / n as f64,
        b.bytes - a.bytes,
        b.vcsw - a.vcsw,
        b.ivcsw - a.ivcsw,
    );
    // Exit without waiting for the client's loop to wind down.
    std::process::exit(0);
}
