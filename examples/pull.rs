//! Pull mode (`nextloop::hypersync`): the main thread takes each request
//! from the server's queue and answers `200 Hello, World!`.
//!
//!     cargo run --release --example pull -- 127.0.0.1:3000

use std::io;

use nextloop::hypersync::Server;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let incoming = Server::bind(addr)?.shutdown_on_signals().incoming()?;
    println!("Listening on http://{}", incoming.addr());
    for req in &incoming {
        // An error means the client went away: go on with the next one.
        let _ = req.respond(200, &[("Content-Type", "text/plain")], "Hello, World!");
    }
    Ok(())
}
