//! # nextloop
//!
//! An HTTP/1.x server and client built directly on a single-threaded
//! [mio](https://docs.rs/mio) event loop — no async runtime, no futures.
//!
//! Each request is driven through a **handler**: a small state machine
//! the loop calls when what it asked for is possible. Every callback
//! returns a [`Next`] — read the body, write the response, wait for an
//! outside event, end, or drop the connection — optionally with a
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
//! ## What to use
//!
//! | you want | use |
//! |---|---|
//! | a server whose handlers are state machines: full control of flow, timeouts, memory | [`server::Server`] with a [`server::Handler`] |
//! | a server running plain blocking code, the loop still in front | [`hypersync::Server`]: a closure on a thread pool (push), or `for req in &incoming` (pull) |
//! | to resume a handler parked in [`Next::wait()`] from another thread | its [`Control`]: [`Control::ready`] |
//! | a client in the same style: pooled keep-alive connections, pipelining | [`client::Client`] with a [`client::Handler`] |
//! | a blocking client: `get(url)?` and an `io::Read` body | [`hypersync::Client`] |
//! | to serve a socket you already have (bound first, or from systemd) | [`server::Server::from_listener`] |
//! | to serve a Unix socket (behind nginx on the same machine) | `server::Server::bind_unix`, `server::Server::from_unix_listener` (Unix only) |
//! | who is calling; to refuse large bodies | [`server::Request::remote_addr`]; [`server::Server::max_body_size`] |
//! | to take a connection over (after `101 Switching Protocols`, say) | return [`Next::remove()`]; `on_remove` gets a [`Detached`], with the bytes already read |
//! | a line per exchange in a log | [`server::AccessLog`] around the handler factory |
//! | Ctrl-C / SIGTERM to shut down gracefully | [`server::Server::shutdown_on_signals`] |
//! | the `http` crate's types | `Method`, `StatusCode`, `HeaderName`, `HeaderValue` are taken as they are; feature `http` adds `to_http()` (`Parts`) on heads |
//! | WebSocket: the handshake and a frame codec without allocation per message | [`ws`]: [`ws::Accept`], [`ws::Reader`], [`ws::Writer`] |
//! | HTTPS: a server with a certificate, `https://` URLs in the clients | feature `tls` (or `tls-ring`): `Server::tls_pem` / `Server::tls`, `Request::tls`, and the `tls` module |
//!
//! Bodies are streamed on both sides through a [`Decoder`]
//! (`io::Read`; `WouldBlock` means "return [`Next::read()`] and you will be
//! called when more arrives") and an [`Encoder`]
//! (`io::Write`, framed as `Content-Length`, chunked, or close-delimited).
//! Bad requests are answered by the server itself with their status and a
//! one-line reason ([`ParseError`]); what goes wrong while a handler owns
//! an exchange reaches it as an [`Error`] in `on_error`.
//!
//! Callbacks run on the loop thread and must not block; a panic in one
//! costs only its connection. The steady-state request path makes no heap
//! allocation, and an idle keep-alive connection holds no buffer memory.
//! Diagnostics go through the [`log`](https://docs.rs/log) facade: silent
//! until the program installs a logger.
//!
//! The README has a cookbook (routing, reading a whole body with a limit,
//! JSON, an access log, Ctrl-C), explains the architecture (one reactor
//! for both roles, a transport layer, sans-IO protocol machines) and lists
//! every limit and default.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

mod body;
pub mod client;
mod control;
mod detached;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod http_types;
pub mod hypersync;
mod next;
mod proto;
mod rt;
pub mod server;
#[cfg(feature = "__tls")]
pub mod tls;
mod transport;
pub mod ws;

pub use body::{Decoder, Encoder};
pub use control::{Control, Gone};
pub use detached::Detached;
pub use error::{Error, ParseError};
pub use http_types::IntoStatus;
pub use next::{Interest, Next};
pub use proto::status::reason;
pub use proto::Version;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
