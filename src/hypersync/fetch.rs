//! The loop side of one blocking client call: [`Fetch`], the native
//! [`Handler`] that sends the request and moves the response to the
//! calling thread, the [`Link`] they share, and [`pump`], which streams a
//! request body from an `io::Read` on a thread of its own.
//!
//! The response body goes through a bounded channel of chunks: the fetch
//! reads from the connection only while the channel has room and parks
//! ([`Next::wait()`]) when it is full; the reader wakes it with
//! [`Control::ready`] after taking a chunk. A streamed request body comes
//! the other way the same way. One `parked` bit serves both directions:
//! whoever makes progress possible takes it and wakes the fetch, which then
//! looks at both sides.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::client::CHUNK;
use super::Chunk;
use crate::client::{self, Error, Handler};
use crate::{Control, Detached, Interest, Next, Version};
use crate::{Decoder, Encoder};

/// Feeds a streamed body to the fetch, chunk by chunk, until the reader
/// ends or fails, the exchange ends (the channel closes) or the deadline
/// passes. Runs on a thread of its own.
pub(super) fn pump(
    mut reader: Box<dyn Read + Send>,
    chunks: Sender<Vec<u8>>,
    link: &Link,
    deadline: Option<Instant>,
) {
    let feed = Feed {
        chunks: Some(chunks),
        link,
    };
    let chunks = feed.chunks.as_ref().expect("set above");
    while !link.cancelled.load(SeqCst) {
        let mut chunk = vec![0u8; CHUNK];
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // The fetch closes the connection when the channel closes
                // with this set: a part of a body is not a body.
                link.error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(Error::Io(e));
                link.body_failed.store(true, SeqCst);
                break;
            }
        };
        chunk.truncate(n);
        let sent = match deadline {
            Some(at) => chunks.send_deadline(chunk, at).map_err(|_| ()),
            None => chunks.send(chunk).map_err(|_| ()),
        };
        if sent.is_err() {
            // The exchange is over, or out of time: the caller learns it
            // from the response channel.
            break;
        }
        link.unpark();
    }
}

/// The pumping thread's end of a streamed body: dropped (however `pump`
/// ends, a panic in the reader included), it closes the channel, then
/// tells the fetch.
struct Feed<'a> {
    chunks: Option<Sender<Vec<u8>>>,
    link: &'a Link,
}

impl Drop for Feed<'_> {
    fn drop(&mut self) {
        self.chunks.take();
        self.link.body_ended.store(true, SeqCst);
        self.link.unpark();
    }
}

/// What travels from the loop to the calling thread.
pub(super) enum Msg {
    Head(Head),
    Data(Vec<u8>),
    End,
}

/// A response head, owned.
pub(super) struct Head {
    pub status: u16,
    pub reason: String,
    pub version: Version,
    pub content_length: Option<u64>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The connection left HTTP (see [`client::Response::upgraded`]).
    pub upgraded: bool,
}

/// Shared by a `Fetch` on the loop and its `ClientResponse`.
#[derive(Default)]
pub(super) struct Link {
    /// The exchange's `Control`, from `on_request`.
    pub control: OnceLock<Control>,
    /// The fetch returned `Next::wait()` and nobody has woken it yet.
    pub parked: AtomicBool,
    /// The response was dropped (or timed out): stop.
    pub cancelled: AtomicBool,
    /// Reading a streamed body failed: give the exchange up.
    pub body_failed: AtomicBool,
    /// The calling thread has sent all it will of a streamed body.
    pub body_ended: AtomicBool,
    /// The whole body was read (even if `End` did not fit in the channel).
    pub complete: AtomicBool,
    /// Why the exchange failed.
    pub error: Mutex<Option<Error>>,
}

impl Link {
    /// Wakes the fetch if it is parked (the reader made room or left, or
    /// the body's writer gave it a chunk or the end).
    pub(super) fn unpark(&self) {
        if self.parked.swap(false, SeqCst) {
            if let Some(control) = self.control.get() {
                // The fetch looks at both sides (once the request is
                // done, the client takes this as `read`). Gone: the
                // exchange ended; the channel says how.
                let _ = control.ready(Next::read_and_write());
            }
        }
    }

    /// The caller has given up on the exchange.
    pub(super) fn cancel(&self) {
        self.cancelled.store(true, SeqCst);
        self.unpark();
    }

