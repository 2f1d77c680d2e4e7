//! GETs each URL in order, reusing pooled keep-alive connections, and
//! writes each body to stdout.
//!
//!     cargo run --example client -- http://127.0.0.1:3000/ http://127.0.0.1:3000/a
//!     cargo run --features tls --example client -- --cacert ca.pem https://localhost:3443/
//!
//! `--cacert FILE` (curl's flag) trusts the certificates in FILE besides
//! the system's roots, for `https://` URLs (feature `tls` or `tls-ring`).
//! `https://` servers that offer `h2` by ALPN are spoken to in HTTP/2.
//!
//! `--http2-prior-knowledge` (curl's flag) speaks HTTP/2 without asking
//! to every `http://` origin named: all the requests go out at once, and
//! those to one origin share one connection (its streams); the bodies are
//! still written in the order of the URLs.
//!
//!     cargo run --example client -- --http2-prior-knowledge http://127.0.0.1:3000/a http://127.0.0.1:3000/b
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
    run(std::env::args().skip(1), &mut io::stdout().lock())
}

/// The whole program: `args` without the program's name, bodies to
/// `stdout`.
pub fn run(args: impl IntoIterator<Item = String>, stdout: &mut impl Write) -> ExitCode {
    let mut urls = Vec::new();
    let mut cacerts = Vec::new();
    let mut prior_knowledge = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--http2-prior-knowledge" {
            prior_knowledge = true;
        } else if arg == "--cacert" {
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
        eprintln!("usage: client [--http2-prior-knowledge] [--cacert FILE] URL...");
        return ExitCode::from(2);
    }
    let origins: &[String] = if prior_knowledge { &urls } else { &[] };
    let client = match client(&cacerts, origins) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if prior_knowledge {
        // All at once, multiplexed; written in order as each completes.
        let fetched: Vec<Result<Vec<u8>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = urls
                .iter()
                .map(|url| {
                    let client = client.clone();
                    s.spawn(move || {
                        let mut body = Vec::new();
                        fetch(&client, url, &mut body).map(|()| body)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect()
        });
        for got in fetched {
            match got {
                Ok(body) => {
                    if let Err(e) = stdout.write_all(&body) {
                        eprintln!("client: writing to stdout failed: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                Err(e) => {
                    eprintln!("client: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    } else {
        for url in &urls {
            if let Err(e) = fetch(&client, url, stdout) {
                eprintln!("client: {e}");
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

/// GETs `url` and writes its body to `out`; the error says what went
/// wrong, the URL first.
fn fetch(client: &Client, url: &str, out: &mut impl Write) -> Result<(), String> {
    let mut res = client.get(url).map_err(|e| format!("{url}: {e}"))?;
    if res.status() >= 400 {
        eprintln!("client: {url}: {} {}", res.status(), res.reason());
    }
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match res.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("{url}: reading the body failed: {e}")),
        };
        out.write_all(&buf[..n])
            .map_err(|e| format!("writing to stdout failed: {e}"))?;
    }
}

/// A client trusting `cacerts` besides the system's roots, speaking
/// HTTP/2 with prior knowledge to the `http://` origins of `h2c`.
fn client(cacerts: &[String], h2c: &[String]) -> Result<Client, Box<dyn std::error::Error>> {
    let mut builder = nextloop::client::Client::builder();
    for url in h2c.iter().filter(|u| !u.starts_with("https://")) {
        builder = builder
            .http2_prior_knowledge(url)
            .map_err(|e| format!("{url}: {e}"))?;
    }
    #[cfg(any(feature = "tls", feature = "tls-ring"))]
    for file in cacerts {
        builder = builder.add_root_pem(file)?;
    }
    #[cfg(not(any(feature = "tls", feature = "tls-ring")))]
    if !cacerts.is_empty() {
        return Err("--cacert needs TLS: build with --features tls".into());
    }
    Ok(Client::from(builder.build()?))
}
