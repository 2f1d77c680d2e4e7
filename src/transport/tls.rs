//! TLS over TCP with rustls's unbuffered (sans-IO) API, driven by the
//! same edge-triggered loop as plain TCP.
//!
//! Ciphertext lives in two record buffers that come from the loop's pool
//! and go back to it whenever they are empty, so an idle connection holds
//! only rustls's own session state. The rules this file keeps:
//!
//! - `fill` reads ciphertext until the socket would block, the machine's
//!   read buffer is full, or the input ends, handing rustls each read at
//!   once; decrypted plaintext goes straight into the machine's read
//!   buffer, and what does not fit waits in `plain`, which
//!   [`may_read`](Transport::may_read) reports, so it is delivered without
//!   a readiness event. While `plain` holds bytes no more ciphertext is
//!   read.
//! - Whatever rustls has to send (handshake flights, alerts, tickets) is
//!   written at the end of every `fill` and `flush`, even when the machine
//!   wrote nothing.
//! - A record buffer grows only when rustls needs a larger one: a
//!   handshake message larger than a record, up to [`MAX_INCOMING`].
//! - The peer's end without `close_notify` is an end for the server (no
//!   request body is close-delimited) and an error for the client (it
//!   would truncate a close-delimited body). Closing sends `close_notify`
//!   before the TCP shutdown.
//! - Plain HTTP sent to a TLS port gets a short `400` in clear (as nginx
//!   answers); any other garbage, rustls's alert.
//! - rustls runs under [`guard`]: a panic in it costs only this
//!   connection.

use std::io;
use std::sync::Arc;

use mio::event::{Event, Source};
use mio::{Interest, Registry, Token};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus,
};

use super::{Tcp, Transport};
use crate::rt::buf::{BufPool, ReadBuf, WriteBuf, RECORD_BUF};
use crate::rt::guard::guard;
use crate::tls::TlsInfo;
use crate::Detached;

/// The most ciphertext buffered while rustls waits for the rest of a
/// handshake message (it allows messages of up to 64 KiB, joined in place).
pub(crate) const MAX_INCOMING: usize = 128 * 1024;

/// Room an encrypted record takes beyond its plaintext, at most (header,
/// content type, tag, explicit nonce of TLS 1.2).
const RECORD_OVERHEAD: usize = 64;

/// Socket reads one `fill` makes at most (each up to a record buffer).
const READS_PER_FILL: usize = 8;

/// Plaintext encrypted into one record at most.
const MAX_FRAGMENT: usize = 16 * 1024;

/// Answer to plain HTTP sent to a TLS port.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 45\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use an https:// URL.\n";

/// Which end of the handshake we are.
enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Why a TLS connection failed, beyond what rustls says.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer closed the TCP connection without `close_notify`.
    Truncated,
    /// The peer closed it during the handshake.
    HandshakeEof,
    /// The peer sent plain HTTP to a TLS port.
    PlainHttp,
    /// A handshake message larger than [`MAX_INCOMING`].
    TooLarge,
    /// rustls panicked.
    Panicked,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::Truncated => "the peer closed the connection without a TLS close_notify",
            Failure::HandshakeEof => "the peer closed the connection during the TLS handshake",
            Failure::PlainHttp => "plain HTTP was sent to a TLS port",
            Failure::TooLarge => "a TLS handshake message is too large",
            Failure::Panicked => "the TLS library panicked",
        })
    }
}

impl std::error::Error for Failure {}

fn io_error(kind: io::ErrorKind, failure: Failure) -> io::Error {
    io::Error::new(kind, failure)
}

/// A rustls error as an I/O error (the client reads it back out).
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The buffers and flags of one TLS connection, apart from rustls's state
/// (so both can be borrowed at once).
#[derive(Default)]
struct Records {
    /// Ciphertext read and not yet processed by rustls.
    incoming: ReadBuf,
    /// Ciphertext to write.
    outgoing: ReadBuf,
    /// Plaintext decrypted that did not fit the machine's read buffer.
    plain: Vec<u8>,
    /// How much of `plain` has been delivered.
    plain_pos: usize,
    /// The peer's `close_notify` arrived.
    peer_closed: bool,
    /// We asked to close: `close_notify` is queued (or cannot be sent).
    closing: bool,
    /// The TCP write side is shut down.
    shut: bool,
    /// A fatal error happened: nothing more is read or encrypted.
    failed: bool,
}

