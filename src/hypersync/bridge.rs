//! [`Bridge`]: the native [`Handler`] that stands in for a blocking
//! handler on the event loop. It copies the head into an owned
//! [`Request`], hands the exchange to a worker (the pool's queue, or the
//! pull-mode queue), then only moves bytes: body chunks to the worker as it
//! reads them, the response head and body chunks back to the connection.
//! It never blocks: every channel operation here is a `try_`.
//!
//! Protocol work — 100-continue, draining an unread body, HEAD and 204
//! bodies, framing, keep-alive — stays with the core. When to wake whom is
//! in [`link`](super::link).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::link::{InputEnd, Link};
use super::pool::Job;
use super::response::{Out, CHUNK};
use super::{Request, Response};
use crate::server::{self, Handler};
use crate::{Control, Decoder, Detached, Encoder, Error, Next};

/// Body chunks in flight from the loop to a worker, at most. A chunk is at
/// most [`CHUNK`] bytes (and no more than the read buffer holds).
const IN_CHUNKS: usize = 2;
/// Response chunks in flight from a worker to the loop, at most.
const OUT_CHUNKS: usize = 2;
/// While parked on the socket to read the body, the bridge looks at its
/// output this often (see [`Bridge::read_next`]).
const READ_POLL: Duration = Duration::from_millis(100);

/// Where a bridge sends its exchange.
#[derive(Clone)]
pub(crate) enum Dispatch {
    /// Push mode: a job for the pool.
    Pool(Sender<Job>),
    /// Pull mode: a request for [`Incoming`](super::Incoming).
    Pull(Sender<Request>),
}

/// One exchange, loop side.
pub(crate) struct Bridge {
    /// Until `on_request`.
    control: Option<Control>,
    dispatch: Dispatch,
    /// After `on_request`, unless the exchange could not be queued.
    ex: Option<Linked>,
    /// The server's `io_timeout`: how long a body may stall.
    stall: Duration,
    /// The last `Next` was [`read_next`](Bridge::read_next): a timeout is
    /// our own poll, not the server's `io_timeout`.
    polling: bool,
    /// Since when the polls have seen no body byte arrive.
    quiet_since: Option<Instant>,
}

/// The loop's ends of an exchange's channels.
struct Linked {
    link: Arc<Link>,
    /// Body chunks to the worker; `None` once the body has ended.
    input: Option<Sender<Vec<u8>>>,
    output: Receiver<Out>,
    /// Told when the whole response has been taken.
    taken: Sender<()>,
    /// Told when its last byte is written (if the worker asked).
    sent: Sender<Instant>,
    /// A body chunk being written, from `pos`.
    pending: Vec<u8>,
    pos: usize,
    /// Where the connection goes after a switch (an upgrade request that
    /// can leave the loop).
    handoff: Option<Sender<Detached>>,
    /// The switching head is written: the connection goes to the worker.
    switched: bool,
}

impl Bridge {
    pub(crate) fn new(control: Control, dispatch: Dispatch, stall: Duration) -> Bridge {
        Bridge {
            control: Some(control),
            dispatch,
            ex: None,
            stall,
            polling: false,
            quiet_since: None,
        }
    }

    /// What to do now that a callback is done: write output if there is
    /// some, read body if the worker waits for it, else park until the
    /// worker wakes us (checking again after parking, so that nothing sent
    /// in between is missed).
    fn next(&mut self) -> Next {
        let next = self.decide();
        self.polling = next == Bridge::read_next();
        next
    }

    fn decide(&mut self) -> Next {
        let Some(ex) = &mut self.ex else {
            // Rejected: answer at once.
            return Next::write();
        };
        if let Some(next) = ex.ready() {
            return next;
        }
        ex.link.park();
        match ex.ready() {
            Some(next) if ex.link.unpark() => next,
            // The worker always wakes us, even when its handler panics
            // (the `Response`'s drop): a handler may take longer than the
            // server's io timeout.
            _ => Next::wait_forever(),
        }
    }
}

impl Linked {
    /// Something to do without the worker's help?
    fn ready(&self) -> Option<Next> {
        if self.pos < self.pending.len() || !self.output.is_empty() {
            // Before the head this is the head: `on_response` takes it.
            return Some(Next::write());
        }
        let input = self.input.as_ref()?;
        (input.is_empty() && self.link.worker_waiting()).then(Bridge::read_next)
    }

