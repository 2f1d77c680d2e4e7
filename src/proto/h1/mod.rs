//! HTTP/1 (RFC 9112): request heads (`request.rs`) and response heads
//! (`response.rs`; the server writes its own in `head_writer.rs`), framed
//! in one vocabulary ([`BodyKind`], [`Framing`]);
//! request targets (`target.rs`); bodies decoded (`decode.rs`), encoded
//! (`encode.rs`) and skipped when unread (`drain.rs`).

pub(crate) mod decode;
pub(crate) mod drain;
pub(crate) mod encode;
pub(crate) mod head_writer;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod target;

use decode::BodyDecoder;

use super::fields::list;
use super::Version;

/// How a message body is delimited (RFC 9112 §6.3), for requests and
/// responses alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `Content-Length` bytes; a request without framing fields has 0.
    Length(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// No body at all, whatever the fields say: a response to HEAD, a 1xx,
    /// 204 or 304, a 2xx to CONNECT.
    None,
    /// Until the peer closes the connection (responses only).
    Eof,
}

impl BodyKind {
    /// The decoder for this body; `max_trailers` bounds a chunked trailer.
    pub(crate) fn decoder(self, max_trailers: usize) -> BodyDecoder {
        match self {
            BodyKind::Length(n) => BodyDecoder::length(n),
            BodyKind::Chunked => BodyDecoder::chunked(max_trailers),
            BodyKind::None => BodyDecoder::length(0),
            BodyKind::Eof => BodyDecoder::eof(),
        }
    }

    /// The body length when known in advance: the `Content-Length`, 0 when
    /// there is no body; `None` for a chunked or close-delimited body.
    pub(crate) fn length(self) -> Option<u64> {
        match self {
            BodyKind::None => Some(0),
            BodyKind::Length(n) => Some(n),
            BodyKind::Chunked | BodyKind::Eof => None,
        }
    }
}

/// How an exchange may leave HTTP for raw bytes in both directions: what
/// the request asked, and which answers take it up (RFC 9110 §7.8, §9.3.6).
/// After such an answer the head carries no framing field and the body
/// decoder and encoder of the exchange are [`BodyDecoder::raw`] and
/// [`BodyEncoder::Raw`](encode::BodyEncoder::Raw).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// A request with `Upgrade` (HTTP/1.1): a `101` switches.
    Upgrade,
    /// `CONNECT`: any `2xx` makes the connection a tunnel.
    Connect,
}

impl Switch {
    /// What a request with this method, `Upgrade` field and body framing
    /// may switch to. A request with a body is not switched (its body would
    /// come before the raw bytes, a case no client uses).
    pub(crate) fn of(method: &str, upgrade: bool, body: BodyKind) -> Option<Switch> {
        if body != BodyKind::Length(0) {
            None
        } else if method == "CONNECT" {
            Some(Switch::Connect)
        } else if upgrade {
            Some(Switch::Upgrade)
        } else {
            None
        }
    }

    /// Does an answer of `status` switch to raw bytes?
    pub(crate) fn by(this: Option<Switch>, status: u16) -> bool {
        match this {
            Some(Switch::Upgrade) => status == 101,
            Some(Switch::Connect) => (200..300).contains(&status),
            None => false,
        }
    }
}

/// The framing of one message, request or response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    pub body: BodyKind,
    /// May the connection carry another exchange after this one (as far as
    /// this message is concerned)?
    pub keep_alive: bool,
}

/// What the `Connection` fields of a message say about persistence.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Connection {
    close: bool,
    keep_alive: bool,
}

impl Connection {
    /// Adds the options of one `Connection` field.
    pub(crate) fn add(&mut self, value: &[u8]) {
        for opt in list(value) {
            if opt.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            }
        }
    }

    /// May the connection stay open after a message of `version` with
    /// these options (RFC 9112 §9.3)? HTTP/1.1: unless `close`; HTTP/1.0:
    /// only with `keep-alive`.
    pub(crate) fn persists(self, version: Version) -> bool {
        !self.close
            && match version {
                Version::Http11 | Version::Http2 => true,
                Version::Http10 => self.keep_alive,
            }
    }
}
