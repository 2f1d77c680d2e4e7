//! The event loop: `Poll`, the slab of connections, accepting, readiness,
//! deadlines and wake-ups. All socket I/O of the server happens here.
//!
//! mio is edge-triggered: a readiness event is reported once, so each
//! connection remembers whether it may still read or write and does so
//! until `WouldBlock`. Nothing here recurses: a connection is run by a loop
//! that asks [`Conn::advance`] for its next need until it cannot progress.

use std::io;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Clock, Conn, Ctx, Want};
use super::{Handler, HandlerFactory, Settings};
use crate::buf::BufPool;
use crate::control::{Lease, LoopHandle, Shared};
use crate::guard::guard;
use crate::proto::date::DateCache;
use crate::sock::{self, Readiness};
use crate::timer::{after, Timers};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// Reads one connection may do in one turn before the others get theirs
/// (16 KiB each with the default head size).
const READS_PER_TURN: usize = 32;

/// Connections accepted in one turn at most: a backlog of thousands is
/// taken over several turns, with the connections already open served in
/// between.
const ACCEPTS_PER_TURN: usize = 256;

/// How long to wait before accepting again after the process ran out of
/// file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection and its socket's readiness.
struct Entry<H> {
    sock: TcpStream,
    conn: Conn<H>,
    /// What is known of the socket's readiness.
    ready: Readiness,
    /// In `rerun`: it used up its share of a turn and runs again at the
    /// end of it. Once only, however many events it gets meanwhile.
    queued: bool,
}

pub(crate) struct EventLoop<F: HandlerFactory> {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Entry<F::Output>>,
    factory: F,
    shared: &'static Shared,
    settings: Settings,
    date: DateCache,
    /// This turn's time and the deadlines it gives.
    clock: Clock,
    pool: BufPool,
    timers: Timers,
    /// Connections that yielded and run again after this turn.
    rerun: Vec<usize>,
    /// Deadlines being fired this turn (kept for its capacity).
    due: Vec<(Instant, usize)>,
    /// The listener is readable, or a slot came free while paused: accept
    /// at the end of this turn.
    accept_ready: bool,
    /// Accepting is paused (connection limit, or out of descriptors until
    /// the given time).
    accept_paused: Option<Option<Instant>>,
    /// Shutting down: `Some(deadline)`, where `None` inside means the
    /// grace period never ends.
    shutdown_at: Option<Option<Instant>>,
    /// This loop's hold on `shared`; last, so it is given back after the
    /// connections are gone.
    lease: Lease,
}

/// What a loop is made of before it runs: everything here is `Send`, so
/// it can be built on the caller's thread (which needs the bound address
/// and the `Shared` handle) and the loop itself on its own (handlers need
/// not be `Send`).
pub(crate) struct Parts<F> {
    poll: Poll,
    listener: TcpListener,
    factory: F,
    lease: Lease,
    settings: Settings,
}

impl<F: HandlerFactory> Parts<F> {
    pub(crate) fn new(
        mut listener: TcpListener,
        factory: F,
        settings: Settings,
    ) -> io::Result<Parts<F>> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let lease = Lease::take(waker, settings.max_connections);
        Ok(Parts {
            poll,
            listener,
            factory,
            lease,
            settings,
        })
    }

    /// The handle that shuts this loop down.
    pub(crate) fn handle(&self) -> LoopHandle {
        self.lease.handle()
    }

    /// Runs the loop on this thread until it shuts down.
    pub(crate) fn run(self) -> io::Result<()> {
        let settings = self.settings;
        // Write buffers well past the high-water mark (a large response
        // given whole) are freed when done, not kept for the next Hello;
        // one that grew a little past it while streaming is kept.
        let pool = BufPool::new(settings.max_head_size, 2 * settings.write_high_water, 1024);
        let clock = Clock::new(Instant::now(), &settings);
        EventLoop {
            poll: self.poll,
            listener: Some(self.listener),
            conns: Slab::new(),
            factory: self.factory,
            shared: self.lease.shared(),
            lease: self.lease,
            settings,
            date: DateCache::new(),
            clock,
            pool,
            timers: Timers::default(),
            rerun: Vec::with_capacity(64),
            due: Vec::with_capacity(64),
            accept_ready: false,
            accept_paused: None,
            shutdown_at: None,
        }
        .run()
    }
}

