//! [`Response`]: status and header fields, written straight into the
//! connection's write buffer.

use crate::buf::ArrayBuf;
use crate::proto::date::DateCache;
use crate::proto::encode::BodyEncoder;
use crate::proto::head::{checked_field, status_line, Version};

/// The response head a handler fills in
/// [`on_response`](crate::server::Handler::on_response).
///
/// Fields go straight into the connection's reused write buffer. The server
/// adds the status line, `Date`, the framing field (`Content-Length` or
/// `Transfer-Encoding: chunked`) and `Connection` when the handler returns.
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
    buf: &'a mut Vec<u8>,
    /// Where this head starts in `buf`.
    start: usize,
    /// Where body bytes given to [`body`](Self::body) start, if any.
    body_start: Option<usize>,
    status: u16,
    content_length: Option<u64>,
    close: bool,
    has_date: bool,
}

/// What the server needs from a finished [`Response`].
pub(crate) struct Finished {
    pub encoder: BodyEncoder,
    pub keep_alive: bool,
}

impl<'a> Response<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Response<'a> {
        let start = buf.len();
        Response {
            buf,
            start,
            body_start: None,
            status: 200,
            content_length: None,
            close: false,
            has_date: false,
        }
    }

    /// The status code (200 unless set).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Sets the status code.
    ///
    /// # Panics
    ///
    /// If `status` is not in `200..=999` (interim 1xx responses are sent by
    /// the server itself).
    pub fn set_status(&mut self, status: u16) -> &mut Self {
        assert!(
            (200..=999).contains(&status),
            "response status must be in 200..=999, got {status}"
        );
        self.status = status;
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
    pub fn header(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let value = value.as_ref();
        assert!(
            self.body_start.is_none(),
            "Response::header called after Response::body"
        );
        if let Some(n) = checked_field(name, value) {
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case("connection") {
            self.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The server frames the body itself.
        } else {
            self.has_date |= name.eq_ignore_ascii_case("date");
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b": ");
            self.buf.extend_from_slice(value);
            self.buf.extend_from_slice(b"\r\n");
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
            self.body_start.is_none() || self.content_length == Some(len),
            "Response::set_content_length({len}) after Response::body with another length"
        );
        self.content_length = Some(len);
        self
    }

    /// The declared body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
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
        assert!(self.body_start.is_none(), "Response::body called twice");
        let len = bytes.len() as u64;
        assert!(
            self.content_length.is_none_or(|n| n == len),
            "Response::body: Content-Length was set to another length"
        );
        self.content_length = Some(len);
        self.body_start = Some(self.buf.len());
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Writes the status line and the server's fields around what the
    /// handler added, and chooses the body framing.
    ///
    /// `keep_alive` is what the request and server allow; `head` means a
    /// HEAD request (no body, declared length kept).
    pub(crate) fn finish(
        self,
        version: Version,
        keep_alive: bool,
        head: bool,
        date: &DateCache,
    ) -> Finished {
        let status = self.status;
        let no_body = head || status == 204 || status == 304;
        let mut encoder = match self.content_length {
            _ if no_body => BodyEncoder::Suppressed,
            Some(n) => BodyEncoder::Length(n),
            None if version == Version::Http11 => BodyEncoder::Chunked,
            None => BodyEncoder::CloseDelimited,
        };
        let keep_alive = keep_alive && !self.close && !encoder.closes();

        // Body bytes given to `body()` are already in place after the fields.
        let fields_end = self.body_start.unwrap_or(self.buf.len());
        let queued = (self.buf.len() - fields_end) as u64;
        if no_body {
            self.buf.truncate(fields_end);
        } else if let BodyEncoder::Length(n) = &mut encoder {
            // `body` and `set_content_length` keep `queued <= n`.
            *n = n.saturating_sub(queued);
        }

        // Longest: Date 37 + Content-Length 38 + Connection 24 + CRLF 2.
        let mut fields = ArrayBuf::<128>::new();
        if !self.has_date {
            fields.push(b"Date: ");
            fields.push(date.value());
            fields.push(b"\r\n");
        }
        match (encoder, self.content_length) {
            (BodyEncoder::Chunked, _) => fields.push(b"Transfer-Encoding: chunked\r\n"),
            (_, Some(n)) if status != 204 => {
                fields.push(b"Content-Length: ");
                fields.push_u64(n);
                fields.push(b"\r\n");
            }
            _ => {}
        }
        if !keep_alive {
            fields.push(b"Connection: close\r\n");
        } else if version == Version::Http10 {
            fields.push(b"Connection: keep-alive\r\n");
        }
        fields.push(b"\r\n");
        splice(self.buf, fields_end, fields.as_slice());
        // RFC 9110 §6.2: the status line carries the highest version we
        // conform to; the framing above follows the request's version.
        splice(self.buf, self.start, status_line(status).as_slice());
        Finished {
            encoder,
            keep_alive,
        }
    }
}

/// Inserts `bytes` at `at`: one move of what follows, no allocation
/// beyond the buffer's own growth.
fn splice(buf: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = buf.len();
    buf.extend_from_slice(bytes);
    buf.copy_within(at..end, at + bytes.len());
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}