/// A TLS connection.
pub(crate) struct Tls {
    tcp: Tcp,
    side: Side,
    rec: Records,
    /// The handshake has completed.
    secured: bool,
    /// What it settled, until the machine takes it.
    info: Option<Box<TlsInfo>>,
    /// Server: the first record (the ClientHello) has been looked at.
    hello_seen: bool,
    /// Server: the name the ClientHello asked for.
    sni: Option<Box<str>>,
    /// The TCP input ended after plaintext that the machine has yet to
    /// see: the next `fill` reports the end.
    ended: bool,
}

impl Tls {
    /// The server side of an accepted connection.
    pub(crate) fn accepted(tcp: Tcp, config: &Arc<rustls::ServerConfig>) -> io::Result<Tls> {
        let conn = UnbufferedServerConnection::new(Arc::clone(config)).map_err(tls_error)?;
        Ok(Tls::new(tcp, Side::Server(conn)))
    }

    /// The client side of a connection being made to `name`; the
    /// ClientHello is ready to go once connected.
    pub(crate) fn connect(
        tcp: Tcp,
        config: &Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<Tls> {
        let conn = UnbufferedClientConnection::new(Arc::clone(config), name).map_err(tls_error)?;
        let mut tls = Tls::new(tcp, Side::Client(conn));
        let mut pool = BufPool::new(0, 0, 0);
        tls.rec.outgoing.resize(RECORD_BUF);
        tls.pump(&mut pool, None, None)?;
        Ok(tls)
    }

    fn new(tcp: Tcp, side: Side) -> Tls {
        Tls {
            tcp,
            side,
            rec: Records::default(),
            secured: false,
            info: None,
            hello_seen: false,
            sni: None,
            ended: false,
        }
    }

    /// The TCP connection under it.
    pub(crate) fn tcp(&mut self) -> &mut Tcp {
        &mut self.tcp
    }

    /// What the handshake settled, once, after it completed.
    pub(crate) fn take_info(&mut self) -> Option<Box<TlsInfo>> {
        self.info.take()
    }

    fn is_server(&self) -> bool {
        matches!(self.side, Side::Server(_))
    }

    fn handshaking(&self) -> bool {
        match &self.side {
            Side::Server(c) => c.is_handshaking(),
            Side::Client(c) => c.is_handshaking(),
        }
    }

    /// Runs rustls (under [`guard`]) over the ciphertext read so far; see
    /// [`pump`].
    fn pump(
        &mut self,
        pool: &mut BufPool,
        rbuf: Option<&mut ReadBuf>,
        app: Option<&mut WriteBuf>,
    ) -> io::Result<()> {
        let rec = &mut self.rec;
        let side = &mut self.side;
        let result = guard(|| match side {
            Side::Server(c) => pump(c, rec, pool, rbuf, app),
            Side::Client(c) => pump(c, rec, pool, rbuf, app),
        });
        let result = match result {
            Ok(r) => r.map_err(tls_error),
            Err(()) => Err(io_error(io::ErrorKind::Other, Failure::Panicked)),
        };
        if result.is_err() {
            self.rec.failed = true;
            // The alert rustls queued for the error, if any: one more
            // round only encodes what it has to send.
            let rec = &mut self.rec;
            let side = &mut self.side;
            let _ = guard(|| match side {
                Side::Server(c) => alerts(c, rec, pool),
                Side::Client(c) => alerts(c, rec, pool),
            });
        }
        if !self.secured && !self.rec.failed && !self.handshaking() {
            self.secured = true;
            self.info = Some(Box::new(self.settled()));
        }
        result
    }

    /// What the completed handshake settled.
    fn settled(&mut self) -> TlsInfo {
        let (alpn, version) = match &self.side {
            Side::Server(c) => (c.alpn_protocol(), c.protocol_version()),
            Side::Client(c) => (c.alpn_protocol(), c.protocol_version()),
        };
        TlsInfo::new(alpn, self.sni.take(), version)
    }

    /// Writes out the ciphertext that is waiting, then shuts the TCP write
    /// side if closing and everything is out.
    fn send(&mut self, pool: &mut BufPool) -> io::Result<()> {
        let rec = &mut self.rec;
        while !rec.outgoing.is_empty() && self.tcp.may_write() {
            let n = self.tcp.write_some(rec.outgoing.data())?;
            rec.outgoing.consume(n);
        }
        if rec.outgoing.is_empty() {
            pool.release_record(&mut rec.outgoing);
            if rec.closing && !rec.shut {
                rec.shut = true;
                self.tcp.shutdown_write(pool);
            }
        }
        Ok(())
    }

    /// Moves plaintext waiting in `plain` into `rbuf`; `true` if any.
    fn deliver_plain(&mut self, rbuf: &mut ReadBuf) -> bool {
        let rec = &mut self.rec;
        if rec.plain_pos == rec.plain.len() {
            return false;
        }
        let n = rbuf.push(&rec.plain[rec.plain_pos..]);
        rec.plain_pos += n;
        if rec.plain_pos == rec.plain.len() {
            rec.plain.clear();
            rec.plain_pos = 0;
            if rec.plain.capacity() > RECORD_BUF {
                rec.plain = Vec::new();
            }
        }
        n > 0
    }

    /// The reading half of [`fill`](Transport::fill): until the socket is
    /// drained or `rbuf` is full. `progress` is set when there is news for
    /// the machine (plaintext, the end, a completed handshake).
    fn read_records(
        &mut self,
        rbuf: &mut ReadBuf,
        pool: &mut BufPool,
        input_closed: &mut bool,
        progress: &mut bool,
    ) -> io::Result<()> {
        for reads in 0.. {
            if reads == READS_PER_FILL {
                // Records that carry nothing for the machine (empty ones,
                // a flood of them) must not keep the loop here: "progress"
                // sends the connection back through the reactor, whose
                // share per turn bounds it.
                *progress = true;
                return Ok(());
            }
            if self.rec.plain_pos < self.rec.plain.len() {
                // The machine's buffer is full: read on once it has room.
                return Ok(());
            }
            let before = rbuf.len();
            let was_secured = self.secured;
            self.pump(pool, Some(rbuf), None)?;
            *progress |= rbuf.len() > before || self.secured != was_secured;
            if self.rec.peer_closed {
                *input_closed = true;
                *progress = true;
                return Ok(());
            }
            if self.rec.plain_pos < self.rec.plain.len() || rbuf.spare().is_empty() {
                return Ok(());
            }
            if !self.tcp.may_read() {
                return Ok(());
            }
            let incoming = &mut self.rec.incoming;
            pool.attach_record(incoming);
            if incoming.spare().is_empty() {
                // rustls holds a handshake message larger than the buffer.
                let size = incoming.capacity() * 2;
                if size > MAX_INCOMING {
                    self.rec.failed = true;
                    return Err(io_error(io::ErrorKind::InvalidData, Failure::TooLarge));
                }
                incoming.resize(size);
            }
            match self.tcp.read_some(incoming.spare())? {
                Some(0) if *progress => {
                    // What arrived before the end goes first.
                    self.ended = true;
                    return Ok(());
                }
                Some(0) => {
                    *progress = true;
                    return self.on_end(input_closed);
                }
                Some(n) => {
                    incoming.filled(n);
                    if !self.hello_seen && self.is_server() {
                        self.look_at_hello()?;
                    }
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// The TCP input ended (without `close_notify`).
    fn on_end(&mut self, input_closed: &mut bool) -> io::Result<()> {
        if !self.secured {
            self.rec.failed = true;
            // Not `UnexpectedEof`: a client tells it from a server that
            // closed an established connection.
            return Err(io_error(io::ErrorKind::Other, Failure::HandshakeEof));
        }
        if self.is_server() {
            *input_closed = true;
            return Ok(());
        }
        Err(io_error(io::ErrorKind::UnexpectedEof, Failure::Truncated))
    }

    /// The first bytes from a client: plain HTTP gets a `400` in clear;
    /// a complete first record that is a ClientHello gives the server
    /// name asked for.
    fn look_at_hello(&mut self) -> io::Result<()> {
        let data = self.rec.incoming.data();
        match data.first() {
            None => {}
            Some(&0x16) => {
                if data.len() < 5 {
                    return Ok(());
                }
                let len = usize::from(u16::from_be_bytes([data[3], data[4]]));
                if data.len() < 5 + len {
                    return Ok(());
                }
                self.hello_seen = true;
                self.sni = hello_server_name(&data[5..5 + len]).map(Into::into);
            }
            Some(b) if b.is_ascii_uppercase() => {
                self.hello_seen = true;
                self.rec.failed = true;
                self.rec.closing = true;
                let out = &mut self.rec.outgoing;
                if !out.is_allocated() {
                    out.resize(PLAIN_HTTP_ANSWER.len());
                }
                out.push(PLAIN_HTTP_ANSWER);
                return Err(io_error(io::ErrorKind::InvalidData, Failure::PlainHttp));
            }
            // Not TLS nor HTTP: rustls answers with an alert.
            Some(_) => self.hello_seen = true,
        }
        Ok(())
    }
}

impl Transport for Tls {
    fn update(&mut self, event: &Event) {
        self.tcp.update(event);
    }

    fn may_read(&self) -> bool {
        self.tcp.may_read() || self.ended || self.rec.plain_pos < self.rec.plain.len()
    }

    fn may_write(&self) -> bool {
        self.tcp.may_write()
    }

    fn wants_flush(&self) -> bool {
        !self.rec.outgoing.is_empty() || self.rec.closing && !self.rec.shut
    }

    fn fill(
        &mut self,
        rbuf: &mut ReadBuf,
        pool: &mut BufPool,
        input_closed: &mut bool,
    ) -> io::Result<bool> {
        if *input_closed || self.rec.failed {
            self.send(pool)?;
            return Ok(false);
        }
        pool.attach_read(rbuf);
        let mut progress = self.deliver_plain(rbuf);
        if self.ended && !progress {
            self.send(pool)?;
            self.on_end(input_closed)?;
            return Ok(true);
        }
        let read = self.read_records(rbuf, pool, input_closed, &mut progress);
        let sent = self.send(pool);
        read?;
        sent?;
        Ok(progress)
    }

    fn flush(&mut self, wbuf: &mut WriteBuf, pool: &mut BufPool) -> io::Result<usize> {
        let mut taken = 0;
        loop {
            self.send(pool)?;
            if !self.rec.outgoing.is_empty() || wbuf.is_empty() {
                return Ok(taken);
            }
            if self.rec.failed || self.rec.closing || !self.secured && self.is_server() {
                // Nothing can go out: before the handshake, a server only
                // ever writes an error answer (408 to a client that never
                // finished it), which is dropped with the connection.
                let n = wbuf.len();
                wbuf.advance(n);
                return Ok(taken + n);
            }
            if !self.secured {
                // A client's request waits for the handshake.
                return Ok(taken);
            }
            let before = wbuf.len();
            self.pump(pool, None, Some(wbuf))?;
            let n = before - wbuf.len();
            if n == 0 {
                self.send(pool)?;
                return Ok(taken);
            }
            taken += n;
        }
    }

    fn shutdown_write(&mut self, pool: &mut BufPool) {
        if self.rec.closing {
            return;
        }
        self.rec.closing = true;
        if self.secured && !self.rec.failed {
            let rec = &mut self.rec;
            let side = &mut self.side;
            let _ = guard(|| match side {
                Side::Server(c) => close_notify(c, rec, pool),
                Side::Client(c) => close_notify(c, rec, pool),
            });
        }
        let _ = self.send(pool);
    }

    fn release(&mut self, pool: &mut BufPool) {
        pool.release_record(&mut self.rec.incoming);
        pool.release_record(&mut self.rec.outgoing);
    }

    fn pending_error(&mut self) -> Option<io::Error> {
        self.tcp.pending_error()
    }

    fn detach(self, _read_buf: Vec<u8>) -> Option<Detached> {
        None
    }
}

impl Drop for Tls {
    /// A connection dropped without the staged close (idle at its
    /// keep-alive timeout or at shutdown, `Next::remove()`) still says
    /// `close_notify`, if nothing else is waiting to go out: one
    /// non-blocking write, no buffer from the pool.
    fn drop(&mut self) {
        let rec = &mut self.rec;
        if !self.secured || rec.closing || rec.failed || !rec.outgoing.is_empty() {
            return;
        }
        let mut record = [0; 64];
        let side = &mut self.side;
        let n = guard(|| match side {
            Side::Server(c) => notify_into(c, &mut rec.incoming, &mut record),
            Side::Client(c) => notify_into(c, &mut rec.incoming, &mut record),
        });
        if let Ok(n @ 1..) = n {
            let _ = self.tcp.write_some(&record[..n]);
        }
    }
}

impl Source for Tls {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}

/// The two unbuffered connection types, for [`pump`].
trait Engine {
    type Data;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Engine for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Engine for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// What one round of [`pump`] leads to.
enum Flow {
    /// Ask rustls again.
    Again,
    /// It needs more input (or room) to go on.
    Stop,
}

/// Runs rustls over the ciphertext in `rec.incoming` until it needs more
/// input: plaintext goes to `rbuf` (what does not fit, or all of it
/// without `rbuf`, to `rec.plain`); records rustls has to send are
/// encoded into `rec.outgoing`; once the handshake is done, plaintext of
/// `app` is encrypted into `rec.outgoing` while it has room.
fn pump<E: Engine>(
    conn: &mut E,
    rec: &mut Records,
    pool: &mut BufPool,
    mut rbuf: Option<&mut ReadBuf>,
    mut app: Option<&mut WriteBuf>,
) -> Result<(), rustls::Error> {
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process(rec.incoming.data_mut());
        let flow = match state {
            Err(e) => {
                rec.incoming.consume(discard);
                return Err(e);
            }
            Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                while let Some(record) = traffic.next_record() {
                    let record = record?;
                    discard += record.discard;
                    let payload = record.payload;
                    let n = match rbuf.as_deref_mut() {
                        Some(rbuf) if rec.plain.is_empty() => rbuf.push(payload),
                        _ => 0,
                    };
                    rec.plain.extend_from_slice(&payload[n..]);
                }
                Flow::Again
            }
            Ok(ConnectionState::EncodeTlsData(mut data)) => {
                pool.attach_record(&mut rec.outgoing);
                encode(&mut data, &mut rec.outgoing);
                Flow::Again
            }
            Ok(ConnectionState::TransmitTlsData(data)) => {
                // Written out by the caller, in order, before anything
                // encoded after it.
                data.done();
                Flow::Again
            }
            Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                if let Some(app) = app.take() {
                    pool.attach_record(&mut rec.outgoing);
                    encrypt(&mut traffic, app, &mut rec.outgoing)?;
                }
                Flow::Stop
            }
            Ok(ConnectionState::PeerClosed) => {
                rec.peer_closed = true;
                Flow::Again
            }
            Ok(ConnectionState::Closed) => {
                rec.peer_closed = true;
                Flow::Stop
            }
            // BlockedHandshake, and early data (never enabled here).
            Ok(_) => Flow::Stop,
        };
        rec.incoming.consume(discard);
        if let Flow::Stop = flow {
            return Ok(());
        }
    }
}

/// After an error: encodes the alert rustls queued, if any.
fn alerts<E: Engine>(conn: &mut E, rec: &mut Records, pool: &mut BufPool) {
    for _ in 0..4 {
        let UnbufferedStatus { discard, state } = conn.process(rec.incoming.data_mut());
        let again = match state {
            Ok(ConnectionState::EncodeTlsData(mut data)) => {
                pool.attach_record(&mut rec.outgoing);
                encode(&mut data, &mut rec.outgoing);
                true
            }
            Ok(ConnectionState::TransmitTlsData(data)) => {
                data.done();
                true
            }
            _ => false,
        };
        rec.incoming.consume(discard.min(rec.incoming.len()));
        if !again {
            return;
        }
    }
}

/// Queues `close_notify` (the handshake is done).
fn close_notify<E: Engine>(conn: &mut E, rec: &mut Records, pool: &mut BufPool) {
    // Anything rustls has to send first; plaintext that arrives now is of
    // no use to anyone.
    let _ = pump(conn, rec, pool, None, None);
    let UnbufferedStatus { discard, state } = conn.process(rec.incoming.data_mut());
    if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
        pool.attach_record(&mut rec.outgoing);
        loop {
            match traffic.queue_close_notify(rec.outgoing.spare()) {
                Ok(n) => {
                    rec.outgoing.filled(n);
                    break;
                }
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    grow(&mut rec.outgoing, required_size)
                }
                Err(EncryptError::EncryptExhausted) => break,
            }
        }
    }
    rec.incoming.consume(discard.min(rec.incoming.len()));
    rec.plain.clear();
    rec.plain_pos = 0;
}

/// Encodes `close_notify` into `record` if rustls can write now; returns
/// its length (0 if it cannot).
fn notify_into<E: Engine>(conn: &mut E, incoming: &mut ReadBuf, record: &mut [u8]) -> usize {
    let UnbufferedStatus { state, .. } = conn.process(incoming.data_mut());
    match state {
        Ok(ConnectionState::WriteTraffic(mut traffic)) => {
            traffic.queue_close_notify(record).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Encrypts plaintext of `app` into `out` while it has room for a record.
fn encrypt<D>(
    traffic: &mut rustls::unbuffered::WriteTraffic<'_, D>,
    app: &mut WriteBuf,
    out: &mut ReadBuf,
) -> Result<(), rustls::Error> {
    while !app.is_empty() {
        let room = out.spare().len();
        if room <= RECORD_OVERHEAD {
            if out.is_empty() {
                grow(out, RECORD_BUF);
                continue;
            }
            return Ok(());
        }
        let n = app.len().min(MAX_FRAGMENT).min(room - RECORD_OVERHEAD);
        match traffic.encrypt(&app.pending()[..n], out.spare()) {
            Ok(written) => {
                out.filled(written);
                app.advance(n);
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                if !out.is_empty() {
                    return Ok(());
                }
                grow(out, required_size);
            }
            Err(EncryptError::EncryptExhausted) => return Err(rustls::Error::EncryptError),
        }
    }
    Ok(())
}

/// Encodes a handshake or alert message rustls has ready into `out`,
/// growing it as rustls asks.
fn encode<D>(data: &mut EncodeTlsData<'_, D>, out: &mut ReadBuf) {
    loop {
        match data.encode(out.spare()) {
            Ok(n) => return out.filled(n),
            Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                grow(out, required_size)
            }
            Err(EncodeError::AlreadyEncoded) => return,
        }
    }
}

/// Makes room for `needed` more bytes in `out`.
fn grow(out: &mut ReadBuf, needed: usize) {
    let size = (out.len() + needed).max(out.capacity());
    out.resize(size.max(RECORD_BUF));
}

/// The `server_name` a ClientHello asks for, from its first record's
/// payload (lower-cased, without a trailing dot). `None` if it has none
/// or the record is not a ClientHello.
fn hello_server_name(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    if r.u8()? != 1 {
        return None;
    }
    r.take(3 + 2 + 32)?; // length, version, random
    let n = r.u8()?;
    r.take(n.into())?; // session id
    let n = r.u16()?;
    r.take(n.into())?; // cipher suites
    let n = r.u8()?;
    r.take(n.into())?; // compression methods
    let n = r.u16()?;
    let mut extensions = Reader(r.take(n.into())?);
    while let (Some(kind), Some(len)) = (extensions.u16(), extensions.u16()) {
        let body = extensions.take(len.into())?;
        if kind != 0 {
            continue;
        }
        let mut b = Reader(body);
        b.u16()?; // list length
        if b.u8()? != 0 {
            return None; // not a host name
        }
        let n = b.u16()?;
        let name = std::str::from_utf8(b.take(n.into())?).ok()?;
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        return Some(name.trim_end_matches('.').to_ascii_lowercase());
    }
    None
}

/// Reads big-endian fields off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::hello_server_name;

    #[test]
    fn server_name_of_a_client_hello() {
        // type, length, version, random, no session, one suite, one
        // compression method, then the server_name extension.
        let mut hello = vec![1, 0, 0, 0, 3, 3];
        hello.extend([0; 32]);
        hello.extend([0, 0, 2, 0x13, 0x01, 1, 0]);
        let name = b"Example.COM.";
        let ext_len = 2 + 1 + 2 + name.len();
        let mut ext = vec![0, 0];
        ext.extend((ext_len as u16).to_be_bytes());
        ext.extend(((ext_len - 2) as u16).to_be_bytes());
        ext.push(0);
        ext.extend((name.len() as u16).to_be_bytes());
        ext.extend(name);
        hello.extend((ext.len() as u16).to_be_bytes());
        hello.extend(&ext);
        assert_eq!(hello_server_name(&hello).as_deref(), Some("example.com"));
        for cut in 0..hello.len() {
            // Cut short anywhere: no name, no panic.
            assert_eq!(hello_server_name(&hello[..cut]), None, "cut at {cut}");
        }
        hello[0] = 2;
        assert_eq!(hello_server_name(&hello), None);
    }
}
