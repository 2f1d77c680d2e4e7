//! The HTTP/2 engine allocates nothing per request in steady state (new
//! streams on an existing connection, HPACK decode and encode, DATA both
//! ways), and an idle connection holds under 2 KiB of heap.
//!
//! Needs the crate-internal driver: runs with `--features fuzzing`
//! (`cargo test --all-features`).
#![cfg(feature = "fuzzing")]

#[path = "common/counting.rs"]
mod counting;

use counting::{allocations, count_marked_only, live_bytes, server_thread};
use nextloop::fuzzing::{h2_client_requests, H2Server};

const PREFACE_AND_SETTINGS: usize = 24 + 9 + 9;

#[test]
fn new_streams_on_a_connection_allocate_nothing() {
    count_marked_only();
    // 100 requests to warm up (tables filled, the stream table sized),
    // 2,000 measured.
    let input = h2_client_requests(2100);
    server_thread();
    let mut server = H2Server::new();
    // Find where request 100 starts: feed the warm-up whole frames.
    let mut pos = PREFACE_AND_SETTINGS;
    for _ in 0..100 {
        let len = usize::from(input[pos]) << 16
            | usize::from(input[pos + 1]) << 8
            | usize::from(input[pos + 2]);
        pos += 9 + len;
    }
    server.feed(&input[..pos]).unwrap();
    assert_eq!(server.responses(), 100);
    let before = allocations();
    for chunk in input[pos..].chunks(4096) {
        server.feed(chunk).unwrap();
    }
    let allocated = allocations() - before;
    assert_eq!(server.responses(), 2100);
    assert_eq!(allocated, 0, "{allocated} allocations for 2,000 requests");
}

#[test]
fn an_idle_connection_holds_under_2_kib() {
    count_marked_only();
    let input = h2_client_requests(50);
    server_thread();
    let held = live_bytes();
    let mut server = H2Server::new();
    server.feed(&input).unwrap();
    assert_eq!(server.responses(), 50);
    server.release_idle();
    let connection = live_bytes() - held - server.loop_heap() as i64;
    eprintln!(
        "an idle HTTP/2 connection: {connection} B of heap (the engine says {})",
        server.connection_heap()
    );
    assert!(connection <= 2048, "{connection} B");
    assert_eq!(connection, server.connection_heap() as i64);
}
