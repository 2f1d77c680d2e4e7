//! Error types: what a handler is told, and what a bad request is answered with.

use std::fmt;
use std::io;

use crate::proto;

/// Why a server handler's [`on_error`](crate::server::Handler::on_error)
/// was called. (A server that cannot start says why with the
/// [`io::Error`] of [`Server::bind`](crate::server::Server::bind) or
/// [`handle`](crate::server::Server::handle).)
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The timeout of the last [`Next`](crate::Next) expired.
    Timeout,
    /// The peer closed or reset the connection, or another I/O error happened.
    Io(io::Error),
    /// The request body was malformed (for example a bad chunk size).
    /// The server answers 400 if no response head was sent, else closes,
    /// whatever [`Next`](crate::Next) the handler returns.
    Parse(ParseError),
    /// The server is shutting down and the grace period is over.
    Shutdown,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout => f.write_str("timed out"),
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Parse(e) => write!(f, "malformed request: {e}"),
            Error::Shutdown => f.write_str("server shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Parse(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

/// A request the server refuses, with the status it answers.
///
/// Every variant maps to one HTTP status ([`status`](ParseError::status));
/// after sending it the server closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Malformed request line or header field (400).
    Malformed(&'static str),
    /// Ambiguous or invalid message framing (400).
    Framing(&'static str),
    /// Malformed chunked body (400).
    Chunked(&'static str),
    /// HTTP/1.1 request without exactly one valid `Host` (400).
    Host,
    /// An `Expect` field asks for anything but `100-continue` (417,
    /// RFC 9110 §10.1.1).
    Expectation,
    /// The peer closed its side before the request body was complete (400).
    Truncated,
    /// The head did not arrive in time (408).
    HeadTimeout,
    /// The method is longer than the head may be (501, RFC 9112 §3).
    MethodTooLong,
    /// The request target is too long (414).
    TargetTooLong,
    /// The head is larger than the limit, or has too many fields (431).
    HeadTooLarge,
    /// A transfer coding the server does not implement (501).
    UnknownCoding,
    /// A protocol version other than HTTP/1.0 and HTTP/1.1 (505).
    Version,
    /// The request body is longer than
    /// [`max_body_size`](crate::server::Server::max_body_size) allows
    /// (413).
    BodyTooLarge,
}

impl ParseError {
    /// The status code the server answers this error with.
    pub const fn status(&self) -> u16 {
        match self {
            ParseError::Malformed(_)
            | ParseError::Framing(_)
            | ParseError::Chunked(_)
            | ParseError::Host
            | ParseError::Truncated => 400,
            ParseError::HeadTimeout => 408,
            ParseError::Expectation => 417,
            ParseError::TargetTooLong => 414,
            ParseError::HeadTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::MethodTooLong | ParseError::UnknownCoding => 501,
            ParseError::Version => 505,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Malformed(what) => write!(f, "malformed head: {what}"),
            ParseError::Framing(what) => write!(f, "invalid framing: {what}"),
            ParseError::Chunked(what) => write!(f, "invalid chunked body: {what}"),
            ParseError::Host => f.write_str("HTTP/1.1 request needs exactly one valid Host"),
            ParseError::Truncated => f.write_str("request body cut short"),
            ParseError::HeadTimeout => f.write_str("request head timed out"),
            ParseError::Expectation => f.write_str("only 100-continue can be expected"),
            ParseError::MethodTooLong => f.write_str("method too long"),
            ParseError::TargetTooLong => f.write_str("request target too long"),
            ParseError::HeadTooLarge => f.write_str("request head too large"),
            ParseError::UnknownCoding => f.write_str("transfer coding not implemented"),
            ParseError::Version => f.write_str("HTTP version not supported"),
            ParseError::BodyTooLarge => f.write_str("request body too large"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<proto::Error> for ParseError {
    fn from(e: proto::Error) -> ParseError {
        match e {
            proto::Error::Malformed(what) => ParseError::Malformed(what),
            proto::Error::Framing(what) => ParseError::Framing(what),
            proto::Error::Chunked(what) => ParseError::Chunked(what),
            proto::Error::Host => ParseError::Host,
            proto::Error::Expectation => ParseError::Expectation,
            proto::Error::Truncated => ParseError::Truncated,
            proto::Error::MethodTooLong => ParseError::MethodTooLong,
            proto::Error::TargetTooLong => ParseError::TargetTooLong,
            proto::Error::HeadTooLarge => ParseError::HeadTooLarge,
            proto::Error::UnknownCoding => ParseError::UnknownCoding,
            proto::Error::Version => ParseError::Version,
            proto::Error::BodyTooLarge => ParseError::BodyTooLarge,
        }
    }
}
