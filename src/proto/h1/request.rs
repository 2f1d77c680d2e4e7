//! Request heads: parsing (httparse plus the RFC 9112 rules it leaves to
//! us) and message framing per RFC 9112 §6.3.

use std::mem::MaybeUninit;

use super::{target, BodyKind, Connection, Framing};
use crate::proto::fields::{is_token, list, merge_length, valid_host};
use crate::proto::{Error, Version};

/// A parsed request head; fields borrow the read buffer.
pub(crate) struct Head<'h, 'b> {
    pub method: &'b str,
    pub target: &'b str,
    pub version: Version,
    pub headers: &'h [httparse::Header<'b>],
    pub framing: Framing,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// A HEAD request: the response carries no body.
    pub is_head: bool,
    /// An `Upgrade` field on an HTTP/1.1 request (RFC 9110 §7.8: one in
    /// an HTTP/1.0 request is ignored).
    pub upgrade: bool,
}

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_head: usize,
}

/// Parses a request head from the start of `buf` in one go (a fresh
/// [`Scan`]).
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((len, head)))`: the head
/// takes `len` bytes (leading empty lines included); the body follows.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
    limits: Limits,
) -> Result<Option<(usize, Head<'h, 'b>)>, Error> {
    Scan::default().parse(buf, headers, limits)
}

/// The one parse of a whole head: httparse, CRLF line ends, the target,
/// the fields. `Ok(None)`: no end of head yet. Its errors are the verdict
/// only once [`Scan`] has found every line of the head valid.
#[inline]
fn parse_whole<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
    limits: Limits,
) -> Result<Option<(usize, Head<'h, 'b>)>, Error> {
    let mut req = httparse::Request::new(&mut []);
    let status = req
        .parse_with_uninit_headers(buf, headers)
        .map_err(|e| match e {
            httparse::Error::Version => Error::Malformed("invalid HTTP version"),
            e => parse_error(e),
        })?;
    let len = match status {
        httparse::Status::Complete(len) if len <= limits.max_head => len,
        httparse::Status::Complete(_) => return Err(Error::HeadTooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    let headers: &'h [httparse::Header<'b>] = req.headers;
    // httparse takes a lone LF for a line end; we do not (RFC 9112 §2.2).
    // (Anything unexpected here only sends the head the slow way, through
    // `Scan`, which judges it line by line.)
    let line_end = offset_in(buf, target.as_bytes()).wrapping_add(target.len() + " HTTP/1.1".len());
    if !cr_at(buf, line_end)
        || !headers
            .iter()
            .all(|h| cr_at(buf, offset_in(buf, h.value).wrapping_add(h.value.len())))
        || buf[len - 2] != b'\r'
    {
        return Err(Error::Malformed("invalid line ending"));
    }
    target::check(method, target)?;
    let mut fields = Fields::default();
    for h in headers {
        fields.add(h.name.as_bytes(), h.value)?;
    }
    let (framing, expect_continue) = fields.framing(version)?;
    let upgrade = fields.upgrade && version == Version::Http11;
    Ok(Some((
        len,
        Head {
            method,
            target,
            version,
            headers,
            framing,
            expect_continue,
            is_head: method == "HEAD",
            upgrade,
        },
    )))
}

/// Is there a CR at `at` in `buf`, after any spaces and tabs (which
/// httparse leaves out of a field's value)?
#[inline]
fn cr_at(buf: &[u8], at: usize) -> bool {
    match buf.get(at) {
        Some(b'\r') => true,
        Some(b' ' | b'\t') => cr_after_blanks(&buf[at..]),
        _ => false,
    }
}

/// [`cr_at`] past trailing blanks (rare).
#[cold]
fn cr_after_blanks(rest: &[u8]) -> bool {
    let blanks = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    rest.get(blanks) == Some(&b'\r')
}

/// Where `part` (a subslice of `buf`) starts in `buf` (past its end if
/// `part` is not in it).
fn offset_in(buf: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize)
}

/// A request head read line by line as it arrives, so that a head costs
/// time linear in its length however it is split, and a complete line
/// that is already invalid is answered at once.
///
/// The verdict on a head is that of its first invalid line, in order, or
/// if every line is valid, of the whole head ([`parse_whole`]): the same
/// however the bytes came, since it looks at complete lines only. A line
/// not yet ended is never judged.
///
/// A head that comes in one read skips the line-by-line scan when valid:
/// the one parse of the whole head is all it costs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scan {
    /// Some bytes have been scanned (so the whole-head shortcut is past).
    begun: bool,
    /// The request line has been checked.
    request_line: bool,
    /// Where the first line not yet checked starts.
    line: usize,
    /// How far the bytes have been searched for the end of that line.
    seen: usize,
    /// Field lines checked.
    count: usize,
    fields: Fields,
}

impl Scan {
    /// Parses as much of the head at the start of `buf` as has arrived
    /// (`buf` grows between calls; nothing before the head is consumed
    /// meanwhile). `Ok(None)`: read more. `Ok(Some((len, head)))`: the head
    /// takes `len` bytes (leading empty lines included); the body follows.
    #[inline(always)]
    pub(crate) fn parse<'h, 'b>(
        &mut self,
        buf: &'b [u8],
        headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
        limits: Limits,
    ) -> Result<Option<(usize, Head<'h, 'b>)>, Error> {
        let max_fields = headers.len();
        if !self.begun {
            // Most heads come whole and valid: one parse.
            let whole = parse_whole(buf, headers, limits);
            if let Ok(Some(head)) = whole {
                return Ok(Some(head));
            }
            // Otherwise the lines decide, in order.
            return match self.scan(buf, limits, max_fields)? {
                Some(_) => whole,
                None => Ok(None),
            };
        }
        match self.scan(buf, limits, max_fields)? {
            Some(_) => parse_whole(buf, headers, limits),
            None => Ok(None),
        }
    }

    /// Checks the lines completed since the last call. `Ok(Some(len))`:
    /// all are valid and the head ends after `len` bytes.
    fn scan(
        &mut self,
        buf: &[u8],
        limits: Limits,
        max_fields: usize,
    ) -> Result<Option<usize>, Error> {
        if !self.begun {
            self.begun = true;
            self.line = empty_lines(buf);
            self.seen = self.line;
        }
        // Only what fits in the head limit is looked at.
        let window = &buf[..buf.len().min(limits.max_head)];
        while let Some(lf) = window[self.seen..].iter().position(|&b| b == b'\n') {
            let end = self.seen + lf;
            let line = &window[self.line..end];
            let Some(line) = line.strip_suffix(b"\r") else {
                return Err(Error::Malformed("invalid line ending"));
            };
            if !self.request_line {
                check_request_line(&window[..=end])?;
                self.request_line = true;
            } else if line.is_empty() {
                return Ok(Some(end + 1));
            } else {
                self.count += 1;
                if self.count > max_fields {
                    return Err(Error::HeadTooLarge);
                }
                self.check_field_line(&window[self.line..=end], line)?;
            }
            self.line = end + 1;
            self.seen = end + 1;
        }
        self.seen = window.len();
        if buf.len() >= limits.max_head {
            return Err(too_large(window));
        }
        Ok(None)
    }

    /// One field line: its syntax (httparse's), then what it means for
    /// the framing, given the fields before it.
    fn check_field_line(&mut self, with_end: &[u8], line: &[u8]) -> Result<(), Error> {
        let mut one = [httparse::EMPTY_HEADER; 1];
        httparse::parse_headers(with_end, &mut one).map_err(parse_error)?;
        let colon = line.iter().position(|&b| b == b':').unwrap_or(line.len());
        let value = line.get(colon + 1..).unwrap_or_default().trim_ascii();
        self.fields.add(&line[..colon], value)
    }
}

/// The request line, complete (`line` ends with its line end; empty
/// lines before it included).
fn check_request_line(line: &[u8]) -> Result<(), Error> {
    let mut req = httparse::Request::new(&mut []);
    match req.parse(line) {
        Ok(_) => {}
        Err(httparse::Error::Version) => {
            return Err(version_error(line).unwrap_or(Error::Malformed("invalid HTTP version")))
        }
        Err(e) => return Err(parse_error(e)),
    }
    target::check(req.method.unwrap_or_default(), req.path.unwrap_or_default())
}

/// How many bytes of `buf` are complete empty lines (CRLF or LF) before
/// anything else.
#[inline]
pub(crate) fn empty_lines(buf: &[u8]) -> usize {
    // Almost always a request line comes first.
    if !matches!(buf.first(), Some(b'\r' | b'\n')) {
        return 0;
    }
    let mut n = 0;
    loop {
        match &buf[n..] {
            [b'\r', b'\n', ..] => n += 2,
            [b'\n', ..] => n += 1,
            _ => return n,
        }
    }
}

/// Does `buf` hold the start of a request: more than empty lines and the
/// CR that may begin another (its LF may come in the next read)?
#[inline]
pub(crate) fn starts_request(buf: &[u8]) -> bool {
    let rest = &buf[empty_lines(buf)..];
    !(rest.is_empty() || rest == b"\r")
}

/// The head did not fit: 431 if the request line did; if not, 501 if
/// even the method did not (RFC 9112 §3), else 414.
fn too_large(buf: &[u8]) -> Error {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line = &buf[start..];
    if line.contains(&b'\n') {
        Error::HeadTooLarge
    } else if !line.contains(&b' ') {
        Error::MethodTooLong
    } else {
        Error::TargetTooLong
    }
}

fn parse_error(e: httparse::Error) -> Error {
    match e {
        httparse::Error::TooManyHeaders => Error::HeadTooLarge,
        httparse::Error::Version => Error::Malformed("invalid HTTP version"),
        httparse::Error::HeaderName => Error::Malformed("invalid header name"),
        httparse::Error::HeaderValue => Error::Malformed("invalid header value"),
        httparse::Error::NewLine => Error::Malformed("invalid line ending"),
        httparse::Error::Token => Error::Malformed("invalid method or request target"),
        httparse::Error::Status => Error::Malformed("invalid request line"),
    }
}

/// httparse refused the version: is it a well-formed `HTTP/x.y` we do not
/// support (505), garbage (400), or — the line being incomplete — still
/// undecided (`None`)? The verdict never depends on how the bytes arrived.
fn version_error(buf: &[u8]) -> Option<Error> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &buf[start..];
    let (line, complete) = match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(end) => (&rest[..end], true),
        None => (rest, false),
    };
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    const PATTERN: &[fn(u8) -> bool] = &[
        |b| b == b'H',
        |b| b == b'T',
        |b| b == b'T',
        |b| b == b'P',
        |b| b == b'/',
        |b| b.is_ascii_digit(),
        |b| b == b'.',
        |b| b.is_ascii_digit(),
    ];
    let fits = version.len() <= PATTERN.len() && version.iter().zip(PATTERN).all(|(&b, ok)| ok(b));
    match (fits, complete) {
        (true, true) if version.len() == PATTERN.len() => Some(Error::Version),
        (true, false) => None,
        _ => Some(Error::Malformed("invalid HTTP version")),
    }
}

/// What the fields of a head say so far: added one at a time, in order,
/// each judged as it comes (a field line can be refused as soon as it is
/// complete); then [`framing`](Fields::framing) judges them together.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields {
    content_length: Option<u64>,
    /// `chunked` was the last coding so far.
    chunked: bool,
    has_te: bool,
    /// A coding other than chunked (before it).
    other_coding: bool,
    connection: Connection,
    expect_continue: bool,
    hosts: u8,
    /// An `Upgrade` field was seen.
    upgrade: bool,
}

impl Fields {
    /// Adds the field `name: value`.
    #[inline]
    fn add(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        // Only these six matter here; most fields are none of them, and
        // their lengths tell at once.
        if !matches!(name.len(), 4 | 6 | 7 | 10 | 14 | 17) {
            return Ok(());
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            merge_length(&mut self.content_length, value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.has_te = true;
            for coding in list(value) {
                if self.chunked {
                    // chunked must be the final coding, and only once
                    return Err(Error::Framing("chunked is not the final coding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    self.chunked = true;
                } else if !is_token(coding) {
                    return Err(Error::Framing("invalid transfer coding"));
                } else {
                    // A coding we do not implement; refused once we know
                    // whether chunked comes last.
                    self.other_coding = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            self.connection.add(value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            // 100-continue is the only expectation there is (RFC 9110
            // §10.1.1); ignored, not refused, in HTTP/1.0.
            for item in list(value) {
                if !item.eq_ignore_ascii_case(b"100-continue") {
                    return Err(Error::Expectation);
                }
                self.expect_continue = true;
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade = true;
        } else if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            if self.hosts > 1 || !valid_host(value) {
                return Err(Error::Host);
            }
        }
        if self.has_te && self.content_length.is_some() {
            return Err(Error::Framing("Content-Length with Transfer-Encoding"));
        }
        Ok(())
    }

    /// RFC 9112 §6.3 framing, connection persistence and Host, for a
    /// request of `version` with these fields; whether the client expects
    /// `100 Continue`.
    fn framing(self, version: Version) -> Result<(Framing, bool), Error> {
        if version == Version::Http11 && self.hosts != 1 {
            return Err(Error::Host);
        }
        let body = if self.has_te {
            if version == Version::Http10 {
                return Err(Error::Framing("Transfer-Encoding in HTTP/1.0"));
            }
            if !self.chunked {
                return Err(Error::Framing("chunked is not the final coding"));
            }
            if self.other_coding {
                return Err(Error::UnknownCoding);
            }
            BodyKind::Chunked
        } else {
            BodyKind::Length(self.content_length.unwrap_or(0))
        };
        let keep_alive = self.connection.persists(version);
        Ok((
            Framing { body, keep_alive },
            self.expect_continue && version == Version::Http11,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_head: 1024 };

    fn framing_of(raw: &[u8]) -> Result<Option<Framing>, Error> {
        let mut headers = [MaybeUninit::uninit(); 16];
        parse(raw, &mut headers, LIMITS).map(|h| h.map(|(_, h)| h.framing))
    }

    fn body_of(raw: &str) -> Result<BodyKind, Error> {
        Ok(framing_of(raw.as_bytes())?.expect("complete").body)
    }

    #[test]
    fn empty_lines_counts_only_complete_ones() {
        assert_eq!(empty_lines(b""), 0);
        assert_eq!(empty_lines(b"\r\n\n\r\nGET"), 5);
        assert_eq!(empty_lines(b"\r\n\r"), 2, "a CR alone may be a bare CR");
        assert_eq!(empty_lines(b"\rGET"), 0);
        assert_eq!(empty_lines(b"GET /\r\n"), 0);
    }

    #[test]
    fn a_request_starts_with_something_other_than_empty_lines() {
        for (buf, starts) in [
            (&b""[..], false),
            (b"\r", false),
            (b"\r\n\n\r", false),
            (b"\r\n\r\r", true),
            (b"\r\nG", true),
            (b"GET", true),
            (b"\rX", true),
        ] {
            assert_eq!(starts_request(buf), starts, "{buf:?}");
        }
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert_eq!(framing_of(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
    }

    #[test]
    fn blanks_may_end_a_field_line_but_not_before_a_bare_lf() {
        let raw = b"GET / HTTP/1.1\r\nHost: a \t\r\nX: b \r\n\r\n";
        let mut headers = [MaybeUninit::uninit(); 4];
        let (len, head) = parse(raw, &mut headers, LIMITS).unwrap().unwrap();
        assert_eq!((len, head.headers[0].value), (raw.len(), &b"a"[..]));
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: a \n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nX: b \t\n\r\n",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
        ] {
            assert_eq!(
                framing_of(bad),
                Err(Error::Malformed("invalid line ending")),
                "{:?}",
                bad.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn head_length_includes_leading_empty_lines() {
        let raw = b"\r\n\r\nGET /x?y HTTP/1.0\r\n\r\nbody";
        let mut headers = [MaybeUninit::uninit(); 4];
        let (len, head) = parse(raw, &mut headers, LIMITS).unwrap().unwrap();
        assert_eq!(&raw[len..], b"body");
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/x?y");
        assert_eq!(head.version, Version::Http10);
        assert!(!head.framing.keep_alive);
    }

    macro_rules! body_cases {
        ($($name:ident: $raw:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(body_of($raw), $want);
            }
        )*};
    }

    body_cases! {
        no_framing_means_empty: "POST / HTTP/1.1\r\nHost: a\r\n\r\n" => Ok(BodyKind::Length(0));
        content_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n" => Ok(BodyKind::Length(12));
        leading_zeros_are_decimal: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 010\r\n\r\n" => Ok(BodyKind::Length(10));
        identical_lengths_merge: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n" => Ok(BodyKind::Length(5));
        differing_lengths: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" => Err(Error::Framing("conflicting Content-Length"));
        differing_length_list: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n" => Err(Error::Framing("conflicting Content-Length"));
        signed_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n" => Err(Error::Framing("invalid Content-Length"));
        hex_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n" => Err(Error::Framing("invalid Content-Length"));
        decimal_point_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n" => Err(Error::Framing("invalid Content-Length"));
        inner_space_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n" => Err(Error::Framing("invalid Content-Length"));
        empty_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n" => Err(Error::Framing("empty Content-Length"));
        empty_length_after_valid: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: \r\n\r\n" => Err(Error::Framing("empty Content-Length"));
        many_leading_zeros: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000005\r\n\r\n" => Ok(BodyKind::Length(5));
        overflowing_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n" => Err(Error::Framing("Content-Length overflows"));
        chunked: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" => Ok(BodyKind::Chunked);
        chunked_any_case: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n" => Ok(BodyKind::Chunked);
        length_and_chunked: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(Error::Framing("Content-Length with Transfer-Encoding"));
        chunked_not_last: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => Err(Error::Framing("chunked is not the final coding"));
        chunked_twice: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(Error::Framing("chunked is not the final coding"));
        only_gzip: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" => Err(Error::Framing("chunked is not the final coding"));
        lookalike_chunked: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n" => Err(Error::Framing("chunked is not the final coding"));
        unknown_coding: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => Err(Error::UnknownCoding);
        te_in_http10: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(Error::Framing("Transfer-Encoding in HTTP/1.0"));
        missing_host: "GET / HTTP/1.1\r\n\r\n" => Err(Error::Host);
        two_hosts: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => Err(Error::Host);
        bad_host: "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n" => Err(Error::Host);
        http10_without_host: "GET / HTTP/1.0\r\n\r\n" => Ok(BodyKind::Length(0));
    }

    #[test]
    fn persistence_follows_version_and_connection() {
        let ka = |raw: &str| framing_of(raw.as_bytes()).unwrap().unwrap().keep_alive;
        assert!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        ));
        assert!(!ka(
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n"
        ));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn expect_continue_only_on_http11() {
        let ec = |raw: &str| {
            let mut headers = [MaybeUninit::uninit(); 16];
            let (_, head) = parse(raw.as_bytes(), &mut headers, LIMITS)
                .unwrap()
                .unwrap();
            head.expect_continue
        };
        assert!(ec(
            "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n"
        ));
        assert!(!ec("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
    }

    #[test]
    fn head_errors_carry_their_status() {
        let status = |raw: &[u8]| crate::ParseError::from(framing_of(raw).unwrap_err()).status();
        assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n"), 505);
        assert_eq!(status(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(status(b"GET / FOO/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.10\r\n\r\n"), 400);
        assert_eq!(status(b"GET / x HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n"),
            400
        );
        assert_eq!(status(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        let mut long = b"GET /".to_vec();
        long.resize(2000, b'a');
        assert_eq!(status(&long), 414);
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < 2000 {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(status(&big), 431);
        let many: String = std::iter::once("GET / HTTP/1.1\r\nHost: a\r\n".to_string())
            .chain((0..20).map(|i| format!("X-{i}: v\r\n")))
            .chain(std::iter::once("\r\n".to_string()))
            .collect();
        assert_eq!(status(many.as_bytes()), 431);
    }

    #[test]
    fn version_verdict_waits_for_the_whole_version() {
        let mut headers = [MaybeUninit::uninit(); 4];
        for partial in [&b"GET / HTTP/2"[..], b"GET / HTTP/2.", b"GET / HTTP/2.0"] {
            assert!(matches!(parse(partial, &mut headers, LIMITS), Ok(None)));
        }
        assert_eq!(framing_of(b"GET / 0?q"), Ok(None), "the line has not ended");
        assert_eq!(
            framing_of(b"GET / 0?q\r\n"),
            Err(Error::Malformed("invalid HTTP version"))
        );
    }
}