    /// Moves what the connection has of the body into one chunk for the
    /// worker, if it has room for one. `true` if the body moved on (bytes,
    /// or its end).
    fn read_body(&mut self, body: &mut Decoder<'_>) -> bool {
        let Some(input) = &self.input else {
            return false;
        };
        if body.is_eof() {
            self.close_input(InputEnd::Complete);
            return true;
        }
        if input.is_full() {
            return false;
        }
        let mut chunk = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut end = None;
        while chunk.len() < CHUNK {
            let room = buf.len().min(CHUNK - chunk.len());
            match body.read(&mut buf[..room]) {
                Ok(0) => end = Some(InputEnd::Complete),
                Ok(n) => {
                    chunk.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) => {
                    end = match e.kind() {
                        io::ErrorKind::WouldBlock => None,
                        io::ErrorKind::InvalidData => Some(InputEnd::Malformed),
                        io::ErrorKind::UnexpectedEof => Some(InputEnd::CutShort),
                        _ => Some(InputEnd::Gone),
                    }
                }
            }
            break;
        }
        if body.is_eof() {
            end = Some(InputEnd::Complete);
        }
        let moved = !chunk.is_empty() || end.is_some();
        if !chunk.is_empty() && input.try_send(chunk).is_err() {
            // Not full (we checked, and only we send): the worker dropped
            // the request. Stop reading; the core deals with the rest.
            end = end.or(Some(InputEnd::Gone));
        }
        if let Some(end) = end {
            self.close_input(end);
        }
        moved
    }

    fn close_input(&mut self, end: InputEnd) {
        if let Some(input) = self.input.take() {
            // Why first, then the disconnect: a worker that sees the channel
            // closed reads why at once. (`if self.input.take().is_some()`
            // dropped the sender before this line, and a worker could take
            // a body cut off by the connection's end for a complete one.)
            self.link.close_input(end);
            drop(input);
        }
    }

    /// Tells a worker waiting in `Response::finish` that all is taken.
    fn ack(&self) {
        let _ = self.taken.try_send(());
    }
}

impl Bridge {
    /// Reading the body parks the exchange on the socket, where the core
    /// holds back `Control::ready` until input arrives. A worker blocked
    /// on the body cannot write meanwhile — unless it writes the response
    /// from another thread; the timeout bounds how long such output waits.
    fn read_next() -> Next {
        Next::read().timeout(READ_POLL)
    }

    fn reject(res: &mut server::Response<'_>) -> Next {
        res.set_status(503)
            .header("Retry-After", "1")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(b"Service Unavailable: all workers are busy\n");
        Next::end()
    }
}

impl Handler for Bridge {
    fn on_request(&mut self, req: server::Request<'_>) -> Next {
        let Some(control) = self.control.take() else {
            return Next::remove();
        };
        let link = Arc::new(Link::new(control));
        let (input, chunks) = if req.has_body() {
            let (tx, rx) = crossbeam_channel::bounded(IN_CHUNKS);
            (Some(tx), Some(rx))
        } else {
            link.close_input(InputEnd::Complete);
            (None, None)
        };
        let (out_tx, output) = crossbeam_channel::bounded(OUT_CHUNKS);
        let (taken, taken_rx) = crossbeam_channel::bounded(1);
        let (sent, sent_rx) = crossbeam_channel::bounded(1);
        let request = Request::new(&req, chunks, Arc::clone(&link));
        let head = req.method() == "HEAD";
        let (handoff, handoff_rx) = match req.switch() {
            Some(_) if can_leave(&req) => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        let response = Response::new(Arc::clone(&link), out_tx, taken_rx, sent_rx, head)
            .may_switch(req.switch(), handoff_rx);
        let queued = match &self.dispatch {
            Dispatch::Pool(jobs) => match jobs.try_send(Job { request, response }) {
                Ok(()) => true,
                Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                    let Job {
                        mut request,
                        mut response,
                    } = job;
                    response.defuse();
                    request.defuse();
                    false
                }
            },
            Dispatch::Pull(queue) => match queue.try_send(request.with_reply(response)) {
                Ok(()) => true,
                Err(TrySendError::Full(mut r) | TrySendError::Disconnected(mut r)) => {
                    r.defuse();
                    false
                }
            },
        };
        if queued {
            self.ex = Some(Linked {
                link,
                input,
                output,
                taken,
                sent,
                pending: Vec::new(),
                pos: 0,
                handoff,
                switched: false,
            });
        }
        self.next()
    }

