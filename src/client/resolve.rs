//! Name resolution off the loop thread.
//!
//! `ToSocketAddrs` blocks (it calls `getaddrinfo`), so lookups run on
//! helper threads: started as lookups need them, up to [`MAX_THREADS`], so
//! that one slow name does not hold up the others. Each result is sent
//! back on a channel and the loop is woken through its `Shared` (the same
//! wake path as [`Control`](crate::Control)). The loop bounds each lookup
//! by the connect timeout; IP literals and pinned names never come here.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::control::LoopHandle;
use crate::rt::guard::guard;

/// Lookups running at once, at most.
const MAX_THREADS: usize = 4;

/// A host name (or an IPv6 literal without brackets) and a port to
/// addresses.
type LookupFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// The lookup function the resolver threads call.
#[derive(Clone)]
pub(crate) struct Lookup(pub Arc<LookupFn>);

impl Lookup {
    /// The system resolver (`getaddrinfo`).
    pub(crate) fn system() -> Lookup {
        Lookup(Arc::new(|name: &str, port: u16| {
            (name, port).to_socket_addrs().map(|addrs| addrs.collect())
        }))
    }
}

impl fmt::Debug for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Lookup(..)")
    }
}

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

/// The loop's handle on the resolver threads.
pub(crate) struct Resolver {
    lookup: Lookup,
    jobs: Sender<Job>,
    /// The threads' end of `jobs`, handed to each new thread.
    queue: Receiver<Job>,
    results: Sender<Resolved>,
    handle: LoopHandle,
    threads: usize,
    /// Threads waiting for a job that no job sent yet is counted against:
    /// a thread adds one when it comes back for more, `resolve` takes one
    /// for each job it sends (or starts a thread for it).
    idle: Arc<AtomicUsize>,
}

impl Resolver {
    /// A resolver using `lookup`, whose results arrive on the returned
    /// channel.
    pub(crate) fn new(handle: LoopHandle, lookup: Lookup) -> (Resolver, Receiver<Resolved>) {
        let (results, rx) = crossbeam_channel::unbounded();
        let (jobs, queue) = crossbeam_channel::unbounded();
        let resolver = Resolver {
            lookup,
            jobs,
            queue,
            results,
            handle,
            threads: 0,
            idle: Arc::new(AtomicUsize::new(0)),
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
        // An idle thread takes it; with every thread spoken for, a new one
        // does, up to the maximum (past it, the job waits its turn).
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed && self.threads < MAX_THREADS {
            self.start()?;
        }
        self.jobs
            .send(job)
            .map_err(|_| io::Error::other("resolver threads ended"))
    }

    fn start(&mut self) -> io::Result<()> {
        let worker = Worker {
            lookup: self.lookup.clone(),
            jobs: self.queue.clone(),
            results: self.results.clone(),
            handle: self.handle,
            idle: Arc::clone(&self.idle),
        };
        std::thread::Builder::new()
            .name("nextloop-client-resolve".into())
            .spawn(move || worker.run())?;
        self.threads += 1;
        Ok(())
    }
}

/// One resolver thread.
struct Worker {
    lookup: Lookup,
    jobs: Receiver<Job>,
    results: Sender<Resolved>,
    handle: LoopHandle,
    idle: Arc<AtomicUsize>,
}

impl Worker {
    /// One lookup at a time, until the loop drops its end of the jobs.
    /// It was started for a job already sent: it counts itself idle only
    /// when it comes back for the next.
    fn run(self) {
        loop {
            let Ok(job) = self.jobs.recv() else {
                return;
            };
            let lookup = &self.lookup.0;
            let result = guard(|| lookup(&job.name, job.port))
                .unwrap_or_else(|()| Err(io::Error::other("the resolver panicked")));
            let resolved = Resolved {
                host: job.host,
                name: job.name,
                port: job.port,
                result,
            };
            if self.results.send(resolved).is_err() {
                return;
            }
            self.handle.wake();
            self.idle.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Lease;
    use std::time::Duration;

    #[test]
    fn lookups_come_back_with_a_wake_up() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let lease = Lease::take(waker, 1);
        let (mut resolver, results) = Resolver::new(lease.handle(), Lookup::system());
        resolver.resolve(3, "localhost", 8080).unwrap();
        // An empty name fails in the C library itself: no query leaves
        // the machine (a made-up name would go out to a DNS server).
        resolver.resolve(4, "", 80).unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(10)))
            .unwrap();
        assert!(!events.is_empty(), "woken");
        // Two threads: the answers come back in either order.
        let mut answers: Vec<Resolved> = (0..2)
            .map(|_| results.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        answers.sort_by_key(|r| r.host);
        let [localhost, empty] = <[Resolved; 2]>::try_from(answers).ok().unwrap();
        assert_eq!((localhost.host, localhost.port), (3, 8080));
        let addrs = localhost.result.unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert_eq!((empty.host, &*empty.name), (4, ""));
        assert!(empty.result.is_err() || empty.result.unwrap().is_empty());
    }

    /// A resolver with `lookup` (and the poll its wake-ups go to).
    fn with_lookup(
        lookup: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> ((mio::Poll, Lease), Resolver, Receiver<Resolved>) {
        let poll = mio::Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), mio::Token(0)).unwrap();
        let lease = Lease::take(waker, 1);
        let (resolver, results) = Resolver::new(lease.handle(), Lookup(Arc::new(lookup)));
        ((poll, lease), resolver, results)
    }

    /// Waits until a thread is back waiting for a job.
    fn wait_idle(resolver: &Resolver) {
        let start = std::time::Instant::now();
        while resolver.idle.load(Ordering::Acquire) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the thread is gone"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn localhost(port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    }

    #[test]
    fn a_panicking_lookup_is_an_error_and_the_thread_goes_on() {
        let (_poll, mut resolver, results) = with_lookup(|name, port| {
            assert_ne!(name, "panic", "a resolver bug");
            localhost(port)
        });
        resolver.resolve(1, "panic", 1).unwrap();
        let first = results.recv_timeout(Duration::from_secs(10)).unwrap();
        let error = first.result.unwrap_err();
        assert_eq!(error.to_string(), "the resolver panicked");
        wait_idle(&resolver);
        resolver.resolve(2, "fine", 2).unwrap();
        let second = results.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(second.result.unwrap(), localhost(2).unwrap());
        assert_eq!(resolver.threads, 1, "the idle thread took the second job");
    }

    #[test]
    fn a_job_sent_to_the_only_idle_thread_gets_a_new_thread_for_the_next() {
        let (_poll, mut resolver, results) = with_lookup(|name, port| {
            if name == "slow" {
                std::thread::sleep(Duration::from_secs(2));
            }
            localhost(port)
        });
        // One thread, idle again after a first lookup.
        resolver.resolve(1, "warm", 1).unwrap();
        results.recv_timeout(Duration::from_secs(10)).unwrap();
        wait_idle(&resolver);
        // Two jobs in one go: the idle thread takes one, a new one the other.
        resolver.resolve(2, "slow", 2).unwrap();
        resolver.resolve(3, "fast", 3).unwrap();
        assert_eq!(resolver.threads, 2);
        let first = results.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(first.host, 3, "the fast name waited for the slow one");
    }
}
