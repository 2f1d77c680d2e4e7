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
) -> Result<Option<(usize, Head<'h, 'b>)>, Error> {
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
        httparse::Status::Complete(_) => return Err(Error::HeadTooLarge),
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
    let (framing, expect_continue) = framing(version, headers)?;
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

/// RFC 9112 §6.3 framing, connection persistence and Host; whether the
/// client expects `100 Continue`.
fn framing(version: Version, headers: &[httparse::Header<'_>]) -> Result<(Framing, bool), Error> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut connection = Connection::default();
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
            merge_length(&mut content_length, h.value)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            has_te = true;
            for coding in list(h.value) {
                if chunked {
                    // chunked must be the final coding, and only once
                    return Err(Error::Framing("chunked is not the final coding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if !is_token(coding) {
                    return Err(Error::Framing("invalid transfer coding"));
                } else {
                    // A coding we do not implement; decided below once we
                    // know whether chunked comes last.
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection.add(h.value);
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            if !valid_host(h.value) {
                return Err(Error::Host);
            }
        }
    }
    if version == Version::Http11 && hosts != 1 || hosts > 1 {
        return Err(Error::Host);
    }
    let body = if has_te {
        if content_length.is_some() {
            return Err(Error::Framing("Content-Length with Transfer-Encoding"));
        }
        if version == Version::Http10 {
            return Err(Error::Framing("Transfer-Encoding in HTTP/1.0"));
        }
        if !chunked {
            return Err(Error::Framing("chunked is not the final coding"));
        }
        if te_has_other_coding(headers) {
            return Err(Error::UnknownCoding);
        }
        BodyKind::Chunked
    } else {
        BodyKind::Length(content_length.unwrap_or(0))
    };
    let keep_alive = connection.persists(version);
    Ok((
        Framing { body, keep_alive },
        expect_continue && version == Version::Http11,
    ))
}

fn te_has_other_coding(headers: &[httparse::Header<'_>]) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|h| list(h.value))
        .any(|c| !c.eq_ignore_ascii_case(b"chunked"))
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
        assert_eq!(
            framing_of(b"GET / 0?q"),
            Err(Error::Malformed("invalid HTTP version"))
        );
    }
}
