//! Name resolution off the loop thread.
//!
//! `ToSocketAddrs` blocks (it calls `getaddrinfo`), so lookups run on one
//! helper thread, started with the first lookup. Each result is sent back
//! on a channel and the loop is woken through its `Shared` (the same wake
//! path as [`Control`](crate::Control)). IP literals never come here.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::control::Shared;

/// A finished lookup.
pub(crate) struct Resolved {
    /// The host pool that asked.
    pub host: usize,
    pub name: Box<str>,
    pub port: u16,
    pub result: io::Result<Vec<SocketAddr>>,
}

struct Job {
    host: usize,
    name: Box<str>,
    port: u16,
}

/// The loop's handle on the resolver thread.
pub(crate) struct Resolver {
    /// `None` until the thread is started.
    jobs: Option<Sender<Job>>,
    results: Sender<Resolved>,
    shared: Arc<Shared>,
}

impl Resolver {
    /// A resolver whose results arrive on the returned channel.
    pub(crate) fn new(shared: Arc<Shared>) -> (Resolver, Receiver<Resolved>) {
        let (results, rx) = crossbeam_channel::unbounded();
        let resolver = Resolver {
            jobs: None,
            results,
            shared,
        };
        (resolver, rx)
    }

    /// Looks `name` up for `host`; the answer comes back as a [`Resolved`].
    /// `name` is a host name or an IPv6 literal without brackets.
    pub(crate) fn resolve(&mut self, host: usize, name: &str, port: u16) -> io::Result<()> {
        let job = Job {
            host,
            name: name.into(),
            port,
        };
        if let Some(jobs) = &self.jobs {
            if let Err(e) = jobs.send(job) {
                // The thread is gone (a panic in the system resolver?):
                // start another one.
                self.jobs = None;
                return self.start(e.into_inner());
            }
            return Ok(());
        }
        self.start(job)
    }

    fn start(&mut self, first: Job) -> io::Result<()> {
        let (jobs, rx) = crossbeam_channel::unbounded();
        let results = self.results.clone();
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("nextloop-client-resolve".into())
            .spawn(move || run(rx, results, shared))?;
        jobs.send(first)
            .map_err(|_| io::Error::other("resolver thread ended"))?;
        self.jobs = Some(jobs);
        Ok(())
    }
}

/// The resolver thread: one lookup at a time, until the loop drops its
/// end of the job channel.
fn run(jobs: Receiver<Job>, results: Sender<Resolved>, shared: Arc<Shared>) {
    for job in jobs {
        let result = (&*job.name, job.port)
            .to_socket_addrs()
            .map(|addrs| addrs.collect::<Vec<_>>());
        let resolved = Resolved {
            host: job.host,
            name: job.name,
            port: job.port,
            result,
        };
        if results.send(resolved).is_err() {
            return;
        }
        shared.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lookups_come_back_with_a_wake_up() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let (shared, _) = Shared::new(waker, 1);
        let (mut resolver, results) = Resolver::new(shared);
        resolver.resolve(3, "localhost", 8080).unwrap();
        // An empty name fails in the C library itself: no query leaves
        // the machine (a made-up name would go out to a DNS server).
        resolver.resolve(4, "", 80).unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(!events.is_empty(), "woken");
        let first = results.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((first.host, first.port), (3, 8080));
        let addrs = first.result.unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        let second = results.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(&*second.name, "");
        assert!(second.result.is_err() || second.result.unwrap().is_empty());
    }
}
