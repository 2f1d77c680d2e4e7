//! hyper 1.x HTTP/2 hello server over cleartext TCP with prior knowledge
//! (h2c: the client starts with the HTTP/2 preface, no upgrade), on a
//! single-threaded (current_thread) tokio runtime: comparable to one
//! nextloop event loop.
//!
//! Every request gets `200`, `content-type: text/plain`, `Hello, World!`
//! (hyper adds `date` and `content-length`, as nextloop does). hyper's
//! HTTP/2 defaults otherwise (200 concurrent streams per connection).
//!
//!     hyper-h2-hello 127.0.0.1:3000

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::builder()
        .header("Content-Type", "text/plain")
        .body(Full::new(Bytes::from_static(b"Hello, World!")))
        .unwrap())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = TcpListener::bind(&addr).await?;
    println!("Listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(async move {
            // TokioExecutor spawns each stream's task onto this same
            // current_thread runtime.
            let _ = http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
