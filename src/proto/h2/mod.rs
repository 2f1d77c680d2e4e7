//! HTTP/2 (RFC 9113), sans-IO. So far its foundation: `hpack/`, header
//! compression. Frames, stream states and flow control come next, beside
//! it.

pub(crate) mod hpack;
