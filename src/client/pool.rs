//! The connection pool: one [`Host`] per (host, port) with its open
//! connections, the exchanges waiting for one, and the addresses it
//! resolved to; [`Host::pick`] decides what the first waiting exchange
//! gets.
//!
//! The rules: an idle connection is reused first (the most recently used,
//! the likeliest to be still open); else, with pipelining on, a connection
//! whose requests in flight allow one more; else a new connection if the
//! host is under its maximum and not already connecting one for each
//! waiting exchange; else the exchange waits for a connection to free up.
//!
//! An exchange being sent again (its connection failed under it, perhaps
//! a pooled one the server had closed) takes only a fresh connection: one
//! on which no exchange has completed yet, idle, else a new one. At the
//! maximum, an idle used connection is closed to make room for it.
//! A connection that saw anything while idle (bytes, the server closing,
//! an error) or that ended an exchange in a state that does not allow
//! another is closed, never put back (see `conn.rs`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use crate::client::url::Url;
use crate::rt::timer::Deadline;

/// How long resolved addresses are used for new connections before the
/// name is looked up again.
const DNS_TTL: Duration = Duration::from_secs(60);

/// What a host's connections speak, as far as the client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    /// Not known yet: `https://`, where ALPN decides on each connection.
    Unknown,
    Http1,
    /// HTTP/2: by prior knowledge, or as ALPN chose.
    Http2,
}

/// One (host, port).
pub(crate) struct Host {
    /// As in the URL, lower-cased; IPv6 literals in brackets.
    pub name: Box<str>,
    pub port: u16,
    /// Connections to it speak TLS (`https://`).
    pub https: bool,
    /// What its connections speak. While it may be HTTP/2 (unknown, or
    /// known), a connection being opened is waited for rather than
    /// another opened beside it: one HTTP/2 connection carries them all.
    pub proto: Proto,
    /// Exchanges waiting for a connection, in arrival order.
    pub waiting: VecDeque<usize>,
    /// Connections, connecting or connected, least recently added first.
    pub open: Vec<usize>,
    /// How many of `open` are still connecting.
    pub connecting: usize,
    /// Where to connect: the IP literal, or what the name resolved to.
    pub addrs: Option<Arc<[SocketAddr]>>,
    /// When `addrs` was resolved (`None` for an IP literal).
    pub resolved_at: Option<Instant>,
    /// A lookup is running on a resolver thread.
    pub resolving: bool,
    /// When the running lookup is given up (the connect timeout).
    pub lookup_deadline: Deadline,
    /// Queued for a dispatch this turn.
    pub queued: bool,
}

/// What an open connection can offer the first waiting exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Nothing: connecting, or busy.
    Busy,
    /// A place behind the requests in flight (pipelining).
    Pipeline {
        /// An exchange has completed on it.
        reused: bool,
    },
    /// It is idle.
    Idle {
        /// An exchange has completed on it.
        reused: bool,
    },
}

/// What the first waiting exchange of a host gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// This idle connection.
    Idle(usize),
    /// A place behind the requests in flight on this connection.
    Pipeline(usize),
    /// A new connection.
    Connect,
    /// A new connection, once the name is (re)resolved.
    Resolve,
    /// Close this idle connection to make room for a new one.
    Evict(usize),
    /// Nothing yet.
    Wait,
}

impl Host {
    fn new(url: &Url, proto: Proto) -> Host {
        Host {
            name: url.host().into(),
            port: url.port(),
            https: url.is_https(),
            proto,
            waiting: VecDeque::new(),
            open: Vec::new(),
            connecting: 0,
            addrs: url
                .ip()
                .map(|ip| Arc::from([SocketAddr::new(ip, url.port())].as_slice())),
            resolved_at: None,
            resolving: false,
            lookup_deadline: Deadline::default(),
            queued: false,
        }
    }

