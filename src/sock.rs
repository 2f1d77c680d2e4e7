//! Edge-triggered socket I/O over a connection's buffers, shared by the
//! server's and the client's event loops.
//!
//! mio reports readiness once per edge, so each side keeps a
//! [`Readiness`] and reads or writes until the kernel says `WouldBlock` —
//! or until a short read or write shows the socket drained or full, which
//! on Linux guarantees a new edge when that changes.

use std::io::{self, Read, Write};

use crate::buf::{BufPool, ReadBuf, WriteBuf};

/// What a loop knows of one socket's readiness.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Readiness {
    /// Not known to be drained: reading may find bytes.
    pub readable: bool,
    /// Not known to be full: writing may succeed.
    pub writable: bool,
    /// The peer's FIN was reported: read until 0 even after a short read.
    pub read_closed: bool,
}

impl Readiness {
    /// A freshly connected socket: writable, nothing known to read yet.
    pub(crate) fn connected() -> Readiness {
        Readiness {
            writable: true,
            ..Readiness::default()
        }
    }

    /// Records a readiness event.
    pub(crate) fn update(&mut self, event: &mio::event::Event) {
        self.readable |= event.is_readable() || event.is_read_closed();
        self.writable |= event.is_writable();
        self.read_closed |= event.is_read_closed();
    }
}

/// Writes buffered output until done or `WouldBlock`; returns how many
/// bytes went out.
pub(crate) fn flush(
    sock: &mut impl Write,
    wbuf: &mut WriteBuf,
    ready: &mut Readiness,
) -> io::Result<usize> {
    let mut written = 0;
    while !wbuf.is_empty() {
        match sock.write(wbuf.pending()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                let short = n < wbuf.len();
                wbuf.advance(n);
                if short {
                    // The socket buffer is full; the next edge says when not.
                    ready.writable = false;
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready.writable = false;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Reads once into `rbuf` (giving it storage from `pool` if it has none).
/// `Ok(true)`: bytes arrived or the input ended (`*input_closed` is then
/// set), and the connection should run again.
pub(crate) fn fill(
    sock: &mut impl Read,
    rbuf: &mut ReadBuf,
    pool: &mut BufPool,
    ready: &mut Readiness,
    input_closed: &mut bool,
) -> io::Result<bool> {
    if !ready.readable || *input_closed {
        return Ok(false);
    }
    pool.attach_read(rbuf);
    let spare = rbuf.spare();
    let room = spare.len();
    if room == 0 {
        // Full, and the handler is not consuming: the read is still owed.
        return Ok(false);
    }
    loop {
        match sock.read(spare) {
            Ok(0) => {
                *input_closed = true;
                ready.readable = false;
                return Ok(true);
            }
            Ok(n) => {
                rbuf.filled(n);
                if n < room && !ready.read_closed {
                    // Drained: with edge-triggered readiness, new bytes
                    // bring a new event. (After a FIN we read on to see 0.)
                    ready.readable = false;
                }
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready.readable = false;
                return Ok(false);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
