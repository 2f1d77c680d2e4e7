//! The runtime both roles share: the reactor that drives connection
//! machines over transports, and what it is built from.
//!
//! - [`reactor`]: one mio `Poll`, the slab of connections, the rerun queue,
//!   the drain of `Control` wake-ups, deadline expiry, buffer release and
//!   removal — written once, for the server and the client;
//! - [`machine`]: the [`Machine`] interface a connection implements, and
//!   the [`Want`] it answers with;
//! - [`buf`]: read and write buffers and their per-loop pool;
//! - [`timer`]: the deadline heap;
//! - [`guard`]: runs user code so that its panic costs only what it was
//!   doing.
//!
//! What the reactor does not know: what a connection speaks (the
//! machines in `server/conn` and `client/conn` do), and how bytes reach a
//! socket (the [`transport`](crate::transport) does).

pub(crate) mod buf;
pub(crate) mod guard;
pub(crate) mod machine;
pub(crate) mod reactor;
pub(crate) mod timer;

pub(crate) use machine::{Machine, Want};
pub(crate) use reactor::{Core, Role};
