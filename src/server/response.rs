//! [`Response`]: the status and header fields a handler gives, and what
//! they mean for the body and the connection. How they go on the wire is
//! the protocol's (`proto/h1/head_writer.rs`: straight into the
//! connection's write buffer).

use crate::proto::date::DateCache;
use crate::proto::fields::{self, Added};
use crate::proto::h1::encode::BodyEncoder;
use crate::proto::h1::head_writer::{HeadWriter, ServerFields};
use crate::proto::h1::Switch;
use crate::proto::Version;

/// The response head a handler fills in
/// [`on_response`](crate::server::Handler::on_response).
///
/// The head is written front to back, straight into the connection's
/// reused write buffer: the status line first (so set the status before
/// adding fields: changing it later moves the fields), then the handler's
/// fields, then the server's — `Date`, the framing field (`Content-Length`
/// or `Transfer-Encoding: chunked`) and `Connection` — when
/// [`body`](Self::body) is called or the handler returns.
///
/// Framing fields set by the handler are interpreted, not copied:
/// `Content-Length` fixes the body length, `Connection: close` closes the
/// connection after this response, `Transfer-Encoding` is decided by the
/// server (chunked when no length is set on HTTP/1.1).
///
/// ```
/// # use nextloop::server::Response;
/// fn not_found(res: &mut Response<'_>) {
///     res.set_status(404)
///         .header("Content-Type", "text/plain")
///         .body(b"no such page\n");
/// }
/// ```
pub struct Response<'a> {
    /// How the head goes on the wire (HTTP/1 today).
    head: HeadWriter<'a>,
    status: u16,
    content_length: Option<u64>,
    close: bool,
    has_date: bool,
    notify_sent: bool,
    exchange: ResponseContext<'a>,
}

/// What the server knows of the exchange when the handler starts on the
/// response.
#[derive(Clone, Copy)]
pub(crate) struct ResponseContext<'a> {
    /// The request's version: it decides chunked versus close-delimited
    /// and how keep-alive is said.
    pub version: Version,
    /// Whether the connection may stay open, as far as the request and the
    /// server can tell before the handler answers.
    pub keep_alive: bool,
    /// A HEAD request: no body, declared length kept.
    pub head: bool,
    pub date: &'a DateCache,
    /// What the request may switch to (`Upgrade`, `CONNECT`).
    pub switch: Option<Switch>,
}

/// What the server needs from a finished [`Response`].
pub(crate) struct Finished {
    pub encoder: BodyEncoder,
    pub keep_alive: bool,
    /// [`Response::notify_sent`] was called.
    pub notify_sent: bool,
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("content_length", &self.content_length)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

impl<'a> Response<'a> {
    /// Starts a `200` response at the end of `buf`: the status line is
    /// written now, so that a head is built front to back and finishing it
    /// moves nothing.
    pub(crate) fn new(buf: &'a mut Vec<u8>, exchange: ResponseContext<'a>) -> Response<'a> {
        Response {
            head: HeadWriter::new(buf),
            status: 200,
            content_length: None,
            close: false,
            has_date: false,
            notify_sent: false,
            exchange,
        }
    }

    /// The status code (200 unless set).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status code. Cheapest before any field is added.
    ///
    /// `101 Switching Protocols` is allowed in answer to a request with an
    /// `Upgrade` field (and no body); like a `2xx` to `CONNECT`, it switches
    /// the exchange to raw mode: the head goes out with no framing field
    /// (a `Content-Length` set here is not sent), then the exchange's
    /// [`Decoder`](crate::Decoder) and [`Encoder`](crate::Encoder) carry
    /// raw bytes. Add the `Upgrade` field that names the protocol; the
    /// server adds `Connection: upgrade`. See the crate's README, "Upgrades
    /// and tunnels".
    ///
    /// # Panics
    ///
    /// If `status` is not in `200..=999` (interim 1xx responses are sent by
    /// the server itself), except a `101` to an `Upgrade` request.
    ///
    /// `status` is a `u16`, or an `http::StatusCode` with the `http`
    /// feature ([`IntoStatus`](crate::IntoStatus)).
    pub fn set_status(&mut self, status: impl crate::IntoStatus) -> &mut Self {
        let status = status.into_status();
        if !(status == 101 && self.exchange.switch == Some(Switch::Upgrade)) {
            assert_final(status);
        }
        if status != self.status {
            self.status = status;
            self.head.set_status(status);
        }
        self
    }

