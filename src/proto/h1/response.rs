//! Response heads: the status line as the server writes it; parsing
//! (httparse) and body framing per RFC 9112 §6.3 as the client reads them.
//!
//! The framing rules, in the order RFC 9112 §6.3 gives them:
//!
//! 1. A response to HEAD, and every 1xx, 204 and 304 response, has no
//!    body, whatever its fields say. So has a 2xx answer to CONNECT (the
//!    connection becomes a tunnel, so it is not reused either).
//! 2. `Transfer-Encoding` and `Content-Length` together: an error (the
//!    RFC's "ought to be handled as an error"; it smells of smuggling).
//! 3. `Transfer-Encoding` with `chunked` last: chunked. With another coding
//!    last: the body runs until the server closes. `chunked` twice: error.
//! 4. `Content-Length`, several equal values merged; differing or invalid
//!    values: an error.
//! 5. Neither: the body runs until the server closes.
//!
//! A connection stays open after the response if the response is HTTP/1.1
//! without `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`
//! and no `Transfer-Encoding` (RFC 9112 §6.1: such framing is faulty), and
//! its body is not delimited by the close.
//!
//! Unlike a request (where the server refuses it), obs-fold in a response
//! is accepted as RFC 9112 §5.2 asks of a user agent: each line break that
//! folds a field value is replaced with spaces, in place, before anything
//! reads the head.

use std::mem::MaybeUninit;

use super::request::empty_lines;
use super::{BodyKind, Connection, Framing};
use crate::proto::fields::{list, merge_length};
use crate::proto::status::reason;
use crate::proto::{Error, Version};
use crate::rt::buf::ArrayBuf;

/// A status line: `HTTP/1.1 200 OK\r\n`.
pub(crate) enum StatusLine {
    /// The common statuses, ready-made.
    Static(&'static [u8]),
    /// Any other, built with its reason phrase.
    Built(ArrayBuf<64>),
}

impl StatusLine {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            StatusLine::Static(line) => line,
            StatusLine::Built(line) => line.as_slice(),
        }
    }
}

/// The status line for `status`. Always `HTTP/1.1`: RFC 9110 §6.2 has a
/// server send the highest version it conforms to, whatever the request's.
pub(crate) fn status_line(status: u16) -> StatusLine {
    let line: &'static [u8] = match status {
        200 => b"HTTP/1.1 200 OK\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        400 => b"HTTP/1.1 400 Bad Request\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\n",
        _ => {
            let mut line = ArrayBuf::new();
            line.push(b"HTTP/1.1 ");
            line.push_u64(u64::from(status));
            line.push(b" ");
            line.push(reason(status).as_bytes());
            line.push(b"\r\n");
            return StatusLine::Built(line);
        }
    };
    StatusLine::Static(line)
}

/// A parsed response head; the fields borrow the read buffer.
pub(crate) struct ResponseHead<'h, 'b> {
    pub version: Version,
    pub status: u16,
    pub reason: &'b str,
    pub headers: &'h [httparse::Header<'b>],
}

/// What the request said that framing depends on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    pub head: bool,
    pub connect: bool,
}

impl ResponseHead<'_, '_> {
    /// An interim (1xx) response other than 101: another head follows.
    pub(crate) fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// RFC 9112 §6.3 framing of this response to a request like `asked`.
    pub(crate) fn framing(&self, asked: Asked) -> Result<Framing, Error> {
        framing(self.version, self.status, self.headers, asked)
    }
}

