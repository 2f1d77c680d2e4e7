//! The reactor: one mio `Poll`, the slab of connections, the rerun queue,
//! the drain of wake-ups, deadline expiry, buffer release and removal.
//! The server's and the client's loops are this one, with a [`Role`] that
//! adds what only that side does (accepting, connecting, pools).
//!
//! mio is edge-triggered: an event is reported once, so each transport
//! remembers whether it may still read or write, and
//! [`Core::run_conn`] reads or writes until it would block. Nothing
//! recurses: a connection is run by a loop that asks its machine for the
//! next [`Want`] until it cannot progress; one that used its share of a
//! turn runs again at the end of it.
//!
//! Policy on error and hang-up events, for both roles: they never discard
//! input. The transport becomes readable, the machine reads what arrived
//! before the event (a response sent just before a reset, a request sent
//! just before a hang-up) and the read then reports the end or the error,
//! so what a peer sent is handled the same whatever the timing of its
//! reset. A connection whose machine is not reading when a reset comes (a
//! handler waiting, an idle pooled connection) fails at once.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::buf::BufPool;
use super::guard::guard;
use super::machine::{Machine, Want};
use super::timer::Timers;
use crate::control::{Lease, Shared};
use crate::transport::{Stream, Transport};
use crate::Detached;

/// The token of the loop's one `mio::Waker`.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// Reads one connection may do in one turn before the others get theirs
/// (16 KiB each with the default head size).
const READS_PER_TURN: usize = 32;

/// A connection in the slab: its transport, its machine, and whether it
/// is queued to run again.
pub(crate) struct Entry<C> {
    pub io: Stream,
    pub conn: C,
    /// In `rerun`: it used up its share of a turn and runs again at the
    /// end of it. Once only, however many events it gets meanwhile.
    queued: bool,
}

/// Something that takes a connection handed over on removal (a handler
/// that returned `Next::remove()`).
pub(crate) trait Handover {
    /// Takes the connection. Runs under [`guard`].
    fn take(self, conn: Detached);
}

/// What one side (server or client) adds to the reactor.
pub(crate) trait Role: Sized + 'static {
    /// What a connection machine borrows while it runs.
    type Ctx<'a>;
    /// The connection machine.
    type Conn: for<'a> Machine<Self::Ctx<'a>>;
    /// What a deadline in the heap belongs to.
    type Timer: Copy + Ord;
    /// Who takes a connection that is handed over on removal.
    type Handover: Handover;

    /// The context a connection runs with.
    fn ctx<'a>(
        &'a mut self,
        pool: &'a mut BufPool,
        timers: &'a mut Timers<Self::Timer>,
        shared: &'static Shared,
        now: Instant,
    ) -> Self::Ctx<'a>;

    /// A new turn begins at `now` (before any event of it).
    fn begin_turn(&mut self, core: &mut Core<Self>) {
        let _ = core;
    }

    /// The loop's waker fired, before the `Control` wake-ups are drained:
    /// whatever else the role receives through it.
    fn on_wake(&mut self, core: &mut Core<Self>);

    /// A `Control::ready` for the live exchange in `slot`: applies it,
    /// and returns the connection to run, if any.
    fn on_control(
        &mut self,
        core: &mut Core<Self>,
        slot: usize,
        next: crate::Next,
    ) -> Option<usize>;

    /// An event for a token that is neither a connection nor the waker.
    fn on_token(&mut self, core: &mut Core<Self>, token: Token) {
        let _ = (core, token);
    }

    /// A readiness event for connection `key` (already recorded by its
    /// transport). Default: run it.
    fn on_ready(&mut self, core: &mut Core<Self>, key: usize) {
        core.run_conn(key, self);
    }

    /// After connection `key` ran (it may be gone now).
    fn after_run(&mut self, core: &mut Core<Self>, key: usize) {
        let _ = (core, key);
    }

    /// A deadline of `timer` popped from the heap (it was set for `at`).
    fn on_timer(&mut self, core: &mut Core<Self>, timer: Self::Timer, at: Instant);

    /// Is the heap entry `(at, timer)` one a live deadline counts on?
    fn owns_timer(&self, conns: &Slab<Entry<Self::Conn>>, at: Instant, timer: Self::Timer) -> bool;

    /// How many owners of deadlines are alive (connections and whatever
    /// else has a deadline).
    fn timer_owners(&self, conns: &Slab<Entry<Self::Conn>>) -> usize;

    /// Connection `key` has left the slab (its transport deregistered):
    /// what the role keeps of it goes, and whoever takes it over is
    /// returned.
    fn on_removed(
        &mut self,
        core: &mut Core<Self>,
        key: usize,
        conn: &mut Self::Conn,
    ) -> Option<Self::Handover>;

    /// Work is waiting that needs no event (the poll must not sleep).
    fn busy(&self) -> bool {
        false
    }

    /// A deadline of the role's own that bounds the poll.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// The turn is over: `Some` ends the loop with that result.
    fn end_turn(&mut self, core: &mut Core<Self>) -> Option<io::Result<()>>;

    /// Polling failed: the loop ends with that error.
    fn on_poll_error(&mut self, core: &mut Core<Self>) {
        let _ = core;
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
    /// Drop it, telling the machine why.
    Failed(io::Error),
}