    /// Adds a header field.
    ///
    /// `Content-Length`, `Connection`, `Transfer-Encoding` and `Date` are
    /// interpreted (see the type's docs).
    ///
    /// # Panics
    ///
    /// If `name` is not a valid token, or `value` holds CR, LF, NUL or
    /// another control byte (the checks that keep a response from being
    /// split), or a `Content-Length` is not a number; or after
    /// [`body`](Self::body).
    ///
    /// `name` and `value` may be `http::HeaderName` and `HeaderValue`.
    pub fn header(&mut self, name: impl AsRef<str>, value: impl AsRef<[u8]>) -> &mut Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        assert!(
            !self.head.is_sealed(),
            "Response::header called after Response::body"
        );
        match fields::added(name, value) {
            Added::ContentLength(n) => self.content_length = Some(n),
            Added::Connection { close } => self.close |= close,
            Added::TransferEncoding => {}
            added => {
                self.has_date |= added == Added::Date;
                self.head.field(name, value);
            }
        }
        self
    }

    /// Declares the body length: the body is sent with `Content-Length`.
    ///
    /// # Panics
    ///
    /// After [`body`](Self::body) with another length.
    pub fn set_content_length(&mut self, len: u64) -> &mut Self {
        assert!(
            !self.head.is_sealed() || self.content_length == Some(len),
            "Response::set_content_length({len}) after Response::body with another length"
        );
        self.content_length = Some(len);
        self
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Asks to be told when the last byte of this response has been
    /// written to the socket:
    /// [`Handler::on_response_sent`](crate::server::Handler::on_response_sent)
    /// is then called, with the time. Opt-in, so that other responses pay
    /// nothing; the requests pipelined behind this one wait until it is
    /// sent.
    pub fn notify_sent(&mut self) -> &mut Self {
        self.notify_sent = true;
        self
    }

    /// Will this response switch the exchange to raw mode (a `101` to an
    /// `Upgrade` request, a `2xx` to `CONNECT`), as its status is now?
    pub fn switches(&self) -> bool {
        Switch::by(self.exchange.switch, self.status)
    }

    /// Asks for the connection to be closed after this response.
    pub fn close(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// Sets the whole body at once: sets `Content-Length` and queues the
    /// bytes right after the head. Return [`Next::end()`](crate::Next::end)
    /// afterwards. Headers cannot be added after this call.
    ///
    /// # Panics
    ///
    /// If called twice, or if a different `Content-Length` was set.
    pub fn body(&mut self, bytes: &[u8]) -> &mut Self {
        assert!(!self.head.is_sealed(), "Response::body called twice");
        let len = bytes.len() as u64;
        assert!(
            self.content_length.is_none_or(|n| n == len),
            "Response::body: Content-Length was set to another length"
        );
        self.content_length = Some(len);
        let (encoder, keep_alive) = self.plan(self.exchange.keep_alive);
        let server = self.server_fields(encoder, keep_alive);
        self.head.seal(&server, bytes, self.exchange.head);
        self
    }

    /// The body bytes given with [`body`](Self::body), if it was called
    /// (none where no body is sent).
    pub(crate) fn body_given(&self) -> u64 {
        match self.content_length {
            Some(n) if self.head.is_sealed() && !self.has_no_body() => n,
            _ => 0,
        }
    }

    /// A response that carries no body whatever its fields say: to HEAD,
    /// or `204` / `304` (RFC 9110 §6.4.1).
    fn has_no_body(&self) -> bool {
        self.exchange.head || self.status == 204 || self.status == 304
    }

    /// The handler ended the response without a body or a length: declare
    /// an empty body rather than chunk nothing. Not where there is no body
    /// by definition: a length there would claim what a `GET` or a `200`
    /// would have carried (RFC 9110 §8.6).
    pub(crate) fn ended_without_body(&mut self) {
        if self.content_length.is_none() && !self.has_no_body() {
            self.content_length = Some(0);
        }
    }

    /// The body framing and whether the connection stays open, given
    /// what the server allows (`keep_alive`).
    fn plan(&self, keep_alive: bool) -> (BodyEncoder, bool) {
        let encoder = match self.content_length {
            _ if self.switches() => BodyEncoder::Raw,
            _ if self.has_no_body() => BodyEncoder::Suppressed,
            Some(n) => BodyEncoder::Length(n),
            None if self.exchange.version == Version::Http11 => BodyEncoder::Chunked,
            None => BodyEncoder::CloseDelimited,
        };
        (encoder, keep_alive && !self.close && !encoder.closes())
    }

    /// The fields the server adds, for this framing and persistence.
    fn server_fields(&self, encoder: BodyEncoder, keep_alive: bool) -> ServerFields<'a> {
        ServerFields {
            date: (!self.has_date).then_some(self.exchange.date),
            encoder,
            content_length: self.content_length,
            status: self.status,
            keep_alive,
            version: self.exchange.version,
        }
    }

    /// Ends the head and chooses the body framing. `keep_alive` is what
    /// the server allows now that it knows the handler's answer.
    ///
    /// Always inlined: called out of line, its `Finished` went back through
    /// memory in narrow stores and was read in one wide load — a failed
    /// store-to-load forward that was half of `step_write`'s time.
    #[inline(always)]
    pub(crate) fn finish(&mut self, keep_alive: bool) -> Finished {
        let (mut encoder, keep_alive) = self.plan(keep_alive);
        let server = self.server_fields(encoder, keep_alive);
        let queued = self
            .head
            .finish(&server, encoder == BodyEncoder::Suppressed);
        if let BodyEncoder::Length(n) = &mut encoder {
            // `body` and `set_content_length` keep `queued <= n`.
            *n = n.saturating_sub(queued);
        }
        Finished {
            encoder,
            keep_alive,
            notify_sent: self.notify_sent,
        }
    }
}

