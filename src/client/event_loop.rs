//! The client's side of the reactor: new exchanges and resolved names
//! through the waker, host queues and pools, connecting (every address in
//! turn), and the client's deadlines. Socket I/O and the loop itself are
//! the shared reactor's (`rt/reactor.rs`).
//!
//! Work arrives through the one `mio::Waker`: new exchanges from
//! [`Client::request`](super::Client::request), resolved names from the
//! resolver thread, [`Control::ready`](crate::Control::ready) wake-ups.
//! An exchange waits in its host's queue until [`Host::pick`] gives it a
//! connection. Nothing recurses: a host whose situation changed is
//! queued, and queued hosts are dispatched at the end of each turn.
//!
//! [`Host::pick`]: super::pool::Host::pick

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use mio::Poll;
use slab::Slab;

use super::conn::{read_size, Conn, Ctx, Dial, Scratch};
use super::exchange::{self, Exchange, Timer};
use super::handler::Boxed;
use super::pool::{Hosts, Offer, Pick, Proto};
use super::resolve::{Resolved, Resolver};
use super::url::Url;
use super::{Error, Settings};
use crate::control::{Lease, Shared};
use crate::rt::buf::BufPool;
use crate::rt::guard::guard;
use crate::rt::reactor::{Entry, Handover};
use crate::rt::timer::{after, Timers};
use crate::rt::{Core, Role};
use crate::transport::{Stream, Tcp};
use crate::{Detached, Next};

pub(crate) use crate::rt::reactor::WAKER;

/// How many times one turn's dispatch takes new requests and runs the
/// connections given them.
const DISPATCH_ROUNDS: usize = 4;

/// A request handed to the loop by [`Client::request`](super::Client::request).
pub(crate) struct Submit {
    pub url: Url,
    pub handler: Box<dyn Boxed>,
}

/// What a loop is made of before it runs (all `Send`, built on the
/// caller's thread).
pub(crate) struct Parts {
    pub poll: Poll,
    pub lease: Lease,
    pub submits: Receiver<Submit>,
    pub settings: Settings,
}

/// The client role: what the reactor does not know about being a client.
struct Client {
    shared: &'static Shared,
    submits: Receiver<Submit>,
    settings: Settings,
    exchanges: Slab<Exchange>,
    hosts: Hosts,
    scratch: Scratch,
    /// Exchanges a failed connection hands back, to go to another one.
    requeue: Vec<usize>,
    /// Hosts to dispatch at the end of this turn.
    pending: Vec<usize>,
    /// HTTP/2 connections given exchanges in this dispatch: each runs once
    /// after it, so that its new streams go out in one write.
    to_run: Vec<usize>,
    resolver: Resolver,
    resolved: Receiver<Resolved>,
    /// Every `Client` handle is gone: finish what is in flight, then end.
    shutting_down: bool,
    /// The TLS configuration, made at the first `https://` connection.
    #[cfg(feature = "__tls")]
    tls: Option<Arc<crate::tls::ClientConfig>>,
}

impl Parts {
    /// Runs the loop on this thread until the client is dropped and every
    /// exchange has ended.
    pub(crate) fn run(self) -> io::Result<()> {
        let settings = self.settings;
        let (resolver, resolved) = Resolver::new(self.lease.handle(), settings.lookup.clone());
        let pool = BufPool::new(read_size(&settings), 4 * settings.write_high_water, 1024);
        let core = Core::new(self.poll, self.lease, pool, settings.write_high_water);
        let mut client = Client {
            shared: core.shared,
            submits: self.submits,
            settings,
            exchanges: Slab::new(),
            hosts: Hosts::default(),
            scratch: Scratch::default(),
            requeue: Vec::new(),
            pending: Vec::new(),
            to_run: Vec::new(),
            resolver,
            resolved,
            shutting_down: false,
            #[cfg(feature = "__tls")]
            tls: None,
        };
        core.run(&mut client)
    }
}

