//! A minimal HTTP CONNECT proxy on a single-threaded (current_thread)
//! tokio runtime: what a small async Rust relay does with
//! `tokio::io::copy_bidirectional` (8 KiB buffers each way), for
//! bench/tunnel.sh to set beside nextloop's examples/tunnel.
//!
//! `CONNECT host:port` to a loopback address: `200` and a relay both ways
//! (a FIN is passed on as a write shutdown); `502` when the upstream
//! connect fails; `405` for other methods; `400` for a head it cannot
//! read. Upstreams other than loopback are refused with `403`: this is a
//! benchmark peer, not a proxy to leave running.
//!
//!     tokio-connect 127.0.0.1:8080

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn answer(mut client: TcpStream, status: &str) {
    let _ = client
        .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
        .await;
}

async fn serve(mut client: TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    // Byte by byte so that nothing past the head is read here; a client
    // that sends early bytes finds them relayed by copy_bidirectional.
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 8192 || !matches!(client.read(&mut byte).await, Ok(1)) {
            return answer(client, "400 Bad Request").await;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut words = line.split_ascii_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return answer(client, "400 Bad Request").await;
    };
    if method != "CONNECT" {
        return answer(client, "405 Method Not Allowed").await;
    }
    let Ok(addr) = target.parse::<SocketAddr>() else {
        return answer(client, "400 Bad Request").await;
    };
    if !addr.ip().is_loopback() {
        return answer(client, "403 Forbidden").await;
    }
    let Ok(mut upstream) = TcpStream::connect(addr).await else {
        return answer(client, "502 Bad Gateway").await;
    };
    let _ = upstream.set_nodelay(true);
    if client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("Listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(serve(stream));
    }
}