/// Checks a status a handler sets: a final one, in `200..=999` (interim
/// 1xx responses are sent by the server itself).
///
/// # Panics
///
/// If it is not.
#[track_caller]
pub(crate) fn assert_final(status: u16) {
    assert!(
        (200..=999).contains(&status),
        "response status must be in 200..=999, got {status}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    /// Builds a response with `build` and finishes it with `keep_alive`;
    /// returns the bytes, the framing and the persistence.
    fn respond(
        version: Version,
        head: bool,
        keep_alive: (bool, bool),
        build: impl FnOnce(&mut Response<'_>),
    ) -> (String, BodyEncoder, bool) {
        let date = DateCache::fixed();
        let mut buf = b"earlier response".to_vec();
        let exchange = ResponseContext {
            version,
            keep_alive: keep_alive.0,
            head,
            date: &date,
            switch: None,
        };
        let mut res = Response::new(&mut buf, exchange);
        build(&mut res);
        let done = res.finish(keep_alive.1);
        let text = String::from_utf8(buf).unwrap();
        let text = text.strip_prefix("earlier response").unwrap().to_owned();
        (text, done.encoder, done.keep_alive)
    }

    fn http11(build: impl FnOnce(&mut Response<'_>)) -> (String, BodyEncoder, bool) {
        respond(Version::Http11, false, (true, true), build)
    }

    #[test]
    fn body_writes_the_head_front_to_back() {
        let (text, encoder, keep_alive) = http11(|res| {
            res.set_status(404)
                .header("Content-Type", "text/plain")
                .body(b"gone");
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n{DATE}Content-Length: 4\r\n\r\ngone")
        );
        assert_eq!((encoder, keep_alive), (BodyEncoder::Length(0), true));
    }

    #[test]
    fn status_set_after_the_fields_and_body_replaces_the_line() {
        let (text, _, _) = http11(|res| {
            res.header("X-A", "1").body(b"abc");
            res.set_status(503);
            res.set_status(201);
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 201 Created\r\nX-A: 1\r\n{DATE}Content-Length: 3\r\n\r\nabc")
        );
    }

    #[test]
    fn close_after_body_redoes_the_fields() {
        let (text, encoder, keep_alive) = http11(|res| {
            res.body(b"abc").close();
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 3\r\nConnection: close\r\n\r\nabc")
        );
        assert_eq!((encoder, keep_alive), (BodyEncoder::Length(0), false));
    }

    #[test]
    fn persistence_decided_after_body_redoes_the_fields() {
        let (text, _, keep_alive) = respond(Version::Http11, false, (true, false), |res| {
            res.body(b"abc");
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 3\r\nConnection: close\r\n\r\nabc")
        );
        assert!(!keep_alive);
        // And the other way: the server allows what it first did not.
        let (text, _, keep_alive) = respond(Version::Http11, false, (false, true), |res| {
            res.body(b"abc");
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 3\r\n\r\nabc")
        );
        assert!(keep_alive);
    }

    #[test]
    fn no_content_set_after_body_drops_length_and_body() {
        let (text, encoder, _) = http11(|res| {
            res.body(b"abc").set_status(204);
        });
        assert_eq!(text, format!("HTTP/1.1 204 No Content\r\n{DATE}\r\n"));
        assert_eq!(encoder, BodyEncoder::Suppressed);
    }

    #[test]
    fn head_keeps_the_length_and_sends_no_body() {
        let (text, encoder, _) = respond(Version::Http11, true, (true, true), |res| {
            res.body(b"abc");
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 3\r\n\r\n")
        );
        assert_eq!(encoder, BodyEncoder::Suppressed);
    }

    #[test]
    fn without_body_the_framing_follows_the_version() {
        let (text, encoder, keep_alive) = http11(|res| {
            res.header("Date", "x");
        });
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nDate: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        assert_eq!((encoder, keep_alive), (BodyEncoder::Chunked, true));

        let (text, encoder, keep_alive) = respond(Version::Http10, false, (true, true), |_| {});
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Connection: close\r\n\r\n")
        );
        assert_eq!((encoder, keep_alive), (BodyEncoder::CloseDelimited, false));

        let (text, encoder, keep_alive) = respond(Version::Http10, false, (true, true), |res| {
            res.set_content_length(5);
        });
        assert_eq!(
            text,
            format!("HTTP/1.1 200 OK\r\n{DATE}Content-Length: 5\r\nConnection: keep-alive\r\n\r\n")
        );
        assert_eq!((encoder, keep_alive), (BodyEncoder::Length(5), true));
    }

    /// A head that switches to raw bytes has no framing field, whatever
    /// length the handler set; a 101 says `Connection: upgrade`; the same
    /// statuses without a request that asked for them are plain HTTP.
    #[test]
    fn a_switching_head_has_no_framing() {
        let date = DateCache::fixed();
        let cases = [
            (
                Some(Switch::Upgrade),
                101,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n",
            ),
            (
                Some(Switch::Connect),
                200,
                "HTTP/1.1 200 OK\r\nUpgrade: x\r\n",
            ),
        ];
        for (switch, status, start) in cases {
            let mut buf = Vec::new();
            let exchange = ResponseContext {
                version: Version::Http11,
                keep_alive: true,
                head: false,
                date: &date,
                switch,
            };
            let mut res = Response::new(&mut buf, exchange);
            res.set_status(status)
                .header("Upgrade", "x")
                .set_content_length(5);
            assert!(res.switches());
            let done = res.finish(true);
            assert_eq!((done.encoder, done.keep_alive), (BodyEncoder::Raw, false));
            let connection = if status == 101 {
                "Connection: upgrade\r\n"
            } else {
                ""
            };
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                format!("{start}{DATE}{connection}\r\n")
            );
        }
        // A 2xx to anything but CONNECT, a 3xx to CONNECT: HTTP.
        let (text, encoder, _) = http11(|res| {
            res.set_content_length(0);
        });
        assert!(text.contains("Content-Length: 0"));
        assert_eq!(encoder, BodyEncoder::Length(0));
        let mut buf = Vec::new();
        let exchange = ResponseContext {
            version: Version::Http11,
            keep_alive: true,
            head: false,
            date: &date,
            switch: Some(Switch::Connect),
        };
        let mut res = Response::new(&mut buf, exchange);
        res.set_status(302);
        assert!(!res.switches());
        assert_eq!(res.finish(true).encoder, BodyEncoder::Chunked);
    }

    /// What a handler did to a response, in order.
    #[derive(Clone, Debug)]
    enum Op {
        Status(u16),
        Header(usize),
        Length(u64),
        Body(usize),
        Close,
    }

    const HEADERS: [(&str, &str); 4] = [
        ("Content-Type", "text/plain"),
        ("X-Long", "a value long enough to move things around"),
        ("Date", "Tue, 15 Nov 1994 08:12:31 GMT"),
        ("Connection", "close"),
    ];
    const BODIES: [&[u8]; 3] = [b"", b"abc", b"a longer body of some forty bytes......"];

    fn apply(res: &mut Response<'_>, op: &Op) {
        match *op {
            Op::Status(s) => res.set_status(s),
            Op::Header(i) => res.header(HEADERS[i].0, HEADERS[i].1),
            Op::Length(n) => res.set_content_length(n),
            Op::Body(i) => res.body(BODIES[i]),
            Op::Close => res.close(),
        };
    }

    /// Whatever order a handler does things in, and whatever the server
    /// first guessed about persistence, the bytes are those of the same
    /// response built in the plain order: status, fields, body.
    #[test]
    fn any_order_of_calls_gives_the_canonical_head() {
        let date = DateCache::fixed();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..5_000 {
            let version = [Version::Http10, Version::Http11][next(2) as usize];
            let head = next(4) == 0;
            let (guess, allowed) = (next(2) == 1, next(2) == 1);
            // A random sequence of calls a handler may legally make.
            let mut ops = Vec::new();
            let mut body = None;
            for _ in 0..next(6) {
                let op = match next(5) {
                    0 => Op::Status([200, 201, 204, 304, 404, 599][next(6) as usize]),
                    1 if body.is_none() => Op::Header(next(HEADERS.len() as u64) as usize),
                    2 if body.is_none() => Op::Length(next(50)),
                    3 if body.is_none() => {
                        let i = next(BODIES.len() as u64) as usize;
                        body = Some(i);
                        // `body` after another length would panic.
                        ops.retain(|op| !matches!(op, Op::Length(_)));
                        Op::Body(i)
                    }
                    4 => Op::Close,
                    _ => continue,
                };
                ops.push(op);
            }
            let build = |ops: &[Op], guess: bool| {
                let mut buf = Vec::new();
                let exchange = ResponseContext {
                    version,
                    keep_alive: guess,
                    head,
                    date: &date,
                    switch: None,
                };
                let mut res = Response::new(&mut buf, exchange);
                for op in ops {
                    apply(&mut res, op);
                }
                let done = res.finish(allowed);
                (buf, done.encoder, done.keep_alive)
            };
            // The same calls in the plain order, the guess right.
            let mut plain: Vec<Op> = ops
                .iter()
                .filter(|op| matches!(op, Op::Status(_)))
                .cloned()
                .collect();
            plain.extend(
                ops.iter()
                    .filter(|op| matches!(op, Op::Header(_) | Op::Length(_)))
                    .cloned(),
            );
            plain.extend(ops.iter().filter(|op| matches!(op, Op::Close)).cloned());
            plain.extend(ops.iter().filter(|op| matches!(op, Op::Body(_))).cloned());
            let got = build(&ops, guess);
            let want = build(&plain, allowed);
            assert_eq!(
                (String::from_utf8_lossy(&got.0), got.1, got.2),
                (String::from_utf8_lossy(&want.0), want.1, want.2),
                "{ops:?} {version:?} head {head} guess {guess} allowed {allowed}"
            );
        }
    }
}
