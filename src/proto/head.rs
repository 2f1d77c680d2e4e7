//! Request heads: parsing (httparse plus the RFC 9112 rules it leaves to
//! us) and message framing per RFC 9112 §6.3; response status lines.

use std::mem::MaybeUninit;

use super::target;
use crate::error::ParseError;
use crate::rt::buf::ArrayBuf;

/// The HTTP version of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

impl Version {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Length(u64),
    Chunked,
}

/// What the server needs to know about a request beyond its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framing {
    pub body: BodyKind,
    /// May the connection stay open after this exchange (as far as the
    /// request is concerned)?
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// A HEAD request: the response carries no body.
    pub is_head: bool,
}

/// A parsed request head; fields borrow the read buffer.
pub(crate) struct Head<'h, 'b> {
    pub method: &'b str,
    pub target: &'b str,
    pub version: Version,
    pub headers: &'h [httparse::Header<'b>],
    pub framing: Framing,
}

/// Limits applied while parsing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_head: usize,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((len, head)))`: the head
/// takes `len` bytes (leading empty lines included); the body follows.
pub(crate) fn parse<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<httparse::Header<'b>>],
    limits: Limits,
) -> Result<Option<(usize, Head<'h, 'b>)>, ParseError> {
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, headers) {
        Ok(status) => status,
        Err(httparse::Error::Version) => match version_error(buf) {
            Some(e) => return Err(e),
            None if buf.len() >= limits.max_head => return Err(too_large(buf)),
            None => return Ok(None),
        },
        Err(e) => return Err(parse_error(e)),
    };
    let len = match status {
        httparse::Status::Complete(len) if len <= limits.max_head => len,
        httparse::Status::Complete(_) => return Err(ParseError::HeadTooLarge),
        httparse::Status::Partial if buf.len() >= limits.max_head => {
            return Err(too_large(buf));
        }
        httparse::Status::Partial => return Ok(None),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let method = req.method.unwrap_or_default();
    let target = req.path.unwrap_or_default();
    target::check(method, target)?;
    let headers: &'h [httparse::Header<'b>] = req.headers;
    let framing = framing(method, version, headers)?;
    Ok(Some((
        len,
        Head {
            method,
            target,
            version,
            headers,
            framing,
        },
    )))
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
fn too_large(buf: &[u8]) -> ParseError {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0);
    let line = &buf[start..];
    if line.contains(&b'\n') {
        ParseError::HeadTooLarge
    } else if !line.contains(&b' ') {
        ParseError::MethodTooLong
    } else {
        ParseError::TargetTooLong
    }
}

fn parse_error(e: httparse::Error) -> ParseError {
    match e {
        httparse::Error::TooManyHeaders => ParseError::HeadTooLarge,
        httparse::Error::Version => ParseError::Malformed("invalid HTTP version"),
        httparse::Error::HeaderName => ParseError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => ParseError::Malformed("invalid header value"),
        httparse::Error::NewLine => ParseError::Malformed("invalid line ending"),
        httparse::Error::Token => ParseError::Malformed("invalid method or request target"),
        httparse::Error::Status => ParseError::Malformed("invalid request line"),
    }
}

/// httparse refused the version: is it a well-formed `HTTP/x.y` we do not
/// support (505), garbage (400), or — the line being incomplete — still
/// undecided (`None`)? The verdict never depends on how the bytes arrived.
fn version_error(buf: &[u8]) -> Option<ParseError> {
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
        (true, true) if version.len() == PATTERN.len() => Some(ParseError::Version),
        (true, false) => None,
        _ => Some(ParseError::Malformed("invalid HTTP version")),
    }
}

