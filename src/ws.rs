//! WebSocket (RFC 6455): the opening handshake and a sans-IO frame codec,
//! for a handler in raw mode.
//!
//! A server handler checks the upgrade request in `on_request` with
//! [`Accept::from_request`], answers `101 Switching Protocols` with
//! [`Accept::respond`] (or the refusal with [`Refusal::respond`]), and
//! from then on reads the client's bytes from its
//! [`Decoder`](crate::Decoder), feeds them to a [`Reader`], and writes
//! what a [`Writer`] encodes to its [`Encoder`](crate::Encoder).
//! `examples/websocket.rs` is a complete echo server.
//!
//! - **No allocation per frame or message.** The [`Reader`] is under 256
//!   bytes, no heap (a header's 14, a control frame's 125, the UTF-8
//!   state); it
//!   unmasks payload in place in the caller's buffer and yields it as it
//!   arrives ([`Event::Data`]), so a message need never be held whole.
//!   The [`Writer`] encodes into the caller's buffers.
//! - **Every rule checked, in one place:** the role's masking, reserved
//!   bits and opcodes, fragmentation (continuations only inside a
//!   message, a new message only after the last one ended), control
//!   frames (at most 125 bytes, never fragmented, allowed between
//!   fragments), lengths in their shortest form, close codes (RFC 6455
//!   §7.4 and the IANA registry: 1005, 1006 and 1015 never on the wire)
//!   and reasons, UTF-8 of text across frames and reads (a code point
//!   may be split anywhere; the first byte that cannot be valid fails),
//!   and [`Limits`] per frame and per message. A failure is an [`Error`]
//!   with the close code to send: 1002, 1007 or 1009.
//! - **Both roles.** A server reads masked frames and writes unmasked
//!   ones; a client ([`Role::Client`]) the other way round, with a fresh
//!   masking key per frame, and [`ClientKey`] for its side of the
//!   handshake.
//! - **No extensions.** permessage-deflate (RFC 7692) is not
//!   implemented: the handshake never accepts `Sec-WebSocket-Extensions`,
//!   so the client sends uncompressed frames, and a frame with a reserved
//!   bit set is a protocol error.
//!
//! ```
//! use nextloop::ws::{CloseCode, Event, Limits, Reader, Role, Writer};
//!
//! /// Answers what a client sent (`input`, as read) into `out`: messages
//! /// echoed piece by piece, pings ponged, a close echoed. `false` once
//! /// the connection should close.
//! fn echo(reader: &mut Reader, writer: &mut Writer, input: &mut [u8], out: &mut Vec<u8>) -> bool {
//!     let mut at = 0;
//!     while at < input.len() {
//!         let step = match reader.read(&mut input[at..]) {
//!             Ok(step) => step,
//!             Err(e) => {
//!                 writer.encode_close(out, e.close_code(), e.reason());
//!                 return false;
//!             }
//!         };
//!         at += step.consumed;
//!         match step.event {
//!             Some(Event::Data { kind, payload, first, last }) => {
//!                 let opcode = if first { kind.opcode() } else { nextloop::ws::OpCode::Continuation };
//!                 writer.encode(out, opcode, last, payload);
//!             }
//!             Some(Event::Ping(p)) => writer.encode(out, nextloop::ws::OpCode::Pong, true, p),
//!             Some(Event::Close(c)) => {
//!                 writer.encode_close(out, c.code_or_no_status(), "");
//!                 return false;
//!             }
//!             Some(Event::Pong(_)) | None => {}
//!         }
//!     }
//!     true
//! }
//!
//! let mut reader = Reader::new(Role::Server, Limits::default());
//! let mut writer = Writer::new(Role::Server);
//! let mut out = Vec::new();
//! // A masked "Hello" (RFC 6455 §5.7), then a close with 1000.
//! let mut input = *b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\x88\x82\x00\x00\x00\x00\x03\xe8";
//! assert!(!echo(&mut reader, &mut writer, &mut input, &mut out));
//! assert_eq!(out, b"\x81\x05Hello\x88\x02\x03\xe8");
//! ```

use crate::server::{Request, Response};
use crate::Version;

use crate::proto::ws::handshake;
pub use crate::proto::ws::handshake::Refusal;
pub use crate::proto::ws::{
    apply_mask, encode_close_payload, CloseCode, CloseFrame, Error, Event, FrameHeader, Limits,
    MessageKind, OpCode, Reader, Role, Step, Writer, MAX_HEADER_LEN,
};

