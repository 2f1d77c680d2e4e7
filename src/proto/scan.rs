//! The request head scanner: request line and field lines (RFC 9112 §3,
//! §5) in one pass, as spans into the bytes — nothing copied, nothing
//! allocated.
//!
//! The grammar is httparse's for requests with its strict defaults, so the
//! two accept and refuse the same heads and find the same fields (a
//! randomized test below and the `head` fuzz target compare them):
//!
//! - empty lines before the request line are skipped;
//! - `method SP target SP HTTP/1.x`, one SP each; the method is a token,
//!   the target any run of VCHAR and obs-text that is valid UTF-8;
//! - a field line is `token ":" OWS value OWS`; no whitespace before the
//!   colon and no obs-fold (a line starting with SP or HTAB), both of which
//!   RFC 9112 §5.1–§5.2 tell a server to reject; the value is HTAB, SP,
//!   VCHAR and obs-text, and nothing else — no NUL, no DEL, no other control;
//! - lines end in CRLF, or a bare LF (§2.2 lets a recipient accept it); a
//!   CR must be followed by LF.
//!
//! Faster than httparse on the short heads servers mostly see: no runtime
//! CPU-feature dispatch, and the long runs (target, values) are checked
//! eight bytes at a time in plain integer arithmetic.

use crate::proto::head::{is_tchar, Version};

/// One field line: offsets into the scanned bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Field {
    name_start: u32,
    name_end: u32,
    value_start: u32,
    value_end: u32,
}

impl Field {
    /// The name and the value (OWS trimmed) within `buf`, the bytes the
    /// field was scanned from.
    pub(crate) fn get<'b>(&self, buf: &'b [u8]) -> (&'b [u8], &'b [u8]) {
        let at = |from: u32, to: u32| &buf[from as usize..to as usize];
        (
            at(self.name_start, self.name_end),
            at(self.value_start, self.value_end),
        )
    }
}

/// The field lines of a scanned head: the spans and the bytes they point
/// into.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'h, 'b> {
    buf: &'b [u8],
    spans: &'h [Field],
}

impl<'h, 'b> Fields<'h, 'b> {
    pub(crate) fn new(buf: &'b [u8], spans: &'h [Field]) -> Self {
        Fields { buf, spans }
    }

    /// Each field as `(name, value)`, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + use<'h, 'b> {
        let buf = self.buf;
        self.spans.iter().map(move |f| f.get(buf))
    }

    /// How many fields there are.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }
}

/// A complete request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestLine<'b> {
    /// The head's length, empty lines before it and its final empty line
    /// included: the body starts here.
    pub len: usize,
    pub method: &'b str,
    pub target: &'b str,
    pub version: Version,
    /// How many entries of the field array were filled.
    pub fields: usize,
}

/// Why a head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanError {
    /// Not `HTTP/1.0` or `HTTP/1.1` where the version belongs.
    Version,
    /// More field lines than the array has room for.
    TooManyFields,
    /// Anything else, with what was wrong.
    Malformed(&'static str),
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bits flagging bytes of `x` below `n` (`1 <= n <= 0x80`). The
/// lowest flag is exact — every byte before it is `>= n` and the flagged
/// one is below — though a borrow may flag bytes after it.
const fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * n as u64) & !x & HIGH
}

/// High bits flagging bytes of `x` equal to `c`; the lowest flag exact,
/// as with [`below`].
const fn equal(x: u64, c: u8) -> u64 {
    below(x ^ (ONES * c as u64), 1)
}

/// A byte of a request target: VCHAR or obs-text.
fn is_target_byte(b: u8) -> bool {
    b > b' ' && b != 0x7f
}

/// Flags the first byte of `x` that is not a target byte.
const fn target_stops(x: u64) -> u64 {
    below(x, 0x21) | equal(x, 0x7f)
}

/// A byte of a field value: HTAB, SP, VCHAR or obs-text.
fn is_value_byte(b: u8) -> bool {
    (b >= b' ' || b == b'\t') && b != 0x7f
}

/// Flags the first byte of `x` that is a control byte — not a value byte,
/// unless it is HTAB.
const fn value_stops(x: u64) -> u64 {
    below(x, 0x20) | equal(x, 0x7f)
}

