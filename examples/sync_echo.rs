//! Blocking handlers on a thread pool (`nextloop::hypersync`): every
//! request gets `200` with its own body, streamed back as it is read.
//! `/sleep/<ms>` sleeps that long on its worker thread, then answers
//! `200 slept`; `/panic` panics inside the handler (the client gets a 500,
//! the pool keeps its size).
//!
//!     cargo run --release --example sync_echo -- 127.0.0.1:3000 8
//!     curl --data-binary @some-file http://127.0.0.1:3000/
//!     curl http://127.0.0.1:3000/sleep/500

use std::io::{self, Write};
use std::time::Duration;

use nextloop::hypersync::{Request, Response, Server};

fn handle(req: &mut Request, res: &mut Response) {
    if let Some(ms) = req.path().strip_prefix("/sleep/") {
        let Ok(ms) = ms.parse() else {
            res.set_status(400);
            return;
        };
        std::thread::sleep(Duration::from_millis(ms));
        res.header("Content-Type", "text/plain");
        let _ = res.write_all(b"slept");
        return;
    }
    if req.path() == "/panic" {
        panic!("/panic asked for it");
    }
    // The same length as the request, or chunked if it was.
    if let Some(n) = req.content_length() {
        res.set_content_length(n);
    }
    // Blocks while the client sends slowly or reads slowly; either way
    // only a few chunks are buffered in between. An error means the
    // client went away or sent a malformed body: the server has answered
    // or closed, so just return.
    let _ = io::copy(req, res);
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3000".into());
    let threads = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let server = Server::bind(addr)?
        .threads(threads)
        .shutdown_on_signals()
        .handle(handle)?;
    println!("Listening on http://{}", server.addr());
    server.join()
}
