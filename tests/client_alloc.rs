//! Heap allocations made by the client per request on a reused keep-alive
//! connection, counted by a `#[global_allocator]`.
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

#[test]
fn native_get_on_a_reused_connection() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let addr = server();
    let url = format!("http://{addr}/hello");
    let client = Client::new().unwrap();
    let (tx, rx) = mpsc::sync_channel(1);
    ROLE.with(|r| r.set(Role::Caller));
    let run = |n: u64| {
        for _ in 0..n {
            let handler = Get {
                done: tx.clone(),
                len: 0,
            };
            client.request(&url, handler).unwrap();
            assert_eq!(rx.recv().unwrap(), 13);
        }
    };
    run(WARM_UP);
    LOOP_ALLOCS.store(0, Ordering::SeqCst);
    CALLER_ALLOCS.store(0, Ordering::SeqCst);
    run(MEASURED);
    let on_loop = LOOP_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    let on_caller = CALLER_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    ROLE.with(|r| r.set(Role::Loop));
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
fn blocking_get_on_a_reused_connection() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let addr = server();
    let url = format!("http://{addr}/hello");
    let client = nextloop::hypersync::Client::new();
    ROLE.with(|r| r.set(Role::Caller));
    let run = |n: u64| {
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
    };
    run(WARM_UP);
    LOOP_ALLOCS.store(0, Ordering::SeqCst);
    CALLER_ALLOCS.store(0, Ordering::SeqCst);
    run(MEASURED);
    let on_loop = LOOP_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    let on_caller = CALLER_ALLOCS.load(Ordering::SeqCst) as f64 / MEASURED as f64;
    ROLE.with(|r| r.set(Role::Loop));
    println!(
        "hypersync client, GET with a 13-byte body on a reused connection: \
         {on_loop:.3} allocations per request on the loop thread, \
         {on_caller:.3} on the calling thread"
    );
    // Owned copies of the head and the body chunk, by design; a bound,
    // not a target.
    assert!(on_loop + on_caller < 20.0);
}
