//! TLS test kit: certificates made in the test with rcgen (no files, no
//! network), server and client configurations, and a blocking rustls
//! client over a real TCP connection.
//!
//! Include it with `#[path = "common/tls_kit.rs"] mod tls_kit;`.
#![allow(dead_code)]

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use nextloop::tls::{
    self, CertificateDer, ClientConfig, PrivateKeyDer, RootCertStore, ServerConfig,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::common::{read_response, Response, BOUND};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    /// A leaf certificate for `names`, its parameters changed by `edit`.
    pub fn leaf_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }

    /// Roots holding only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        roots
    }
}

/// A certificate and its key.
pub struct Leaf {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.key_der.clone()).unwrap()
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::new(tls::server_config(self.chain.clone(), self.key()).unwrap())
    }
}

/// A CA and a leaf for `localhost` and 127.0.0.1, made once per call.
pub fn pki() -> (Ca, Leaf) {
    let ca = Ca::new("nextloop test CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"]);
    (ca, leaf)
}

/// A rustls client configuration trusting `ca`, ALPN `http/1.1`.
pub fn client_config(ca: &Ca) -> Arc<ClientConfig> {
    Arc::new(tls::client_config(ca.roots()).unwrap())
}

/// A blocking TLS client over TCP.
pub struct TlsClient {
    pub reader: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Connects to `addr` and completes the handshake for `name`.
    pub fn connect(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        name: &str,
    ) -> io::Result<TlsClient> {
        let mut client = TlsClient::start(addr, config, name);
        let s = client.reader.get_mut();
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock)?;
        }
        Ok(client)
    }

    /// Connects without driving the handshake yet.
    pub fn start(addr: SocketAddr, config: &Arc<ClientConfig>, name: &str) -> TlsClient {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(BOUND)).unwrap();
        sock.set_nodelay(true).unwrap();
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
        TlsClient {
            reader: BufReader::new(rustls::StreamOwned::new(conn, sock)),
        }
    }

    pub fn stream(&mut self) -> &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        self.reader.get_mut()
    }

    pub fn conn(&mut self) -> &mut rustls::ClientConnection {
        &mut self.reader.get_mut().conn
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let s = self.stream();
        s.write_all(bytes.as_ref()).unwrap();
        s.flush().unwrap();
    }

    pub fn response(&mut self) -> Response {
        read_response(&mut self.reader, false).expect("a response")
    }

    /// Reads until the end; `Ok` only for a clean end (close_notify).
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.reader.read_to_end(&mut out)?;
        Ok(out)
    }
}

/// A server answering `Hello, World!` (see common::handlers) over TLS
/// with `leaf`.
pub fn serve_tls(leaf: &Leaf) -> nextloop::server::Listening {
    let config = leaf.server_config();
    crate::common::serve_with(move |s| s.tls(config), |_| crate::common::handlers::Hello)
}