/// RFC 9112 §6.3 framing, connection persistence, expectations and Host.
fn framing(
    method: &str,
    version: Version,
    headers: &[httparse::Header<'_>],
) -> Result<Framing, ParseError> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut hosts = 0;
    for h in headers {
        let name = h.name.as_bytes();
        // Only these five matter here; most fields are none of them, and
        // their lengths tell at once.
        if !matches!(name.len(), 4 | 6 | 10 | 14 | 17) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let mut items = 0;
            for item in list(h.value) {
                let n = parse_length(item)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(ParseError::Framing("conflicting Content-Length"));
                }
                content_length = Some(n);
                items += 1;
            }
            if items == 0 {
                return Err(ParseError::Framing("empty Content-Length"));
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_te = true;
            for coding in list(h.value) {
                if chunked {
                    // chunked must be the final coding, and only once
                    return Err(ParseError::Framing("chunked is not the final coding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if !is_token(coding) {
                    return Err(ParseError::Framing("invalid transfer coding"));
                } else {
                    // A coding we do not implement; decided below once we
                    // know whether chunked comes last.
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for opt in list(h.value) {
                if opt.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            if !valid_host(h.value) {
                return Err(ParseError::Host);
            }
        }
    }
    if version == Version::Http11 && hosts != 1 || hosts > 1 {
        return Err(ParseError::Host);
    }
    let body = if has_te {
        if content_length.is_some() {
            return Err(ParseError::Framing("Content-Length with Transfer-Encoding"));
        }
        if version == Version::Http10 {
            return Err(ParseError::Framing("Transfer-Encoding in HTTP/1.0"));
        }
        if !chunked {
            return Err(ParseError::Framing("chunked is not the final coding"));
        }
        if te_has_other_coding(headers) {
            return Err(ParseError::UnknownCoding);
        }
        BodyKind::Chunked
    } else {
        BodyKind::Length(content_length.unwrap_or(0))
    };
    let keep_alive = !close
        && match version {
            Version::Http11 => true,
            Version::Http10 => keep_alive_token,
        };
    Ok(Framing {
        body,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11,
        is_head: method == "HEAD",
    })
}

fn te_has_other_coding(headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|h| list(h.value))
        .any(|c| !c.eq_ignore_ascii_case(b"chunked"))
}

/// Elements of a comma-separated list, trimmed of OWS; empty ones skipped.
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|item| !item.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Content-Length = 1*DIGIT, decimal, fitting in a u64.
pub(crate) fn parse_length(s: &[u8]) -> Result<u64, ParseError> {
    if s.is_empty() {
        return Err(ParseError::Framing("invalid Content-Length"));
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(ParseError::Framing("invalid Content-Length"));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::Framing("Content-Length overflows"))?;
    }
    Ok(n)
}

/// A table of which bytes belong to a class: one lookup per byte on the
/// hot path instead of a search through the class's members.
struct ByteClass([bool; 256]);

impl ByteClass {
    /// Alphanumerics plus `extra`.
    const fn alnum_and(extra: &[u8]) -> ByteClass {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            table[b] = (b as u8).is_ascii_alphanumeric();
            b += 1;
        }
        let mut i = 0;
        while i < extra.len() {
            table[extra[i] as usize] = true;
            i += 1;
        }
        ByteClass(table)
    }

    fn contains(&self, b: u8) -> bool {
        self.0[b as usize]
    }
}

/// `tchar` (RFC 9110 §5.6.2).
static TCHAR: ByteClass = ByteClass::alnum_and(b"!#$%&'*+-.^_`|~");

/// What `uri-host [":" port]` may contain: unreserved, sub-delims, `:`,
/// `[ ]` for IP literals and `%` for escapes.
static HOST: ByteClass = ByteClass::alnum_and(b"-._~!$&'()*+,;=:[]%");

/// Does `value` hold only what a field value may: HTAB, SP, VCHAR and
/// obs-text — no CR, LF, NUL or other control byte? Written without
/// short-circuiting so that it compiles to SIMD compares.
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    !value.iter().fold(false, |bad, &b| {
        bad | (b < b' ') & (b != b'\t') | (b == 0x7f)
    })
}

/// A `tchar` (RFC 9110 §5.6.2): a byte of a token.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR.contains(b)
}

/// A token: one or more `tchar`s. Without short-circuiting: tokens are
/// short and mostly valid, and a branch per byte costs more than a lookup.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & is_tchar(b))
}

