//! Heap allocations made by the client per request on a reused keep-alive
//! connection (HTTP/1.1, and HTTP/2 with several streams at once),
//! counted by a `#[global_allocator]`.
//!
//! Threads are counted by role: the test thread marks itself the
//! *caller* (it submits requests and waits for them), the raw server's
//! threads mark themselves *excluded*; everything else — the client's loop
//! thread, the only other thread at work — is counted as the *loop*. The
//! raw server answers from fixed buffers, so the figures are exact. Tests
//! take a lock so that one measurement runs at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use nextloop::client::{Client, Handler, Response};
use nextloop::{Decoder, Next};

struct Counting;

static LOOP_ALLOCS: AtomicU64 = AtomicU64::new(0);
static CALLER_ALLOCS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Loop,
    Caller,
    Excluded,
}

thread_local! {
    static ROLE: Cell<Role> = const { Cell::new(Role::Loop) };
}

fn count() {
    match ROLE.try_with(Cell::get).unwrap_or(Role::Excluded) {
        Role::Loop => LOOP_ALLOCS.fetch_add(1, Ordering::Relaxed),
        Role::Caller => CALLER_ALLOCS.fetch_add(1, Ordering::Relaxed),
        Role::Excluded => 0,
    };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const WARM_UP: u64 = 1_000;
const MEASURED: u64 = 10_000;

/// A keep-alive server on fixed buffers: every request head gets the same
/// small response. Its threads are not counted.
fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        ROLE.with(|r| r.set(Role::Excluded));
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                ROLE.with(|r| r.set(Role::Excluded));
                let response = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World!";
                let mut buf = [0u8; 8192];
                let mut len = 0;
                loop {
                    match stream.read(&mut buf[len..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    while let Some(end) = buf[..len].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..len, 0);
                        len -= end + 4;
                        if stream.write_all(response).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// An HTTP/2 (prior knowledge) server on fixed buffers: every request's
/// HEADERS gets `:status 200` and a 13-byte DATA ending the stream. It
/// reads the client's frames and ignores all but HEADERS (windows are not
/// enforced: the client must grant them anyway, or its own engine stops
/// reading — that is counted too). Its threads are not counted.
fn h2_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        ROLE.with(|r| r.set(Role::Excluded));
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                ROLE.with(|r| r.set(Role::Excluded));
                // Our SETTINGS (empty), and the ack of the client's.
                let hello = [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
                if stream.write_all(&hello).is_err() {
                    return;
                }
                let mut buf = [0u8; 32 * 1024];
                let mut len = 0;
                let mut preface = 24;
                loop {
                    match stream.read(&mut buf[len..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    let mut at = 0;
                    if preface > 0 {
                        let skip = preface.min(len);
                        preface -= skip;
                        at = skip;
                    }
                    let mut out = [0u8; 8 * 33];
                    let mut out_len = 0;
                    while len - at >= 9 {
                        let size = u32::from_be_bytes([0, buf[at], buf[at + 1], buf[at + 2]]);
                        let size = size as usize;
                        if len - at < 9 + size {
                            break;
                        }
                        let (ty, id) = (buf[at + 3], &buf[at + 5..at + 9]);
                        if ty == 1 {
                            // HEADERS: a table size update to 0 (the
                            // client's SETTINGS lowered the table size;
                            // RFC 7541 §4.2) and `:status 200` (static
                            // index 8), then the body ending the stream.
                            let mut answer = [0u8; 33];
                            answer[..9].copy_from_slice(&[0, 0, 2, 1, 4, 0, 0, 0, 0]);
                            answer[5..9].copy_from_slice(id);
                            answer[9..11].copy_from_slice(&[0x20, 0x88]);
                            answer[11..20].copy_from_slice(&[0, 0, 13, 0, 1, 0, 0, 0, 0]);
                            answer[16..20].copy_from_slice(id);
                            answer[20..].copy_from_slice(b"Hello, World!");
                            if out_len + answer.len() > out.len() {
                                if stream.write_all(&out[..out_len]).is_err() {
                                    return;
                                }
                                out_len = 0;
                            }
                            out[out_len..out_len + answer.len()].copy_from_slice(&answer);
                            out_len += answer.len();
                        }
                        at += 9 + size;
                    }
                    if stream.write_all(&out[..out_len]).is_err() {
                        return;
                    }
                    buf.copy_within(at..len, 0);
                    len -= at;
                }
            });
        }
    });
    addr
}