/// The end of the run of bytes from `i` that `byte` accepts: the index of
/// the first other byte, or `buf.len()`. `stops` looks at eight bytes at
/// once and flags the first that may end the run — every byte before it
/// must be one `byte` accepts — and `byte` has the last word on it.
///
/// Generic, so that each use compiles to its own loop, checks inlined.
fn run(buf: &[u8], mut i: usize, stops: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> usize {
    while let Some(chunk) = buf.get(i..i + 8) {
        let flags = stops(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        if flags == 0 {
            i += 8;
            continue;
        }
        let candidate = i + (flags.trailing_zeros() / 8) as usize;
        if !byte(buf[candidate]) {
            return candidate;
        }
        i = candidate + 1;
    }
    i + buf[i..]
        .iter()
        .position(|&b| !byte(b))
        .unwrap_or(buf.len() - i)
}

/// The end of the run of token bytes from `i`: the index of the first
/// other byte, or `buf.len()`.
fn token_run(buf: &[u8], i: usize) -> usize {
    i + buf[i..]
        .iter()
        .position(|&b| !is_tchar(b))
        .unwrap_or(buf.len() - i)
}

/// Does `value` hold only what a field value may: HTAB, SP, VCHAR and
/// obs-text — no CR, LF, NUL or other control byte?
pub(crate) fn is_field_value(value: &[u8]) -> bool {
    run(value, 0, value_stops, is_value_byte) == value.len()
}

/// `bytes` as text; for tokens (ASCII, so always valid UTF-8).
pub(crate) fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A line end at `i`: the index after it, `Ok(None)` if the bytes stop
/// inside it, or `bad` if there is none.
fn line_end(buf: &[u8], i: usize, bad: &'static str) -> Result<Option<usize>, ScanError> {
    match (buf.get(i), buf.get(i + 1)) {
        (Some(b'\n'), _) => Ok(Some(i + 1)),
        (Some(b'\r'), Some(b'\n')) => Ok(Some(i + 2)),
        (None, _) | (Some(b'\r'), None) => Ok(None),
        _ => Err(ScanError::Malformed(bad)),
    }
}

/// Scans a request head at the start of `buf`, filling `fields` with its
/// field lines. `Ok(None)`: the head is incomplete so far — no byte seen
/// is wrong, more are needed.
pub(crate) fn request<'b>(
    buf: &'b [u8],
    fields: &mut [Field],
) -> Result<Option<RequestLine<'b>>, ScanError> {
    macro_rules! need {
        ($e:expr) => {
            match $e? {
                Some(v) => v,
                None => return Ok(None),
            }
        };
    }
    let mut i = 0;
    // Empty lines before the request line.
    loop {
        match buf.get(i) {
            Some(b'\r' | b'\n') => i = need!(line_end(buf, i, "invalid line ending")),
            Some(_) => break,
            None => return Ok(None),
        }
    }
    // Method.
    let method = if buf[i..].starts_with(b"GET ") {
        i += 4;
        "GET"
    } else {
        let end = token_run(buf, i);
        match buf.get(end) {
            None => return Ok(None),
            Some(b' ') if end > i => {}
            Some(_) => return Err(ScanError::Malformed("invalid method")),
        }
        let method = ascii(&buf[i..end]);
        i = end + 1;
        method
    };
    // Target.
    let end = run(buf, i, target_stops, is_target_byte);
    match buf.get(end) {
        None => return Ok(None),
        Some(b' ') if end > i => {}
        Some(_) => return Err(ScanError::Malformed("invalid request target")),
    }
    let target = std::str::from_utf8(&buf[i..end])
        .map_err(|_| ScanError::Malformed("invalid request target"))?;
    i = end + 1;
    // Version.
    let version = match buf.get(i..i + 8) {
        Some(b"HTTP/1.1") => Version::Http11,
        Some(b"HTTP/1.0") => Version::Http10,
        Some(_) => return Err(ScanError::Version),
        None if b"HTTP/1.".starts_with(&buf[i..]) => return Ok(None),
        None => return Err(ScanError::Version),
    };
    i = need!(line_end(buf, i + 8, "invalid line ending"));
    // Field lines, up to the empty line.
    let mut count = 0;
    loop {
        if matches!(buf.get(i), Some(b'\r' | b'\n') | None) {
            let len = need!(line_end(buf, i, "invalid line ending"));
            return Ok(Some(RequestLine {
                len,
                method,
                target,
                version,
                fields: count,
            }));
        }
        let name_end = token_run(buf, i);
        match buf.get(name_end) {
            None => return Ok(None),
            Some(b':') if name_end > i => {}
            Some(_) => return Err(ScanError::Malformed("invalid header name")),
        }
        let mut value_start = name_end + 1;
        while matches!(buf.get(value_start), Some(b' ' | b'\t')) {
            value_start += 1;
        }
        let end = run(buf, value_start, value_stops, is_value_byte);
        let next = need!(line_end(buf, end, "invalid header value"));
        let mut value_end = end;
        while value_end > value_start && matches!(buf[value_end - 1], b' ' | b'\t') {
            value_end -= 1;
        }
        let slot = fields.get_mut(count).ok_or(ScanError::TooManyFields)?;
        // Offsets fit: a head is never near 4 GiB (`max_head_size` is far
        // smaller), and the caller refuses longer ones before looking.
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        *slot = Field {
            name_start: offset(i),
            name_end: offset(name_end),
            value_start: offset(value_start),
            value_end: offset(value_end),
        };
        count += 1;
        i = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Run = (fn(u64) -> u64, fn(u8) -> bool);
    const RUNS: [Run; 2] = [(target_stops, is_target_byte), (value_stops, is_value_byte)];

    #[test]
    fn word_checks_agree_with_byte_checks() {
        // Every byte value in every lane, among neighbours of every kind.
        for b in 0..=255u8 {
            for lane in 0..8 {
                for fill in [b'a', b'\t', 0x00, 0x1f, 0x20, 0x7f, 0x80, 0xff] {
                    let mut bytes = [fill; 16];
                    bytes[lane] = b;
                    bytes[lane + 8] = b;
                    for (stops, byte) in RUNS {
                        for buf in [&bytes[..8], &bytes[..]] {
                            let want = buf.iter().position(|&c| !byte(c)).unwrap_or(buf.len());
                            assert_eq!(run(buf, 0, stops, byte), want, "{buf:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn runs_end_where_a_byte_loop_ends() {
        let mut rng = Rng(7);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let buf: Vec<u8> = (0..len)
                .map(|_| match rng.below(8) {
                    0 => ALPHABET[rng.below(ALPHABET.len())],
                    _ => b'a',
                })
                .collect();
            let start = rng.below(len + 1);
            for (stops, byte) in RUNS {
                let want = (start..len).find(|&k| !byte(buf[k])).unwrap_or(len);
                assert_eq!(run(&buf, start, stops, byte), want, "{buf:?} from {start}");
            }
            let want = (start..len).find(|&k| !is_tchar(buf[k])).unwrap_or(len);
            assert_eq!(token_run(&buf, start), want, "{buf:?} from {start}");
        }
    }

    type Scanned<'b> = (RequestLine<'b>, Vec<(&'b [u8], &'b [u8])>);

    fn scan(raw: &[u8]) -> Result<Option<Scanned<'_>>, ScanError> {
        let mut fields = [Field::default(); 8];
        Ok(request(raw, &mut fields)?.map(|line| {
            let found = fields[..line.fields].iter().map(|f| f.get(raw)).collect();
            (line, found)
        }))
    }

    #[test]
    fn a_head_and_its_fields() {
        let raw = b"\r\n\nPOST /a?b=%20c HTTP/1.0\r\nHost: x.y:80\r\nX-Empty:\r\nX-Pad: \t v 1 \t\nz: \r\n\r\nbody";
        let (line, fields) = scan(raw).unwrap().unwrap();
        assert_eq!(&raw[line.len..], b"body");
        assert_eq!(line.method, "POST");
        assert_eq!(line.target, "/a?b=%20c");
        assert_eq!(line.version, Version::Http10);
        let want: &[(&[u8], &[u8])] = &[
            (b"Host", b"x.y:80"),
            (b"X-Empty", b""),
            (b"X-Pad", b"v 1"),
            (b"z", b""),
        ];
        assert_eq!(fields, want);
    }

    #[test]
    fn every_prefix_of_a_good_head_is_partial() {
        let raw =
            b"\r\nGET /0123456789abcdef HTTP/1.1\r\nHost: a\r\nUser-Agent: some agent/1.0\r\n\n";
        for cut in 0..raw.len() {
            assert_eq!(scan(&raw[..cut]), Ok(None), "{cut}");
        }
        assert!(scan(raw).unwrap().is_some());
    }

    #[test]
    fn refusals() {
        let malformed = |m| Err(ScanError::Malformed(m));
        for (raw, want) in [
            (
                &b"\rGET / HTTP/1.1\r\n\r\n"[..],
                malformed("invalid line ending"),
            ),
            (
                b"GET  / HTTP/1.1\r\n\r\n",
                malformed("invalid request target"),
            ),
            (b" GET / HTTP/1.1\r\n\r\n", malformed("invalid method")),
            (b"G@T / HTTP/1.1\r\n\r\n", malformed("invalid method")),
            (
                b"GET /\x7f HTTP/1.1\r\n\r\n",
                malformed("invalid request target"),
            ),
            (
                b"GET /\xff HTTP/1.1\r\n\r\n",
                malformed("invalid request target"),
            ),
            (b"GET /\r\n\r\n", malformed("invalid request target")),
            (b"GET / HTTP/1.1 \r\n\r\n", malformed("invalid line ending")),
            (b"GET / HTTP/1.1\rX\n\r\n", malformed("invalid line ending")),
            (b"GET / HTTP/2.0\r\n\r\n", Err(ScanError::Version)),
            (b"GET / http/1.1\r\n\r\n", Err(ScanError::Version)),
            (b"GET / H", Ok(None)),
            (b"GET / X", Err(ScanError::Version)),
            (
                b"GET / HTTP/1.1\r\nA : b\r\n\r\n",
                malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\n b: c\r\n\r\n",
                malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
                malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\n: b\r\n\r\n",
                malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\nA\r\n\r\n",
                malformed("invalid header name"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n",
                malformed("invalid header value"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: 01234567\x7f\r\n\r\n",
                malformed("invalid header value"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
                malformed("invalid header value"),
            ),
            (
                b"GET / HTTP/1.1\r\nA: b\r\n\rX",
                malformed("invalid line ending"),
            ),
        ] {
            assert_eq!(
                scan(raw).map(|r| r.map(|(l, _)| l)),
                want,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let many = b"GET / HTTP/1.1\r\nA: 1\r\nA: 2\r\nA: 3\r\nA: 4\r\nA: 5\r\nA: 6\r\nA: 7\r\nA: 8\r\nA: 9\r\n\r\n";
        assert_eq!(scan(many), Err(ScanError::TooManyFields));
    }

    /// Bytes that make heads interesting: the grammar's delimiters and a
    /// few of each byte class.
    const ALPHABET: &[u8] = b"GET HTP/1.0\r\n\r\n: \t\x00\x01\x7f\x80\xc3\xa9\xff;,=-az?%\"(";

    /// A small deterministic generator (xorshift), so failures repeat.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A plausible head with a few bytes replaced, inserted or removed.
    fn mutated_head(rng: &mut Rng) -> Vec<u8> {
        let mut raw = b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-Long: 0123456789abcdef0123456789\r\n\r\n".to_vec();
        if rng.below(2) == 0 {
            raw.splice(0..3, b"POST".iter().copied());
        }
        for _ in 0..rng.below(4) {
            let at = rng.below(raw.len());
            match rng.below(3) {
                0 => raw[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => raw.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
                _ => {
                    raw.remove(at);
                }
            }
        }
        raw.truncate(raw.len() - rng.below(3));
        raw
    }

    #[test]
    fn agrees_with_httparse() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut complete = 0;
        for _ in 0..200_000 {
            let raw = mutated_head(&mut rng);
            complete += usize::from(crate::fuzzing::scan_agrees_with_httparse(&raw));
        }
        // The mutations leave enough heads whole to compare fields too.
        assert!(complete > 20_000, "{complete}");
    }
}
