//! 50 000 concurrent idle keep-alive connections on one loop.
//!
//! Heavy and needs a raised descriptor limit (two per connection, both
//! ends live in this process), so it is ignored by `cargo test`. Run:
//!
//!     ulimit -n 110000   # needs a hard limit that high
//!     cargo test --release --test scale -- --ignored --nocapture
//!
//! Where the hard limit is lower, set `NEXTLOOP_SCALE_CONNS` to what fits
//! (about half the limit).
//!
//! Loopback gives ~28 000 ephemeral ports per source address, so clients
//! bind to 127.0.0.2, 127.0.0.3, ... in turn.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::handlers::Hello;
use common::{serve_with, Client};
use counting::{client_thread, live_bytes};

/// Connections to hold: `NEXTLOOP_SCALE_CONNS`, else 50 000.
fn conns() -> usize {
    std::env::var("NEXTLOOP_SCALE_CONNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000)
}
const PER_SOURCE: usize = 20_000;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: scale\r\n\r\n";

fn open_files_limit() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from((source, 0)).into())
        .expect("bind source address");
    socket.connect(&to.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap();
    stream
}

/// Sends one request and reads its (fixed-size) response.
fn exchange(stream: &mut TcpStream, buf: &mut [u8]) {
    stream.write_all(GET).unwrap();
    let mut have = 0;
    while !buf[..have].ends_with(b"Hello, World!") {
        let n = stream.read(&mut buf[have..]).expect("read");
        assert!(n > 0, "server closed an idle connection");
        have += n;
    }
}

#[test]
#[ignore = "needs ulimit -n >= 110000; run with --ignored"]
fn fifty_thousand_idle_connections_on_one_loop() {
    let count = conns();
    let limit = open_files_limit();
    assert!(
        limit >= 2 * count + 1000,
        "open files limit is {limit}, {count} connections need {}: raise \
         `ulimit -n` or set NEXTLOOP_SCALE_CONNS",
        2 * count + 1000
    );
    client_thread();
    let server = serve_with(
        |s| {
            s.max_connections(count + 100)
                .keep_alive_timeout(Duration::from_secs(300))
        },
        |_| Hello,
    );
    let addr = server.addr();
    let before = live_bytes();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE) as u8);
        let mut stream = connect_from(source, addr);
        exchange(&mut stream, &mut buf);
        conns.push(stream);
    }
    let opened = started.elapsed();
    let heap = live_bytes() - before;

    // With all of them idle, a new client is still served at once.
    let probe_start = Instant::now();
    let mut probe = Client::connect(addr);
    probe.send(GET);
    assert_eq!(probe.response().status, 200);
    let probe_time = probe_start.elapsed();

    // Every idle connection is still open and usable.
    for stream in conns.iter_mut().step_by(97) {
        exchange(stream, &mut buf);
    }
    println!(
        "{count} connections opened and used in {opened:.1?}; server heap {} KiB \
         ({} bytes per idle connection); a new request while all idle: {probe_time:.1?}",
        heap / 1024,
        heap / count as i64
    );
    assert!(
        heap / (count as i64) <= 1024,
        "{heap} bytes for {count} idle connections"
    );
    drop(conns);
    server.shutdown();
    server.join().unwrap();
}
