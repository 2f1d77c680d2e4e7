//! Pull mode: [`Incoming`], a queue of requests you take when and on
//! whichever thread you like.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crossbeam_channel::{select_biased, Receiver, Sender, TryRecvError};

use super::Request;
use crate::server::Listening;

/// The requests of a running pull-mode server, from
/// [`Server::incoming`](super::Server::incoming).
///
/// Each [`Request`] carries its response: answer it with
/// [`respond`](Request::respond), or stream one with
/// [`take_response`](Request::take_response). A request dropped without
/// either is answered `500`. Requests wait in a bounded queue
/// ([`Server::queue`](super::Server::queue)); when it is full, the event
/// loop answers `503` with `Retry-After: 1` itself.
///
/// Iterate over `&Incoming` (or call [`recv`](Self::recv)) from as many
/// threads as you like; [`unblock`](Self::unblock) ends one of those
/// loops. `Incoming` is `Send` and `Sync`: share it with an `Arc` to
/// unblock from another thread.
///
/// ```no_run
/// use std::sync::Arc;
/// use nextloop::hypersync::Server;
///
/// let incoming = Arc::new(Server::bind("127.0.0.1:3000")?.incoming()?);
/// println!("listening on http://{}", incoming.addr());
///
/// let stopper = Arc::clone(&incoming);
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(60));
///     stopper.unblock(); // the loop below ends
/// });
///
/// for req in incoming.iter() {
///     req.respond(200, &[("Content-Type", "text/plain")], "Hello, World!")?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Dropping it shuts the server down; requests still queued are answered
/// `503`.
#[must_use = "dropping the `Incoming` shuts the server down"]
pub struct Incoming {
    requests: Receiver<Request>,
    unblock_tx: Sender<()>,
    unblock_rx: Receiver<()>,
    listening: Listening,
}

fn unblocked() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "unblocked")
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "server stopped")
}

impl Incoming {
    pub(crate) fn new(requests: Receiver<Request>, listening: Listening) -> Incoming {
        let (unblock_tx, unblock_rx) = crossbeam_channel::unbounded();
        Incoming {
            requests,
            unblock_tx,
            unblock_rx,
            listening,
        }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.listening.addr()
    }

    /// Waits for the next request.
    ///
    /// Fails with [`Interrupted`](io::ErrorKind::Interrupted) when
    /// [`unblock`](Self::unblock) was called, and with
    /// [`NotConnected`](io::ErrorKind::NotConnected) once the server has
    /// stopped and no request is left.
    ///
    /// ```no_run
    /// # let incoming = nextloop::hypersync::Server::bind("127.0.0.1:0")?.incoming()?;
    /// use std::io::ErrorKind;
    ///
    /// loop {
    ///     match incoming.recv() {
    ///         Ok(req) => req.respond(200, &[], "ok")?,
    ///         Err(e) if e.kind() == ErrorKind::Interrupted => break, // unblock()
    ///         Err(e) => return Err(e),                             // stopped
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv(&self) -> io::Result<Request> {
        select_biased! {
            recv(self.unblock_rx) -> _ => Err(unblocked()),
            recv(self.requests) -> req => req.map_err(|_| stopped()),
        }
    }

    /// Like [`recv`](Self::recv), giving up after `timeout` with `Ok(None)`.
    ///
    /// ```no_run
    /// # let incoming = nextloop::hypersync::Server::bind("127.0.0.1:0")?.incoming()?;
    /// use std::time::Duration;
    ///
    /// while let Some(req) = incoming.recv_timeout(Duration::from_secs(30))? {
    ///     req.respond(200, &[], "ok")?;
    /// }
    /// println!("idle for 30 s; stopping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<Request>> {
        select_biased! {
            recv(self.unblock_rx) -> _ => Err(unblocked()),
            recv(self.requests) -> req => req.map(Some).map_err(|_| stopped()),
            default(timeout) => Ok(None),
        }
    }

    /// The next request if one is queued, else `Ok(None)` at once. Never
    /// blocks, so never consumes an [`unblock`](Self::unblock).
    ///
    /// ```no_run
    /// # let incoming = nextloop::hypersync::Server::bind("127.0.0.1:0")?.incoming()?;
    /// // Answer what is queued, then go back to other work.
    /// while let Some(req) = incoming.try_recv()? {
    ///     req.respond(200, &[], "ok")?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_recv(&self) -> io::Result<Option<Request>> {
        match self.requests.try_recv() {
            Ok(req) => Ok(Some(req)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(stopped()),
        }
    }

    /// Wakes one thread blocked in [`recv`](Self::recv),
    /// [`recv_timeout`](Self::recv_timeout) or an iterator — or, if none
    /// is, the next one to block: that call fails with
    /// [`Interrupted`](io::ErrorKind::Interrupted), that iterator ends.
    /// Call it once per receiving thread to end them all. Requests stay
    /// queued; the server keeps running.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use nextloop::hypersync::Server;
    ///
    /// let incoming = Arc::new(Server::bind("127.0.0.1:0")?.incoming()?);
    /// let workers: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         let incoming = Arc::clone(&incoming);
    ///         std::thread::spawn(move || {
    ///             for req in incoming.iter() {
    ///                 let _ = req.respond(200, &[], "ok");
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// // ... later: end all four loops.
    /// for _ in &workers {
    ///     incoming.unblock();
    /// }
    /// for w in workers {
    ///     w.join().unwrap();
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unblock(&self) {
        // The receiver lives in `self`: this cannot fail.
        let _ = self.unblock_tx.send(());
    }

    /// Iterates over requests as they come, until
    /// [`unblock`](Self::unblock) or the server stops.
    pub fn iter(&self) -> Iter<'_> {
        Iter { incoming: self }
    }

    /// Starts a graceful shutdown: stop accepting, let exchanges in flight
    /// finish. Queued requests can still be taken and answered; once the
    /// event loop has ended, receiving fails with
    /// [`NotConnected`](io::ErrorKind::NotConnected) (iterators end).
    pub fn shutdown(&self) {
        self.listening.shutdown();
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self.listening.shutdown();
        while let Ok(req) = self.requests.try_recv() {
            req.unavailable();
        }
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("addr", &self.addr())
            .field("queued", &self.requests.len())
            .finish()
    }
}

/// Borrowing iterator over [`Incoming`] requests; see [`Incoming::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    incoming: &'a Incoming,
}

impl Iterator for Iter<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        self.incoming.recv().ok()
    }
}

impl<'a> IntoIterator for &'a Incoming {
    type Item = Request;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Owning iterator over [`Incoming`] requests: `for req in incoming`.
/// Ends like [`Iter`]; dropping it shuts the server down.
#[derive(Debug)]
pub struct IntoIter {
    incoming: Incoming,
}

impl Iterator for IntoIter {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        self.incoming.recv().ok()
    }
}

impl IntoIterator for Incoming {
    type Item = Request;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { incoming: self }
    }
}
