//! The server's side of the reactor: accepting, the exchange slots that
//! `Control`s address, deadlines, graceful shutdown. Socket I/O and the
//! loop itself are the shared reactor's (`rt/reactor.rs`).

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::{Interest, Poll, Token};
use slab::Slab;

use super::conn::{Clock, Conn, Ctx, Want};
use super::{Addrs, Handler, HandlerFactory, Settings};
use crate::control::{Lease, LoopHandle, Shared};
use crate::proto::date::DateCache;
use crate::rt::buf::BufPool;
use crate::rt::reactor::{Entry, Handover, WAKER};
use crate::rt::timer::{after, Timers};
use crate::rt::{Core, Role};
use crate::transport::listener::{Accepted, Listener};
use crate::transport::{Stream, Tcp};
use crate::{Detached, Next};

use signals::Signals;

const LISTENER: Token = Token(usize::MAX - 1);
/// SIGINT and SIGTERM, with `Server::shutdown_on_signals`.
const SIGNALS: Token = Token(usize::MAX - 2);

/// Connections accepted in one turn at most: a backlog of thousands is
/// taken over several turns, with the connections already open served in
/// between.
const ACCEPTS_PER_TURN: usize = 256;

/// How long to wait before accepting again after the process ran out of
/// file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The server role: what the reactor does not know about serving.
pub(crate) struct Server<F: HandlerFactory> {
    listener: Option<Listener>,
    /// The listener's address: every connection's own, unless it is a
    /// wildcard (`0.0.0.0`, `[::]`); then each connection is asked.
    local: Option<SocketAddr>,
    factory: F,
    settings: Settings,
    date: DateCache,
    /// This turn's time and the deadlines it gives.
    clock: Clock,
    /// Exchange slots, each naming the connection its exchange runs on: a
    /// `Control` addresses a slot (and its generation), not a connection,
    /// so a connection carrying several exchanges (HTTP/2 streams) gives
    /// each its own. An HTTP/1 connection holds one slot for its life and
    /// retires its generation at the end of each exchange.
    exchanges: Slab<usize>,
    /// Where HTTP/2 header blocks are decoded: one per loop.
    h2_scratch: Option<Box<crate::proto::h2::Scratch>>,
    /// The listener is readable, or a slot came free while paused: accept
    /// at the end of this turn.
    accept_ready: bool,
    /// Accepting is paused (connection limit, or out of descriptors until
    /// the given time).
    accept_paused: Option<Option<Instant>>,
    /// Shutting down: `Some(deadline)`, where `None` inside means the
    /// grace period never ends.
    shutdown_at: Option<Option<Instant>>,
    /// SIGINT and SIGTERM, if the loop watches them.
    signals: Option<Signals>,
    /// A signal has started the shutdown: the next one exits.
    signalled: bool,
}

/// What a loop is made of before it runs: everything here is `Send`, so
/// it can be built on the caller's thread (which needs the bound address
/// and the `Shared` handle) and the loop itself on its own (handlers need
/// not be `Send`).
pub(crate) struct Parts<F> {
    poll: Poll,
    listener: Listener,
    factory: F,
    lease: Lease,
    settings: Settings,
    signals: Option<Signals>,
}

impl<F: HandlerFactory> Parts<F> {
    pub(crate) fn new(
        mut listener: Listener,
        factory: F,
        settings: Settings,
    ) -> io::Result<Parts<F>> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let signals = match settings.signals {
            true => Some(signals::watch(poll.registry(), SIGNALS)?),
            false => None,
        };
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let lease = Lease::take(waker, exchange_slots(&settings));
        Ok(Parts {
            poll,
            listener,
            factory,
            lease,
            settings,
            signals,
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
        let pool = BufPool::new(
            super::conn::read_size(&settings),
            2 * settings.write_high_water,
            1024,
        );
        let core = Core::new(self.poll, self.lease, pool, settings.write_high_water);
        let local = self.listener.tcp_addr();
        let local = local.filter(|a| !a.ip().is_unspecified());
        let mut server = Server {
            listener: Some(self.listener),
            local,
            factory: self.factory,
            clock: Clock::new(core.now, &settings),
            settings,
            date: DateCache::new(),
            exchanges: Slab::new(),
            h2_scratch: None,
            accept_ready: false,
            accept_paused: None,
            shutdown_at: None,
            signals: self.signals,
            signalled: false,
        };
        core.run(&mut server)
    }
}

/// Exchange slots a loop's `Control`s can address: one per connection,
/// and with HTTP/2 room for streams besides (a stream that finds none
/// free is refused with REFUSED_STREAM).
fn exchange_slots(settings: &Settings) -> usize {
    let conns = settings.max_connections;
    match settings.http2 {
        Some(_) => conns
            .saturating_mul(4)
            .clamp(4096, crate::control::MAX_SLOTS),
        None => conns,
    }
}

impl<H: Handler> Handover for H {
    fn take(self, conn: Detached) {
        self.on_remove(conn);
    }
}

impl<F: HandlerFactory> Role for Server<F> {
    type Ctx<'a> = Ctx<'a, F>;
    type Conn = Conn<F::Output>;
    type Timer = usize;
    type Handover = F::Output;

