//! HTTP/2 (RFC 9113), sans-IO: the connection engine both roles drive.
//!
//! A [`Connection`] takes the bytes read from the peer and gives back
//! [`Event`]s — a decoded and checked head, body bytes borrowed from the
//! input, a reset, an opened window, GOAWAY, settings — writing what the
//! protocol requires in answer (acks, RST_STREAM, WINDOW_UPDATE, GOAWAY)
//! straight into the owner's output buffer. The owner sends heads, DATA
//! and trailers through it the same way. No callbacks, no I/O, nothing
//! allocated per frame or per stream in steady state.
//!
//! ```text
//! let mut scratch = Scratch::new(&settings);        // one per loop
//! let mut conn = Connection::new(Role::Server, settings, &mut out);
//! loop {                                             // bytes arrived
//!     let r = conn.recv(read_buf, &mut scratch, &mut out)?;
//!     match r.event { Some(event) => act(event), None => break }
//!     consume(r.consumed);
//! }
//! ```
//!
//! (Crate-internal; `tests/` here runs exactly this loop.)
//!
//! The rules, and where they live:
//!
//! - `frame.rs`: the frame header, types, flags, and frame writers.
//! - `settings.rs`: our [`Settings`] (defaults from the bounds `h2` and
//!   nginx use) and the peer's, validated.
//! - `conn.rs`: every frame's rules, flow control, GOAWAY, and the
//!   sending helpers; `stream.rs`: stream states (one transition
//!   function) and the stream table; `head.rs`: header blocks decoded
//!   into the loop's [`Scratch`] and checked (§8.2–8.3) into a [`Head`];
//!   `budget.rs`: flood budgets; `error.rs`: codes and scopes.
//! - `text.rs`: a decoded head as text fields for the handler APIs, and
//!   text fields into a head to send (both roles).
//! - `hpack/`: header compression (RFC 7541).
//!
//! Contracts for the owner:
//!
//! - The read buffer must hold [`Settings::read_buffer_size`] bytes: a
//!   frame, or a header block with its CONTINUATIONs, is read only once
//!   it is whole. Drop [`Recv::consumed`] bytes after each call.
//! - Give the stream table back ([`Connection::release_idle`]) only after
//!   [`IDLE_RELEASE`] without a stream, not at every idle moment.
//! - A stream holds its slot (against MAX_CONCURRENT_STREAMS) until
//!   [`Connection::stream_done`], whatever arrives from the peer.
//! - Call [`Connection::release`] as the reader consumes body bytes: the
//!   window is granted back in batches; that is the backpressure.
//! - When [`Connection::must_flush`], flush the output and call
//!   [`Connection::flushed`]; reading stops at the next PING/SETTINGS
//!   until then (one pending ack of each, at most).
//! - A [`ConnError`] from `recv` has written GOAWAY: flush and close.

// Until `server/conn/h2.rs` (and the client's) drive the engine, parts
// of the API have no caller outside the tests.
#![cfg_attr(feature = "fuzzing", allow(dead_code, unused_imports))]

mod budget;
mod conn;
pub(crate) mod drive;
mod error;
mod frame;
mod head;
pub(crate) mod hpack;
mod settings;
mod stream;
pub(crate) mod text;

#[cfg(test)]
mod tests;

pub(crate) use conn::IDLE_RELEASE;
pub use conn::{Connection, Event, Recv, Role, SendError};
pub use error::{ConnError, ErrorCode};
pub use frame::{MAX_WINDOW, PREFACE};
pub use head::{Head, HeadKind, Scratch};
pub use settings::{PeerSettings, Settings, DEFAULT_WINDOW};
pub use stream::State;