/// The reactor's state: everything but the role's own.
pub(crate) struct Core<R: Role> {
    pub poll: Poll,
    pub conns: Slab<Entry<R::Conn>>,
    pub pool: BufPool,
    pub timers: Timers<R::Timer>,
    pub shared: &'static Shared,
    /// This turn's time.
    pub now: Instant,
    /// The write buffer's high-water mark: a machine wanting to flush goes
    /// on once its output is below it.
    high_water: usize,
    /// Connections that yielded and run again after this turn.
    rerun: Vec<usize>,
    /// Deadlines being fired this turn (kept for its capacity).
    due: Vec<(Instant, R::Timer)>,
    /// This loop's hold on `shared`; last, so it is given back after the
    /// connections are gone.
    pub lease: Lease,
}

impl<R: Role> Core<R> {
    /// A reactor over `poll` (whose waker has [`WAKER`]'s token).
    pub(crate) fn new(poll: Poll, lease: Lease, pool: BufPool, high_water: usize) -> Core<R> {
        Core {
            poll,
            conns: Slab::new(),
            pool,
            timers: Timers::default(),
            shared: lease.shared(),
            now: Instant::now(),
            high_water,
            rerun: Vec::with_capacity(64),
            due: Vec::with_capacity(64),
            lease,
        }
    }

    /// Runs the loop until the role ends it.
    pub(crate) fn run(mut self, role: &mut R) -> io::Result<()> {
        let _running = self.lease.enter();
        let mut events = Events::with_capacity(1024);
        let mut rerun = Vec::with_capacity(64);
        loop {
            let timeout = self.poll_timeout(role, Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                role.on_poll_error(&mut self);
                return Err(e);
            }
            self.now = Instant::now();
            role.begin_turn(&mut self);
            for event in events.iter() {
                let token = event.token();
                if token == WAKER {
                    self.on_wake(role);
                } else if let Some(entry) = self.conns.get_mut(token.0) {
                    entry.io.update(event);
                    role.on_ready(&mut self, token.0);
                } else {
                    role.on_token(&mut self, token);
                }
            }
            std::mem::swap(&mut rerun, &mut self.rerun);
            for key in rerun.drain(..) {
                if let Some(entry) = self.conns.get_mut(key) {
                    entry.queued = false;
                }
                self.run_conn(key, role);
            }
            self.expire(role);
            if let Some(result) = role.end_turn(&mut self) {
                return result;
            }
        }
    }

