//! Micro-benchmarks of the protocol hot path.
//!
//!     cargo bench --features fuzzing --bench proto

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nextloop::fuzzing::{
    parse_head, Driver, HpackDecoder, HpackEncoder, ResponseEncoding, Summary,
};
use nextloop::server::{Handler, Response};
use nextloop::Next;

/// What curl sends.
const SMALL: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";

/// What a browser sends: a dozen fields, ~600 bytes.
const BROWSER: &[u8] = b"GET /static/app.js?v=1234 HTTP/1.1\r\n\
Host: example.test\r\n\
Connection: keep-alive\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cache-Control: max-age=0\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Referer: https://example.test/\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
If-None-Match: \"5f1b-1234567890\"\r\n\r\n";

fn head_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_head");
    for (name, head) in [("curl", SMALL), ("browser", BROWSER)] {
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_head(black_box(head))));
    }
    group.finish();
}

fn response_encoding(c: &mut Criterion) {
    let mut enc = ResponseEncoding::default();
    c.bench_function("encode_response/hello", |b| {
        b.iter(|| black_box(enc.hello().len()))
    });
}

/// Parse, handler, encode: one request through the connection machine.
fn exchange(c: &mut Criterion) {
    let mut driver = Driver::new(Summary::factory());
    c.bench_function("exchange/get", |b| {
        b.iter(|| {
            driver.output.clear();
            driver.feed(black_box(SMALL));
            black_box(driver.output.len())
        })
    });
    // A head trickling in a byte per read (a slow or hostile client): each
    // read parses the partial head again from its start, so that a verdict
    // never depends on how the bytes came (quadratic in the head's length;
    // per byte it stays below the cost of the read that brought it until
    // heads of a few KiB).
    c.bench_function("exchange/browser_byte_by_byte", |b| {
        b.iter(|| {
            driver.output.clear();
            for byte in BROWSER.chunks(1) {
                driver.feed(black_box(byte));
            }
            black_box(driver.output.len())
        })
    });
}

/// What wrk sends (`wrk.format(nil, "/")`).
const WRK: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n\r\n";

/// The `hello` example's handler.
struct Hello;

impl Handler for Hello {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Content-Type", "text/plain")
            .body(b"Hello, World!");
        Next::end()
    }
}

/// `bench/run.sh`'s pipelined case without the kernel: sixteen of wrk's
/// requests fed at once to a connection serving `hello`'s handler — the
/// server's user-space work per request, measured precisely.
fn pipelined(c: &mut Criterion) {
    let batch = WRK.repeat(16);
    let mut driver = Driver::new(|_| Hello);
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Elements(16));
    group.bench_function("hello_pipelined16", |b| {
        b.iter(|| {
            driver.output.clear();
            driver.feed(black_box(&batch));
            black_box(driver.output.len())
        })
    });
    group.finish();
}

/// The fields of `BROWSER` as an HTTP/2 request.
const H2_REQUEST: &[(&[u8], &[u8], bool)] = &[
    (b":method", b"GET", false),
    (b":scheme", b"https", false),
    (b":authority", b"example.test", false),
    (b":path", b"/static/app.js?v=1234", false),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", false),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8", false),
    (b"accept-encoding", b"gzip, deflate, br", false),
    (b"accept-language", b"en-US,en;q=0.9", false),
    (b"cache-control", b"max-age=0", false),
    (b"cookie", b"session=0123456789abcdef0123456789abcdef; theme=dark", false),
    (b"referer", b"https://example.test/", false),
    (b"sec-fetch-dest", b"script", false),
    (b"sec-fetch-mode", b"no-cors", false),
    (b"if-none-match", b"\"5f1b-1234567890\"", false),
];

/// `hello`'s response as HTTP/2 fields.
const H2_RESPONSE: &[(&[u8], &[u8], bool)] = &[
    (b":status", b"200", false),
    (b"content-type", b"text/plain", false),
    (b"content-length", b"13", false),
    (b"date", b"Thu, 03 Dec 2026 12:00:00 GMT", false),
    (b"server", b"nextloop", false),
];

/// HPACK on a connection's second and later requests (the first filled
/// the dynamic table: nearly all indexed), and the first request's block
/// (`_cold`: literals, Huffman, inserts and evictions) decoded again and
/// again. Instructions per block, deterministic:
///
///     valgrind --tool=callgrind --toggle-collect='nextloop::fuzzing::HpackDecoder::decode*' \
///         target/release/deps/proto-<hash> --bench --exact hpack/decode_request --profile-time 1
///
/// then the collected Ir ÷ the calls of `HpackDecoder::decode` in the
/// output file (`HpackEncoder::encode` for `encode_response`).
fn hpack(c: &mut Criterion) {
    let mut group = c.benchmark_group("hpack");
    let mut enc = HpackEncoder::new(4096);
    let mut first = Vec::new();
    enc.encode(H2_REQUEST, &mut first);
    let mut warm = Vec::new();
    enc.encode(H2_REQUEST, &mut warm);
    for (name, block) in [("decode_request_cold", &first), ("decode_request", &warm)] {
        let mut dec = HpackDecoder::new(4096, 16 * 1024, 64 * 1024);
        dec.decode(&first, |_, _, _| {}).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                dec.decode(black_box(block), |name, value, _| {
                    n += name.len() + value.len()
                })
                .unwrap();
                black_box(n)
            })
        });
    }
    // A server's encoder holds only what it sent: responses.
    let mut enc = HpackEncoder::new(4096);
    let mut out = Vec::with_capacity(4096);
    group.bench_function("encode_response", |b| {
        b.iter(|| {
            out.clear();
            enc.encode(black_box(H2_RESPONSE), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

/// A head of nearly 16 KiB (the default limit): 90 fields of ~175 bytes.
fn big_head() -> Vec<u8> {
    let mut head = b"GET /big HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..90 {
        head.extend_from_slice(format!("X-Field-{i:02}: {}\r\n", "v".repeat(165)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    assert!(head.len() > 16_000 && head.len() < 16 * 1024);
    head
}

/// Feeds `head` a byte per read; out of line so that callgrind can count
/// its calls (`--toggle-collect='proto::trickle'`).
#[inline(never)]
fn trickle<F: nextloop::server::HandlerFactory>(driver: &mut Driver<F>, head: &[u8]) -> usize {
    driver.output.clear();
    for byte in head.chunks(1) {
        driver.feed(black_box(byte));
    }
    driver.output.len()
}

/// A 16 KiB head arriving one byte per read: the total work for a head
/// must stay linear in its length, whatever the split.
fn trickled(c: &mut Criterion) {
    let head = big_head();
    let mut driver = Driver::new(|_| Hello);
    let mut group = c.benchmark_group("exchange");
    group.throughput(Throughput::Bytes(head.len() as u64));
    group.sample_size(10);
    group.bench_function("head16k_byte_by_byte", |b| {
        b.iter(|| {
            let out = trickle(&mut driver, &head);
            assert!(out > 0, "answered");
            black_box(out)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    hpack,
    head_parsing,
    response_encoding,
    exchange,
    pipelined,
    trickled
);
criterion_main!(benches);