/// A server's acceptance of a WebSocket upgrade request: the
/// `Sec-WebSocket-Accept` value and the chosen subprotocol. Small and
/// `Copy`: take it in `on_request`, where the request is borrowed, and
/// [`respond`](Accept::respond) with it in `on_response`.
///
/// ```
/// use nextloop::server::{Handler, Request, Response};
/// use nextloop::ws::{Accept, Refusal};
/// use nextloop::Next;
///
/// struct Chat {
///     handshake: Result<Accept<'static>, Refusal>,
/// }
///
/// impl Handler for Chat {
///     fn on_request(&mut self, req: Request<'_>) -> Next {
///         self.handshake = Accept::from_request(&req, &["chat.v2", "chat.v1"]);
///         Next::write()
///     }
///
///     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
///         match self.handshake {
///             Ok(accept) => {
///                 accept.respond(res);
///                 Next::read() // raw mode: frames from here on
///             }
///             Err(refusal) => {
///                 refusal.respond(res);
///                 Next::end()
///             }
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accept<'p> {
    value: [u8; 28],
    protocol: Option<&'p str>,
}

impl<'p> Accept<'p> {
    /// Checks an upgrade request (RFC 6455 §4.2.1): `GET`, HTTP/1.1, an
    /// `Upgrade` list with `websocket`, a `Connection` list with
    /// `upgrade`, `Sec-WebSocket-Version: 13`, and one
    /// `Sec-WebSocket-Key` of 16 bytes in base64. The subprotocol is the
    /// first the client offers in `Sec-WebSocket-Protocol` that is in
    /// `protocols` (none if nothing matches: the client then decides
    /// whether to go on). Extensions are declined.
    pub fn from_request(
        request: &Request<'_>,
        protocols: &[&'p str],
    ) -> Result<Accept<'p>, Refusal> {
        let value = handshake::check_request(
            request.method(),
            request.version() == Version::Http11,
            || request.headers(),
        )?;
        Ok(Accept {
            value,
            protocol: handshake::select_protocol(request.headers(), protocols),
        })
    }

    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_value(&self) -> &str {
        std::str::from_utf8(&self.value).unwrap_or_default()
    }

    /// The subprotocol chosen, if any.
    pub fn protocol(&self) -> Option<&'p str> {
        self.protocol
    }

    /// Writes the `101 Switching Protocols` head: `Upgrade: websocket`,
    /// `Sec-WebSocket-Accept` and the chosen `Sec-WebSocket-Protocol`
    /// (the server adds `Connection: upgrade`). Return
    /// [`Next::read()`](crate::Next::read) (or another `Next`) after it:
    /// the exchange goes on in raw mode.
    pub fn respond(&self, response: &mut Response<'_>) {
        response
            .set_status(101)
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Accept", self.value);
        if let Some(p) = self.protocol {
            response.header("Sec-WebSocket-Protocol", p);
        }
    }
}

impl Refusal {
    /// Writes the answer to a refused upgrade: `426 Upgrade Required`
    /// with `Upgrade: websocket` and `Sec-WebSocket-Version: 13` for a
    /// plain HTTP request or another version, `400` otherwise; a one-line
    /// reason as the body. Return [`Next::end()`](crate::Next::end).
    pub fn respond(&self, response: &mut Response<'_>) {
        response.set_status(self.status());
        if self.status() == 426 {
            response
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13");
        }
        let mut body = [0u8; 128];
        let reason = self.reason().as_bytes();
        let n = reason.len().min(body.len() - 1);
        body[..n].copy_from_slice(&reason[..n]);
        body[n] = b'\n';
        response
            .header("Content-Type", "text/plain")
            .body(&body[..=n]);
    }
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455
/// §4.2.2): base64 of the SHA-1 of the key and the protocol's GUID.
///
/// ```
/// assert_eq!(
///     &nextloop::ws::accept_value(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_value(key: &[u8]) -> [u8; 28] {
    handshake::accept_value(key)
}

/// A client's side of the handshake: a fresh random `Sec-WebSocket-Key`
/// to send, and the check of the server's answer.
///
/// ```
/// use nextloop::ws::{accept_value, ClientKey};
///
/// let key = ClientKey::new();
/// // ... send `Sec-WebSocket-Key: {key.as_str()}`; the server answers:
/// let accept = accept_value(key.as_str().as_bytes());
/// let answer = [
///     ("Upgrade", &b"websocket"[..]),
///     ("Connection", b"Upgrade"),
///     ("Sec-WebSocket-Accept", &accept[..]),
/// ];
/// assert_eq!(key.check(101, answer, &[]), Ok(None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientKey([u8; 24]);

impl ClientKey {
    /// 16 random bytes, in base64.
    #[allow(clippy::new_without_default)]
    pub fn new() -> ClientKey {
        ClientKey(handshake::client_key())
    }

    /// The key, for the `Sec-WebSocket-Key` field.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Checks the server's answer (RFC 6455 §4.1): status 101,
    /// `Upgrade: websocket`, `Connection: upgrade`, the right
    /// `Sec-WebSocket-Accept`, no extension (none was offered), and a
    /// subprotocol only if it is one of `offered`. The chosen subprotocol,
    /// or what is wrong.
    pub fn check<'a, I>(
        &self,
        status: u16,
        fields: I,
        offered: &[&str],
    ) -> Result<Option<&'a str>, &'static str>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
    {
        handshake::check_response(status, || fields.clone(), &self.0, offered)
    }
}
