//! hyper 1.x's HTTP/2 client (`client::conn::http2`, the `h2` crate) over
//! one cleartext TCP connection with prior knowledge (h2c), on a
//! single-threaded (current_thread) tokio runtime: comparable to
//! nextloop's client, whose one loop thread does all the work.
//!
//!     hyper-h2-client ADDR N INFLIGHT [--warmup W] [--cap SECS]
//!
//! Sends W + N + INFLIGHT GETs of `http://ADDR/` on one connection,
//! INFLIGHT tasks each sending its next GET as soon as its last response
//! has been read to its end, so INFLIGHT are in flight at every moment.
//! Every status must be 200; every body is read fully (frame by frame,
//! counting bytes, nothing kept). The measured window runs from the W-th
//! completed response to the (W + N)-th, all at full concurrency (the
//! last INFLIGHT are the tail, outside it). W defaults to min(N / 10,
//! 10 000). Prints one line of `key=value` on stdout:
//!
//!   requests, inflight, warmup, elapsed_s, user_us, sys_us (getrusage
//!   RUSAGE_SELF over the window: every thread of the process),
//!   cpu_us_per_request, allocs_per_request (heap allocations made by the
//!   runtime's thread over the window, counted by this program's global
//!   allocator), body_bytes (over the window), vcsw and ivcsw (context
//!   switches over the window).
//!
//! Exits non-zero on any error, non-200 status, or after SECS (120).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

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

fn report(n: u64, inflight: usize, warmup: u64, a: Mark, b: Mark) -> String {
    let user = b.user_us - a.user_us;
    let sys = b.sys_us - a.sys_us;
    format!(
        "requests={n} inflight={inflight} warmup={warmup} elapsed_s={:.3} user_us={user} sys_us={sys} \
         cpu_us_per_request={:.3} allocs_per_request={:.2} body_bytes={} vcsw={} ivcsw={}",
        (b.at - a.at).as_secs_f64(),
        (user + sys) as f64 / n as f64,
        (b.allocs - a.allocs) as f64 / n as f64,
        b.bytes - a.bytes,
        b.vcsw - a.vcsw,
        b.ivcsw - a.ivcsw,
    )
}

struct Shared {
    uri: Uri,
    /// Requests started (the next index to take).
    started: AtomicU64,
    /// Responses read to their end.
    done: AtomicU64,
    body_bytes: AtomicU64,
    total: u64,
    warmup: u64,
    window_end: u64,
    marks: Mutex<(Option<Mark>, Option<Mark>)>,
}

fn usage() -> ! {
    eprintln!("usage: hyper-h2-client ADDR N INFLIGHT [--warmup W] [--cap SECS]");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(n), Some(inflight)) = (args.next(), args.next(), args.next()) else {
        usage()
    };
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let inflight: usize = inflight.parse().unwrap_or_else(|_| usage());
    if n == 0 || inflight == 0 {
        usage();
    }
    let mut warmup = (n / 10).min(10_000);
    let mut cap = 120u64;
    while let Some(flag) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--warmup" => warmup = v.parse().unwrap_or_else(|_| usage()),
            "--cap" => cap = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let result = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(cap), run(addr, n, inflight, warmup))
            .await
            .unwrap_or_else(|_| Err(format!("not done within {cap} s")))
    });
    match result {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("hyper-h2-client: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(addr: String, n: u64, inflight: usize, warmup: u64) -> Result<String, String> {
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("hyper-h2-client: connection: {e}");
        }
    });
    let uri: Uri = format!("http://{addr}/")
        .parse()
        .map_err(|e| format!("uri: {e}"))?;
    let shared = Arc::new(Shared {
        uri,
        started: AtomicU64::new(0),
        done: AtomicU64::new(0),
        body_bytes: AtomicU64::new(0),
        // The tail (the last `inflight`) keeps the window at full
        // concurrency to its end.
        total: warmup + n + inflight as u64,
        warmup,
        window_end: warmup + n,
        marks: Mutex::new((None, None)),
    });
    if warmup == 0 {
        shared.marks.lock().unwrap().0 = Some(mark(0));
    }
    let mut tasks = Vec::with_capacity(inflight);
    for _ in 0..inflight {
        let shared = Arc::clone(&shared);
        let mut sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                if shared.started.fetch_add(1, Ordering::Relaxed) >= shared.total {
                    return Ok::<(), String>(());
                }
                sender.ready().await.map_err(|e| format!("ready: {e}"))?;
                let req = Request::get(shared.uri.clone())
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let res = sender
                    .send_request(req)
                    .await
                    .map_err(|e| format!("request: {e}"))?;
                if res.status() != 200 {
                    return Err(format!("status {}", res.status()));
                }
                let mut body = res.into_body();
                let mut got = 0u64;
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| format!("body: {e}"))?;
                    if let Some(data) = frame.data_ref() {
                        got += data.len() as u64;
                    }
                }
                let bytes = shared.body_bytes.fetch_add(got, Ordering::Relaxed) + got;
                let done = shared.done.fetch_add(1, Ordering::Relaxed) + 1;
                if done == shared.warmup {
                    shared.marks.lock().unwrap().0 = Some(mark(bytes));
                } else if done == shared.window_end {
                    shared.marks.lock().unwrap().1 = Some(mark(bytes));
                }
            }
        }));
    }
    drop(sender);
    for task in tasks {
        task.await.map_err(|e| format!("task: {e}"))??;
    }
    let done = shared.done.load(Ordering::Relaxed);
    if done != shared.total {
        return Err(format!("{done} of {} responses", shared.total));
    }
    let (Some(a), Some(b)) = *shared.marks.lock().unwrap() else {
        return Err("the window was not measured".into());
    };
    Ok(report(n, inflight, warmup, a, b))
}
