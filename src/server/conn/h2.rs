//! An HTTP/2 connection (RFC 9113) on the server: the engine of
//! `proto::h2` driven with this connection's buffers, one handler per
//! stream.
//!
//! So far only the protocol choice reaches here: the preface is checked
//! and the connection is refused with GOAWAY(HTTP_1_1_REQUIRED).

use super::h1;
use super::Want;
use super::{Ctx, PREFACE};
use crate::rt::buf::{ReadBuf, WriteBuf};
use crate::rt::machine::Bufs;
use crate::rt::timer::Deadline;
use crate::server::{Addrs, Handler, HandlerFactory};
use crate::Next;

/// HTTP/2 `HTTP_1_1_REQUIRED`.
const HTTP_1_1_REQUIRED: u32 = 0xd;

/// One HTTP/2 connection.
pub(crate) struct Conn<H> {
    #[allow(dead_code)]
    pub key: usize,
    pub slot: usize,
    pub rbuf: ReadBuf,
    pub wbuf: WriteBuf,
    pub deadline: Deadline,
    pub input_closed: bool,
    #[allow(dead_code)]
    pub addrs: Addrs,
    #[cfg(feature = "__tls")]
    pub tls: Option<Box<crate::tls::TlsInfo>>,
    done: bool,
    lingering: bool,
    _handler: std::marker::PhantomData<H>,
}

impl<H: Handler> Conn<H> {
    /// Takes over an HTTP/1 connection that has not begun a request: its
    /// buffers (and the bytes in them), deadline and TLS facts.
    pub(crate) fn from_h1(c: &mut h1::Conn<H>) -> Conn<H> {
        Conn {
            key: c.key,
            slot: c.slot,
            rbuf: std::mem::take(&mut c.rbuf),
            wbuf: std::mem::take(&mut c.wbuf),
            deadline: std::mem::take(&mut c.deadline),
            input_closed: c.input_closed,
            addrs: c.addrs,
            #[cfg(feature = "__tls")]
            tls: c.tls.take(),
            done: false,
            lingering: false,
            _handler: std::marker::PhantomData,
        }
    }

    pub(crate) fn bufs(&mut self) -> Bufs<'_> {
        Bufs {
            rbuf: &mut self.rbuf,
            wbuf: &mut self.wbuf,
            input_closed: &mut self.input_closed,
        }
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.done
    }

    pub(crate) fn remove<F>(&mut self, _ctx: &mut Ctx<'_, F>) {}

    pub(crate) fn wake<F>(&mut self, _slot: usize, _next: Next, _ctx: &mut Ctx<'_, F>) {}

    pub(crate) fn on_deadline<F>(&mut self, _ctx: &mut Ctx<'_, F>) -> Option<Want> {
        Some(Want::Remove)
    }

    pub(crate) fn begin_shutdown<F>(&mut self, _ctx: &mut Ctx<'_, F>) {}

    pub(crate) fn on_shutdown_deadline(&mut self) {}

    pub(crate) fn start_turn(&mut self) {}

    pub(crate) fn advance<F: HandlerFactory<Output = H>>(&mut self, ctx: &mut Ctx<'_, F>) -> Want {
        if self.lingering {
            return Want::Discard;
        }
        if self.done {
            return Want::Close;
        }
        let n = self.rbuf.len().min(PREFACE.len());
        if self.rbuf.data()[..n] != PREFACE[..n] || self.input_closed {
            self.done = true;
            return Want::Close;
        }
        if n < PREFACE.len() {
            return Want::Read;
        }
        self.rbuf.consume(n);
        ctx.pool.attach_write(&mut self.wbuf);
        let buf = &mut self.wbuf.buf;
        // SETTINGS, empty; GOAWAY(last 0, HTTP_1_1_REQUIRED).
        buf.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&HTTP_1_1_REQUIRED.to_be_bytes());
        self.done = true;
        Want::Close
    }

    pub(crate) fn on_read<F>(&mut self, _ctx: &mut Ctx<'_, F>) {}

    pub(crate) fn on_written<F>(&mut self, _ctx: &mut Ctx<'_, F>) -> bool {
        false
    }

    pub(crate) fn on_io_error<F>(&mut self, _err: std::io::Error, _ctx: &mut Ctx<'_, F>) {}

    pub(crate) fn start_linger<F>(&mut self, ctx: &mut Ctx<'_, F>) {
        self.rbuf.clear();
        self.lingering = true;
        let _ = ctx;
    }
}
