//! GETs each URL in order, reusing pooled keep-alive connections, and
//! writes each body to stdout.
//!
//!     cargo run --example client -- http://127.0.0.1:3000/ http://127.0.0.1:3000/a
//!
//! On an error — a bad URL, a refused connection, a timeout, a malformed
//! or cut-short response — it says what went wrong on stderr and exits
//! with status 1 (2 without arguments). A response with an HTTP error
//! status (4xx, 5xx) is not an error of the client: its body is written
//! like any other, and the status noted on stderr.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use nextloop::hypersync::Client;

fn main() -> ExitCode {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        eprintln!("usage: client URL...   (http:// URLs only)");
        return ExitCode::from(2);
    }
    let client = Client::new();
    let mut stdout = io::stdout().lock();
    for url in &urls {
        let mut res = match client.get(url) {
            Ok(res) => res,
            Err(e) => {
                eprintln!("client: {url}: {e}");
                return ExitCode::FAILURE;
            }
        };
        if res.status() >= 400 {
            eprintln!("client: {url}: {} {}", res.status(), res.reason());
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match res.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("client: {url}: reading the body failed: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = stdout.write_all(&buf[..n]) {
                eprintln!("client: writing to stdout failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = stdout.flush() {
        eprintln!("client: writing to stdout failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
