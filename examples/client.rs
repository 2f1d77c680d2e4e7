//! GETs each URL in order, reusing pooled keep-alive connections, and
//! writes each body to stdout.
//!
//!     cargo run --example client -- http://127.0.0.1:3000/ http://127.0.0.1:3000/a
//!     cargo run --features tls --example client -- --cacert ca.pem https://localhost:3443/
//!
//! `--cacert FILE` (curl's flag) trusts the certificates in FILE besides
//! the system's roots, for `https://` URLs (feature `tls` or `tls-ring`).
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
    let mut urls = Vec::new();
    let mut cacerts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cacert" {
            let Some(file) = args.next() else {
                eprintln!("client: --cacert needs a file");
                return ExitCode::from(2);
            };
            cacerts.push(file);
        } else {
            urls.push(arg);
        }
    }
    if urls.is_empty() {
        eprintln!("usage: client [--cacert FILE] URL...");
        return ExitCode::from(2);
    }
    let client = match client(&cacerts) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("client: {e}");
            return ExitCode::FAILURE;
        }
    };
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

/// A client trusting `cacerts` besides the system's roots.
fn client(cacerts: &[String]) -> io::Result<Client> {
    #[cfg(any(feature = "tls", feature = "tls-ring"))]
    {
        let mut builder = nextloop::client::Client::builder();
        for file in cacerts {
            builder = builder.add_root_pem(file)?;
        }
        Ok(Client::from(builder.build()?))
    }
    #[cfg(not(any(feature = "tls", feature = "tls-ring")))]
    {
        if !cacerts.is_empty() {
            return Err(io::Error::other(
                "--cacert needs TLS: build with --features tls",
            ));
        }
        Ok(Client::from(nextloop::client::Client::new()?))
    }
}
