//! A server connection. Today every connection speaks HTTP/1 (`h1`);
//! the protocol choice (ALPN, the HTTP/2 preface) and the other engines
//! go beside it here.

mod h1;

pub(crate) use h1::*;