/// How running a connection ended.
enum Outcome {
    /// Waiting for an event, a wake-up or a deadline.
    Parked,
    /// Served its share this turn: run it again after the others.
    Yielded,
    /// Drop it.
    Remove,
    /// Drop it, telling the handler why.
    Failed(io::Error),
}

impl<F: HandlerFactory> EventLoop<F> {
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut rerun = Vec::with_capacity(64);
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.date.refresh(now);
            self.clock = Clock::new(now, &self.settings);
            for event in events.iter() {
                match event.token() {
                    // Accepted after the batch: a connection accepted now
                    // could take the slot of one removed earlier in the
                    // batch, and a later event of the old one hit it.
                    LISTENER => self.accept_ready = true,
                    WAKER => self.on_wake(now),
                    Token(key) => {
                        let Some(entry) = self.conns.get_mut(key) else {
                            continue;
                        };
                        entry.ready.update(event);
                        if event.is_error() || event.is_write_closed() {
                            // Reset, or both directions closed: in whatever
                            // state, the connection is over.
                            let err = entry
                                .sock
                                .take_error()
                                .ok()
                                .flatten()
                                .unwrap_or_else(|| io::ErrorKind::ConnectionReset.into());
                            self.abort(key, err, now);
                            continue;
                        }
                        self.run_conn(key, now);
                    }
                }
            }
            std::mem::swap(&mut rerun, &mut self.rerun);
            for key in rerun.drain(..) {
                if let Some(entry) = self.conns.get_mut(key) {
                    entry.queued = false;
                }
                self.run_conn(key, now);
            }
            self.expire(now);
            if let Some(Some(at)) = self.accept_paused {
                self.accept_ready |= at <= now;
            }
            if std::mem::take(&mut self.accept_ready) {
                self.accept(now);
            }
            if let Some(deadline) = self.shutdown_at {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if deadline.is_some_and(|at| at <= now) {
                    self.force_close(now);
                    return Ok(());
                }
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.rerun.is_empty() || self.accept_ready {
            return Some(Duration::ZERO);
        }
        let accept_retry = self.accept_paused.flatten();
        [self.timers.next(), self.shutdown_at.flatten(), accept_retry]
            .into_iter()
            .flatten()
            .min()
            // Round up so that we do not wake just before a deadline.
            .map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn ctx(&mut self, now: Instant) -> (&mut Slab<Entry<F::Output>>, Ctx<'_, F>) {
        debug_assert_eq!(self.clock.now, now, "the clock is set once per turn");
        let ctx = Ctx {
            factory: &mut self.factory,
            shared: self.shared,
            settings: &self.settings,
            date: &self.date,
            pool: &mut self.pool,
            timers: &mut self.timers,
            clock: &self.clock,
            shutting_down: self.shutdown_at.is_some(),
        };
        (&mut self.conns, ctx)
    }

    fn accept(&mut self, now: Instant) {
        self.accept_paused = None;
        let Some(listener) = &self.listener else {
            return;
        };
        for _ in 0..ACCEPTS_PER_TURN {
            if self.conns.len() >= self.settings.max_connections {
                self.accept_paused = Some(None);
                return;
            }
            let mut sock = match listener.accept() {
                Ok((sock, _)) => sock,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient_accept_error(&e) => continue,
                Err(_) => {
                    // Out of descriptors or memory: the pending connections
                    // stay in the backlog; try again shortly.
                    self.accept_paused = Some(Some(now + ACCEPT_BACKOFF));
                    return;
                }
            };
            let _ = sock.set_nodelay(true);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if self
                .poll
                .registry()
                .register(
                    &mut sock,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                continue;
            }
            entry.insert(Entry {
                sock,
                conn: Conn::new(key, &mut self.timers, &self.clock),
                ready: Readiness::connected(),
                queued: false,
            });
        }
        // The share of this turn is used, the backlog maybe not: the
        // listener's readiness will not be reported again, so go on next
        // turn (without waiting in `poll`).
        self.accept_ready = true;
    }

    fn on_wake(&mut self, now: Instant) {
        self.shared.clear_woken();
        // Here, not wherever the flag is seen first: a request sent before
        // `shutdown()` has its readiness in this batch or an earlier one,
        // ahead of this wake-up, so its connection is busy by now.
        if self.lease.shutdown_requested() && self.shutdown_at.is_none() {
            self.begin_shutdown(now);
        }
        // Only the wakes queued by now: one that a callback below sends has
        // set the waker again and is taken next turn, after the other
        // events — a handler that wakes itself cannot keep the loop.
        for _ in 0..self.lease.wakes().len() {
            let Ok(wake) = self.lease.wakes().try_recv() else {
                break;
            };
            if !self.shared.is_current(wake.key, wake.generation) {
                continue;
            }
            let (conns, mut ctx) = self.ctx(now);
            let Some(entry) = conns.get_mut(wake.key) else {
                continue;
            };
            entry.conn.wake(wake.next, &mut ctx);
            // Not one already queued to run again this turn: wakes sent to
            // a busy exchange (a producer waking it per item) must not buy
            // it more shares. Any other may have work now (a handler
            // parked in `read_and_write()` with nothing written yet).
            if !entry.queued {
                self.run_conn(wake.key, now);
            }
        }
    }

    fn begin_shutdown(&mut self, now: Instant) {
        self.shutdown_at = Some(after(now, self.settings.shutdown_grace));
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, e)| e.conn.is_idle())
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            self.remove(key);
        }
    }

    /// The grace period is over: every connection left is closed.
    fn force_close(&mut self, now: Instant) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.conns[key].conn.on_shutdown_deadline();
            let _ = now;
            self.remove(key);
        }
    }

    /// Fires the deadlines due at `now`. Only what was due when the pass
    /// began: a deadline re-armed while firing (a zero timeout set from
    /// `on_error`) waits for the next turn, so this always ends.
    fn expire(&mut self, now: Instant) {
        if self.timers.len() > 2 * self.conns.len() + 1024 {
            // Mostly entries of connections gone (long timeouts, much churn).
            let conns = &self.conns;
            self.timers
                .drop_stale(|at, key| conns.get(key).is_some_and(|e| e.conn.deadline.owns(at)));
        }
        let mut due = std::mem::take(&mut self.due);
        while let Some(entry) = self.timers.pop_due(now) {
            due.push(entry);
        }
        for (at, key) in due.drain(..) {
            let (conns, mut ctx) = self.ctx(now);
            let Some(entry) = conns.get_mut(key) else {
                continue;
            };
            if !ctx.timers.fires(at, now, key, &mut entry.conn.deadline) {
                continue;
            }
            match entry.conn.on_deadline(&mut ctx) {
                Some(Want::Remove) => self.remove(key),
                _ => self.run_conn(key, now),
            }
        }
        self.due = due;
    }

    /// The peer reset the connection (or an I/O error): tell the handler,
    /// then drop the connection.
    fn abort(&mut self, key: usize, err: io::Error, _now: Instant) {
        if let Some(entry) = self.conns.get_mut(key) {
            entry.conn.on_io_error(err);
        }
        self.remove(key);
    }

    /// Drops a connection; a handler still owning it gets the socket.
    fn remove(&mut self, key: usize) {
        let Some(mut entry) = self.conns.try_remove(key) else {
            return;
        };
        entry.conn.rbuf.clear();
        entry.conn.wbuf.clear();
        self.pool
            .release(&mut entry.conn.rbuf, &mut entry.conn.wbuf);
        if let Some(handler) = entry.conn.remove(self.shared) {
            let _ = self.poll.registry().deregister(&mut entry.sock);
            let sock = entry.sock;
            let _ = guard(move || handler.on_remove(sock));
        }
        if self.accept_paused == Some(None) {
            // At the end of this turn (see `run`).
            self.accept_ready = true;
        }
    }

    /// Runs one connection until it cannot progress without an event.
    fn run_conn(&mut self, key: usize, now: Instant) {
        let high_water = self.settings.write_high_water;
        let (conns, mut ctx) = self.ctx(now);
        let Some(entry) = conns.get_mut(key) else {
            return;
        };
        entry.conn.start_turn();
        let mut reads = 0;
        let outcome = loop {
            let want = entry.conn.advance(&mut ctx);
            if !entry.conn.wbuf.is_empty() && entry.ready.writable {
                match sock::flush(&mut entry.sock, &mut entry.conn.wbuf, &mut entry.ready) {
                    Ok(0) => {}
                    Ok(_) => entry.conn.on_written(&mut ctx),
                    Err(e) => break Outcome::Failed(e),
                }
            }
            match want {
                Want::Read => match fill(entry, ctx.pool) {
                    Ok(true) => {
                        entry.conn.on_read(&mut ctx);
                        reads += 1;
                        if reads == READS_PER_TURN {
                            // A client sending as fast as we read would
                            // otherwise keep the loop to itself.
                            break Outcome::Yielded;
                        }
                        continue;
                    }
                    Ok(false) => break Outcome::Parked,
                    Err(e) => break Outcome::Failed(e),
                },
                Want::Flush if entry.conn.wbuf.len() < high_water => continue,
                Want::Flush | Want::Idle => break Outcome::Parked,
                Want::Yield => break Outcome::Yielded,
                Want::Close if entry.conn.wbuf.is_empty() => {
                    let _ = entry.sock.shutdown(Shutdown::Write);
                    entry.conn.start_linger(&mut ctx);
                }
                Want::Close => break Outcome::Parked,
                Want::Discard => match discard(entry, ctx.pool) {
                    Ok(true) => break Outcome::Remove,
                    // Its share of reads is used up: more after the others.
                    Ok(false) if entry.ready.readable => break Outcome::Yielded,
                    Ok(false) => break Outcome::Parked,
                    Err(e) => break Outcome::Failed(e),
                },
                Want::Remove => break Outcome::Remove,
            }
        };
        match outcome {
            Outcome::Parked => ctx.pool.release(&mut entry.conn.rbuf, &mut entry.conn.wbuf),
            Outcome::Yielded => {
                ctx.pool.release(&mut entry.conn.rbuf, &mut entry.conn.wbuf);
                if !std::mem::replace(&mut entry.queued, true) {
                    self.rerun.push(key);
                }
            }
            Outcome::Remove => self.remove(key),
            Outcome::Failed(e) => self.abort(key, e, now),
        }
    }
}

/// Reads once into the connection's buffer (see [`sock::fill`]).
fn fill<H>(entry: &mut Entry<H>, pool: &mut BufPool) -> io::Result<bool> {
    let conn = &mut entry.conn;
    sock::fill(
        &mut entry.sock,
        &mut conn.rbuf,
        pool,
        &mut entry.ready,
        &mut conn.input_closed,
    )
}

/// Lingering close: reads and throws away input, at most
/// [`READS_PER_TURN`] reads. `Ok(true)` once the peer has closed.
fn discard<H: Handler>(entry: &mut Entry<H>, pool: &mut BufPool) -> io::Result<bool> {
    for _ in 0..READS_PER_TURN {
        if entry.conn.input_closed {
            return Ok(true);
        }
        if !fill(entry, pool)? {
            return Ok(false);
        }
        let n = entry.conn.rbuf.len();
        entry.conn.rbuf.consume(n);
    }
    Ok(entry.conn.input_closed)
}

/// Accept errors that concern only the connection being accepted.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}