    pub(super) fn take_error(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The native handler behind one blocking call.
pub(super) struct Fetch {
    pub method: String,
    /// The request target, if not the URL's (a CONNECT's `host:port`).
    pub target: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Out,
    pub tx: Sender<Msg>,
    pub link: Arc<Link>,
    /// The end of the whole exchange (`RequestBuilder::timeout`).
    pub deadline: Option<Instant>,
    /// The response head went to the caller: the body is being read.
    pub head_taken: bool,
    /// `RequestBuilder::upgrade`: where the connection goes if the server
    /// switches (it leaves the loop through `on_remove`).
    pub upgrade: Option<Sender<Detached>>,
    /// The server switched and the connection is being handed over.
    pub switched: bool,
}

/// The request body, loop side.
pub(super) enum Out {
    /// Given whole; how much is written.
    Bytes(Vec<u8>, usize),
    /// Streamed by `pump`.
    Stream {
        /// From the pumping thread; closed at the end.
        chunks: Receiver<Vec<u8>>,
        /// The one being written.
        chunk: Chunk,
        /// The declared length.
        len: Option<u64>,
        /// Some of it was taken: it cannot be sent again.
        taken: bool,
        /// All of it was written.
        done: bool,
    },
}

impl Fetch {
    /// Can a side waiting on another thread go on: the response's reader
    /// made room, or the body's writer gave a chunk (or the end) where
    /// none was left to write? (A chunk still being written waits for the
    /// socket, not for a thread.)
    fn can_go(&self) -> bool {
        let room = self.head_taken && !self.tx.is_full();
        let chunk = match &self.body {
            Out::Stream {
                chunks,
                chunk,
                done,
                ..
            } => {
                !done
                    && chunk.is_empty()
                    && (!chunks.is_empty() || self.link.body_ended.load(SeqCst))
            }
            Out::Bytes(..) => false,
        };
        room || chunk || self.link.cancelled.load(SeqCst)
    }

    /// Is a body chunk (or the body's end) there to take?
    fn chunk_ready(&self) -> bool {
        match &self.body {
            Out::Stream { chunks, .. } => !chunks.is_empty() || self.link.body_ended.load(SeqCst),
            Out::Bytes(..) => false,
        }
    }

    /// Parks until [`can_go`](Self::can_go), looking once more after
    /// parking so that what happened in between is not missed.
    fn park(&self) -> Option<Next> {
        self.link.parked.store(true, SeqCst);
        let go_on = self.can_go();
        if go_on && self.link.parked.swap(false, SeqCst) {
            return None;
        }
        // Either still nothing, or the other side took the parked bit and
        // a wake-up is on its way.
        Some(Next::wait())
    }

    /// What to ask for while neither side waits on another thread: the
    /// body still going out, the response coming in, or both at once
    /// (an answer before the whole body: an echo).
    fn wanted(&self) -> Next {
        match (self.sending(), self.head_taken) {
            (true, true) => Next::read_and_write(),
            (true, false) => Next::write(),
            (false, _) => Next::read(),
        }
    }

    /// `next`, bounded by what is left of the exchange's deadline.
    fn bound(&self, next: Next) -> Next {
        match (self.deadline, next.interest()) {
            (_, Interest::End | Interest::Remove) | (None, _) => next,
            (Some(at), _) => {
                let left = at.saturating_duration_since(Instant::now());
                next.timeout(next.timeout_duration().map_or(left, |d| d.min(left)))
            }
        }
    }

    fn start(&mut self, req: &mut client::Request<'_>) -> Next {
        let _ = self.link.control.set(req.control());
        self.head_taken = false;
        req.set_method(&self.method);
        if let Some(target) = &self.target {
            req.set_target(target);
        }
        for (name, value) in &self.headers {
            req.header(name, value);
        }
        match &mut self.body {
            Out::Bytes(body, _) if body.is_empty() => Next::read(),
            Out::Bytes(body, pos) => {
                *pos = 0;
                req.set_content_length(body.len() as u64);
                Next::write()
            }
            // Sent again (a retry) after some of it went: it is gone.
            Out::Stream { taken: true, .. } => {
                self.fail(Error::Closed);
                Next::remove()
            }
            Out::Stream { len, .. } => {
                if let Some(len) = *len {
                    req.set_content_length(len);
                }
                Next::write()
            }
        }
    }

    fn write_body(&mut self, out: &mut Encoder<'_>) -> Next {
        loop {
            if self.link.cancelled.load(SeqCst) {
                // Nobody waits for the answer any more.
                return Next::remove();
            }
            let written = match &mut self.body {
                Out::Bytes(body, pos) => {
                    while *pos < body.len() {
                        match out.write(&body[*pos..]) {
                            Ok(n) => *pos += n,
                            Err(e) => return self.write_failed(e),
                        }
                    }
                    return Next::read();
                }
                Out::Stream {
                    chunks,
                    chunk,
                    taken,
                    done,
                    ..
                } => {
                    if !chunk.is_empty() {
                        chunk.write_to(out)
                    } else {
                        match chunks.try_recv() {
                            Ok(bytes) => {
                                *chunk = Chunk::new(bytes);
                                *taken = true;
                                continue;
                            }
                            Err(TryRecvError::Disconnected) => {
                                if self.link.body_failed.load(SeqCst) {
                                    return Next::remove();
                                }
                                // The whole body (shorter than declared:
                                // the client closes the connection).
                                *done = true;
                                return Next::read();
                            }
                            Err(TryRecvError::Empty) => {
                                if let Some(next) = self.park() {
                                    return next;
                                }
                                if self.can_go() && !self.chunk_ready() {
                                    // The response's side can go, not this one.
                                    return self.wanted();
                                }
                                continue;
                            }
                        }
                    }
                }
            };
            if let Err(e) = written {
                return self.write_failed(e);
            }
        }
    }

    /// Writing the body failed: wait for room (`WouldBlock`), or give up
    /// (longer than its declared length).
    fn write_failed(&mut self, e: io::Error) -> Next {
        if e.kind() == io::ErrorKind::WouldBlock {
            return self.wanted();
        }
        if matches!(self.body, Out::Stream { .. }) {
            self.fail(Error::Io(e));
        }
        Next::remove()
    }

    /// Is some of the request body still to be written?
    fn sending(&self) -> bool {
        match &self.body {
            Out::Bytes(body, pos) => *pos < body.len(),
            Out::Stream { done, .. } => !done,
        }
    }

    fn fail(&self, err: Error) {
        *self.link.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
    }
}

impl Handler for Fetch {
    fn on_request(&mut self, req: &mut client::Request<'_>) -> Next {
        let next = self.start(req);
        self.bound(next)
    }

    fn on_request_writable(&mut self, body: &mut Encoder<'_>) -> Next {
        let next = self.write_body(body);
        self.bound(next)
    }

    fn on_response(&mut self, res: client::Response<'_>) -> Next {
        let next = self.take_head(res);
        self.bound(next)
    }

    fn on_response_readable(&mut self, body: &mut Decoder<'_>) -> Next {
        let next = self.read_body(body);
        self.bound(next)
    }

    fn on_error(&mut self, err: Error) -> Next {
        self.fail(err);
        Next::remove()
    }

    /// Only after a switch does the connection go to the caller; any
    /// other `Next::remove()` (a failure, a cancel) just closes it.
    fn on_remove(self, conn: Detached) {
        if let (true, Some(upgrade)) = (self.switched, &self.upgrade) {
            let _ = upgrade.send(conn);
        }
    }
}

impl Fetch {
    fn take_head(&mut self, res: client::Response<'_>) -> Next {
        let head = Head {
            status: res.status(),
            reason: res.reason().to_string(),
            version: res.version(),
            content_length: res.body_length(),
            headers: res
                .headers()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            upgraded: res.upgraded(),
        };
        if head.upgraded && self.upgrade.is_some() {
            // The head, an empty body, and the connection handed over.
            self.switched = true;
            self.link.complete.store(true, SeqCst);
            let _ = self.tx.try_send(Msg::Head(head));
            let _ = self.tx.try_send(Msg::End);
            return Next::remove();
        }
        // The channel is empty: the head always fits. If the caller is
        // gone, there is nobody to read the body.
        match self.tx.try_send(Msg::Head(head)) {
            Ok(()) => {
                self.head_taken = true;
                self.wanted()
            }
            Err(_) => Next::end(),
        }
    }

    fn read_body(&mut self, body: &mut Decoder<'_>) -> Next {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if self.link.cancelled.load(SeqCst) {
                return Next::end();
            }
            if self.tx.is_full() {
                match self.park() {
                    Some(next) => return next,
                    // The body's side can go, not this one.
                    None if self.tx.is_full() && !self.link.cancelled.load(SeqCst) => {
                        return self.wanted()
                    }
                    None => continue,
                }
            }
            // Only what can be sent is taken off the connection.
            let mut chunk = Vec::new();
            let mut next = None;
            while chunk.len() < CHUNK {
                let room = buf.len().min(CHUNK - chunk.len());
                match body.read(&mut buf[..room]) {
                    Ok(0) => {
                        self.link.complete.store(true, SeqCst);
                        next = Some(Next::end());
                        break;
                    }
                    Ok(n) => chunk.extend_from_slice(&buf[..n]),
                    // WouldBlock: wait for more. Anything else: the
                    // connection reports it through `on_error`.
                    Err(_) => {
                        next = Some(self.wanted());
                        break;
                    }
                }
            }
            if !chunk.is_empty() && self.tx.try_send(Msg::Data(chunk)).is_err() {
                // Not full (only we send): the reader is gone.
                return Next::end();
            }
            if let Some(next) = next {
                if self.link.complete.load(SeqCst) {
                    // If the channel is full, the reader learns the end
                    // from `complete` once this handler is gone.
                    let _ = self.tx.try_send(Msg::End);
                }
                return next;
            }
        }
    }
}
