//! `examples/tunnel.rs` itself, over TCP: CONNECT to a local upstream
//! relays both ways (the bytes sent with the head too), half-closes each
//! direction on its own, holds memory bounded with a slow reader on either
//! side; `502` when the connect fails, `405` for other methods; and curl
//! through it to a local server.

mod common;
#[path = "common/counting.rs"]
mod counting;

#[path = "../examples/tunnel.rs"]
#[allow(dead_code)]
mod tunnel;

use std::io::{BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{read_response, serve, Client, IO_TIMEOUT};
use nextloop::server::Listening;
use nextloop::Control;
use tunnel::{Tunnel, Watcher};

fn proxy() -> Listening {
    counting::count_marked_only();
    let watcher = Watcher::start().unwrap();
    serve(move |control: Control| {
        // The loop thread: its heap is what the bounds below measure.
        counting::server_thread();
        Tunnel::new(control, watcher.clone())
    })
}

/// An upstream that accepts one connection and runs `serve` on it.
fn upstream(serve: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        counting::client_thread();
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        serve(stream);
    });
    addr
}

/// CONNECTs to `to` through `proxy`, sending `early` in the same write;
/// returns the connection after the 200 head.
fn connect(proxy: SocketAddr, to: SocketAddr, early: &[u8]) -> Client {
    let mut c = Client::connect(proxy);
    let mut req = format!("CONNECT {to} HTTP/1.1\r\nHost: {to}\r\n\r\n").into_bytes();
    req.extend_from_slice(early);
    c.send(req);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        c.reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        lines.push(line);
    }
    assert_eq!(lines[0], "HTTP/1.1 200 OK\r\n", "{lines:?}");
    let lower = lines.concat().to_ascii_lowercase();
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"));
    c
}

fn echo(mut s: TcpStream) {
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => s.write_all(&buf[..n]).unwrap(),
        }
    }
    let _ = s.shutdown(Shutdown::Write);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Both directions at once, 8 MiB each way, the first bytes sent with the
/// CONNECT head; then the client's FIN ends the upstream's input, whose
/// FIN ends ours.
#[test]
fn connect_relays_both_ways_with_the_early_bytes() {
    let proxy = proxy();
    let up = upstream(echo);
    let mut c = connect(proxy.addr(), up, b"early:");
    let data = pattern(8 << 20);
    let mut writer = c.stream().try_clone().unwrap();
    let sent = data.clone();
    let w = thread::spawn(move || {
        counting::client_thread();
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let got = c.read_to_close().unwrap();
    w.join().unwrap();
    assert_eq!(got.len(), 6 + data.len());
    assert_eq!(&got[..6], b"early:");
    assert!(got[6..] == data[..], "relayed bytes differ");
}

/// Without early bytes; the upstream speaks first.
#[test]
fn connect_without_early_bytes_relays_what_follows() {
    let proxy = proxy();
    let up = upstream(|mut s| {
        s.write_all(b"hello from upstream\n").unwrap();
        echo(s);
    });
    let mut c = connect(proxy.addr(), up, b"");
    let mut line = String::new();
    c.reader.read_line(&mut line).unwrap();
    assert_eq!(line, "hello from upstream\n");
    c.send("ping");
    let mut buf = [0u8; 4];
    c.reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

/// The upstream closes its side first: the client reads its last bytes
/// and our FIN, and can still send; what it sends reaches the upstream,
/// and its FIN too.
#[test]
fn the_upstream_half_closing_first_leaves_the_other_way_open() {
    let proxy = proxy();
    let (tx, rx) = mpsc::channel();
    let up = upstream(move |mut s| {
        s.write_all(b"last").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        tx.send(got).unwrap();
    });
    let mut c = connect(proxy.addr(), up, b"");
    let mut buf = [0u8; 4];
    c.reader.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"last");
    let mut byte = [0u8; 1];
    assert_eq!(c.reader.read(&mut byte).unwrap(), 0, "our FIN after it");
    c.send("still here");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), b"still here");
}

/// The client closes its side first: the upstream reads the FIN, answers,
/// and the answer reaches the client before our FIN.
#[test]
fn the_client_half_closing_first_still_gets_the_answer() {
    let proxy = proxy();
    let up = upstream(|mut s| {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let mut c = connect(proxy.addr(), up, b"0123456789");
    c.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.read_to_close().unwrap(), b"got 10 bytes");
}

/// A slow reader on either side: the other pushes 32 MiB while it reads
/// nothing for a while; the proxy's heap grows by less than its two pipes
/// and the connection's buffers, and everything arrives.
#[test]
fn a_slow_reader_on_either_side_holds_memory_bounded() {
    for upstream_pushes in [true, false] {
        let proxy = proxy();
        let total = 32usize << 20;
        let (tx, rx) = mpsc::channel();
        let up = upstream(move |mut s| {
            if upstream_pushes {
                let chunk = [7u8; 65536];
                for _ in 0..total / chunk.len() {
                    s.write_all(&chunk).unwrap();
                }
                s.shutdown(Shutdown::Write).unwrap();
            } else {
                thread::sleep(Duration::from_millis(500));
                let mut n = 0;
                let mut buf = [0u8; 65536];
                loop {
                    match s.read(&mut buf).unwrap() {
                        0 => break,
                        k => n += k,
                    }
                }
                tx.send(n).unwrap();
            }
        });
        let mut c = connect(proxy.addr(), up, b"");
        let heap = counting::HeapWindow::start();
        if upstream_pushes {
            thread::sleep(Duration::from_millis(500));
            let mut n = 0;
            let mut buf = [0u8; 65536];
            while n < total {
                let k = c.reader.read(&mut buf).unwrap();
                assert!(k > 0, "closed at {n}");
                n += k;
            }
        } else {
            let mut writer = c.stream().try_clone().unwrap();
            let chunk = [7u8; 65536];
            for _ in 0..total / chunk.len() {
                writer.write_all(&chunk).unwrap();
            }
            writer.shutdown(Shutdown::Write).unwrap();
            assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), total);
        }
        let growth = heap.peak_growth();
        assert!(
            growth < 512 * 1024,
            "heap grew by {growth} bytes (upstream pushes: {upstream_pushes})"
        );
    }
}

#[test]
fn a_failed_connect_is_502_and_other_methods_405() {
    let proxy = proxy();
    // A port nobody listens on any more.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = Client::connect(proxy.addr());
    c.send(format!(
        "CONNECT {closed} HTTP/1.1\r\nHost: {closed}\r\n\r\n"
    ));
    let res = c.response();
    assert_eq!(res.status, 502, "{res:?}");
    assert!(res.body_str().starts_with("connect failed"));
    let mut c = Client::connect(proxy.addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let res = c.response();
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("CONNECT"));
}

/// curl through the tunnel (`-p -x`) to a local nextloop server.
#[test]
fn curl_through_the_tunnel() {
    let proxy = proxy();
    let origin = serve(|_: Control| common::handlers::Hello);
    let out = match std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "-p", "-x"])
        .arg(format!("http://{}", proxy.addr()))
        .arg(format!("http://{}/", origin.addr()))
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("curl not run ({e}); skipping");
            return;
        }
    };
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, World!");
    // And a plain HTTP request to the origin still works beside it.
    let mut c = Client::connect(origin.addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let res = read_response(&mut c.reader, false).unwrap();
    assert_eq!(res.status, 200);
}
