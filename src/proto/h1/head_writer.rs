//! An HTTP/1 response head written front to back, straight into the
//! connection's reused write buffer: the status line first, then the
//! handler's fields as they come, then the server's (`Date`, the framing
//! field, `Connection`) and the blank line. What the head *means* —
//! status, length, persistence — is the handler-facing `Response`'s; this
//! is only how HTTP/1 puts it into bytes (HTTP/2 puts the same into a
//! HEADERS frame).

use std::ops::Range;

use super::encode::BodyEncoder;
use super::response::status_line;
use crate::proto::date::DateCache;
use crate::proto::fields;
use crate::proto::Version;
use crate::rt::buf::append_with;

/// The fields the server adds to a head, as decided when it is sealed or
/// finished.
#[derive(Clone, Copy)]
pub(crate) struct ServerFields<'d> {
    /// `Some`: add this `Date` (the handler gave none).
    pub date: Option<&'d DateCache>,
    pub encoder: BodyEncoder,
    pub content_length: Option<u64>,
    pub status: u16,
    pub keep_alive: bool,
    pub version: Version,
}

/// The server's fields and the blank line, written before the body bytes
/// by [`HeadWriter::seal`]: where they are, and what they were written for.
#[derive(Clone, Copy)]
struct Sealed {
    start: usize,
    end: usize,
    status: u16,
    keep_alive: bool,
}

/// One response head being written at the end of a buffer.
pub(crate) struct HeadWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// Where this head (its status line) starts in `buf`.
    start: usize,
    /// Where the status line ends and the handler's fields begin.
    line_end: usize,
    /// The server's fields, once [`seal`](Self::seal) has written them.
    sealed: Option<Sealed>,
}

impl<'a> HeadWriter<'a> {
    /// Starts a `200` head at the end of `buf`: the status line is written
    /// now, so that a head is built front to back and finishing it moves
    /// nothing.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> HeadWriter<'a> {
        let start = buf.len();
        buf.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        HeadWriter {
            line_end: buf.len(),
            buf,
            start,
            sealed: None,
        }
    }

    /// Have the server's fields (and maybe body bytes) been written?
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// Replaces the status line (moving what follows it).
    pub(crate) fn set_status(&mut self, status: u16) {
        let mark = self.buf.len();
        self.buf.extend_from_slice(status_line(status).as_slice());
        let delta = move_appended(self.buf, self.start..self.line_end, mark);
        self.line_end = self.line_end.wrapping_add_signed(delta);
        if let Some(w) = &mut self.sealed {
            w.start = w.start.wrapping_add_signed(delta);
            w.end = w.end.wrapping_add_signed(delta);
        }
    }

    /// Adds a field the handler gave (already checked).
    #[inline(always)]
    pub(crate) fn field(&mut self, name: &str, value: &[u8]) {
        fields::push(self.buf, name.as_bytes(), value);
    }

    /// Writes the server's fields and the blank line, then `body` (unless
    /// `suppress`): the head is complete as far as is known now.
    pub(crate) fn seal(&mut self, server: &ServerFields<'_>, body: &[u8], suppress: bool) {
        let start = self.buf.len();
        push_fields(self.buf, server);
        self.sealed = Some(Sealed {
            start,
            end: self.buf.len(),
            status: server.status,
            keep_alive: server.keep_alive,
        });
        if !suppress {
            self.buf.extend_from_slice(body);
        }
    }

    /// Ends the head with `server`'s fields: written now, or rewritten if
    /// those of [`seal`](Self::seal) were for another status or
    /// persistence. With `suppress` (no body by definition) the body bytes
    /// are dropped. Returns how many body bytes follow the head.
    #[inline(always)]
    pub(crate) fn finish(&mut self, server: &ServerFields<'_>, suppress: bool) -> u64 {
        let body_start = match self.sealed {
            // No body bytes yet: the fields go at the end.
            None => {
                push_fields(self.buf, server);
                self.buf.len()
            }
            Some(w) if w.status != server.status || w.keep_alive != server.keep_alive => {
                let mark = self.buf.len();
                push_fields(self.buf, server);
                let delta = move_appended(self.buf, w.start..w.end, mark);
                w.end.wrapping_add_signed(delta)
            }
            Some(w) => w.end,
        };
        if suppress {
            self.buf.truncate(body_start);
        }
        (self.buf.len() - body_start) as u64
    }
}

/// Appends the server's fields and the blank line that ends the head,
/// written in place.
fn push_fields(buf: &mut Vec<u8>, server: &ServerFields<'_>) {
    let ServerFields {
        date,
        encoder,
        content_length,
        status,
        keep_alive,
        version,
    } = *server;
    // Longest: Date 37 + Content-Length 38 + Connection 24 + CRLF 2.
    append_with::<128>(buf, |fields| {
        if let Some(date) = date {
            fields.push(date.field());
        }
        match (encoder, content_length) {
            // Switched to raw bytes: no framing at all (RFC 9110 §9.3.6,
            // §15.2.2), whatever length the handler set; a 101 says what
            // it upgrades (the handler's `Upgrade` names to what).
            (BodyEncoder::Raw, _) => {
                if status == 101 {
                    fields.push(b"Connection: upgrade\r\n");
                }
                fields.push(b"\r\n");
                return;
            }
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
    });
}

/// Moves the bytes appended to `buf` since `mark` into the place of
/// `range` (which lies before `mark`), shifting what is between; returns
/// how far that moved. No allocation; costs a move of what follows
/// `range`, nothing when that is only the appended bytes.
fn move_appended(buf: &mut Vec<u8>, range: Range<usize>, mark: usize) -> isize {
    let n = buf.len() - mark;
    buf[range.start..].rotate_right(n);
    buf.drain(range.start + n..range.end + n);
    n as isize - range.len() as isize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_appended_bytes_shifts_what_follows() {
        let mut buf = b"aaBBBcc".to_vec();
        buf.extend_from_slice(b"X");
        assert_eq!(move_appended(&mut buf, 2..5, 7), -2);
        assert_eq!(buf, b"aaXcc");
        buf.extend_from_slice(b"YYYY");
        assert_eq!(move_appended(&mut buf, 0..2, 5), 2);
        assert_eq!(buf, b"YYYYXcc");
    }
}