/// Parses a response head from the start of `buf`, unfolding obs-fold in
/// place first (see [`unfold`]).
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((len, head)))`: the head
/// takes `len` bytes; the body (or the next response) follows. A head that
/// does not fit in `max_head` bytes is an error.
pub(crate) fn parse<'h, 'b>(
    buf: &'b mut [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
    max_head: usize,
) -> Result<Option<(usize, ResponseHead<'h, 'b>)>, Error> {
    unfold(buf);
    let buf: &'b [u8] = buf;
    let mut res = httparse::Response::new(&mut []);
    let status = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, headers)
        .map_err(|e| {
            Error::Malformed(match e {
                httparse::Error::Version => "not an HTTP/1.x status line",
                httparse::Error::Status => "invalid status code",
                httparse::Error::HeaderName => "invalid header name",
                httparse::Error::HeaderValue => "invalid header value",
                httparse::Error::NewLine => "invalid line ending",
                httparse::Error::TooManyHeaders => "too many header fields",
                httparse::Error::Token => "invalid token",
            })
        })?;
    let len = match status {
        httparse::Status::Complete(len) if len <= max_head => len,
        httparse::Status::Partial if buf.len() < max_head => return Ok(None),
        _ => return Err(Error::Malformed("response head too large")),
    };
    let status = res.code.unwrap_or_default();
    if !(100..=999).contains(&status) {
        return Err(Error::Malformed("invalid status code"));
    }
    let version = match res.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    Ok(Some((
        len,
        ResponseHead {
            version,
            status,
            reason: res.reason.unwrap_or_default(),
            headers: res.headers,
        },
    )))
}

/// Replaces each obs-fold in the head at the start of `buf` — a line
/// break inside the field section followed by SP or HTAB, which continues
/// the field value on the next line — with spaces (RFC 9112 §5.2: a user
/// agent MUST replace each obs-fold with one or more SP before
/// interpreting the message). The CR and LF become SP; the whitespace
/// after them stays. Stops at the end of the head (an empty line) or of
/// `buf`, so a body is never touched; running it again changes nothing.
///
/// A whitespace-led line right after the status line is not a fold (there
/// is no field to continue) and is left for the parser to refuse.
pub(crate) fn unfold(buf: &mut [u8]) {
    // Empty lines before the status line are skipped, as the parser does.
    let mut from = empty_lines(buf);
    let mut status_line = true;
    while let Some(off) = buf[from..].iter().position(|&b| b == b'\n') {
        let lf = from + off;
        match buf.get(lf + 1) {
            // The empty line that ends the head (with no fields at all, right
            // after the status line), or all there is so far.
            Some(b'\r' | b'\n') | None => return,
            Some(b' ' | b'\t') if !status_line => {
                buf[lf] = b' ';
                if buf[lf - 1] == b'\r' {
                    buf[lf - 1] = b' ';
                }
            }
            Some(_) => {}
        }
        status_line = false;
        from = lf + 1;
    }
}

fn framing(
    version: Version,
    status: u16,
    headers: &[httparse::Header<'_>],
    asked: Asked,
) -> Result<Framing, Error> {
    let mut content_length: Option<u64> = None;
    let mut has_te = false;
    let mut chunked_last = false;
    let mut chunked_seen = false;
    let mut connection = Connection::default();
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            merge_length(&mut content_length, h.value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_te = true;
            for coding in list(h.value) {
                let is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                if is_chunked && chunked_seen {
                    return Err(Error::Framing("chunked applied twice"));
                }
                chunked_seen |= is_chunked;
                chunked_last = is_chunked;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection.add(h.value);
        }
    }
    // Transfer-Encoding in HTTP/1.0 is faulty framing: read this response
    // as it says, then close (RFC 9112 §6.1).
    let persistent = connection.persists(version) && !(version == Version::Http10 && has_te);
    let no_body = asked.head || (100..200).contains(&status) || status == 204 || status == 304;
    if asked.connect && (200..300).contains(&status) {
        // A tunnel: no body, and the connection is no longer HTTP.
        return Ok(Framing {
            body: BodyKind::None,
            keep_alive: false,
        });
    }
    if no_body {
        return Ok(Framing {
            body: BodyKind::None,
            // 101 switches protocols: the connection is no longer ours.
            keep_alive: persistent && status != 101,
        });
    }
    let body = if has_te {
        if content_length.is_some() {
            return Err(Error::Framing("both Content-Length and Transfer-Encoding"));
        }
        if chunked_last {
            BodyKind::Chunked
        } else {
            BodyKind::Eof
        }
    } else {
        match content_length {
            Some(n) => BodyKind::Length(n),
            None => BodyKind::Eof,
        }
    };
    Ok(Framing {
        body,
        keep_alive: persistent && body != BodyKind::Eof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: Asked = Asked {
        head: false,
        connect: false,
    };
    const HEAD: Asked = Asked {
        head: true,
        connect: false,
    };
    const CONNECT: Asked = Asked {
        head: false,
        connect: true,
    };

    fn framing_of(raw: &str, asked: Asked) -> Result<Framing, Error> {
        let mut headers = [MaybeUninit::uninit(); 16];
        let mut buf = raw.as_bytes().to_vec();
        let (len, head) = parse(&mut buf, &mut headers, 1024)?.expect("complete head");
        assert_eq!(len, raw.len());
        head.framing(asked)
    }

    fn ok(body: BodyKind, keep_alive: bool) -> Result<Framing, Error> {
        Ok(Framing { body, keep_alive })
    }

    macro_rules! cases {
        ($($name:ident: $raw:expr, $asked:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(framing_of($raw, $asked), $want);
            }
        )*};
    }

    cases! {
        length: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", GET => ok(BodyKind::Length(5), true);
        equal_lengths_merge: "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n", GET => ok(BodyKind::Length(5), true);
        differing_lengths: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", GET => Err(Error::Framing("conflicting Content-Length"));
        signed_length: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", GET => Err(Error::Framing("invalid Content-Length"));
        empty_length: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", GET => Err(Error::Framing("empty Content-Length"));
        overflowing_length: "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n", GET => Err(Error::Framing("Content-Length overflows"));
        chunked: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", GET => ok(BodyKind::Chunked, true);
        gzip_then_chunked: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n", GET => ok(BodyKind::Chunked, true);
        chunked_not_last_reads_to_close: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", GET => ok(BodyKind::Eof, false);
        other_coding_reads_to_close: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", GET => ok(BodyKind::Eof, false);
        chunked_twice: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", GET => Err(Error::Framing("chunked applied twice"));
        length_and_chunked: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", GET => Err(Error::Framing("both Content-Length and Transfer-Encoding"));
        no_framing_reads_to_close: "HTTP/1.1 200 OK\r\n\r\n", GET => ok(BodyKind::Eof, false);
        http10_closes: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", GET => ok(BodyKind::Length(2), false);
        http10_keep_alive: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", GET => ok(BodyKind::Length(2), true);
        http10_close_delimited: "HTTP/1.0 200 OK\r\n\r\n", GET => ok(BodyKind::Eof, false);
        http10_chunked_closes_after: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", GET => ok(BodyKind::Chunked, false);
        http10_no_body_with_transfer_encoding_closes_after: "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n", GET => ok(BodyKind::None, false);
        folded_length_is_unfolded_first: "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length:\r\n 5\r\n\r\n", GET => ok(BodyKind::Length(5), true);
        connection_close: "HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 0\r\n\r\n", GET => ok(BodyKind::Length(0), false);
        head_ignores_length: "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", HEAD => ok(BodyKind::None, true);
        head_ignores_chunked: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HEAD => ok(BodyKind::None, true);
        no_content: "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", GET => ok(BodyKind::None, true);
        not_modified: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", GET => ok(BodyKind::None, true);
        continue_has_no_body: "HTTP/1.1 100 Continue\r\n\r\n", GET => ok(BodyKind::None, true);
        switching_protocols_is_not_reused: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", GET => ok(BodyKind::None, false);
        connect_tunnel: "HTTP/1.1 200 Connection established\r\n\r\n", CONNECT => ok(BodyKind::None, false);
        connect_refused_has_a_body: "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n", CONNECT => ok(BodyKind::Length(2), true);
    }

    #[test]
    fn interim_responses() {
        for (raw, interim) in [
            (&b"HTTP/1.1 100 Continue\r\n\r\n"[..], true),
            (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", true),
            (b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\n\r\n", false),
        ] {
            let mut headers = [MaybeUninit::uninit(); 4];
            let mut buf = raw.to_vec();
            let (_, head) = parse(&mut buf, &mut headers, 1024).unwrap().unwrap();
            assert_eq!(head.is_interim(), interim, "{raw:?}");
        }
    }

    #[test]
    fn partial_heads_ask_for_more_at_every_split() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n";
        for end in 0..raw.len() {
            let mut headers = [MaybeUninit::uninit(); 4];
            let mut buf = raw[..end].to_vec();
            assert!(
                matches!(parse(&mut buf, &mut headers, 1024), Ok(None)),
                "split {end}"
            );
        }
        let mut headers = [MaybeUninit::uninit(); 4];
        let mut buf = raw.to_vec();
        let (len, head) = parse(&mut buf, &mut headers, 1024).unwrap().unwrap();
        assert_eq!(len, raw.len());
        assert_eq!((head.status, head.reason), (200, "OK"));
        assert_eq!(head.headers.len(), 2);
    }

    #[test]
    fn missing_reason_is_fine() {
        let mut headers = [MaybeUninit::uninit(); 4];
        let mut buf = b"HTTP/1.1 404\r\n\r\n".to_vec();
        let (_, head) = parse(&mut buf, &mut headers, 1024).unwrap().unwrap();
        assert_eq!((head.status, head.reason), (404, ""));
    }

    /// RFC 9112 §5.2: a user agent replaces each obs-fold with SP.
    #[test]
    fn obs_fold_is_replaced_with_spaces() {
        let raw = b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\n\tthird\r\nX-Bare: a\n b\r\nContent-Length: 2\r\n\r\nok\r\n body";
        let mut headers = [MaybeUninit::uninit(); 8];
        let mut buf = raw.to_vec();
        let (len, head) = parse(&mut buf, &mut headers, 1024).unwrap().unwrap();
        assert_eq!(len, raw.len() - b"ok\r\n body".len());
        let fields: Vec<(&str, &[u8])> = head.headers.iter().map(|h| (h.name, h.value)).collect();
        assert_eq!(
            fields,
            [
                ("X-Folded", &b"first    second  \tthird"[..]),
                ("X-Bare", b"a  b"),
                ("Content-Length", b"2"),
            ]
        );
        // The body is left alone.
        assert!(buf.ends_with(b"ok\r\n body"));
    }

    #[test]
    fn obs_fold_split_at_every_byte_asks_for_more_then_parses() {
        let raw = b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n";
        for end in 0..raw.len() {
            // Unfolding a part, then the whole, as reads arrive.
            let mut buf = raw.to_vec();
            let mut headers = [MaybeUninit::uninit(); 4];
            assert!(
                matches!(parse(&mut buf[..end], &mut headers, 1024), Ok(None)),
                "split {end}"
            );
            let mut headers = [MaybeUninit::uninit(); 4];
            let (_, head) = parse(&mut buf, &mut headers, 1024).unwrap().unwrap();
            assert_eq!(head.headers[0].value, b"a   b", "split {end}");
        }
    }

    #[test]
    fn a_head_without_fields_leaves_what_follows_alone() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\n\r\n{\n  \"a\": 1\n}\n"[..],
            b"HTTP/1.0 200 OK\r\n\r\n  indented\n",
            b"\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n x\r\n\r\n",
            b"HTTP/1.1 200 OK\n\n\tbody\n",
        ] {
            let mut buf = raw.to_vec();
            unfold(&mut buf);
            assert_eq!(buf, raw, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn whitespace_before_the_first_field_is_still_refused() {
        let mut headers = [MaybeUninit::uninit(); 4];
        let mut buf = b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n".to_vec();
        assert!(parse(&mut buf, &mut headers, 1024).is_err());
    }

    #[test]
    fn malformed_heads() {
        for raw in [
            &b"HTTP/2.0 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"hello world\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
        ] {
            let mut headers = [MaybeUninit::uninit(); 4];
            assert!(
                parse(&mut raw.to_vec(), &mut headers, 1024).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn head_larger_than_the_limit() {
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.resize(200, b'a');
        let mut headers = [MaybeUninit::uninit(); 4];
        assert_eq!(
            parse(&mut raw.clone(), &mut headers, 100).err(),
            Some(Error::Malformed("response head too large"))
        );
        let mut headers = [MaybeUninit::uninit(); 4];
        assert!(matches!(parse(&mut raw, &mut headers, 1000), Ok(None)));
    }

    #[test]
    fn status_lines() {
        // Every ready-made line matches the built one.
        for status in 100..=999 {
            let built = format!("HTTP/1.1 {status} {}\r\n", reason(status));
            assert_eq!(status_line(status).as_slice(), built.as_bytes(), "{status}");
        }
        assert_eq!(status_line(599).as_slice(), b"HTTP/1.1 599 \r\n");
    }
}