    fn ctx<'a>(
        &'a mut self,
        pool: &'a mut BufPool,
        timers: &'a mut Timers,
        shared: &'static Shared,
        now: Instant,
    ) -> Ctx<'a, F> {
        debug_assert_eq!(self.clock.now, now, "the clock is set once per turn");
        Ctx {
            factory: &mut self.factory,
            shared,
            settings: &self.settings,
            date: &self.date,
            pool,
            timers,
            clock: &self.clock,
            shutting_down: self.shutdown_at.is_some(),
            exchanges: &mut self.exchanges,
            h2_scratch: &mut self.h2_scratch,
        }
    }

    fn begin_turn(&mut self, core: &mut Core<Self>) {
        self.date.refresh(core.now);
        self.clock = Clock::new(core.now, &self.settings);
    }

    fn on_token(&mut self, core: &mut Core<Self>, token: Token) {
        // Accepted after the batch: a connection accepted now could take
        // the slot of one removed earlier in the batch, and a later event
        // of the old one hit it.
        self.accept_ready |= token == LISTENER;
        if token == SIGNALS {
            self.on_signals(core);
        }
    }

    fn on_wake(&mut self, core: &mut Core<Self>) {
        // Here, not wherever the flag is seen first: a request sent before
        // `shutdown()` has its readiness in this batch or an earlier one,
        // ahead of this wake-up, so its connection is busy by now.
        if core.lease.shutdown_requested() && self.shutdown_at.is_none() {
            self.begin_shutdown(core);
        }
    }

    fn on_control(&mut self, core: &mut Core<Self>, slot: usize, next: Next) -> Option<usize> {
        let key = *self.exchanges.get(slot)?;
        core.with_conn(key, self, |entry, ctx| entry.conn.wake(slot, next, ctx))?;
        Some(key)
    }

    fn on_timer(&mut self, core: &mut Core<Self>, key: usize, at: Instant) {
        let now = core.now;
        let Some(entry) = core.conns.get_mut(key) else {
            return;
        };
        if !core.timers.fires(at, now, key, entry.conn.deadline()) {
            return;
        }
        match core.with_conn(key, self, |entry, ctx| entry.conn.on_deadline(ctx)) {
            Some(Some(Want::Remove)) => core.remove(key, self),
            _ => core.run_conn(key, self),
        }
    }

    fn owns_timer(&self, conns: &Slab<Entry<Self::Conn>>, at: Instant, key: usize) -> bool {
        conns.get(key).is_some_and(|e| e.conn.owns_deadline(at))
    }

    fn timer_owners(&self, conns: &Slab<Entry<Self::Conn>>) -> usize {
        conns.len()
    }

    fn on_removed(
        &mut self,
        core: &mut Core<Self>,
        _key: usize,
        conn: &mut Self::Conn,
    ) -> Option<F::Output> {
        if self.accept_paused == Some(None) {
            // At the end of this turn (see `end_turn`).
            self.accept_ready = true;
        }
        let now = core.now;
        let mut ctx = self.ctx(&mut core.pool, &mut core.timers, core.shared, now);
        // (An HTTP/2 connection's streams give up their slots here.)
        let handler = conn.remove(&mut ctx);
        // Its exchange slot goes, and with it every `Control` for it.
        core.shared.retire(conn.slot());
        self.exchanges.remove(conn.slot());
        handler
    }

    fn busy(&self) -> bool {
        self.accept_ready
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.shutdown_at.flatten(), self.accept_paused.flatten()]
            .into_iter()
            .flatten()
            .min()
    }

    fn end_turn(&mut self, core: &mut Core<Self>) -> Option<io::Result<()>> {
        let now = core.now;
        if let Some(Some(at)) = self.accept_paused {
            self.accept_ready |= at <= now;
        }
        if std::mem::take(&mut self.accept_ready) {
            self.accept(core);
        }
        let deadline = self.shutdown_at?;
        if core.conns.is_empty() {
            return Some(Ok(()));
        }
        if deadline.is_some_and(|at| at <= now) {
            self.force_close(core);
            return Some(Ok(()));
        }
        None
    }
}

