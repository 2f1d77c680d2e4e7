//! Header fields, for every HTTP version: the syntax of names and values
//! (RFC 9110 §5), looking a field up, and writing one — each once, for
//! the server and the client, native and hypersync alike.

/// The value of the first of `fields` named `name` (ASCII
/// case-insensitive).
#[inline]
pub(crate) fn find<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    name: &str,
) -> Option<&'a [u8]> {
    fields
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `value`, if it is UTF-8.
#[inline]
pub(crate) fn utf8(value: Option<&[u8]>) -> Option<&str> {
    value.and_then(|v| std::str::from_utf8(v).ok())
}

/// The `(name, value)` pairs of parsed fields.
#[inline]
pub(crate) fn pairs<'a>(
    fields: &'a [httparse::Header<'a>],
) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
    fields.iter().map(|h| (h.name, h.value))
}

/// Writes the `header`, `header_str` and `headers` methods of a head
/// borrowed for lifetime `$a` — a server's `Request`, a client's
/// `Response` — over its `headers: &$a [httparse::Header<$a>]`.
macro_rules! borrowed_lookup {
    ($a:lifetime) => {
        /// The first field named `name` (ASCII case-insensitive).
        pub fn header(&self, name: &str) -> Option<&$a [u8]> {
            $crate::proto::fields::find(self.headers(), name)
        }

        /// Like [`header`](Self::header), if the value is UTF-8.
        pub fn header_str(&self, name: &str) -> Option<&$a str> {
            $crate::proto::fields::utf8(self.header(name))
        }

        /// Every field, in order, as `(name, value)`.
        pub fn headers(&self) -> impl Iterator<Item = (&$a str, &$a [u8])> + $a {
            $crate::proto::fields::pairs(self.headers)
        }
    };
}
pub(crate) use borrowed_lookup;

/// Appends the field line `name: value` and its CRLF to `buf`.
#[inline(always)]
pub(crate) fn push(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    buf.extend_from_slice(name);
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Checks a field a handler adds to a head it writes, and returns the
/// length if it is `Content-Length`.
///
/// # Panics
///
/// On a name that is not a token, a value with CR, LF, NUL or another
/// control byte (what could split the message), or a `Content-Length`
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

/// A field a handler adds to a head it writes, as the writer of the head
/// sees it: most are copied as they are, a few are interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Added {
    ContentLength(u64),
    /// `Transfer-Encoding`: the writer frames the body itself.
    TransferEncoding,
    /// `Connection`, and whether it lists `close`.
    Connection {
        close: bool,
    },
    /// `Expect: 100-continue`.
    ExpectContinue,
    Host,
    Date,
    Other,
}

/// Checks a field a handler adds (see [`checked_field`], whose panics it
/// shares) and says what it is.
#[inline]
pub(crate) fn added(name: &str, value: &[u8]) -> Added {
    if let Some(n) = checked_field(name, value) {
        return Added::ContentLength(n);
    }
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    match name.len() {
        4 if is("date") => Added::Date,
        4 if is("host") => Added::Host,
        6 if is("expect") && value.trim_ascii().eq_ignore_ascii_case(b"100-continue") => {
            Added::ExpectContinue
        }
        10 if is("connection") => Added::Connection {
            close: has_close(value),
        },
        17 if is("transfer-encoding") => Added::TransferEncoding,
        _ => Added::Other,
    }
}

/// Does a `Connection` value list the `close` option?
pub(crate) fn has_close(value: &[u8]) -> bool {
    list(value).any(|opt| opt.eq_ignore_ascii_case(b"close"))
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
pub(crate) fn parse_length(s: &[u8]) -> Result<u64, super::Error> {
    use super::Error::Framing;
    if s.is_empty() {
        return Err(Framing("invalid Content-Length"));
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(Framing("invalid Content-Length"));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Framing("Content-Length overflows"))?;
    }
    Ok(n)
}

