//! Answers every request with `200 OK` and `Hello, World!`, over TLS with
//! the PEM certificate chain and key given. Prints the address it bound.
//!
//!     cargo run --release --features tls --example hello_tls -- 127.0.0.1:3443 cert.pem key.pem [workers]
//!
//! A certificate for trying it out:
//!
//!     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
//!         -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
//!         -addext subjectAltName=DNS:localhost,IP:127.0.0.1

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
    let mut args = std::env::args().skip(1);
    let usage = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "usage: hello_tls ADDR CERT KEY [workers]",
        )
    };
    let addr = args.next().ok_or_else(usage)?;
    let cert = args.next().ok_or_else(usage)?;
    let key = args.next().ok_or_else(usage)?;
    let workers = match args.next() {
        Some(n) => n.parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("workers {n:?}: {e}"),
            )
        })?,
        None => 1,
    };
    let (server, main_loop) = Server::bind(addr)?
        .workers(workers)
        .tls_pem(cert, key)?
        .handle_here(|_| Hello)?;
    println!("Listening on https://{}", server.addr());
    main_loop.run()?;
    server.join()
}