    /// What the first waiting exchange gets, given what each connection
    /// offers; `fresh_only` if it is being sent again. `max_per_host`:
    /// connections at most (for HTTP/2, the HTTP/2 limit).
    pub(crate) fn pick(
        &self,
        max_per_host: usize,
        now: Instant,
        fresh_only: bool,
        offer: impl Fn(usize) -> Offer,
    ) -> Pick {
        if self.waiting.is_empty() {
            return Pick::Wait;
        }
        let takes = |reused: bool| !(fresh_only && reused);
        let idle = self
            .open
            .iter()
            .rev()
            .find(|&&c| matches!(offer(c), Offer::Idle { reused } if takes(reused)));
        if let Some(&c) = idle {
            return Pick::Idle(c);
        }
        let behind = self
            .open
            .iter()
            .find(|&&c| matches!(offer(c), Offer::Pipeline { reused } if takes(reused)));
        if let Some(&c) = behind {
            return Pick::Pipeline(c);
        }
        if self.proto != Proto::Http1 && self.connecting > 0 {
            // The connection being opened may carry every request (it
            // speaks HTTP/2, or ALPN may yet say so).
            return Pick::Wait;
        }
        if self.open.len() >= max_per_host {
            // The least recently used idle one makes room — unless a
            // connection is already being opened for the waiting ones.
            if fresh_only && self.connecting < self.waiting.len() {
                let used = self
                    .open
                    .iter()
                    .find(|&&c| matches!(offer(c), Offer::Idle { .. }));
                if let Some(&c) = used {
                    return Pick::Evict(c);
                }
            }
            return Pick::Wait;
        }
        if self.connecting >= self.waiting.len() {
            return Pick::Wait;
        }
        if self.resolving {
            return Pick::Wait;
        }
        let stale = self
            .resolved_at
            .is_some_and(|at| now.saturating_duration_since(at) > DNS_TTL);
        if self.addrs.is_none() || stale {
            Pick::Resolve
        } else {
            Pick::Connect
        }
    }

    /// Nothing refers to this host any more.
    fn unused(&self) -> bool {
        self.open.is_empty() && self.waiting.is_empty() && !self.resolving && !self.queued
    }
}

/// Every host the client talks to.
#[derive(Default)]
pub(crate) struct Hosts {
    hosts: Slab<Host>,
}

impl Hosts {
    /// The host of `url` (scheme, name and port), added if new (speaking
    /// `proto`, as far as known). Hosts are few: a scan, which allocates
    /// nothing, beats hashing here.
    pub(crate) fn find_or_insert(&mut self, url: &Url, proto: Proto) -> usize {
        let found = self.hosts.iter().find(|(_, h)| {
            h.port == url.port() && h.https == url.is_https() && *h.name == *url.host()
        });
        match found {
            Some((key, _)) => key,
            None => self.hosts.insert(Host::new(url, proto)),
        }
    }