/// Merges the items of one `Content-Length` field into `length`: equal
/// values are one, differing or invalid ones an error.
pub(crate) fn merge_length(length: &mut Option<u64>, value: &[u8]) -> Result<(), super::Error> {
    let mut items = 0;
    for item in list(value) {
        let n = parse_length(item)?;
        if length.is_some_and(|c| c != n) {
            return Err(super::Error::Framing("conflicting Content-Length"));
        }
        *length = Some(n);
        items += 1;
    }
    if items == 0 {
        return Err(super::Error::Framing("empty Content-Length"));
    }
    Ok(())
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

/// What a reg-name or IPv4 address may contain (RFC 3986 §3.2.2):
/// unreserved, sub-delims and `%` for escapes.
static REG_NAME: ByteClass = ByteClass::alnum_and(b"-._~!$&'()*+,;=%");

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

/// `uri-host [":" port]` (RFC 3986 §3.2.2, RFC 9110 §7.2): a reg-name
/// or IPv4 address, or an IP literal in closed brackets; a port of digits.
#[inline]
pub(crate) fn valid_host(v: &[u8]) -> bool {
    split_host(v).is_some()
}

/// `uri-host [":" port]` split into the host and the port (`None`
/// without a `:`; the port may be empty); `None` if invalid.
#[inline]
pub(crate) fn split_host(v: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    if v.first() == Some(&b'[') {
        return split_ip_literal(v);
    }
    // The port is the digits after the last colon, found from the end
    // (it is short); anything before it is the host.
    let (host, port) = match v.iter().rposition(|b| !b.is_ascii_digit()) {
        Some(colon) if v[colon] == b':' => (&v[..colon], Some(&v[colon + 1..])),
        _ => (v, None),
    };
    // One pass over the host without a branch per byte (hot: every
    // request's Host): the union of its bytes' kinds; a colon left in it
    // is one of the bytes that have no place there.
    let kinds = host
        .iter()
        .fold(0, |kinds, &b| kinds | HOST_KIND[b as usize]);
    if kinds & NOT_REG_NAME != 0 || kinds & ESCAPE != 0 && !escapes_ok(host) {
        return None;
    }
    Some((host, port))
}

/// In [`HOST_KIND`]: a byte that has no place in a reg-name or IPv4
/// address.
const NOT_REG_NAME: u8 = 1;
/// In [`HOST_KIND`]: `%`, which must start an escape.
const ESCAPE: u8 = 2;

/// For each byte, its kind in a `Host` outside brackets: 0 for a
/// reg-name byte other than `%`, else [`ESCAPE`] or [`NOT_REG_NAME`].
static HOST_KIND: [u8; 256] = {
    let mut kinds = [NOT_REG_NAME; 256];
    let mut b = 0;
    while b < 256 {
        if REG_NAME.0[b] {
            kinds[b] = 0;
        }
        b += 1;
    }
    kinds[b'%' as usize] = ESCAPE;
    kinds
};

/// [`split_host`] of `[` IP-literal `]` [ `:` port ].
fn split_ip_literal(v: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let end = v.iter().position(|&b| b == b']')?;
    if !is_ip_literal(&v[1..end]) {
        return None;
    }
    let (host, port) = match v.split_at(end + 1) {
        (host, []) => (host, None),
        (host, [b':', port @ ..]) => (host, Some(port)),
        _ => return None,
    };
    digits(port).then_some((host, port))
}

/// No port, or one of digits only.
fn digits(port: Option<&[u8]>) -> bool {
    port.is_none_or(|p| p.iter().all(u8::is_ascii_digit))
}

/// Every `%` in `s` starts an escape: two hex digits.
fn escapes_ok(mut s: &[u8]) -> bool {
    loop {
        match s.iter().position(|&b| b == b'%') {
            None => return true,
            Some(i) => match &s[i + 1..] {
                [a, b, tail @ ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => s = tail,
                _ => return false,
            },
        }
    }
}

/// The inside of `[...]`: an IPv6 address or IPvFuture
/// (`v` HEXDIG+ `.` (unreserved / sub-delims / `:`)+).
fn is_ip_literal(s: &[u8]) -> bool {
    match s {
        [b'v' | b'V', rest @ ..] => {
            let dot = rest.iter().position(|&b| b == b'.');
            dot.is_some_and(|d| {
                let (version, tail) = (&rest[..d], &rest[d + 1..]);
                !version.is_empty()
                    && version.iter().all(u8::is_ascii_hexdigit)
                    && !tail.is_empty()
                    && tail
                        .iter()
                        .all(|&b| b != b'%' && (b == b':' || REG_NAME.contains(b)))
            })
        }
        _ => std::str::from_utf8(s).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_fields_are_checked() {
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
    fn lookup_takes_the_first_of_any_case() {
        let fields = [("A", &b"1"[..]), ("b", b"\xff"), ("a", b"3")];
        assert_eq!(find(fields, "a"), Some(&b"1"[..]));
        assert_eq!(find(fields, "C"), None);
        assert_eq!(utf8(find(fields, "B")), None);
        assert_eq!(utf8(find(fields, "A")), Some("1"));
    }

    #[test]
    fn hosts_are_uri_host_and_port() {
        for ok in [
            &b""[..],
            b"a",
            b"a.example:8080",
            b"127.0.0.1:3000",
            b"a:",
            b"a%2Db",
            b"!$&'()*+,;=-._~",
            b"[::1]",
            b"[::1]:80",
            b"[::ffff:1.2.3.4]",
            b"[v1F.a:b~]:1",
            b":80",
            b"8080",
            b"a:0123456789",
        ] {
            assert!(valid_host(ok), "{:?}", ok.escape_ascii().to_string());
        }
        for bad in [
            &b"[::1"[..],
            b"::1]",
            b"::1",
            b"[::g]",
            b"[a.b]",
            b"[]",
            b"[v1.]",
            b"[v.a]",
            b"[fe80::1%25eth0]",
            b"[::1]x",
            b"[::1]:8a",
            b"a[b]",
            b"a:8o",
            b"a:1:2",
            b"a::80",
            b"a:b",
            b"a%:80",
            b"a:80%",
            b"a\x80:1",
            b"a%zz",
            b"a%2",
            b"a b",
            b"a/b",
            b"u@a",
        ] {
            assert!(!valid_host(bad), "{:?}", bad.escape_ascii().to_string());
        }
    }

    #[test]
    fn close_is_an_option_of_a_list() {
        assert!(has_close(b"close"));
        assert!(has_close(b"foo, \tClose ,bar"));
        assert!(!has_close(b"closed, keep-alive"));
        assert!(!has_close(b""));
    }
}
