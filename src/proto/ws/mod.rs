//! WebSocket (RFC 6455), sans-IO: the frame codec and the opening
//! handshake. Nothing here touches a socket; a handler in raw mode feeds
//! the [`Reader`] the bytes it reads and sends what the [`Writer`]
//! encodes. Public as [`nextloop::ws`](crate::ws).
//!
//! - `frame.rs`: the header's wire format, [`OpCode`].
//! - `mask.rs`: masking, eight bytes at a time.
//! - `utf8.rs`: text validation across frames and reads.
//! - `close.rs`: close codes and the close frame's payload.
//! - `error.rs`: [`Error`], carrying the close code a failure needs.
//! - `reader.rs`: the receiving state machine — every rule in context.
//! - `writer.rs`: encoding frames, masking for the client.
//! - `handshake.rs` (with `sha1.rs`, `base64.rs`): the opening handshake.

mod base64;
mod close;
mod error;
mod frame;
pub(crate) mod handshake;
mod mask;
mod reader;
mod sha1;
mod utf8;
mod writer;

#[cfg(test)]
mod tests;

pub use close::{encode_close_payload, CloseCode, CloseFrame};
pub use error::Error;
pub use frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub use reader::{Event, MessageKind, Reader, Step};
pub use writer::Writer;

/// Which end of the connection this is: it decides the masking
/// (RFC 6455 §5.1). A server reads masked frames and sends unmasked
/// ones; a client the other way round. A frame masked the wrong way is
/// a protocol error (1002).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The accepting end.
    Server,
    /// The connecting end.
    Client,
}

/// Size limits on what the [`Reader`] accepts; past either, the
/// connection fails with 1009 ([`CloseCode::TOO_BIG`]) as soon as a
/// frame's header shows it, before its payload is read.
///
/// The reader streams payload and holds none of it, so the limits bound
/// what a handler that collects messages may have to hold, not the
/// reader's own memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame payload. Default 16 MiB.
    pub max_frame: u64,
    /// The largest message (all its frames' payloads). Default 64 MiB.
    pub max_message: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: 16 << 20,
            max_message: 64 << 20,
        }
    }
}