impl Handover for Box<dyn Boxed> {
    fn take(self, conn: Detached) {
        self.on_remove_boxed(conn);
    }
}

impl Role for Client {
    type Ctx<'a> = Ctx<'a>;
    type Conn = Conn;
    type Timer = Timer;
    type Handover = Box<dyn Boxed>;

    fn ctx<'a>(
        &'a mut self,
        pool: &'a mut BufPool,
        timers: &'a mut Timers<Timer>,
        shared: &'static Shared,
        now: Instant,
    ) -> Ctx<'a> {
        Ctx {
            exchanges: &mut self.exchanges,
            shared,
            settings: &self.settings,
            pool,
            timers,
            scratch: &mut self.scratch,
            now,
            requeue: &mut self.requeue,
        }
    }

    // ---- wake-ups: new requests, resolved names, Control::ready ----

    fn on_wake(&mut self, core: &mut Core<Self>) {
        if core.lease.shutdown_requested() {
            self.shutting_down = true;
        }
        while let Ok(submit) = self.submits.try_recv() {
            self.submit(submit);
        }
        while let Ok(resolved) = self.resolved.try_recv() {
            self.on_resolved(core, resolved);
        }
    }

    fn on_control(&mut self, core: &mut Core<Self>, slot: usize, next: Next) -> Option<usize> {
        let ex = self.exchanges.get_mut(slot)?;
        let Some(conn) = ex.conn else {
            ex.wake(slot, next, core.now, &mut core.timers);
            return None;
        };
        core.with_conn(conn, self, |entry, ctx| entry.conn.on_wake(slot, next, ctx));
        Some(conn)
    }

    fn on_ready(&mut self, core: &mut Core<Self>, key: usize) {
        if core.conns[key].conn.is_connecting() {
            self.check_connect(core, key);
        } else {
            core.run_conn(key, self);
        }
    }

    fn after_run(&mut self, core: &mut Core<Self>, key: usize) {
        self.take_requeued();
        let Some(e) = core.conns.get_mut(key) else {
            return;
        };
        if let Some(h2) = e.conn.take_settled() {
            // The TLS handshake said what the origin speaks.
            if let Some(h) = self.hosts.get_mut(e.conn.host) {
                h.connecting -= 1;
                h.proto = if h2 { Proto::Http2 } else { Proto::Http1 };
            }
            self.mark(e.conn.host);
        }
        if e.conn.take_left_pool() {
            // A connection in raw mode, or one its HTTP/2 server sent
            // GOAWAY on, carries nothing new: it no longer counts against
            // the per-host limit, and a request waiting for a place may
            // take its.
            let host = e.conn.host;
            if let Some(h) = self.hosts.get_mut(host) {
                h.open.retain(|&c| c != key);
            }
            self.mark(host);
            return;
        }
        let free = e.conn.is_idle()
            || e.conn.h2_room(&self.settings)
            || self.settings.max_pipelined > 1
                && e.conn.can_pipeline(&self.exchanges, &self.settings);
        let host = e.conn.host;
        let waiting = self.hosts.get(host).is_some_and(|h| !h.waiting.is_empty());
        if free && waiting {
            self.mark(host);
        }
    }

    // ---- deadlines ----

    fn on_timer(&mut self, core: &mut Core<Self>, timer: Timer, at: Instant) {
        let now = core.now;
        match timer {
            Timer::Conn(key) => {
                let Some(entry) = core.conns.get_mut(key) else {
                    return;
                };
                if !core.timers.fires(at, now, timer, &mut entry.conn.deadline) {
                    return;
                }
                if entry.conn.is_connecting() {
                    return self.connect_failed(core, key, None);
                }
                core.with_conn(key, self, |entry, ctx| entry.conn.on_deadline(ctx));
                core.run_conn(key, self);
            }
            Timer::Exchange(key) => {
                let Some(ex) = self.exchanges.get_mut(key) else {
                    return;
                };
                if !core.timers.fires(at, now, timer, &mut ex.deadline) {
                    return;
                }
                let Some(conn) = ex.conn else {
                    return;
                };
                core.with_conn(conn, self, |entry, ctx| {
                    entry.conn.on_handler_timeout(key, ctx)
                });
                core.run_conn(conn, self);
            }
            Timer::Host(key) => {
                let Some(host) = self.hosts.get_mut(key) else {
                    return;
                };
                if !core.timers.fires(at, now, timer, &mut host.lookup_deadline) {
                    return;
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

    fn owns_timer(&self, conns: &Slab<Entry<Conn>>, at: Instant, timer: Timer) -> bool {
        match timer {
            Timer::Conn(key) => conns.get(key).is_some_and(|e| e.conn.deadline.owns(at)),
            Timer::Exchange(key) => self
                .exchanges
                .get(key)
                .is_some_and(|ex| ex.deadline.owns(at)),
            Timer::Host(key) => self
                .hosts
                .get(key)
                .is_some_and(|h| h.lookup_deadline.owns(at)),
        }
    }

    fn timer_owners(&self, conns: &Slab<Entry<Conn>>) -> usize {
        conns.len() + self.exchanges.len() + self.hosts.len()
    }

    /// An exchange that asked for `Next::remove()` gets the connection.
    fn on_removed(
        &mut self,
        core: &mut Core<Self>,
        key: usize,
        conn: &mut Conn,
    ) -> Option<Box<dyn Boxed>> {
        debug_assert!(
            conn.is_closed() || conn.is_connecting(),
            "removing a live connection"
        );
        let host = conn.host;
        if let Some(h) = self.hosts.get_mut(host) {
            h.open.retain(|&c| c != key);
            if conn.is_settling() {
                // Its TLS handshake never said what it speaks.
                h.connecting -= 1;
            }
        }
        if let Some(err) = conn.take_handshake_error() {
            self.fail_waiting(host, err);
        }
        self.mark(host);
        let remover = conn.remover.take()?;
        let ex = self.exchanges.try_remove(remover)?;
        core.shared.retire(remover);
        Some(ex.handler)
    }

    fn busy(&self) -> bool {
        // (Requests a handler made on this thread do not wake the loop.)
        !self.pending.is_empty() || !self.submits.is_empty()
    }

    fn end_turn(&mut self, core: &mut Core<Self>) -> Option<io::Result<()>> {
        self.dispatch_pending(core);
        (self.shutting_down && self.exchanges.is_empty()).then_some(Ok(()))
    }

    /// The loop cannot go on: every exchange is told.
    fn on_poll_error(&mut self, _core: &mut Core<Self>) {
        let keys: Vec<usize> = self.exchanges.iter().map(|(k, _)| k).collect();
        for key in keys {
            exchange::fail(&mut self.exchanges, key, Error::Shutdown, self.shared);
        }
    }
}

impl Client {
    /// Queues `host` for a dispatch at the end of this turn.
    fn mark(&mut self, host: usize) {
        if let Some(h) = self.hosts.get_mut(host) {
            if !h.queued {
                h.queued = true;
                self.pending.push(host);
            }
        }
    }

    fn submit(&mut self, Submit { url, mut handler }: Submit) {
        if self.exchanges.len() >= self.settings.max_exchanges {
            let _ = guard(|| handler.on_error(Error::TooManyRequests));
            let _ = guard(move || drop(handler));
            return;
        }
        let proto = if self.settings.h2_prior(&url) {
            Proto::Http2
        } else if url.is_https() && self.settings.http2 && cfg!(feature = "__tls") {
            Proto::Unknown
        } else {
            Proto::Http1
        };
        let host = self.hosts.find_or_insert(&url, proto);
        let key = self.exchanges.insert(Exchange::new(handler, url, host));
        if let Some(h) = self.hosts.get_mut(host) {
            h.waiting.push_back(key);
        }
        self.mark(host);
    }

    fn on_resolved(&mut self, core: &mut Core<Self>, resolved: Resolved) {
        let now = core.now;
        let Some(host) = self.hosts.get_mut(resolved.host) else {
            return;
        };
        if !host.resolving || host.port != resolved.port || *host.name != *resolved.name {
            return;
        }
        host.resolving = false;
        host.lookup_deadline
            .set(None, Timer::Host(resolved.host), &mut core.timers);
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

    /// Takes the requests handlers made on this thread, and gives every
    /// marked host's waiting exchanges connections. Bounded: what the
    /// handlers run here submit in turn waits for the next turn (`busy`
    /// keeps the loop from sleeping on it).
    fn dispatch_pending(&mut self, core: &mut Core<Self>) {
        for _ in 0..DISPATCH_ROUNDS {
            while let Ok(submit) = self.submits.try_recv() {
                self.submit(submit);
            }
            if self.pending.is_empty() {
                return;
            }
            while let Some(host) = self.pending.pop() {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.queued = false;
                }
                self.dispatch(core, host);
                self.hosts.remove_if_unused(host);
            }
            let mut to_run = std::mem::take(&mut self.to_run);
            for &c in &to_run {
                core.run_conn(c, self);
            }
            to_run.clear();
            if self.to_run.is_empty() {
                self.to_run = to_run;
            }
        }
    }

    /// Gives the host's waiting exchanges connections, as far as it can.
    fn dispatch(&mut self, core: &mut Core<Self>, host_key: usize) {
        let now = core.now;
        loop {
            let Some(host) = self.hosts.get(host_key) else {
                return;
            };
            let (conns, exchanges, settings) = (&core.conns, &self.exchanges, &self.settings);
            // Sent again: its connection failed under it (perhaps a pooled
            // one the server had closed), so not another used one.
            let fresh_only = host
                .waiting
                .front()
                .and_then(|&k| exchanges.get(k))
                .is_some_and(|ex| ex.retries > 0);
            let max = match host.proto {
                Proto::Http2 => settings.h2_connections,
                Proto::Http1 | Proto::Unknown => settings.max_per_host,
            };
            let pick = host.pick(max, now, fresh_only, |c| {
                let Some(e) = conns.get(c) else {
                    return Offer::Busy;
                };
                let reused = e.conn.is_reused();
                if e.conn.is_idle() {
                    Offer::Idle { reused }
                } else if e.conn.h2_room(settings)
                    || (settings.max_pipelined > 1 && e.conn.can_pipeline(exchanges, settings))
                {
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
                    core.with_conn(c, self, |entry, ctx| entry.conn.start(ex, ctx));
                    // An HTTP/1 exchange runs now (its request written, the
                    // next may pipeline behind it); HTTP/2 streams go out
                    // together once the dispatch is over.
                    if !core.conns.get(c).is_some_and(|e| e.conn.is_h2()) {
                        core.run_conn(c, self);
                    } else if !self.to_run.contains(&c) {
                        self.to_run.push(c);
                    }
                }
                Pick::Evict(c) => {
                    core.with_conn(c, self, |entry, ctx| entry.conn.close_idle(ctx));
                    core.remove(c, self);
                }
                Pick::Connect => self.open(core, host_key),
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
                                .set(at, Timer::Host(host_key), &mut core.timers);
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
    fn open(&mut self, core: &mut Core<Self>, host_key: usize) {
        let Some(addrs) = self.hosts.get(host_key).and_then(|h| h.addrs.clone()) else {
            return;
        };
        let mut last = None;
        for (i, &addr) in addrs.iter().enumerate() {
            let io = match self.dial(host_key, addr) {
                Ok(io) => io,
                Err(e) => {
                    last = Some((addr, e));
                    continue;
                }
            };
            let settings = &self.settings;
            let inserted = core.insert(io, |key, core| {
                let mut conn = Conn::new(key, host_key, settings, &mut core.timers, core.now);
                conn.dial = Some(Dial {
                    addrs: Arc::clone(&addrs),
                    next: i + 1,
                    addr,
                });
                conn
            });
            match inserted {
                Ok(key) => {
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

    /// Starts connecting to `addr` for the host: TCP, with TLS over it for
    /// an `https://` host.
    fn dial(&mut self, host_key: usize, addr: SocketAddr) -> io::Result<Stream> {
        let tcp = Tcp::connect(addr)?;
        #[cfg(feature = "__tls")]
        if let Some(host) = self.hosts.get(host_key).filter(|h| h.https) {
            let name = host.name.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let config = match &self.tls {
                Some(config) => config,
                None => self
                    .tls
                    .insert(self.settings.tls.build(self.settings.http2)?),
            };
            let tls = crate::transport::Tls::connect(tcp, config, name)?;
            return Ok(Stream::Tls(Box::new(tls)));
        }
        #[cfg(not(feature = "__tls"))]
        let _ = host_key;
        Ok(Stream::Tcp(tcp))
    }

    /// A connecting socket reported an event: connected, failed, or
    /// (spuriously) neither yet.
    fn check_connect(&mut self, core: &mut Core<Self>, key: usize) {
        let Some(entry) = core.conns.get_mut(key) else {
            return;
        };
        match entry.io.tcp().connect_result() {
            None => return,
            Some(Err(e)) => return self.connect_failed(core, key, Some(e)),
            Some(Ok(())) => {}
        }
        let host_key = entry.conn.host;
        let (https, proto) = self
            .hosts
            .get(host_key)
            .map_or((false, Proto::Http1), |h| (h.https, h.proto));
        // Over TLS, ALPN decides (the host counts the connection as
        // connecting until it has).
        let alpn = https && self.settings.http2 && cfg!(feature = "__tls");
        let h2_prior = !https && proto == Proto::Http2;
        core.with_conn(key, self, |entry, ctx| {
            entry.conn.connected(alpn, h2_prior, ctx)
        });
        if !alpn {
            if let Some(host) = self.hosts.get_mut(host_key) {
                host.connecting -= 1;
            }
        }
        core.run_conn(key, self);
        self.mark(host_key);
    }

    /// Connecting failed (`None`: timed out). Other addresses of the host
    /// are tried first; when none is left, the first waiting exchange gets
    /// the error.
    fn connect_failed(&mut self, core: &mut Core<Self>, key: usize, error: Option<io::Error>) {
        // Refused or timed out alike: every address gets its turn, each
        // with its own connect timeout.
        let addr = loop {
            let Some(entry) = core.conns.get_mut(key) else {
                return;
            };
            let dial = entry
                .conn
                .dial
                .as_mut()
                .expect("a connecting connection dials");
            if dial.next >= dial.addrs.len() {
                break dial.addr;
            }
            let addr = dial.addrs[dial.next];
            dial.next += 1;
            let host_key = core.conns[key].conn.host;
            let Ok(io) = self.dial(host_key, addr) else {
                continue;
            };
            if core.replace_io(key, io).is_ok() {
                let conn = &mut core.conns[key].conn;
                if let Some(dial) = conn.dial.as_mut() {
                    dial.addr = addr;
                }
                conn.restart_connect(core.now, &self.settings, &mut core.timers);
                return;
            }
        };
        let host_key = core.conns[key].conn.host;
        if let Some(host) = self.hosts.get_mut(host_key) {
            host.connecting -= 1;
        }
        core.remove(key, self);
        let err = match error {
            None => Error::ConnectTimeout,
            Some(e) => connect_error(addr, e),
        };
        self.fail_waiting(host_key, err);
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
}

fn connect_error(addr: SocketAddr, error: io::Error) -> Error {
    if error.kind() == io::ErrorKind::ConnectionRefused {
        Error::Refused(addr)
    } else {
        Error::Connect { addr, error }
    }
}
