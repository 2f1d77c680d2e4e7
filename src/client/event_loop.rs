//! The client's event loop: `Poll`, the slab of connections and the slab
//! of exchanges, connecting, readiness, deadlines and wake-ups. All socket
//! I/O of the client happens here.
//!
//! Work arrives through the one `mio::Waker`: new exchanges from
//! [`Client::request`](super::Client::request), resolved names from the
//! resolver thread, [`Control::ready`](crate::Control::ready) wake-ups.
//! An exchange waits in its host's queue until [`Host::pick`] gives it a
//! connection; connections are run by a loop that asks [`Conn::advance`]
//! for their next need, reading until `WouldBlock` (mio is
//! edge-triggered). Nothing recurses: a host whose situation changed is
//! queued, and queued hosts are dispatched at the end of each turn.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{Conn, Ctx, Scratch, Want};
use super::exchange::{self, host_timer, Exchange, TimerOf};
use super::handler::Boxed;
use super::pool::{Hosts, Offer, Pick};
use super::resolve::{Resolved, Resolver};
use super::url::Url;
use super::{Error, Settings};
use crate::buf::BufPool;
use crate::control::{Lease, Shared};
use crate::guard::guard;
use crate::sock::{self, Readiness};
use crate::timer::{after, Timers};

pub(crate) const WAKER: Token = Token(usize::MAX);

/// A request handed to the loop by [`Client::request`](super::Client::request).
pub(crate) struct Submit {
    pub url: Url,
    pub handler: Box<dyn Boxed>,
}

/// A connection, its socket's readiness, and where it connects to.
struct Entry {
    sock: TcpStream,
    conn: Conn,
    /// What is known of the socket's readiness.
    ready: Readiness,
    /// The addresses to try, and the next one after the current.
    addrs: Arc<[SocketAddr]>,
    next_addr: usize,
    addr: SocketAddr,
}

/// What a loop is made of before it runs (all `Send`, built on the
/// caller's thread).
pub(crate) struct Parts {
    pub poll: Poll,
    pub lease: Lease,
    pub submits: Receiver<Submit>,
    pub settings: Settings,
}

struct EventLoop {
    poll: Poll,
    shared: &'static Shared,
    submits: Receiver<Submit>,
    settings: Settings,
    conns: Slab<Entry>,
    exchanges: Slab<Exchange>,
    hosts: Hosts,
    bufs: BufPool,
    timers: Timers,
    scratch: Scratch,
    /// Exchanges a failed connection hands back, to go to another one.
    requeue: Vec<usize>,
    /// Connections that yielded and run again after this turn.
    rerun: Vec<usize>,
    /// Deadlines being fired this turn (kept for its capacity).
    due: Vec<(Instant, usize)>,
    /// Hosts to dispatch at the end of this turn.
    pending: Vec<usize>,
    resolver: Resolver,
    resolved: Receiver<Resolved>,
    /// Every `Client` handle is gone: finish what is in flight, then end.
    shutting_down: bool,
    /// This loop's hold on `shared`; last, so it is given back after the
    /// exchanges are gone.
    lease: Lease,
}

/// How running a connection ended.
enum Outcome {
    Parked,
    Yielded,
    Remove,
    Failed(io::Error),
}

impl Parts {
    /// Runs the loop on this thread until the client is dropped and every
    /// exchange has ended.
    pub(crate) fn run(self) -> io::Result<()> {
        let settings = self.settings;
        let (resolver, resolved) = Resolver::new(self.lease.handle(), settings.lookup.clone());
        EventLoop {
            poll: self.poll,
            shared: self.lease.shared(),
            submits: self.submits,
            bufs: BufPool::new(settings.max_head_size, 4 * settings.write_high_water, 1024),
            settings,
            conns: Slab::new(),
            exchanges: Slab::new(),
            hosts: Hosts::default(),
            timers: Timers::default(),
            scratch: Scratch::default(),
            requeue: Vec::new(),
            rerun: Vec::new(),
            due: Vec::new(),
            pending: Vec::new(),
            resolver,
            resolved,
            shutting_down: false,
            lease: self.lease,
        }
        .run()
    }
}