/// Checks a field a handler adds to a response, and returns the length
/// if it is `Content-Length`.
///
/// # Panics
///
/// On a name that is not a token, a value with CR, LF, NUL or another
/// control byte (what could split the response), or a `Content-Length`
/// that is not a number — with a message saying which.
pub(crate) fn checked_field(name: &str, value: &[u8]) -> Option<u64> {
    assert!(is_token(name.as_bytes()), "invalid header name {name:?}");
    assert!(
        is_field_value(value),
        "invalid byte in value of header {name}"
    );
    if !name.eq_ignore_ascii_case("content-length") {
        return None;
    }
    let n = std::str::from_utf8(value)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("invalid Content-Length {value:?}"));
    Some(n)
}

/// `uri-host [":" port]`: reg-name, IPv4 or a bracketed IP literal.
pub(crate) fn valid_host(v: &[u8]) -> bool {
    v.iter().fold(true, |ok, &b| ok & HOST.contains(b))
}

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

/// The canonical reason phrase for a status code ("" when unknown).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_head: 1024 };

    fn framing_of(raw: &[u8]) -> Result<Option<Framing>, ParseError> {
        let mut headers = [MaybeUninit::uninit(); 16];
        parse(raw, &mut headers, LIMITS).map(|h| h.map(|(_, h)| h.framing))
    }

    fn body_of(raw: &str) -> Result<BodyKind, ParseError> {
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
        differing_lengths: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" => Err(ParseError::Framing("conflicting Content-Length"));
        differing_length_list: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n" => Err(ParseError::Framing("conflicting Content-Length"));
        signed_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n" => Err(ParseError::Framing("invalid Content-Length"));
        hex_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n" => Err(ParseError::Framing("invalid Content-Length"));
        decimal_point_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n" => Err(ParseError::Framing("invalid Content-Length"));
        inner_space_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n" => Err(ParseError::Framing("invalid Content-Length"));
        empty_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n" => Err(ParseError::Framing("empty Content-Length"));
        empty_length_after_valid: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: \r\n\r\n" => Err(ParseError::Framing("empty Content-Length"));
        many_leading_zeros: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000005\r\n\r\n" => Ok(BodyKind::Length(5));
        overflowing_length: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n" => Err(ParseError::Framing("Content-Length overflows"));
        chunked: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" => Ok(BodyKind::Chunked);
        chunked_any_case: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n" => Ok(BodyKind::Chunked);
        length_and_chunked: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(ParseError::Framing("Content-Length with Transfer-Encoding"));
        chunked_not_last: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => Err(ParseError::Framing("chunked is not the final coding"));
        chunked_twice: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(ParseError::Framing("chunked is not the final coding"));
        only_gzip: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" => Err(ParseError::Framing("chunked is not the final coding"));
        lookalike_chunked: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n" => Err(ParseError::Framing("chunked is not the final coding"));
        unknown_coding: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => Err(ParseError::UnknownCoding);
        te_in_http10: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => Err(ParseError::Framing("Transfer-Encoding in HTTP/1.0"));
        missing_host: "GET / HTTP/1.1\r\n\r\n" => Err(ParseError::Host);
        two_hosts: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => Err(ParseError::Host);
        bad_host: "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n" => Err(ParseError::Host);
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
        let ec = |raw: &str| framing_of(raw.as_bytes()).unwrap().unwrap().expect_continue;
        assert!(ec(
            "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n"
        ));
        assert!(!ec("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"));
    }

    #[test]
    fn head_errors_carry_their_status() {
        let status = |raw: &[u8]| framing_of(raw).unwrap_err().status();
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
        assert_eq!(
            framing_of(b"GET / 0?q"),
            Err(ParseError::Malformed("invalid HTTP version"))
        );
    }

    #[test]
    fn response_fields_are_checked() {
        assert_eq!(checked_field("X-Ok", b"a\tb ~\x80"), None);
        assert_eq!(checked_field("content-length", b"42"), Some(42));
        for (name, value) in [
            ("X-Split", &b"a\r\nSet-Cookie: x"[..]),
            ("X-Nul", b"a\0b"),
            ("Bad Name", b"v"),
            ("", b"v"),
            ("Content-Length", b"-1"),
            ("Content-Length", b""),
        ] {
            let result = std::panic::catch_unwind(|| checked_field(name, value));
            assert!(result.is_err(), "{name:?}: {value:?} was accepted");
        }
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
