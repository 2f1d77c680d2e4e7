//! [`Machine`]: one connection's protocol state machine, as the reactor
//! drives it; [`Want`]: what it needs next.
//!
//! A machine is sans-IO: the reactor reads into its read buffer, writes
//! out of its write buffer, and asks [`advance`](Machine::advance) what to
//! do next, until the answer needs an event (more input, room to write, a
//! wake-up, a deadline). Nothing here recurses.

use std::io;

use super::buf::{BufPool, ReadBuf, WriteBuf};

/// What a connection needs from the reactor to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// More input.
    Read,
    /// More input if there is some now; otherwise run again after the
    /// other connections (a writer that wrote nothing this time must not
    /// hold up a reader, nor be forgotten).
    ReadOrYield,
    /// The write buffer is over its high-water mark: flush it first.
    Flush,
    /// Nothing until a wake-up, a deadline or new input.
    Idle,
    /// This turn's share is used: flush, then run again after the other
    /// connections had their turn.
    Yield,
    /// Flush, shut down the write side, then linger.
    Close,
    /// Lingering: read and discard until the peer closes.
    Discard,
    /// Write out everything buffered, the transport's own too, then call
    /// [`Machine::on_drained`] and run on.
    Drain,
    /// Drop the connection now.
    Remove,
    /// Drop the connection once what is buffered has been written (the
    /// machine's own timer bounds the wait).
    FlushRemove,
}

/// A connection's buffers, as the reactor fills and flushes them.
pub(crate) struct Bufs<'a> {
    pub rbuf: &'a mut ReadBuf,
    pub wbuf: &'a mut WriteBuf,
    /// The peer will send nothing more (its FIN was read).
    pub input_closed: &'a mut bool,
}

/// One connection's state machine. `C` is what it borrows from its loop
/// while it runs (the role's context).
pub(crate) trait Machine<C> {
    /// Its buffers.
    fn bufs(&mut self) -> Bufs<'_>;

    /// The pool its buffers come from and go back to, inside `ctx`.
    fn pool(ctx: &mut C) -> &mut BufPool;

    /// The reactor starts running it: a new share of the turn.
    fn start_turn(&mut self) {}

    /// Runs as far as buffered input and output room allow.
    fn advance(&mut self, ctx: &mut C) -> Want;

    /// Bytes were read into the read buffer.
    fn on_read(&mut self, ctx: &mut C);

    /// Bytes of the write buffer went out. `true`: a writer held back by
    /// the high-water mark may now go on, so run again even if nothing
    /// can be read.
    fn on_written(&mut self, ctx: &mut C) -> bool;

    /// Writing failed. `None`: the machine goes on without its output
    /// (it may still read an answer that is on its way); `Some`: the
    /// connection fails with that error.
    fn on_write_error(&mut self, err: io::Error, ctx: &mut C) -> Option<io::Error> {
        let _ = ctx;
        Some(err)
    }

    /// Has writing failed for good (nothing more will be written)?
    fn output_closed(&self) -> bool {
        false
    }

    /// The connection failed (reset, I/O error); the reactor removes it
    /// next.
    fn on_io_error(&mut self, err: io::Error, ctx: &mut C);

    /// Everything written is out (the kernel has taken it), as
    /// [`Want::Drain`] asked, at `at`. `true`: shut the write side down
    /// now; the machine goes on reading.
    fn on_drained(&mut self, at: std::time::Instant, ctx: &mut C) -> bool {
        let _ = (at, ctx);
        false
    }

    /// The write side has been shut down after a [`Want::Close`].
    fn start_linger(&mut self, ctx: &mut C) {
        let _ = ctx;
    }

    /// The TLS handshake has completed: what it settled (ALPN protocol,
    /// server name).
    #[cfg(feature = "__tls")]
    #[allow(clippy::boxed_local)] // kept boxed by the server's connection
    fn on_tls(&mut self, info: Box<crate::tls::TlsInfo>) {
        let _ = info;
    }

    /// Not connected yet: the reactor does not run it.
    fn is_connecting(&self) -> bool {
        false
    }
}
