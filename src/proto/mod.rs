//! Sans-IO HTTP/1: parsing, framing and body coding over byte slices.
//! Nothing here touches a socket or imports mio.

pub(crate) mod date;
pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod head;
pub(crate) mod response_head;
pub(crate) mod target;