    pub(crate) fn get(&self, key: usize) -> Option<&Host> {
        self.hosts.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Host> {
        self.hosts.get_mut(key)
    }

    /// How many hosts there are.
    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Forgets the host if nothing refers to it.
    pub(crate) fn remove_if_unused(&mut self, key: usize) {
        if self.hosts.get(key).is_some_and(Host::unused) {
            self.hosts.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(url: &str) -> Host {
        Host::new(&Url::parse(url).unwrap(), Proto::Http1)
    }

    const BUSY: fn(usize) -> Offer = |_| Offer::Busy;
    const USED: Offer = Offer::Idle { reused: true };
    const FRESH: Offer = Offer::Idle { reused: false };

    #[test]
    fn nothing_waiting_nothing_to_do() {
        let h = host("http://127.0.0.1/");
        assert_eq!(h.pick(8, Instant::now(), false, |_| USED), Pick::Wait);
    }

    #[test]
    fn idle_first_most_recent_first_then_pipeline_then_connect() {
        let mut h = host("http://127.0.0.1/");
        h.waiting.push_back(7);
        let now = Instant::now();
        assert_eq!(h.pick(8, now, false, BUSY), Pick::Connect);
        h.open = vec![1, 2, 3];
        let offer = |c| match c {
            3 => Offer::Pipeline { reused: true },
            _ => USED,
        };
        assert_eq!(h.pick(8, now, false, offer), Pick::Idle(2));
        let offer = |c| match c {
            3 => Offer::Pipeline { reused: true },
            _ => Offer::Busy,
        };
        assert_eq!(h.pick(8, now, false, offer), Pick::Pipeline(3));
        assert_eq!(h.pick(3, now, false, BUSY), Pick::Wait);
        assert_eq!(h.pick(4, now, false, BUSY), Pick::Connect);
    }

    #[test]
    fn a_retried_exchange_takes_only_a_fresh_connection() {
        let mut h = host("http://127.0.0.1/");
        h.waiting.push_back(7);
        let now = Instant::now();
        h.open = vec![1, 2, 3];
        let offer = |c| match c {
            1 => FRESH,
            2 => USED,
            _ => Offer::Pipeline { reused: true },
        };
        assert_eq!(h.pick(8, now, false, offer), Pick::Idle(2));
        assert_eq!(h.pick(8, now, true, offer), Pick::Idle(1));
        let offer = |c| match c {
            1 => Offer::Busy,
            2 => USED,
            _ => Offer::Pipeline { reused: true },
        };
        // Under the maximum: a new one; the used one stays for others.
        assert_eq!(h.pick(8, now, true, offer), Pick::Connect);
        // At it: the used idle one makes room.
        assert_eq!(h.pick(3, now, true, offer), Pick::Evict(2));
        let offer = |c| match c {
            3 => Offer::Pipeline { reused: false },
            _ => Offer::Busy,
        };
        assert_eq!(h.pick(3, now, true, offer), Pick::Pipeline(3));
        assert_eq!(h.pick(3, now, true, BUSY), Pick::Wait);
    }

    #[test]
    fn one_connect_per_waiting_exchange_at_most() {
        let mut h = host("http://127.0.0.1/");
        h.waiting.extend([1, 2]);
        h.open = vec![10, 11];
        h.connecting = 2;
        assert_eq!(h.pick(8, Instant::now(), false, BUSY), Pick::Wait);
        h.waiting.push_back(3);
        assert_eq!(h.pick(8, Instant::now(), false, BUSY), Pick::Connect);
    }

    #[test]
    fn names_are_resolved_and_re_resolved_when_stale() {
        let mut h = host("http://localhost:8080/");
        h.waiting.push_back(1);
        let now = Instant::now();
        assert_eq!(h.pick(8, now, false, BUSY), Pick::Resolve);
        h.resolving = true;
        assert_eq!(h.pick(8, now, false, BUSY), Pick::Wait);
        h.resolving = false;
        h.addrs = Some(Arc::from(["127.0.0.1:8080".parse().unwrap()].as_slice()));
        h.resolved_at = Some(now);
        assert_eq!(h.pick(8, now, false, BUSY), Pick::Connect);
        let later = now + DNS_TTL + Duration::from_secs(1);
        assert_eq!(h.pick(8, later, false, BUSY), Pick::Resolve);
    }

    #[test]
    fn hosts_are_keyed_by_name_and_port() {
        let mut hosts = Hosts::default();
        let a = hosts.find_or_insert(&Url::parse("http://A/x").unwrap(), Proto::Http1);
        let b = hosts.find_or_insert(&Url::parse("http://a:80/y").unwrap(), Proto::Http1);
        let c = hosts.find_or_insert(&Url::parse("http://a:81/").unwrap(), Proto::Http1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        hosts.remove_if_unused(c);
        assert!(hosts.get(c).is_none());
    }

    #[test]
    fn a_host_that_may_speak_http2_waits_for_the_connection_being_opened() {
        let now = Instant::now();
        for proto in [Proto::Unknown, Proto::Http2] {
            let mut h = host("http://127.0.0.1/");
            h.proto = proto;
            h.waiting.extend([1, 2, 3]);
            assert_eq!(h.pick(8, now, false, BUSY), Pick::Connect);
            h.open = vec![10];
            h.connecting = 1;
            assert_eq!(h.pick(8, now, false, BUSY), Pick::Wait, "{proto:?}");
            // Once connected, it takes them (the connection's offer).
            h.connecting = 0;
            let offer = |_| Offer::Pipeline { reused: false };
            assert_eq!(h.pick(1, now, false, offer), Pick::Pipeline(10));
            assert_eq!(h.pick(1, now, false, BUSY), Pick::Wait);
        }
        let mut h = host("http://127.0.0.1/");
        h.waiting.extend([1, 2]);
        h.open = vec![10];
        h.connecting = 1;
        assert_eq!(
            h.pick(8, now, false, BUSY),
            Pick::Connect,
            "HTTP/1 opens more"
        );
    }

    #[test]
    fn no_eviction_while_a_connection_is_being_opened_for_it() {
        let mut h = host("http://127.0.0.1/");
        h.waiting.push_back(7);
        h.open = vec![1, 2];
        h.connecting = 1;
        let offer = |c| match c {
            1 => Offer::Busy,
            _ => USED,
        };
        let now = Instant::now();
        assert_eq!(h.pick(3, now, true, offer), Pick::Wait);
        assert_eq!(h.pick(2, now, true, offer), Pick::Wait);
        h.connecting = 0;
        assert_eq!(h.pick(2, now, true, offer), Pick::Evict(2));
    }
}
