//! The protocol core: sans-IO, over byte slices. Nothing here touches a
//! socket or imports mio; the connection machines in `server/` and
//! `client/` feed it bytes and act on what it says.
//!
//! - What every HTTP version shares sits at this level: header lookup,
//!   field syntax and field writing (`fields.rs`), the core's own
//!   [`Error`] (`error.rs`), reason phrases (`status.rs`), the cached
//!   `Date` (`date.rs`) and [`Version`].
//! - `h1/`: HTTP/1 — request and response heads, their framing in one
//!   vocabulary, body decoding, encoding and draining.
//!
//! - `h2/`: HTTP/2, on the same shared pieces. So far HPACK; frames,
//!   stream states and flow control follow.
//! - `ws/`: WebSocket (RFC 6455) — the frame codec and the opening
//!   handshake, public as `nextloop::ws`.

pub(crate) mod date;
pub(crate) mod error;
pub(crate) mod fields;
pub(crate) mod h1;
// The HTTP/2 engine will use it; until then only tests, the fuzz target
// and the benches (through `fuzzing`) do.
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code, unused_imports))]
pub(crate) mod h2;
pub(crate) mod status;
pub(crate) mod ws;

pub(crate) use error::Error;

/// The HTTP version of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
    /// HTTP/2 (RFC 9113)
    Http2,
}

impl Version {
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0` (as access logs write it).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}
