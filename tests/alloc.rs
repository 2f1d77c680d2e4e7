//! Heap allocations made by the server, counted by a `#[global_allocator]`.
//!
//! Only the server's loop thread is counted: each handler factory marks
//! the thread it runs on (the loop's), so nothing the test harness or the
//! clients do can land in a measured window and the figure is exact.
//! Tests take a lock so that only one server runs at a time.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use common::handlers::{Echo, Hello};
use common::{serve, IO_TIMEOUT};
use counting::{allocations, count_marked_only, live_bytes, server_thread, HeapWindow};
use nextloop::server::{Handler, HandlerFactory};
use nextloop::Control;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A factory that marks the thread it runs on — the server's loop — as
/// the one to count, then makes a handler.
fn counted<H: Handler + 'static>(make: fn() -> H) -> impl HandlerFactory<Output = H> + Clone {
    count_marked_only();
    move |_: Control| {
        server_thread();
        make()
    }
}

const WARM_UP: usize = 1_000;
const MEASURED: usize = 10_000;

/// Reads exactly one response's bytes into `buf` without allocating:
/// head, then the body by Content-Length or up to the last chunk.
fn read_response(stream: &mut TcpStream, buf: &mut [u8], have: &mut usize) -> usize {
    loop {
        if let Some(len) = complete_response(&buf[..*have]) {
            return len;
        }
        let n = stream.read(&mut buf[*have..]).expect("read");
        assert!(n > 0, "server closed the connection");
        *have += n;
    }
}

/// The length of the first complete response in `bytes`, if it is there.
fn complete_response(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &bytes[..head_end];
    if let Some(i) = find(head, b"Content-Length: ") {
        let digits = &head[i + 16..];
        let len = digits
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
        return (bytes.len() >= head_end + len).then_some(head_end + len);
    }
    assert!(find(head, b"Transfer-Encoding: chunked").is_some());
    find(&bytes[head_end - 2..], b"\r\n0\r\n\r\n").map(|i| head_end - 2 + i + 7)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `request` `rounds` times (each a batch of `per_batch` pipelined
/// requests) and reads every response; returns the server's allocations.
fn count_allocations(
    stream: &mut TcpStream,
    request: &[u8],
    per_batch: usize,
    rounds: usize,
) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let before = allocations();
    for _ in 0..rounds {
        stream.write_all(request).expect("write");
        let mut have = 0;
        for _ in 0..per_batch {
            let len = read_response(stream, &mut buf, &mut have);
            assert!(buf[..len].starts_with(b"HTTP/1.1 200 OK\r\n"));
            buf.copy_within(len..have, 0);
            have -= len;
        }
        assert_eq!(have, 0, "stray bytes after the responses");
    }
    allocations() - before
}

fn client(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Warms the connection up, then measures `MEASURED` requests.
fn assert_zero_allocations(server: nextloop::server::Listening, request: &[u8], per_batch: usize) {
    let mut stream = client(server.addr());
    count_allocations(&mut stream, request, per_batch, WARM_UP / per_batch);
    let allocs = count_allocations(&mut stream, request, per_batch, MEASURED / per_batch);
    drop(stream);
    server.shutdown();
    server.join().unwrap();
    assert_eq!(
        allocs, 0,
        "server allocated {allocs} times over {MEASURED} requests"
    );
}

const GET: &[u8] =
    b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: alloc-test\r\nAccept: */*\r\n\r\n";

#[test]
fn hello_keep_alive_allocates_nothing_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert_zero_allocations(serve(counted(|| Hello)), GET, 1);
}

#[test]
fn hello_pipelined_allocates_nothing_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let batch: Vec<u8> = GET.repeat(16);
    assert_zero_allocations(serve(counted(|| Hello)), &batch, 16);
}

/// No logger in this process: the access log only forwards.
#[test]
fn access_log_with_logging_off_allocates_nothing_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let batch: Vec<u8> = GET.repeat(16);
    let factory = nextloop::server::AccessLog::new(counted(|| Hello));
    assert_zero_allocations(serve(factory), &batch, 16);
}

#[test]
fn echo_with_content_length_allocates_nothing_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut request = b"POST /echo HTTP/1.1\r\nHost: bench\r\nContent-Length: 200\r\n\r\n".to_vec();
    request.extend_from_slice(&[b'x'; 200]);
    assert_zero_allocations(serve(counted(Echo::new)), &request, 1);
}

#[test]
fn echo_chunked_allocates_nothing_per_request() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let request =
        b"POST /echo HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_zero_allocations(serve(counted(Echo::new)), request, 1);
}

/// An idle keep-alive connection holds a slab slot, not buffers.
#[test]
fn idle_connections_cost_under_a_kibibyte_each() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const CONNS: usize = 1000;
    let server = serve(counted(|| Hello));
    let addr = server.addr();
    // One warm connection, so the loop's own one-time allocations are done.
    let mut first = client(addr);
    count_allocations(&mut first, GET, 1, 10);
    let before = live_bytes();
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| client(addr)).collect();
    for stream in &mut conns {
        count_allocations(stream, GET, 1, 1);
    }
    let per_conn = (live_bytes() - before) / CONNS as i64;
    drop(conns);
    drop(first);
    server.shutdown();
    server.join().unwrap();
    println!("heap per idle connection: {per_conn} bytes");
    assert!(
        per_conn <= 1024,
        "{per_conn} bytes of heap per idle connection"
    );
}

/// Peak growth of the server's heap while `load` runs.
fn peak_growth(load: impl FnOnce()) -> i64 {
    let window = HeapWindow::start();
    load();
    window.peak_growth()
}

/// Writes `bytes` repeatedly for as long as the server keeps reading; a
/// write that blocks for 500 ms means the server has stopped reading.
fn write_until_blocked(stream: &mut TcpStream, bytes: &[u8], max_total: usize) -> usize {
    stream
        .set_write_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0;
    while sent < max_total {
        match stream.write(bytes) {
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    sent
}

/// A client that pipelines requests and never reads: the server stops
/// reading once its output is over the high-water mark, so its memory
/// stays bounded while the client's writes block.
#[test]
fn never_reading_pipelining_client_keeps_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(counted(|| Hello));
    let mut stream = client(server.addr());
    let batch = GET.repeat(256);
    let mut sent = 0;
    let peak = peak_growth(|| sent = write_until_blocked(&mut stream, &batch, 256 << 20));
    drop(stream);
    server.shutdown();
    server.join().unwrap();
    println!("never-reading client: sent {sent} bytes, server heap peak +{peak} bytes");
    assert!(sent < 256 << 20, "the server never stopped reading");
    assert!(peak < 512 * 1024, "server heap grew by {peak} bytes");
}

/// A 64 MiB upload to an echo whose response is never read: the echo
/// can only write as fast as the client reads, so the server stops
/// reading the body and memory stays bounded.
#[test]
fn huge_body_to_a_never_reading_client_keeps_memory_bounded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = serve(counted(Echo::new));
    let mut stream = client(server.addr());
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
        .unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    let peak = peak_growth(|| sent = write_until_blocked(&mut stream, &chunk, 64 << 20));
    drop(stream);
    server.shutdown();
    server.join().unwrap();
    println!("never-reading upload: sent {sent} of 67108864 bytes, server heap peak +{peak} bytes");
    assert!(
        sent < 64 << 20,
        "the server read the whole body with nobody reading the echo"
    );
    assert!(peak < 512 * 1024, "server heap grew by {peak} bytes");
}