impl EventLoop {
    fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut rerun = Vec::new();
        loop {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.fail_everything();
                return Err(e);
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => self.on_wake(now),
                    Token(key) => {
                        let Some(entry) = self.conns.get_mut(key) else {
                            continue;
                        };
                        entry.ready.update(event);
                        if event.is_error() || event.is_write_closed() {
                            // Read what arrived before the error; the read
                            // then reports it.
                            entry.ready.readable = true;
                            entry.ready.read_closed = true;
                        }
                        if entry.conn.is_connecting() {
                            self.check_connect(key, now);
                        } else {
                            self.run_conn(key, now);
                        }
                    }
                }
            }
            std::mem::swap(&mut rerun, &mut self.rerun);
            for key in rerun.drain(..) {
                self.run_conn(key, now);
            }
            self.expire(now);
            self.dispatch_pending(now);
            if self.shutting_down && self.exchanges.is_empty() {
                return Ok(());
            }
        }
    }

    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.rerun.is_empty() || !self.pending.is_empty() {
            return Some(Duration::ZERO);
        }
        self.timers
            .next()
            // Round up so that we do not wake just before a deadline.
            .map(|at| at.saturating_duration_since(now) + Duration::from_millis(1))
    }

    fn ctx(&mut self, now: Instant) -> (&mut Slab<Entry>, Ctx<'_>) {
        let ctx = Ctx {
            exchanges: &mut self.exchanges,
            shared: self.shared,
            settings: &self.settings,
            pool: &mut self.bufs,
            timers: &mut self.timers,
            scratch: &mut self.scratch,
            now,
            requeue: &mut self.requeue,
        };
        (&mut self.conns, ctx)
    }

    /// Queues `host` for a dispatch at the end of this turn.
    fn mark(&mut self, host: usize) {
        if let Some(h) = self.hosts.get_mut(host) {
            if !h.queued {
                h.queued = true;
                self.pending.push(host);
            }
        }
    }

    // ---- wake-ups: new requests, resolved names, Control::ready ----

    fn on_wake(&mut self, now: Instant) {
        self.shared.clear_woken();
        if self.lease.shutdown_requested() {
            self.shutting_down = true;
        }
        while let Ok(submit) = self.submits.try_recv() {
            self.submit(submit);
        }
        while let Ok(resolved) = self.resolved.try_recv() {
            self.on_resolved(resolved, now);
        }
        // Only the wakes queued by now (see the server's loop).
        for _ in 0..self.lease.wakes().len() {
            let Ok(wake) = self.lease.wakes().try_recv() else {
                break;
            };
            if !self.shared.is_current(wake.key, wake.generation) {
                continue;
            }
            let Some(ex) = self.exchanges.get_mut(wake.key) else {
                continue;
            };
            let Some(conn) = ex.conn else {
                ex.wake(wake.key, wake.next, now, &mut self.timers);
                continue;
            };
            let (conns, mut ctx) = self.ctx(now);
            if let Some(entry) = conns.get_mut(conn) {
                entry.conn.on_wake(wake.key, wake.next, &mut ctx);
            }
            self.run_conn(conn, now);
        }
    }

    fn submit(&mut self, Submit { url, mut handler }: Submit) {
        if self.exchanges.len() >= self.settings.max_exchanges {
            let _ = guard(|| handler.on_error(Error::TooManyRequests));
            let _ = guard(move || drop(handler));
            return;
        }
        let host = self.hosts.find_or_insert(&url);
        let key = self.exchanges.insert(Exchange::new(handler, url, host));
        if let Some(h) = self.hosts.get_mut(host) {
            h.waiting.push_back(key);
        }
        self.mark(host);
    }

    fn on_resolved(&mut self, resolved: Resolved, now: Instant) {
        let Some(host) = self.hosts.get_mut(resolved.host) else {
            return;
        };
        if !host.resolving || host.port != resolved.port || *host.name != *resolved.name {
            return;
        }
        host.resolving = false;
        host.lookup_deadline
            .set(None, host_timer(resolved.host), &mut self.timers);
        match resolved.result {
            Ok(addrs) if !addrs.is_empty() => {
                host.addrs = Some(addrs.into());
                host.resolved_at = Some(now);
            }
            result => {
                let error = result.err().unwrap_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, "no addresses found")
                });
                self.lookup_failed(resolved.host, now, || {
                    io::Error::new(error.kind(), error.to_string())
                });
            }
        }
        self.mark(resolved.host);
    }

    // ---- giving exchanges connections ----

    fn dispatch_pending(&mut self, now: Instant) {
        while let Some(host) = self.pending.pop() {
            if let Some(h) = self.hosts.get_mut(host) {
                h.queued = false;
            }
            self.dispatch(host, now);
            self.hosts.remove_if_unused(host);
        }
    }

    /// Gives the host's waiting exchanges connections, as far as it can.
    fn dispatch(&mut self, host_key: usize, now: Instant) {
        loop {
            let Some(host) = self.hosts.get(host_key) else {
                return;
            };
            let (conns, exchanges, settings) = (&self.conns, &self.exchanges, &self.settings);
            // Sent again: its connection failed under it (perhaps a pooled
            // one the server had closed), so not another used one.
            let fresh_only = host
                .waiting
                .front()
                .and_then(|&k| exchanges.get(k))
                .is_some_and(|ex| ex.retries > 0);
            let pick = host.pick(settings.max_per_host, now, fresh_only, |c| {
                let Some(e) = conns.get(c) else {
                    return Offer::Busy;
                };
                let reused = e.conn.is_reused();
                if e.conn.is_idle() {
                    Offer::Idle { reused }
                } else if settings.max_pipelined > 1 && e.conn.can_pipeline(exchanges, settings) {
                    Offer::Pipeline { reused }
                } else {
                    Offer::Busy
                }
            });
            match pick {
                Pick::Idle(c) | Pick::Pipeline(c) => {
                    let Some(ex) = self
                        .hosts
                        .get_mut(host_key)
                        .and_then(|h| h.waiting.pop_front())
                    else {
                        return;
                    };
                    let (conns, mut ctx) = self.ctx(now);
                    conns[c].conn.start(ex, &mut ctx);
                    self.run_conn(c, now);
                }
                Pick::Evict(c) => {
                    let (conns, mut ctx) = self.ctx(now);
                    conns[c].conn.close_idle(&mut ctx);
                    self.remove(c);
                }
                Pick::Connect => self.open(host_key, now),
                Pick::Resolve => {
                    let host = self.hosts.get_mut(host_key).expect("host");
                    if let Some(ips) = self.settings.pinned(&host.name) {
                        let port = host.port;
                        host.addrs =
                            Some(ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect());
                        // Pinned: never stale, like an IP literal.
                        host.resolved_at = None;
                        continue;
                    }
                    let name = host.name.trim_start_matches('[').trim_end_matches(']');
                    match self.resolver.resolve(host_key, name, host.port) {
                        Ok(()) => {
                            host.resolving = true;
                            let at = after(now, self.settings.connect_timeout);
                            host.lookup_deadline
                                .set(at, host_timer(host_key), &mut self.timers);
                        }
                        Err(e) => {
                            let name = host.name.to_string();
                            if let Some(ex) = host.waiting.pop_front() {
                                let err = Error::Resolve {
                                    host: name,
                                    error: e,
                                };
                                exchange::fail(&mut self.exchanges, ex, err, self.shared);
                            }
                            continue;
                        }
                    }
                    return;
                }
                Pick::Wait => return,
            }
        }
    }

    /// Starts a new connection to the host, trying its addresses in turn
    /// until one can at least begin to connect.
    fn open(&mut self, host_key: usize, now: Instant) {
        let Some(addrs) = self.hosts.get(host_key).and_then(|h| h.addrs.clone()) else {
            return;
        };
        let mut last = None;
        for (i, &addr) in addrs.iter().enumerate() {
            match self.connect(addr) {
                Ok(sock) => {
                    let entry = self.conns.vacant_entry();
                    let key = entry.key();
                    let mut entry_sock = sock;
                    if let Err(e) = self.poll.registry().register(
                        &mut entry_sock,
                        Token(key),
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        last = Some((addr, e));
                        continue;
                    }
                    entry.insert(Entry {
                        sock: entry_sock,
                        conn: Conn::new(key, host_key, &self.settings, &mut self.timers, now),
                        ready: Readiness::default(),
                        addrs: Arc::clone(&addrs),
                        next_addr: i + 1,
                        addr,
                    });
                    let host = self.hosts.get_mut(host_key).expect("host");
                    host.open.push(key);
                    host.connecting += 1;
                    return;
                }
                Err(e) => last = Some((addr, e)),
            }
        }
        // Not one address could even start connecting (or none at all:
        // a host pinned to an empty list).
        let err = match last {
            Some((addr, e)) => connect_error(addr, e),
            None => Error::Resolve {
                host: self
                    .hosts
                    .get(host_key)
                    .map_or_else(String::new, |h| h.name.to_string()),
                error: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
            },
        };
        self.fail_waiting(host_key, err);
    }

    fn connect(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr)
    }

    /// The host's name could not be resolved (`error` makes the error). If
    /// an earlier lookup found addresses, they serve until the next try;
    /// else every exchange waiting for the host fails with `Error::Resolve`.
    fn lookup_failed(&mut self, host_key: usize, now: Instant, error: impl Fn() -> io::Error) {
        let Some(host) = self.hosts.get_mut(host_key) else {
            return;
        };
        if host.addrs.is_some() {
            host.resolved_at = Some(now);
        } else {
            let name = host.name.to_string();
            while let Some(key) = host.waiting.pop_front() {
                let err = Error::Resolve {
                    host: name.clone(),
                    error: error(),
                };
                exchange::fail(&mut self.exchanges, key, err, self.shared);
            }
        }
        self.mark(host_key);
    }

    /// A connect attempt for the host failed: the first exchange waiting
    /// for a connection gets the error.
    fn fail_waiting(&mut self, host_key: usize, err: Error) {
        let Some(host) = self.hosts.get_mut(host_key) else {
            return;
        };
        if let Some(ex) = host.waiting.pop_front() {
            exchange::fail(&mut self.exchanges, ex, err, self.shared);
        }
        self.mark(host_key);
    }

    /// A connecting socket reported an event: connected, failed, or
    /// (spuriously) neither yet.
    fn check_connect(&mut self, key: usize, now: Instant) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let error = match entry.sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(e),
            Ok(None) => match entry.sock.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        if let Some(e) = error {
            return self.connect_failed(key, Some(e), now);
        }
        let _ = entry.sock.set_nodelay(true);
        let host_key = entry.conn.host;
        let (conns, mut ctx) = self.ctx(now);
        conns[key].conn.connected(&mut ctx);
        if let Some(host) = self.hosts.get_mut(host_key) {
            host.connecting -= 1;
        }
        self.run_conn(key, now);
        self.mark(host_key);
    }

    /// Connecting failed (`None`: timed out). Other addresses of the host
    /// are tried first; when none is left, the first waiting exchange gets
    /// the error.
    fn connect_failed(&mut self, key: usize, error: Option<io::Error>, now: Instant) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        // Refused or timed out alike: every address gets its turn, each
        // with its own connect timeout.
        while entry.next_addr < entry.addrs.len() {
            let addr = entry.addrs[entry.next_addr];
            entry.next_addr += 1;
            let Ok(mut sock) = TcpStream::connect(addr) else {
                continue;
            };
            let registered = self.poll.registry().register(
                &mut sock,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_ok() {
                let _ = self.poll.registry().deregister(&mut entry.sock);
                entry.sock = sock;
                entry.addr = addr;
                entry.ready = Readiness::default();
                entry
                    .conn
                    .restart_connect(now, &self.settings, &mut self.timers);
                return;
            }
        }
        let entry = self.conns.remove(key);
        let host_key = entry.conn.host;
        if let Some(host) = self.hosts.get_mut(host_key) {
            host.open.retain(|&c| c != key);
            host.connecting -= 1;
        }
        let err = match error {
            None => Error::ConnectTimeout,
            Some(e) => connect_error(entry.addr, e),
        };
        drop(entry);
        self.fail_waiting(host_key, err);
    }

    // ---- deadlines ----

    /// Fires the deadlines due at `now`: only what was due when the pass
    /// began, so a deadline re-armed while firing (a zero timeout set from
    /// `on_error`) waits for the next turn and this always ends.
    fn expire(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.due);
        while let Some(entry) = self.timers.pop_due(now) {
            due.push(entry);
        }
        for (at, timer) in due.drain(..) {
            match TimerOf::of(timer) {
                TimerOf::Conn(key) => {
                    let Some(entry) = self.conns.get_mut(key) else {
                        continue;
                    };
                    if !self.timers.fires(at, now, timer, &mut entry.conn.deadline) {
                        continue;
                    }
                    if entry.conn.is_connecting() {
                        self.connect_failed(key, None, now);
                        continue;
                    }
                    let (conns, mut ctx) = self.ctx(now);
                    conns[key].conn.on_deadline(&mut ctx);
                    self.run_conn(key, now);
                }
                TimerOf::Exchange(key) => {
                    let Some(ex) = self.exchanges.get_mut(key) else {
                        continue;
                    };
                    if !self.timers.fires(at, now, timer, &mut ex.deadline) {
                        continue;
                    }
                    let Some(conn) = ex.conn else {
                        continue;
                    };
                    let (conns, mut ctx) = self.ctx(now);
                    if let Some(entry) = conns.get_mut(conn) {
                        entry.conn.on_handler_timeout(key, &mut ctx);
                    }
                    self.run_conn(conn, now);
                }
                TimerOf::Host(key) => {
                    let Some(host) = self.hosts.get_mut(key) else {
                        continue;
                    };
                    if !self.timers.fires(at, now, timer, &mut host.lookup_deadline) {
                        continue;
                    }
                    if host.resolving {
                        // Given up: its answer, if it ever comes, is ignored.
                        host.resolving = false;
                        self.lookup_failed(key, now, || {
                            io::Error::new(io::ErrorKind::TimedOut, "the lookup timed out")
                        });
                    }
                }
            }
        }
        self.due = due;
    }

    // ---- running a connection ----

    /// Runs one connection until it cannot progress without an event.
    fn run_conn(&mut self, key: usize, now: Instant) {
        let high_water = self.settings.write_high_water;
        let (conns, mut ctx) = self.ctx(now);
        let Some(entry) = conns.get_mut(key) else {
            return;
        };
        if entry.conn.is_connecting() {
            return;
        }
        let outcome = loop {
            let want = entry.conn.advance(&mut ctx);
            let mut flushed = false;
            // Once writing failed the machine writes nothing more.
            let output_closed = entry.conn.output_closed();
            debug_assert!(!output_closed || entry.conn.wbuf.is_empty());
            if !output_closed && !entry.conn.wbuf.is_empty() && entry.ready.writable {
                match sock::flush(&mut entry.sock, &mut entry.conn.wbuf, &mut entry.ready) {
                    Ok(n) => {
                        flushed = n > 0;
                        if flushed {
                            entry.conn.last_io = now;
                            entry.conn.on_sent(&mut ctx);
                        }
                    }
                    Err(e) => {
                        // The server stopped reading; its answer may still
                        // be on its way. The machine stops the request
                        // being written and reads on: run it again (once —
                        // it writes nothing from now on).
                        entry.conn.on_write_error(e, &mut ctx);
                        continue;
                    }
                }
            }
            match want {
                Want::Read => match fill(entry, ctx.pool) {
                    Ok(true) => {
                        entry.conn.last_io = now;
                        continue;
                    }
                    // Nothing to read, but output drained: a writer held
                    // back by the high-water mark may go on.
                    Ok(false) if flushed && entry.conn.wbuf.len() < high_water => continue,
                    Ok(false) => break Outcome::Parked,
                    Err(e) => break Outcome::Failed(e),
                },
                Want::Flush if !output_closed && entry.conn.wbuf.len() < high_water => continue,
                Want::Flush | Want::Idle => break Outcome::Parked,
                // A writer that wrote nothing gives up its turn; the reader
                // must not wait on it (an answer may come before the body).
                Want::Yield => match fill(entry, ctx.pool) {
                    Ok(true) => {
                        entry.conn.last_io = now;
                        continue;
                    }
                    Ok(false) => break Outcome::Yielded,
                    Err(e) => break Outcome::Failed(e),
                },
                Want::Remove => break Outcome::Remove,
            }
        };
        let host = entry.conn.host;
        match outcome {
            Outcome::Parked => ctx.pool.release(&mut entry.conn.rbuf, &mut entry.conn.wbuf),
            Outcome::Yielded => {
                ctx.pool.release(&mut entry.conn.rbuf, &mut entry.conn.wbuf);
                self.rerun.push(key);
            }
            Outcome::Remove => self.remove(key),
            Outcome::Failed(e) => {
                entry.conn.on_io_error(e, &mut ctx);
                self.remove(key);
            }
        }
        self.take_requeued();
        let free = self.conns.get(key).is_some_and(|e| {
            e.conn.is_idle()
                || self.settings.max_pipelined > 1
                    && e.conn.can_pipeline(&self.exchanges, &self.settings)
        });
        let waiting = self.hosts.get(host).is_some_and(|h| !h.waiting.is_empty());
        if free && waiting {
            self.mark(host);
        }
    }

    /// Exchanges handed back by a failed connection go to the front of
    /// their host's queue, in their order.
    fn take_requeued(&mut self) {
        for i in (0..self.requeue.len()).rev() {
            let key = self.requeue[i];
            let Some(host) = self.exchanges.get(key).map(|ex| ex.host) else {
                continue;
            };
            if let Some(h) = self.hosts.get_mut(host) {
                h.waiting.push_front(key);
            }
            self.mark(host);
        }
        self.requeue.clear();
    }

    /// Drops a connection; an exchange that asked for `Next::remove()`
    /// gets its socket.
    fn remove(&mut self, key: usize) {
        let Some(mut entry) = self.conns.try_remove(key) else {
            return;
        };
        debug_assert!(entry.conn.is_closed(), "removing a live connection");
        entry.conn.rbuf.clear();
        entry.conn.wbuf.clear();
        self.bufs
            .release(&mut entry.conn.rbuf, &mut entry.conn.wbuf);
        let host = entry.conn.host;
        if let Some(h) = self.hosts.get_mut(host) {
            h.open.retain(|&c| c != key);
        }
        self.mark(host);
        let _ = self.poll.registry().deregister(&mut entry.sock);
        let Some(remover) = entry.conn.remover.take() else {
            return;
        };
        if let Some(ex) = self.exchanges.try_remove(remover) {
            self.shared.retire(remover);
            let sock = entry.sock;
            let _ = guard(move || ex.handler.on_remove_boxed(sock));
        }
    }

    /// The loop cannot go on: every exchange is told.
    fn fail_everything(&mut self) {
        let keys: Vec<usize> = self.exchanges.iter().map(|(k, _)| k).collect();
        for key in keys {
            exchange::fail(&mut self.exchanges, key, Error::Shutdown, self.shared);
        }
    }
}

fn connect_error(addr: SocketAddr, error: io::Error) -> Error {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        Error::Refused(addr)
    } else {
        Error::Connect { addr, error }
    }
}

/// Reads once into the connection's buffer (see [`sock::fill`]).
fn fill(entry: &mut Entry, pool: &mut BufPool) -> io::Result<bool> {
    sock::fill(
        &mut entry.sock,
        &mut entry.conn.rbuf,
        pool,
        &mut entry.ready,
        &mut entry.conn.input_closed,
    )
}
