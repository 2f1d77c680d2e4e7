//! Engine tests, in process: bytes in, events and frames out. Grouped by
//! rule; `support.rs` plays the peer.

mod support;

mod basics;
mod conn_errors;
mod stream_errors;