/// Reads the body into a stack buffer and reports its length.
struct Get {
    done: mpsc::SyncSender<usize>,
    len: usize,
}

impl Handler for Get {
    fn on_response(&mut self, res: Response<'_>) -> Next {
        assert_eq!(res.status(), 200);
        Next::read()
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 64];
        loop {
            match body.read(&mut buf) {
                Ok(0) => {
                    let _ = self.done.send(self.len);
                    return Next::end();
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::read(),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

/// Runs `run(WARM_UP)`, then counts the allocations of `run(MEASURED)`:
/// per request on the loop thread, and on the calling thread (this one).
fn measure(run: impl Fn(u64)) -> (f64, f64) {
    ROLE.with(|r| r.set(Role::Caller));
    run(WARM_UP);
    LOOP_ALLOCS.store(0, Ordering::SeqCst);
    CALLER_ALLOCS.store(0, Ordering::SeqCst);
    run(MEASURED);
    let on_loop = LOOP_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    let on_caller = CALLER_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    ROLE.with(|r| r.set(Role::Loop));
    (on_loop, on_caller)
}

/// Native GETs of `url`, `at_once` in flight together, each body read
/// into a stack buffer; the allocations per request (see [`measure`]).
fn native_gets(client: &Client, url: &str, at_once: u64) -> (f64, f64) {
    let (tx, rx) = mpsc::sync_channel(at_once as usize);
    measure(|n| {
        for _ in 0..n / at_once {
            for _ in 0..at_once {
                let handler = Get {
                    done: tx.clone(),
                    len: 0,
                };
                client.request(url, handler).unwrap();
            }
            for _ in 0..at_once {
                assert_eq!(rx.recv().unwrap(), 13);
            }
        }
    })
}

#[test]
fn native_get_on_a_reused_connection() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let addr = server();
    let url = format!("http://{addr}/hello");
    let client = Client::new().unwrap();
    let (on_loop, on_caller) = native_gets(&client, &url, 1);
    println!(
        "native client, GET with a 13-byte body on a reused connection: \
         {on_loop:.3} allocations per request on the loop thread, \
         {on_caller:.3} on the calling thread"
    );
    assert_eq!(on_loop, 0.0, "the loop allocates per request");
    // The URL (one String), the boxed handler, and the submission
    // channel's block (one per 31 messages).
    assert!(on_caller <= 2.1, "{on_caller} allocations per request");
}

#[test]
fn native_gets_on_a_warm_http2_connection() {
    const AT_ONCE: u64 = 8;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let addr = h2_server();
    let url = format!("http://{addr}/hello");
    let client = Client::builder()
        .http2_prior_knowledge(&url)
        .unwrap()
        .build()
        .unwrap();
    let (on_loop, on_caller) = native_gets(&client, &url, AT_ONCE);
    println!(
        "native client over HTTP/2, {AT_ONCE} GETs at once with a 13-byte body each: \
         {on_loop:.3} allocations per request on the loop thread, \
         {on_caller:.3} on the calling thread"
    );
    assert_eq!(on_loop, 0.0, "the loop allocates per request");
    // As over HTTP/1.1: the URL, the boxed handler, the channel's block.
    assert!(on_caller <= 2.1, "{on_caller} allocations per request");
}

#[test]
fn blocking_get_on_a_reused_connection() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let addr = server();
    let url = format!("http://{addr}/hello");
    let client = nextloop::hypersync::Client::new();
    let (on_loop, on_caller) = measure(|n| {
        for _ in 0..n {
            let mut res = client.get(&url).unwrap();
            let mut buf = [0u8; 64];
            let mut len = 0;
            loop {
                match res.read(&mut buf[len..]).unwrap() {
                    0 => break,
                    n => len += n,
                }
            }
            assert_eq!(len, 13);
        }
    });
    println!(
        "hypersync client, GET with a 13-byte body on a reused connection: \
         {on_loop:.3} allocations per request on the loop thread, \
         {on_caller:.3} on the calling thread"
    );
    // Owned copies of the head and the body chunk, by design; a bound,
    // not a target.
    assert!(on_loop + on_caller < 20.0);
}
