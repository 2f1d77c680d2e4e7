//! tokio-tungstenite WebSocket echo server on a single-threaded
//! (current_thread) tokio runtime: comparable to one nextloop event loop
//! running `examples/websocket.rs`.
//!
//! Every path accepts the upgrade; text and binary messages are echoed as
//! received, pings answered and a close echoed (tungstenite does those two
//! itself). The echo is tokio-tungstenite's own example: the read half
//! forwarded into the write half, which flushes when no further message is
//! ready, so pipelined messages go out in one write. tungstenite's default
//! configuration (no permessage-deflate).
//!
//!     tungstenite-echo 127.0.0.1:9001

use futures_util::{StreamExt, TryStreamExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|m| std::future::ready(m.is_text() || m.is_binary()))
        .forward(write)
        .await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("Listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(echo(stream));
    }
}
