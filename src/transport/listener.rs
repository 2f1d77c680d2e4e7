//! Listening sockets: TCP, or a Unix stream socket (on Unix).
//!
//! [`Bound`] is the socket as the server builder holds it (blocking-API
//! types, which can be cloned for workers that share one socket);
//! [`Listener`] is one loop's, registered with its poll.

use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::sync::Arc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

/// A listening socket before the loops take it.
#[derive(Debug)]
pub(crate) enum Bound {
    /// TCP.
    Tcp(std::net::TcpListener),
    /// A Unix stream socket, and its file if the server created it (the
    /// file is removed when the last holder of this is gone).
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, Option<Arc<SocketFile>>),
}

impl Bound {
    /// Another handle on the same socket (for a worker that shares it).
    pub(crate) fn try_clone(&self) -> io::Result<Bound> {
        Ok(match self {
            Bound::Tcp(l) => Bound::Tcp(l.try_clone()?),
            #[cfg(unix)]
            Bound::Unix(l, file) => Bound::Unix(l.try_clone()?, file.clone()),
        })
    }

    /// The socket, for options such as the backlog.
    pub(crate) fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Bound::Tcp(l) => socket2::SockRef::from(l),
            #[cfg(unix)]
            Bound::Unix(l, _) => socket2::SockRef::from(l),
        }
    }

    /// Is it a Unix socket?
    pub(crate) fn is_unix(&self) -> bool {
        !matches!(self, Bound::Tcp(_))
    }

    /// The loop's listener over it.
    pub(crate) fn into_listener(self) -> Listener {
        match self {
            Bound::Tcp(l) => Listener::Tcp(mio::net::TcpListener::from_std(l)),
            #[cfg(unix)]
            Bound::Unix(l, file) => Listener::Unix(mio::net::UnixListener::from_std(l), file),
        }
    }
}

/// One loop's listening socket.
pub(crate) enum Listener {
    /// TCP.
    Tcp(mio::net::TcpListener),
    /// A Unix stream socket, and the file to remove (see [`Bound::Unix`]).
    #[cfg(unix)]
    Unix(
        mio::net::UnixListener,
        // Held for its `Drop`: the last loop to stop accepting removes it.
        #[allow(dead_code)] Option<Arc<SocketFile>>,
    ),
}

/// A connection taken from a [`Listener`].
pub(crate) enum Accepted {
    /// A TCP connection and the peer's address.
    Tcp(mio::net::TcpStream, SocketAddr),
    /// A connection on a Unix socket (its peer has no address of use).
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
}

impl Listener {
    /// Takes one connection from the backlog.
    pub(crate) fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, a)| Accepted::Tcp(s, a)),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Accepted::Unix(s)),
        }
    }

    /// The TCP address listened on (`None` for a Unix socket).
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            #[cfg(unix)]
            Listener::Unix(..) => None,
        }
    }
}

impl Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interests),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interests),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.deregister(registry),
        }
    }
}

/// A socket file the server created: removed when dropped, unless the
/// path now names another file (a newer server's socket).
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    /// Device and inode of the file bound.
    id: (u64, u64),
}

#[cfg(unix)]
impl SocketFile {
    /// Binds a Unix stream socket at `path`. An existing file there (a
    /// live server's socket, or a stale one) fails with `AddrInUse`.
    pub(crate) fn bind(path: &Path) -> io::Result<Bound> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let file = file_id(path).map(|id| {
            Arc::new(SocketFile {
                path: path.to_path_buf(),
                id,
            })
        });
        Ok(Bound::Unix(listener, file))
    }
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

#[cfg(unix)]
impl Drop for SocketFile {
    fn drop(&mut self) {
        if file_id(&self.path) == Some(self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
