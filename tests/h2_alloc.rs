//! HTTP/2 heap use, counted by a `#[global_allocator]` on the server's
//! loop thread only: no allocation per request for new streams on a warm
//! connection (HPACK decoding and encoding included), and the heap an
//! idle HTTP/2 connection holds.

mod common;
#[path = "common/counting.rs"]
mod counting;
#[path = "common/h2.rs"]
mod h2;

use std::sync::Mutex;

use common::handlers::{Echo, Hello};
use common::serve;
use counting::{allocations, count_marked_only, live_bytes, server_thread};
use h2::*;
use nextloop::server::{Handler, HandlerFactory};
use nextloop::Control;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn counted<H: Handler + 'static>(make: fn() -> H) -> impl HandlerFactory<Output = H> + Clone {
    count_marked_only();
    move |_: Control| {
        server_thread();
        make()
    }
}

const WARM_UP: u32 = 500;
const MEASURED: u32 = 5_000;

/// GETs on new streams, `batch` at a time; the server's allocations.
fn gets(c: &mut Conn, next_id: &mut u32, count: u32, batch: u32) -> u64 {
    let before = allocations();
    let mut done = 0;
    while done < count {
        let ids: Vec<u32> = (0..batch).map(|i| *next_id + 2 * i).collect();
        *next_id += 2 * batch;
        let mut out = Vec::new();
        for &id in &ids {
            let block = c.request(
                "GET",
                "/",
                &[("user-agent", "alloc-test"), ("accept", "*/*")],
            );
            out.extend_from_slice(&headers(id, &block, END_HEADERS | END_STREAM));
        }
        c.send(&out);
        for &id in &ids {
            let (outcome, res) = c.outcome(id);
            assert_eq!(outcome, Outcome::Status(200));
            assert_eq!(res.unwrap().body_str(), "Hello, World!");
        }
        done += batch;
    }
    allocations() - before
}

fn assert_zero_per_request(batch: u32) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(counted(|| Hello));
    let mut c = Conn::connect(server.addr());
    let mut id = 1;
    gets(&mut c, &mut id, WARM_UP, batch);
    let allocs = gets(&mut c, &mut id, MEASURED, batch);
    drop(c);
    server.shutdown();
    server.join().unwrap();
    assert_eq!(allocs, 0, "{allocs} allocations over {MEASURED} streams");
}

#[test]
fn new_streams_on_a_warm_connection_allocate_nothing() {
    assert_zero_per_request(1);
}

#[test]
fn concurrent_streams_on_a_warm_connection_allocate_nothing() {
    assert_zero_per_request(16);
}

#[test]
fn a_request_body_on_a_warm_connection_allocates_nothing() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(counted(Echo::new));
    let mut c = Conn::connect(server.addr());
    let round = |c: &mut Conn, id: u32| {
        let block = c.request("POST", "/", &[("content-length", "200")]);
        let mut out = headers(id, &block, END_HEADERS);
        out.extend_from_slice(&data(id, &[b'x'; 200], true));
        c.send(&out);
        let (outcome, res) = c.outcome(id);
        assert_eq!(outcome, Outcome::Status(200));
        assert_eq!(res.unwrap().body.len(), 200);
    };
    for i in 0..WARM_UP {
        round(&mut c, 1 + 2 * i);
    }
    let before = allocations();
    for i in WARM_UP..WARM_UP + MEASURED {
        round(&mut c, 1 + 2 * i);
    }
    let allocs = allocations() - before;
    drop(c);
    server.shutdown();
    server.join().unwrap();
    assert_eq!(allocs, 0, "{allocs} allocations over {MEASURED} echoes");
}

/// An idle HTTP/2 connection (after a request) holds at most 2 KiB.
#[test]
fn an_idle_h2_connection_holds_at_most_two_kibibytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const CONNS: usize = 200;
    let server = serve(counted(|| Hello));
    let addr = server.addr();
    let mut first = Conn::connect(addr);
    let mut id = 1;
    gets(&mut first, &mut id, 10, 1);
    let before = live_bytes();
    let mut conns = Vec::new();
    for _ in 0..CONNS {
        let mut c = Conn::connect(addr);
        c.get(1, "/");
        conns.push(c);
    }
    // Idle: past the second after which a connection without streams
    // gives its stream table back.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let per_conn = (live_bytes() - before) / CONNS as i64;
    drop(conns);
    drop(first);
    server.shutdown();
    server.join().unwrap();
    println!("heap per idle HTTP/2 connection: {per_conn} bytes");
    assert!(
        per_conn <= 2048,
        "{per_conn} bytes of heap per idle HTTP/2 connection"
    );
}
