//! TLS with [rustls](https://docs.rs/rustls) (features `tls` or
//! `tls-ring`): what a server or client needs to set it up, and what a
//! handler can see of a connection's handshake.
//!
//! The crypto provider is aws-lc-rs with feature `tls` (rustls's own
//! default: post-quantum hybrid key exchange, and it builds with only a C
//! compiler) or ring with feature `tls-ring` (faster to build, smaller).
//! With both, aws-lc-rs is used. Configurations you build yourself pick
//! their own provider.
//!
//! A server takes a PEM certificate chain and key
//! ([`Server::tls_pem`](crate::server::Server::tls_pem)) or a
//! [`ServerConfig`] you built
//! ([`Server::tls`](crate::server::Server::tls)); the client verifies
//! servers against the system's roots, plus any you add
//! ([`client::Builder::add_root`](crate::client::Builder::add_root)).
//!
//! ```no_run
//! use nextloop::server::{Handler, Request, Response, Server};
//! use nextloop::Next;
//!
//! struct Hello;
//! impl Handler for Hello {
//!     fn on_request(&mut self, req: Request<'_>) -> Next {
//!         if let Some(tls) = req.tls() {
//!             println!("server name {:?}, ALPN {:?}", tls.server_name(), tls.alpn());
//!         }
//!         Next::write()
//!     }
//!     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
//!         res.body(b"Hello, World!");
//!         Next::end()
//!     }
//! }
//!
//! let listening = Server::bind("127.0.0.1:8443")?
//!     .tls_pem("cert.pem", "key.pem")?
//!     .handle(|_| Hello)?;
//! println!("listening on https://{}", listening.addr());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::path::Path;
use std::sync::Arc;

pub use rustls;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use rustls::{ClientConfig, RootCertStore, ServerConfig};

use rustls::pki_types::pem::PemObject;

/// The ALPN protocol a server advertises for HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The ALPN protocol id of HTTP/2 (RFC 9113 §3.2): a server with HTTP/2
/// on offers it before [`ALPN_HTTP11`].
pub const ALPN_H2: &[u8] = b"h2";

/// What a connection's TLS handshake settled, as a handler sees it
/// ([`Request::tls`](crate::server::Request::tls)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    alpn: Option<Box<[u8]>>,
    server_name: Option<Box<str>>,
    version: Option<rustls::ProtocolVersion>,
}

impl TlsInfo {
    pub(crate) fn new(
        alpn: Option<&[u8]>,
        server_name: Option<Box<str>>,
        version: Option<rustls::ProtocolVersion>,
    ) -> TlsInfo {
        TlsInfo {
            alpn: alpn.map(Into::into),
            server_name,
            version,
        }
    }

    /// The application protocol agreed with ALPN (`b"http/1.1"`), if the
    /// client offered any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// The host name the client asked for with SNI (lower-cased), if it
    /// sent one.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The TLS version (1.2 or 1.3).
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.version
    }
}

/// The crypto provider the features select: aws-lc-rs with `tls`, else
/// ring.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    #[cfg(feature = "tls")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "tls"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// Reads a PEM certificate chain (the server's certificate first, as
/// `openssl` and certificate authorities write them).
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// Reads a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1
/// (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`), the first
/// in the file.
pub fn load_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> io::Error {
    match e {
        rustls::pki_types::pem::Error::Io(e) => {
            io::Error::new(e.kind(), format!("{}: {e}", path.display()))
        }
        e => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e:?}", path.display()),
        ),
    }
}

/// A server configuration for one certificate chain and its key: TLS 1.2
/// and 1.3 with the provider of [`provider`], no client certificates,
/// ALPN `http/1.1`, and resumption by stateless tickets (encrypted with
/// keys rotated every 6 hours, as rustls's ticketer does), so the server
/// keeps no session state per client.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(cert_chain, key)
        .map_err(invalid)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    #[cfg(feature = "tls")]
    let ticketer = rustls::crypto::aws_lc_rs::Ticketer::new();
    #[cfg(not(feature = "tls"))]
    let ticketer = rustls::crypto::ring::Ticketer::new();
    config.ticketer = ticketer.map_err(invalid)?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// The roots the client trusts by default: the system's (and with
/// feature `tls-webpki-roots`, Mozilla's compiled in). Certificates the
/// system store holds that rustls cannot parse are skipped.
pub fn system_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    #[cfg(feature = "tls-webpki-roots")]
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// A client configuration trusting `roots`: TLS 1.2 and 1.3 with the
/// provider of [`provider`], ALPN `http/1.1`.
pub fn client_config(roots: RootCertStore) -> io::Result<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(invalid)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}