    fn poll_timeout(&self, role: &R, now: Instant) -> Option<Duration> {
        if !self.rerun.is_empty() || role.busy() {
            return Some(Duration::ZERO);
        }
        [self.timers.next(), role.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            // Round up so that we do not wake just before a deadline.
            .map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    /// Adds a connection over `io`, registered for both directions; the
    /// machine is made from its key. `Err`: registering failed (the
    /// socket is dropped).
    pub(crate) fn insert(
        &mut self,
        mut io: Stream,
        conn: impl FnOnce(usize, &mut Self) -> R::Conn,
    ) -> io::Result<usize> {
        let key = self.conns.vacant_key();
        self.poll.registry().register(
            &mut io,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let conn = conn(key, self);
        self.conns.insert(Entry {
            io,
            conn,
            queued: false,
        });
        Ok(key)
    }

    /// Gives connection `key` a new transport (the next address of a
    /// connect that failed). `Err`: registering it failed.
    pub(crate) fn replace_io(&mut self, key: usize, mut io: Stream) -> io::Result<()> {
        self.poll.registry().register(
            &mut io,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let entry = &mut self.conns[key];
        let _ = self.poll.registry().deregister(&mut entry.io);
        entry.io = io;
        Ok(())
    }

    /// Runs connection `key` with `f` and the role's context.
    pub(crate) fn with_conn<T>(
        &mut self,
        key: usize,
        role: &mut R,
        f: impl FnOnce(&mut Entry<R::Conn>, &mut R::Ctx<'_>) -> T,
    ) -> Option<T> {
        let entry = self.conns.get_mut(key)?;
        let mut ctx = role.ctx(&mut self.pool, &mut self.timers, self.shared, self.now);
        Some(f(entry, &mut ctx))
    }

    /// The waker fired: the role's messages, then the `Control` wake-ups.
    fn on_wake(&mut self, role: &mut R) {
        self.shared.clear_woken();
        role.on_wake(self);
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
            let Some(key) = role.on_control(self, wake.key, wake.next) else {
                continue;
            };
            // Not one already queued to run again this turn: wakes sent to
            // a busy exchange (a producer waking it per item) must not buy
            // it more shares. Any other may have work now (a handler
            // parked in `read_and_write()` with nothing written yet).
            if self.conns.get(key).is_some_and(|e| !e.queued) {
                self.run_conn(key, role);
            }
        }
    }

    /// Fires the deadlines due now: only what was due when the pass
    /// began, so a deadline re-armed while firing (a zero timeout set from
    /// `on_error`) waits for the next turn and this always ends.
    fn expire(&mut self, role: &mut R) {
        let most = 2 * role.timer_owners(&self.conns) + 1024;
        if self.timers.len() > most {
            // Mostly entries of owners gone (long timeouts, much churn).
            let conns = &self.conns;
            self.timers
                .drop_stale(most, |at, timer| role.owns_timer(conns, at, timer));
        }
        let mut due = std::mem::take(&mut self.due);
        while let Some(entry) = self.timers.pop_due(self.now) {
            due.push(entry);
        }
        for (at, timer) in due.drain(..) {
            role.on_timer(self, timer, at);
        }
        self.due = due;
    }

    /// Runs connection `key` until it cannot progress without an event.
    pub(crate) fn run_conn(&mut self, key: usize, role: &mut R) {
        let high_water = self.high_water;
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        if entry.conn.is_connecting() {
            return;
        }
        let mut ctx = role.ctx(&mut self.pool, &mut self.timers, self.shared, self.now);
        let outcome = run(entry, &mut ctx, high_water);
        let remove = match outcome {
            Outcome::Parked | Outcome::Yielded => {
                let bufs = entry.conn.bufs();
                let pool = R::Conn::pool(&mut ctx);
                pool.release(bufs.rbuf, bufs.wbuf);
                entry.io.release(pool);
                if matches!(outcome, Outcome::Yielded)
                    && !std::mem::replace(&mut entry.queued, true)
                {
                    self.rerun.push(key);
                }
                false
            }
            Outcome::Remove => true,
            Outcome::Failed(e) => {
                entry.conn.on_io_error(e, &mut ctx);
                true
            }
        };
        drop(ctx);
        if remove {
            self.remove(key, role);
        }
        role.after_run(self, key);
    }

    /// Drops connection `key`; whoever the role names takes it over, with
    /// the bytes read and not consumed.
    pub(crate) fn remove(&mut self, key: usize, role: &mut R) {
        let Some(mut entry) = self.conns.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut entry.io);
        let taker = role.on_removed(self, key, &mut entry.conn);
        let bufs = entry.conn.bufs();
        let read_buf = match taker {
            Some(_) => bufs.rbuf.data().to_vec(),
            None => Vec::new(),
        };
        bufs.rbuf.clear();
        bufs.wbuf.clear();
        self.pool.release(bufs.rbuf, bufs.wbuf);
        if let Some(taker) = taker {
            // A transport that cannot be handed over (TLS) is closed, and
            // the taker dropped.
            let _ = guard(move || match entry.io.detach(read_buf) {
                Some(conn) => taker.take(conn),
                None => drop(taker),
            });
        } else {
            entry.io.release(&mut self.pool);
        }
    }
}

/// The loop of [`Core::run_conn`]: advance, flush, and do what the
/// machine wants, until it waits for something.
fn run<C, M: Machine<C>>(entry: &mut Entry<M>, ctx: &mut C, high_water: usize) -> Outcome {
    let Entry { io, conn, .. } = entry;
    conn.start_turn();
    let mut reads = 0;
    loop {
        let want = conn.advance(ctx);
        // A writer held back by the high-water mark may go on.
        let mut unblocked = false;
        let wbuf_len = {
            let bufs = conn.bufs();
            if (!bufs.wbuf.is_empty() || io.wants_flush()) && io.may_write() {
                match io.flush(bufs.wbuf, M::pool(ctx)) {
                    Ok(0) => {}
                    Ok(_) => unblocked = conn.on_written(ctx),
                    Err(e) => match conn.on_write_error(e, ctx) {
                        // It writes nothing from now on: run it again.
                        None => continue,
                        Some(e) => return Outcome::Failed(e),
                    },
                }
            }
            conn.bufs().wbuf.len()
        };
        match want {
            Want::Read | Want::ReadOrYield => {
                let bufs = conn.bufs();
                match io.fill(bufs.rbuf, M::pool(ctx), bufs.input_closed) {
                    Ok(true) => {
                        #[cfg(feature = "__tls")]
                        if let Some(info) = io.take_tls_info() {
                            conn.on_tls(info);
                        }
                        conn.on_read(ctx);
                        reads += 1;
                        if reads == READS_PER_TURN {
                            // A peer sending as fast as we read would
                            // otherwise keep the loop to itself.
                            return Outcome::Yielded;
                        }
                    }
                    Ok(false) if unblocked => {}
                    Ok(false) if want == Want::ReadOrYield => return Outcome::Yielded,
                    Ok(false) => return parked(io),
                    Err(e) => return Outcome::Failed(e),
                }
            }
            Want::Flush if !conn.output_closed() && wbuf_len < high_water => {}
            Want::Flush | Want::Idle => return parked(io),
            Want::Yield => return Outcome::Yielded,
            Want::Close if wbuf_len == 0 && !io.wants_flush() => {
                io.shutdown_write(M::pool(ctx));
                conn.start_linger(ctx);
            }
            Want::Close => return parked(io),
            Want::Drain if wbuf_len == 0 && !io.wants_flush() => {
                if conn.on_drained(Instant::now(), ctx) {
                    io.shutdown_write(M::pool(ctx));
                }
            }
            Want::Drain => return parked(io),
            Want::Discard => return discard(io, conn, ctx),
            // (TLS may hold ciphertext of it with the buffer empty.)
            Want::FlushRemove if (wbuf_len > 0 || io.wants_flush()) && !conn.output_closed() => {
                return parked(io)
            }
            Want::Remove | Want::FlushRemove => return Outcome::Remove,
        }
    }
}

/// Waiting for an event — unless a reset is known already, which no
/// event will report again.
fn parked(io: &mut Stream) -> Outcome {
    match io.pending_error() {
        Some(e) => Outcome::Failed(e),
        None => Outcome::Parked,
    }
}

/// Lingering close: reads and throws away input, at most
/// [`READS_PER_TURN`] reads; removed once the peer has closed.
fn discard<C, M: Machine<C>>(io: &mut Stream, conn: &mut M, ctx: &mut C) -> Outcome {
    for _ in 0..READS_PER_TURN {
        let bufs = conn.bufs();
        if *bufs.input_closed {
            return Outcome::Remove;
        }
        match io.fill(bufs.rbuf, M::pool(ctx), bufs.input_closed) {
            Ok(true) => {
                let n = bufs.rbuf.len();
                bufs.rbuf.consume(n);
            }
            Ok(false) => return parked(io),
            Err(e) => return Outcome::Failed(e),
        }
    }
    if *conn.bufs().input_closed {
        Outcome::Remove
    } else if io.may_read() {
        // Its share of reads is used up: more after the others.
        Outcome::Yielded
    } else {
        parked(io)
    }
}
