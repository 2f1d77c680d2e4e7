//! [`Error`]: why a client request failed.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// Why a client request failed, as its handler's
/// [`on_error`](crate::client::Handler::on_error) (or a blocking call) is
/// told.
///
/// Each variant says what went wrong in terms a user can act on; its
/// [`Display`](fmt::Display) is a complete sentence fragment fit for an
/// error message.
///
/// ```
/// use nextloop::client::Error;
///
/// let err = Error::InvalidUrl("missing host");
/// assert_eq!(err.to_string(), "invalid URL: missing host");
/// assert!(Error::ConnectTimeout.is_timeout());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not of the form `http://host[:port][/path][?query]` (or
    /// `https://` with a TLS feature).
    InvalidUrl(&'static str),
    /// The request as built cannot be sent (an invalid method or field).
    InvalidRequest(&'static str),
    /// The host name could not be resolved to an address.
    Resolve {
        /// The name that was looked up.
        host: String,
        /// What the resolver said.
        error: io::Error,
    },
    /// Nothing listens at this address: the connection was refused.
    Refused(SocketAddr),
    /// Connecting failed for another reason (unreachable network, ...).
    Connect {
        /// The address tried last.
        addr: SocketAddr,
        /// What the system said.
        error: io::Error,
    },
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The request was sent but no complete response head arrived within
    /// the response timeout.
    ResponseTimeout,
    /// The server sent (or took) nothing for longer than the read timeout
    /// in the middle of an exchange.
    ReadTimeout,
    /// The timeout of the handler's own [`Next`](crate::Next) expired.
    Timeout,
    /// The server closed (or reset) the connection before a complete
    /// response head arrived.
    Closed,
    /// The connection was closed or reset in the middle of the response
    /// body: the body is incomplete.
    Incomplete,
    /// The client closed the connection before this request's response
    /// arrived, because the exchange ahead of it on the same (pipelined)
    /// connection failed, timed out or gave up. The request had been sent
    /// and may have been processed, so it was not sent again.
    Aborted,
    /// The server's response breaks HTTP/1 (bad status line, ambiguous
    /// framing, bad chunk sizes, ...). The connection is not reused.
    Malformed(&'static str),
    /// Too many requests are in flight on this client at once.
    TooManyRequests,
    /// The client shut down before the exchange completed.
    Shutdown,
    /// TLS: the server's certificate is not signed by a trusted root (see
    /// [`Builder::add_root`](crate::client::Builder::add_root)).
    UnknownIssuer,
    /// TLS: the server's certificate is not valid for the URL's host.
    NameMismatch,
    /// TLS: the server's certificate has expired (or is not valid yet).
    CertificateExpired,
    /// TLS: the server's certificate was refused for another reason.
    BadCertificate(String),
    /// TLS: the handshake failed (the server refused it, no version or
    /// protocol in common, or it closed the connection during it).
    Handshake(String),
    /// TLS: what the server answered is not TLS (plain HTTP on that port?).
    NotTls,
    /// HTTP/2: the server reset this request's stream (RST_STREAM) with
    /// this error code (RFC 9113 §7: 0x2 `INTERNAL_ERROR`, 0x8 `CANCEL`,
    /// ...). Other requests on the connection go on. A
    /// `REFUSED_STREAM` (0x7) is not reported: the request is sent again
    /// (when its body has not begun), as for a GOAWAY.
    StreamReset(u32),
    /// HTTP/2: the connection failed with this error code — the server
    /// broke the protocol (our GOAWAY told it why), or it went away with
    /// an error (its GOAWAY) after this request was processed, in part
    /// or whole. Requests it did not process are sent again instead.
    Http2(u32),
    /// Another I/O error on an established connection.
    Io(io::Error),
}

impl Error {
    /// Is this one of the timeouts (connect, name lookup, response, read,
    /// or the handler's own)?
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::ConnectTimeout
            | Error::ResponseTimeout
            | Error::ReadTimeout
            | Error::Timeout => true,
            Error::Resolve { error, .. } => error.kind() == io::ErrorKind::TimedOut,
            _ => false,
        }
    }

    /// The closest [`io::ErrorKind`], for callers that turn this into an
    /// [`io::Error`].
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::InvalidUrl(_) | Error::InvalidRequest(_) => io::ErrorKind::InvalidInput,
            Error::Refused(_) => io::ErrorKind::ConnectionRefused,
            Error::ConnectTimeout
            | Error::ResponseTimeout
            | Error::ReadTimeout
            | Error::Timeout => io::ErrorKind::TimedOut,
            Error::Closed | Error::Aborted => io::ErrorKind::ConnectionAborted,
            Error::Incomplete => io::ErrorKind::UnexpectedEof,
            Error::StreamReset(_) => io::ErrorKind::ConnectionReset,
            Error::Http2(_) => io::ErrorKind::ConnectionAborted,
            Error::Malformed(_)
            | Error::UnknownIssuer
            | Error::NameMismatch
            | Error::CertificateExpired
            | Error::BadCertificate(_)
            | Error::Handshake(_)
            | Error::NotTls => io::ErrorKind::InvalidData,
            Error::Resolve { error, .. } | Error::Connect { error, .. } | Error::Io(error) => {
                error.kind()
            }
            Error::TooManyRequests | Error::Shutdown => io::ErrorKind::Other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidUrl(what) => write!(f, "invalid URL: {what}"),
            Error::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            Error::Resolve { host, error } => {
                write!(f, "could not resolve host {host:?}: {error}")
            }
            Error::Refused(addr) => write!(
                f,
                "connection refused by {addr}: is a server listening on that port?"
            ),
            Error::Connect { addr, error } => write!(f, "could not connect to {addr}: {error}"),
            Error::ConnectTimeout => f.write_str("timed out connecting to the server"),
            Error::ResponseTimeout => {
                f.write_str("timed out waiting for the response head after sending the request")
            }
            Error::ReadTimeout => {
                f.write_str("timed out: the server stopped sending or receiving mid-exchange")
            }
            Error::Timeout => f.write_str("the handler's timeout expired"),
            Error::Closed => {
                f.write_str("the server closed the connection before sending a response")
            }
            Error::Incomplete => {
                f.write_str("the connection was closed or reset in the middle of the response body")
            }
            Error::Aborted => f.write_str(
                "the client closed the connection before the response arrived: \
                 the exchange ahead of this one on it failed or gave up",
            ),
            Error::Malformed(what) => write!(f, "malformed response from the server: {what}"),
            Error::TooManyRequests => f.write_str("too many requests in flight on this client"),
            Error::Shutdown => f.write_str("the client has shut down"),
            Error::UnknownIssuer => {
                f.write_str("TLS: the server's certificate is not signed by a trusted authority")
            }
            Error::NameMismatch => {
                f.write_str("TLS: the server's certificate is not valid for this host name")
            }
            Error::CertificateExpired => {
                f.write_str("TLS: the server's certificate has expired or is not valid yet")
            }
            Error::BadCertificate(why) => {
                write!(f, "TLS: the server's certificate was refused: {why}")
            }
            Error::Handshake(why) => write!(f, "TLS handshake failed: {why}"),
            Error::NotTls => {
                f.write_str("TLS: the server did not answer in TLS (plain HTTP on this port?)")
            }
            Error::StreamReset(code) => write!(
                f,
                "HTTP/2: the server reset the request's stream ({:?})",
                crate::proto::h2::ErrorCode(*code)
            ),
            Error::Http2(code) => write!(
                f,
                "HTTP/2: the connection failed ({:?})",
                crate::proto::h2::ErrorCode(*code)
            ),
            Error::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { error, .. } | Error::Connect { error, .. } | Error::Io(error) => {
                Some(error)
            }
            _ => None,
        }
    }
}

impl Error {
    /// An I/O error of a connection, with TLS failures told apart.
    pub(crate) fn from_io(e: io::Error) -> Error {
        #[cfg(feature = "__tls")]
        if let Some(tls) = e.get_ref().and_then(tls_error) {
            return tls;
        }
        Error::Io(e)
    }
}

/// What a TLS failure means to a user.
#[cfg(feature = "__tls")]
fn tls_error(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<Error> {
    use rustls::{CertificateError as C, InvalidMessage as M};
    if let Some(failure) = e.downcast_ref::<crate::transport::tls::Failure>() {
        return Some(match failure {
            crate::transport::tls::Failure::Truncated => Error::Incomplete,
            other => Error::Handshake(other.to_string()),
        });
    }
    Some(match e.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => Error::UnknownIssuer,
            C::NotValidForName | C::NotValidForNameContext { .. } => Error::NameMismatch,
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => Error::CertificateExpired,
            other => Error::BadCertificate(other.to_string()),
        },
        rustls::Error::InvalidMessage(M::InvalidContentType | M::UnknownProtocolVersion) => {
            Error::NotTls
        }
        other => Error::Handshake(other.to_string()),
    })
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            e => io::Error::new(e.io_kind(), e),
        }
    }
}