    fn on_request_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        if self.ex.as_mut().is_some_and(|ex| ex.read_body(body)) {
            self.quiet_since = None;
        }
        self.next()
    }

    fn on_response(&mut self, res: &mut server::Response<'_>) -> Next {
        let Some(ex) = &mut self.ex else {
            return Bridge::reject(res);
        };
        match ex.output.try_recv() {
            Ok(Out::Whole(head, body)) => {
                head.apply(res, false);
                res.body(&body);
                ex.ack();
                Next::end()
            }
            Ok(Out::Head(head)) => {
                head.apply(res, true);
                self.next()
            }
            Ok(Out::Switch(head)) => {
                head.apply(res, false);
                if res.switches() {
                    // Written first (raw mode: `on_response_writable`),
                    // then handed over.
                    ex.switched = true;
                    Next::write()
                } else {
                    // The worker checked the status against the request;
                    // this is unreachable.
                    res.set_status(500).close();
                    Next::end()
                }
            }
            // `next` asks to write only once the head is queued, and a
            // worker sends the head first; this is unreachable.
            _ => {
                res.set_status(500).close();
                Next::end()
            }
        }
    }

    fn on_response_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let Some(ex) = &mut self.ex else {
            return Next::end();
        };
        if ex.switched {
            // The head is in the write buffer: the core writes it out,
            // then gives the connection to `on_remove`.
            return Next::remove();
        }
        loop {
            if ex.pos < ex.pending.len() {
                match body.write(&ex.pending[ex.pos..]) {
                    Ok(n) => ex.pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::write(),
                    // Longer than its Content-Length: the worker checks
                    // that first, so this does not happen.
                    Err(_) => return Next::remove(),
                }
                continue;
            }
            if !ex.pending.is_empty() {
                ex.pending = Vec::new();
                ex.pos = 0;
            }
            match ex.output.try_recv() {
                Ok(Out::Body(chunk)) => ex.pending = chunk,
                Ok(Out::End) => {
                    ex.ack();
                    return Next::end();
                }
                Err(TryRecvError::Empty) => return self.next(),
                // A panic after the head (or the worker side vanished):
                // only closing tells the client.
                Ok(Out::Abort | Out::Head(_) | Out::Whole(..) | Out::Switch(_))
                | Err(TryRecvError::Disconnected) => return Next::remove(),
            }
        }
    }

    fn on_response_sent(&mut self, at: Instant) {
        if let Some(ex) = &self.ex {
            // Bounded(1), sent once: only a worker gone can refuse it.
            let _ = ex.sent.try_send(at);
        }
    }

    fn on_error(&mut self, err: Error) -> Next {
        match err {
            // The poll of `read_next`: go on, unless the body has not moved
            // for as long as the server lets a transfer stall.
            Error::Timeout if self.polling => {
                let quiet = *self.quiet_since.get_or_insert_with(Instant::now);
                if quiet.elapsed() >= self.stall {
                    Next::remove()
                } else {
                    self.next()
                }
            }
            // The server's `io_timeout`: the client stopped reading our
            // output. Removing the exchange frees its worker.
            _ => Next::remove(),
        }
    }

    /// After a switch: the connection (the bytes behind the request head
    /// in its buffer) goes to the worker waiting in `Response::upgrade`,
    /// with the server's `io_timeout` as its read and write timeouts.
    /// Otherwise it is dropped, closing it.
    fn on_remove(mut self, conn: Detached) {
        let Some(ex) = self.ex.as_mut().filter(|ex| ex.switched) else {
            return;
        };
        let Some(handoff) = ex.handoff.take() else {
            return;
        };
        let timeout = Some(self.stall).filter(|d| !d.is_zero());
        if conn.stream().set_read_timeout(timeout).is_ok()
            && conn.stream().set_write_timeout(timeout).is_ok()
        {
            // Bounded(1), sent once: only a worker gone can refuse it.
            let _ = handoff.try_send(conn);
        }
    }
}

/// Can this request's connection leave the loop for a worker? Not over
/// TLS (the session lives in the loop) nor on a Unix socket (`Detached`
/// holds a TCP stream).
fn can_leave(req: &server::Request<'_>) -> bool {
    #[cfg(feature = "__tls")]
    if req.tls().is_some() {
        return false;
    }
    !req.is_unix()
}

impl Drop for Bridge {
    /// The exchange is over (or the connection gone): a worker still
    /// reading the body learns it from the closed channel.
    fn drop(&mut self) {
        if let Some(ex) = &mut self.ex {
            ex.close_input(InputEnd::Gone);
        }
    }
}
