//! HPACK allocates only when a context is made: decoding and encoding
//! blocks — Huffman, table inserts, evictions, wrapping entries — cost no
//! heap allocation, and a context holds a bounded amount of heap.
//!
//! Needs the crate-internal codec: runs with `--features fuzzing`
//! (`cargo test --all-features`).
#![cfg(feature = "fuzzing")]

#[path = "common/counting.rs"]
mod counting;

use counting::{allocations, count_marked_only, live_bytes, server_thread};
use nextloop::fuzzing::{HpackDecoder, HpackEncoder};

/// A browser's request, and the response to it.
const REQUEST: &[(&[u8], &[u8], bool)] = &[
    (b":method", b"GET", false),
    (b":scheme", b"https", false),
    (b":authority", b"example.test", false),
    (b":path", b"/static/app.js?v=1234", false),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", false),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", false),
    (b"accept-encoding", b"gzip, deflate, br", false),
    (b"accept-language", b"en-US,en;q=0.9", false),
    (b"cookie", b"session=0123456789abcdef0123456789abcdef; theme=dark", false),
    (b"referer", b"https://example.test/", false),
];

const RESPONSE: &[(&[u8], &[u8], bool)] = &[
    (b":status", b"200", false),
    (b"content-type", b"text/plain", false),
    (b"content-length", b"13", false),
    (b"date", b"Thu, 03 Dec 2026 12:00:00 GMT", false),
    (b"server", b"nextloop", false),
];

#[test]
fn encoding_and_decoding_blocks_does_not_allocate() {
    count_marked_only();
    server_thread();
    let held = live_bytes();
    // What one HTTP/2 connection would hold: both contexts with default
    // tables, and a 16 KiB scratch (which the engine may pool per loop).
    let mut enc = HpackEncoder::new(4096);
    let mut dec = HpackDecoder::new(4096, 16 * 1024, 64 * 1024);
    let context = live_bytes() - held;
    let mut out = Vec::with_capacity(16 * 1024);
    let before = allocations();
    let mut fields = 0;
    let mut bytes = 0;
    for i in 0..2000u32 {
        out.clear();
        // Mostly repeats (the steady state), now and then a new value,
        // so entries are inserted, evicted and wrap around the ring.
        let fresh = format_value(i);
        let fresh_field: [(&[u8], &[u8], bool); 1] = [(b"x-request-id", &fresh, false)];
        let list = if i % 3 == 0 {
            &fresh_field[..]
        } else {
            REQUEST
        };
        enc.encode(list, &mut out);
        enc.encode(RESPONSE, &mut out);
        dec.decode(&out, |n, v, _| {
            fields += 1;
            bytes += n.len() + v.len();
        })
        .expect("decodes");
    }
    let allocated = allocations() - before;
    assert_eq!(allocated, 0, "{allocated} allocations for 2000 blocks");
    assert!(fields > 20_000 && bytes > 0);
    // Each table is its 4096 bytes plus 6 per possible entry (128), and
    // the scratch its 16 KiB: nothing more, all of it allocated up front.
    assert_eq!(context, 2 * (4096 + 6 * 128) + 16 * 1024);
}

/// A request id as a fixed-size stack value, so that making it does not
/// allocate.
fn format_value(i: u32) -> [u8; 10] {
    let mut v = *b"id-0000000";
    let mut n = i;
    for b in v[3..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    v
}
