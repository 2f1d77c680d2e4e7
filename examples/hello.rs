//! Answers every request with `200 OK` and `Hello, World!`.
//! The benchmark target.
//!
//!     cargo run --release --example hello -- 127.0.0.1:3000 [workers]
//!
//! The optional second argument runs that many event loops (default 1).

use nextloop::server::{Handler, Response, Server};
use nextloop::Next;

struct Hello;

impl Handler for Hello {
    fn on_response(&mut self, res: &mut Response<'_>) -> Next {
        res.header("Content-Type", "text/plain")
            .body(b"Hello, World!");
        Next::end()
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let workers = match std::env::args().nth(2) {
        Some(n) => n.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("workers {n:?}: {e}"),
            )
        })?,
        None => 1,
    };
    // The first loop runs on this thread: with one worker the process never
    // starts a thread, which makes every socket call cheaper.
    // Ctrl-C (or SIGTERM): finish the requests in flight, then exit 0.
    let (server, main_loop) = Server::bind(addr)?
        .workers(workers)
        .shutdown_on_signals()
        .handle_here(|_| Hello)?;
    println!("Listening on http://{}", server.addr());
    main_loop.run()?;
    server.join()
}
