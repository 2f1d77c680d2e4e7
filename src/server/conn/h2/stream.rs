//! One HTTP/2 stream on the server: its handler, and the steps that
//! drive it — the same callbacks, in the same order, as an HTTP/1
//! exchange. Body bytes in come from the stream's own buffer (filled
//! with DATA; the window is granted back as the handler reads); body
//! bytes out go to the stream's own buffer, and from there into DATA as
//! the send windows allow (a full one parks `on_response_writable`
//! like a full socket).

use std::time::Instant;

use crate::error::{Error, ParseError};
use crate::next::Interest;
use crate::proto;
use crate::proto::h1::decode::BodyDecoder;
use crate::proto::h1::encode::BodyEncoder;
use crate::proto::h2::text::text_fields;
use crate::proto::h2::{Connection, ErrorCode};
use crate::proto::Version;
use crate::rt::buf::{ReadBuf, WriteBuf};
use crate::rt::guard::guard;
use crate::rt::timer::after;
use crate::server::conn::Ctx;
use crate::server::response::ResponseContext;
use crate::server::{Handler, Response};
use crate::{Decoder, Encoder, Next};

/// Body bytes a stream holds for sending at most: past it,
/// `on_response_writable` waits (for the window, or the socket).
pub(super) const STREAM_HIGH_WATER: usize = 16 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Expect {
    None,
    /// `expect: 100-continue`, no `100` sent yet.
    Pending,
    Sent,
}

/// What a step did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Step {
    /// Something happened: step again.
    Progress,
    /// Nothing to do until an event (DATA, window, wake, deadline).
    Idle,
    /// The stream is finished: its handler is to be dropped.
    Done,
}

/// What a stream step borrows.
pub(super) struct Io<'c, 'a, F> {
    pub engine: &'c mut Connection,
    pub out: &'c mut WriteBuf,
    /// Scratch for a response head.
    pub head: &'c mut Vec<u8>,
    pub ctx: &'c mut Ctx<'a, F>,
}

/// One stream and its handler.
pub(super) struct Stream<H> {
    pub id: u32,
    /// The exchange slot its `Control`s address.
    pub slot: usize,
    pub handler: H,
    pub interest: Interest,
    /// When the timeout of the handler's last `Next` (or the io timeout)
    /// expires.
    pub timeout: Option<Instant>,
    /// A `Control::ready` that came before the handler asked to wait.
    pub early_wake: Option<Next>,
    pub decoder: BodyDecoder,
    /// DATA received and not yet read.
    pub body: ReadBuf,
    /// The client ended its side (END_STREAM).
    pub end_received: bool,
    /// `read` has told the handler the end.
    pub saw_body_end: bool,
    pub body_error: Option<proto::Error>,
    /// Body bytes the body may still bring (`max_body_size`).
    pub budget: u64,
    /// `None` until `on_response` has produced the head.
    pub encoder: Option<BodyEncoder>,
    /// Response body bytes waiting for window.
    pub pending: WriteBuf,
    /// Our END_STREAM has gone out.
    pub ended: bool,
    pub is_head: bool,
    pub expect: Expect,
}

/// Drops a handler, containing a panic in its `Drop`.
pub(super) fn drop_handler<H>(handler: H) {
    let _ = guard(move || drop(handler));
}

impl<H: Handler> Stream<H> {
    /// Follows a handler's `Next`.
    pub(super) fn apply<F>(&mut self, mut next: Next, ctx: &Ctx<'_, F>) {
        if self.encoder == Some(BodyEncoder::Suppressed)
            && matches!(next.interest, Interest::Write | Interest::Wait)
        {
            // The head was all of it (HEAD, 204, 304).
            next = Next::end();
        }
        self.interest = next.interest;
        if next.interest == Interest::Wait {
            if let Some(early) = self.early_wake.take() {
                return self.apply(early, ctx);
            }
        }
        self.timeout = match next.timeout {
            Some(d) => after(ctx.clock.now, d),
            // Reading, writing or waiting with no deadline of its own: the
            // io timeout (restarted by each callback), as in HTTP/1.
            None => match next.interest {
                Interest::End | Interest::Remove => None,
                _ => after(ctx.clock.now, ctx.settings.io_timeout),
            },
        };
    }

    /// A `Control::ready` for this stream.
    pub(super) fn wake<F>(&mut self, next: Next, ctx: &Ctx<'_, F>) {
        if self.interest == Interest::Wait {
            self.apply(next, ctx);
        } else {
            self.early_wake = Some(next);
        }
    }

    /// Its deadline expired.
    pub(super) fn on_timeout<F>(&mut self, ctx: &Ctx<'_, F>) -> Step {
        self.timeout = None;
        let handler = &mut self.handler;
        match guard(|| handler.on_error(Error::Timeout)) {
            Ok(next) => {
                self.apply(next, ctx);
                Step::Progress
            }
            Err(()) => Step::Done,
        }
    }

