//! Engine tests, in process: bytes in, events and frames out. Grouped by
//! rule; `support.rs` plays the peer.

mod support;

mod basics;
mod blocks;
mod conn_errors;
mod floods;
mod flow;
mod lifecycle;
mod stream_errors;
