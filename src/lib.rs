//! # nextloop
//!
//! A callback-driven HTTP/1.x server built directly on a single-threaded
//! [mio](https://docs.rs/mio) event loop.
//!
//! Each request is driven through a [`Handler`](server::Handler) — a small
//! state machine the loop calls when what it asked for is possible. Every
//! callback returns a [`Next`]: read the body, write the response, wait for
//! an outside event, end, or drop the connection, optionally with a
//! timeout. A [`Control`] wakes a waiting handler from any thread.
//!
//! ```no_run
//! use nextloop::server::{Handler, Response, Server};
//! use nextloop::Next;
//!
//! struct Hello;
//!
//! impl Handler for Hello {
//!     fn on_response(&mut self, res: &mut Response<'_>) -> Next {
//!         res.header("Content-Type", "text/plain").body(b"Hello, World!");
//!         Next::end()
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let server = Server::bind("127.0.0.1:3000")?.handle(|_control| Hello)?;
//!     server.join()
//! }
//! ```
//!
//! ## Where things live
//!
//! - [`server`]: the builder, the loop (`event_loop.rs`: all socket I/O,
//!   accept, deadlines, wake-ups), one connection's state machine
//!   (`conn.rs`), and the handler-facing types.
//! - `proto`: the sans-IO protocol core — header fields (`fields.rs`), its
//!   own error (`error.rs`), the cached `Date` (`date.rs`); HTTP/1 in
//!   `proto/h1/`: request and response heads and their RFC 9112 framing
//!   (`request.rs`, `response.rs`), body decoding (`decode.rs`), encoding
//!   (`encode.rs`) and draining (`drain.rs`).
//! - [`body`]: the body [`Decoder`](body::Decoder) and
//!   [`Encoder`](body::Encoder) handlers read and write, on both sides.
//! - [`Control`] (`control.rs`): wake-ups across threads; `timer.rs`: the
//!   deadline heap; `buf.rs`: buffers and their per-loop pool; `sock.rs`:
//!   edge-triggered reads and writes over those buffers, for both loops.
//! - [`hypersync`]: blocking handlers on a thread pool (push) or a request
//!   queue (pull), bridged to the loop through `Control` and channels.
//! - [`client`]: the HTTP/1.1 client — its own loop (`event_loop.rs`), one
//!   connection's state machine (`conn.rs`), the keep-alive pool
//!   (`pool.rs`), name resolution off the loop (`resolve.rs`), and the
//!   client [`Handler`](client::Handler); response framing lives in
//!   `proto/h1/response.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod body;
mod buf;
pub mod client;
mod control;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod guard;
pub mod hypersync;
mod next;
mod proto;
pub mod server;
mod sock;
mod timer;

pub use control::{Control, Gone};
pub use error::{Error, ParseError};
pub use next::{Interest, Next};
pub use proto::status::reason;
pub use proto::Version;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