impl<F: HandlerFactory> Server<F> {
    fn accept(&mut self, core: &mut Core<Self>) {
        self.accept_paused = None;
        for _ in 0..ACCEPTS_PER_TURN {
            let Some(listener) = &self.listener else {
                return;
            };
            if core.conns.len() >= self.settings.max_connections {
                self.accept_paused = Some(None);
                return;
            }
            let accepted = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient_accept_error(&e) => {
                    log::debug!("accept: {e} (that connection only)");
                    continue;
                }
                Err(e) => {
                    // Out of descriptors or memory: the pending connections
                    // stay in the backlog; try again shortly.
                    log::error!("accept: {e}; accepting again in {ACCEPT_BACKOFF:?}");
                    self.accept_paused = Some(Some(core.now + ACCEPT_BACKOFF));
                    return;
                }
            };
            let (io, addrs) = match accepted {
                Accepted::Tcp(sock, remote) => {
                    let Some(local) = self.local.or_else(|| sock.local_addr().ok()) else {
                        continue;
                    };
                    let tcp = Tcp::accepted(sock, self.settings.nodelay);
                    #[cfg(feature = "__tls")]
                    let io = match &self.settings.tls {
                        Some(config) => match crate::transport::Tls::accepted(tcp, config) {
                            Ok(tls) => Stream::Tls(Box::new(tls)),
                            Err(_) => continue,
                        },
                        None => Stream::Tcp(tcp),
                    };
                    #[cfg(not(feature = "__tls"))]
                    let io = Stream::Tcp(tcp);
                    (io, Addrs { remote, local })
                }
                #[cfg(unix)]
                Accepted::Unix(sock) => (
                    Stream::Unix(crate::transport::Plain::new(sock)),
                    Addrs::UNIX,
                ),
            };
            #[cfg(feature = "__tls")]
            let secure = matches!(io, Stream::Tls(_));
            #[cfg(not(feature = "__tls"))]
            let secure = false;
            let exchanges = &mut self.exchanges;
            let clock = &self.clock;
            let h2 = self.settings.http2.is_some();
            let _ = core.insert(io, |key, core| {
                let slot = exchanges.insert(key);
                Conn::new(key, slot, addrs, secure, h2, &mut core.timers, clock)
            });
        }
        // The share of this turn is used, the backlog maybe not: the
        // listener's readiness will not be reported again, so go on next
        // turn (without waiting in `poll`).
        self.accept_ready = true;
    }

    fn begin_shutdown(&mut self, core: &mut Core<Self>) {
        self.shutdown_at = Some(after(core.now, self.settings.shutdown_grace));
        if let Some(mut listener) = self.listener.take() {
            let _ = core.poll.registry().deregister(&mut listener);
        }
        let idle: Vec<usize> = core
            .conns
            .iter()
            .filter(|(_, e)| e.conn.is_idle())
            .map(|(key, _)| key)
            .collect();
        for key in idle {
            core.remove(key, self);
        }
        // HTTP/2 connections say GOAWAY (and go on with their streams).
        let busy: Vec<usize> = core.conns.iter().map(|(key, _)| key).collect();
        for key in busy {
            core.with_conn(key, self, |entry, ctx| entry.conn.begin_shutdown(ctx));
            core.run_conn(key, self);
        }
    }

    /// SIGINT or SIGTERM: the first starts a graceful shutdown, the next
    /// ends the process at once (status 128 + the signal, as a shell says).
    fn on_signals(&mut self, core: &mut Core<Self>) {
        let Some(signals) = &mut self.signals else {
            return;
        };
        let mut first = None;
        for signal in signals.pending() {
            if self.signalled {
                log::warn!("signal {signal} again: exiting without waiting for the grace");
                std::process::exit(128 + signal);
            }
            self.signalled = true;
            first = Some(signal);
        }
        let Some(signal) = first else {
            return;
        };
        log::info!("signal {signal}: shutting down gracefully");
        if self.shutdown_at.is_none() {
            self.begin_shutdown(core);
        }
    }

    /// The grace period is over: every connection left is closed.
    fn force_close(&mut self, core: &mut Core<Self>) {
        let keys: Vec<usize> = core.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            core.conns[key].conn.on_shutdown_deadline();
            core.remove(key, self);
        }
    }
}

/// Accept errors that concern only the connection being accepted.
fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// The signals a loop watches: a mio source (a self-pipe written by the
/// signal handler, `signal-hook`), so the loop itself notices them and no
/// thread is started for it. Each loop of a server has its own, and each
/// gets every signal.
mod signals {
    use std::io;

    use mio::{Interest, Registry, Token};

    #[cfg(unix)]
    pub(super) use signal_hook_mio::v1_0::Signals;

    /// Registers SIGINT and SIGTERM with `registry` under `token`.
    #[cfg(unix)]
    pub(super) fn watch(registry: &Registry, token: Token) -> io::Result<Signals> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        registry.register(&mut signals, token, Interest::READABLE)?;
        Ok(signals)
    }

    /// Nothing to watch off Unix.
    #[cfg(not(unix))]
    pub(super) struct Signals;

    #[cfg(not(unix))]
    impl Signals {
        pub(super) fn pending(&mut self) -> std::iter::Empty<i32> {
            std::iter::empty()
        }
    }

    #[cfg(not(unix))]
    pub(super) fn watch(_: &Registry, _: Token) -> io::Result<Signals> {
        Ok(Signals)
    }
}