    /// Tells the handler of an error that ends the stream.
    pub(super) fn fail(&mut self, err: Error) {
        let handler = &mut self.handler;
        let _ = guard(|| handler.on_error(err));
    }

    /// Runs the stream one step.
    pub(super) fn step<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        let step = match self.interest {
            Interest::Remove => {
                io.engine.reset(self.id, ErrorCode::CANCEL, &mut io.out.buf);
                return Step::Done;
            }
            Interest::Wait => Step::Idle,
            Interest::End if self.encoder.is_some() => self.step_end(io),
            Interest::Read => self.step_read(io),
            Interest::Write | Interest::End => self.step_write(io),
            Interest::ReadWrite => match self.step_read(io) {
                Step::Idle if self.interest == Interest::ReadWrite => {
                    self.send_continue_if_owed(io);
                    self.step_write(io)
                }
                step => step,
            },
        };
        if step == Step::Idle {
            // Queued body bytes go out as the window allows.
            self.send_pending(io);
        }
        step
    }

    /// Sends `100 Continue` if the client waits for it and the handler
    /// now wants the body.
    fn send_continue_if_owed<F>(&mut self, io: &mut Io<'_, '_, F>) {
        if self.expect == Expect::Pending && self.encoder.is_none() && !self.decoder.is_done() {
            self.expect = Expect::Sent;
            let _ =
                io.engine
                    .send_response(self.id, 100, std::iter::empty(), false, &mut io.out.buf);
        }
    }

    /// Would `on_request_readable` see something new?
    fn body_readable(&self) -> bool {
        if self.body_error.is_some() {
            return false;
        }
        if self.decoder.is_done() {
            !self.saw_body_end
        } else {
            !self.body.is_empty() || self.end_received
        }
    }

    fn step_read<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        if !self.body_readable() {
            if self.decoder.is_done() || self.body_error.is_some() {
                if self.encoder.is_none() {
                    // Seen the end; asking to read again means answering.
                    self.interest = Interest::Write;
                    return Step::Progress;
                }
                return Step::Idle;
            }
            self.send_continue_if_owed(io);
            return Step::Idle;
        }
        let before = self.body.len();
        let mut body = Decoder::new(
            &mut self.decoder,
            &mut self.body,
            self.end_received,
            &mut self.body_error,
        );
        body.budget = Some(&mut self.budget);
        let handler = &mut self.handler;
        let Ok((next, ended)) = guard(|| {
            let next = handler.on_request_readable(&mut body);
            (next, body.ended)
        }) else {
            return self.panicked(io);
        };
        self.saw_body_end |= ended;
        let taken = before - self.body.len();
        if taken > 0 {
            // The window comes back as the handler reads.
            io.engine.release(self.id, taken, &mut io.out.buf);
        }
        if self.body.is_empty() {
            io.ctx
                .pool
                .release(&mut self.body, &mut WriteBuf::default());
        }
        self.apply(next, io.ctx);
        if let Some(e) = self.body_error {
            if next.interest != Interest::Remove {
                return self.body_failed(e, io);
            }
        }
        if taken == 0 && !ended && matches!(next.interest, Interest::Read | Interest::ReadWrite) {
            // Read nothing yet asks to read: wait for DATA.
            return Step::Idle;
        }
        Step::Progress
    }

    /// The body is malformed or too large: the status if no head went
    /// out, else a reset.
    fn body_failed<F>(&mut self, e: proto::Error, io: &mut Io<'_, '_, F>) -> Step {
        let e = ParseError::from(e);
        self.fail(Error::Parse(e));
        if self.encoder.is_none() {
            self.fail_status(e.status(), io);
        } else {
            io.engine
                .reset(self.id, ErrorCode::PROTOCOL_ERROR, &mut io.out.buf);
        }
        Step::Done
    }

    /// The handler panicked: 500 if no head went out, else a reset.
    fn panicked<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        if self.encoder.is_none() {
            self.fail_status(500, io);
        } else {
            io.engine
                .reset(self.id, ErrorCode::INTERNAL_ERROR, &mut io.out.buf);
        }
        Step::Done
    }

    /// Answers `status` with no body and ends the stream.
    pub(super) fn fail_status<F>(&mut self, status: u16, io: &mut Io<'_, '_, F>) {
        let _ = io
            .engine
            .send_response(self.id, status, std::iter::empty(), true, &mut io.out.buf);
        self.ended = true;
    }

    fn step_write<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        if io.out.len() >= io.ctx.settings.write_high_water {
            return Step::Idle;
        }
        let Some(encoder) = self.encoder else {
            return self.write_head(io);
        };
        if encoder == BodyEncoder::Suppressed {
            self.interest = Interest::End;
            return Step::Progress;
        }
        self.send_pending(io);
        if self.pending.len() >= STREAM_HIGH_WATER {
            // The window (or the socket) is full: park like a full socket.
            return Step::Idle;
        }
        io.ctx.pool.attach_write(&mut self.pending);
        let Some(encoder) = &mut self.encoder else {
            unreachable!("the head went out")
        };
        let mut body = Encoder::new(encoder, &mut self.pending, STREAM_HIGH_WATER);
        let handler = &mut self.handler;
        let result = guard(|| {
            let next = handler.on_response_writable(&mut body);
            (next, body.accepted)
        });
        drop(body);
        let Ok((next, accepted)) = result else {
            return self.panicked(io);
        };
        self.apply(next, io.ctx);
        self.send_pending(io);
        if accepted == 0 && matches!(next.interest, Interest::Write | Interest::ReadWrite) {
            return Step::Idle;
        }
        Step::Progress
    }

    /// `on_response`, then HEADERS and whatever body came with it.
    fn write_head<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        io.head.clear();
        let exchange = ResponseContext {
            version: Version::Http2,
            keep_alive: true,
            head: self.is_head,
            date: io.ctx.date,
            // No 101 in HTTP/2; extended CONNECT (RFC 8441) is not offered.
            switch: None,
        };
        let mut res = Response::new(io.head, exchange);
        let handler = &mut self.handler;
        let result = guard(|| {
            let next = handler.on_response(&mut res);
            if next.interest == Interest::End {
                res.ended_without_body();
            }
            next
        });
        let Ok(next) = result else {
            return self.panicked(io);
        };
        let status = res.status();
        let finished = res.finish(true);
        let mut encoder = finished.encoder;
        let (fields, body_at) = text_fields(io.head);
        let body = &io.head[body_at..];
        let suppressed = encoder == BodyEncoder::Suppressed;
        let whole = next.interest == Interest::End && encoder.remaining() == Some(0);
        let end_with_head = suppressed || whole && body.is_empty();
        if io
            .engine
            .send_response(self.id, status, fields, end_with_head, &mut io.out.buf)
            .is_err()
        {
            return Step::Done;
        }
        if end_with_head {
            self.ended = true;
        } else if !body.is_empty() || whole {
            let sent = io
                .engine
                .send_data(self.id, body, whole, &mut io.out.buf)
                .unwrap_or(0);
            self.ended = whole && sent == body.len();
            if sent < body.len() {
                io.ctx.pool.attach_write(&mut self.pending);
                self.pending.buf.extend_from_slice(&body[sent..]);
            }
        }
        if let BodyEncoder::CloseDelimited = encoder {
            // HTTP/2 frames the body itself: no length, raw bytes.
        } else if suppressed {
            encoder = BodyEncoder::Suppressed;
        }
        self.encoder = Some(encoder);
        self.apply(next, io.ctx);
        Step::Progress
    }

    /// Sends queued body bytes as the windows allow, one frame's worth at
    /// a time (the other streams get theirs in between); then our
    /// END_STREAM once the handler has ended and all is out.
    pub(super) fn send_pending<F>(&mut self, io: &mut Io<'_, '_, F>) -> bool {
        if self.ended || io.out.len() >= io.ctx.settings.write_high_water {
            return false;
        }
        let ending = self.interest == Interest::End && self.encoder.is_some();
        let pending = self.pending.pending();
        if pending.is_empty() && !ending {
            return false;
        }
        let max = io.engine.peer_settings().max_frame_size as usize;
        let len = pending.len().min(max);
        let last = len == pending.len();
        let end = ending && last;
        let sent = match io
            .engine
            .send_data(self.id, &pending[..len], end, &mut io.out.buf)
        {
            Ok(n) => n,
            Err(_) => {
                self.ended = true;
                return false;
            }
        };
        self.pending.advance(sent);
        if end && sent == len {
            self.ended = true;
        }
        if self.pending.is_empty() {
            io.ctx
                .pool
                .release(&mut ReadBuf::default(), &mut self.pending);
        }
        sent > 0 || self.ended
    }

    /// `Next::end()` after the head: the rest of the body, then
    /// END_STREAM; done once it is out.
    fn step_end<F>(&mut self, io: &mut Io<'_, '_, F>) -> Step {
        if self
            .encoder
            .and_then(|e| e.remaining())
            .is_some_and(|n| n > 0)
        {
            // Shorter than its content-length: only a reset tells.
            io.engine
                .reset(self.id, ErrorCode::INTERNAL_ERROR, &mut io.out.buf);
            return Step::Done;
        }
        while !self.ended {
            if !self.send_pending(io) {
                return Step::Idle;
            }
        }
        Step::Done
    }
}
