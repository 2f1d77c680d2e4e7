//! Body decoding: Content-Length, chunked and read-until-EOF framing.
//!
//! Sans-IO and resumable at every byte: [`BodyDecoder::decode`] takes
//! whatever input is buffered, consumes framing, and points at the next run
//! of body bytes. It never needs more than one byte of look-ahead, so a
//! message split anywhere decodes the same as a message in one piece.
//!
//! Chunked framing is strict (RFC 9112 §7.1): `chunk-size` is 1*HEXDIG with
//! no sign, prefix or overflow; whitespace after it is allowed only before
//! an extension; every line ends in CRLF (a bare CR or LF is an error);
//! extensions and trailers are bounded.

use std::ops::Range;

use crate::proto::fields::is_tchar;
use crate::proto::Error;

/// Longest chunk-size line accepted (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 4096;

/// How a message body is delimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BodyDecoder {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// `remaining` bytes still to come.
    Length(u64),
    Chunked(Chunked),
    /// Body runs until the peer closes (responses only; `done` once it
    /// has), or, `raw`, the bytes of raw mode after a switch (`101`, `2xx`
    /// to CONNECT): every byte is the peer's, until it closes.
    Eof {
        done: bool,
        raw: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Chunked {
    state: ChunkState,
    /// Size of the current chunk, or bytes left of it in `Data`.
    size: u64,
    /// Bytes seen on the current size line, or in the trailer section.
    line_len: usize,
    max_trailers: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Before the first hex digit of a size.
    SizeStart,
    /// Reading hex digits.
    Size,
    /// Whitespace after the size: only more whitespace or `;` may follow.
    SizeWs,
    /// After a `;`: optional whitespace, then an extension name.
    ExtNameStart,
    /// Inside an extension name (a token).
    ExtName,
    /// Whitespace after a name: `=`, `;` or more whitespace may follow.
    ExtNameWs,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValStart,
    /// Inside a token value.
    ExtVal,
    /// Inside a quoted-string value.
    ExtQuoted,
    /// After a backslash in a quoted string.
    ExtQuotedPair,
    /// After a value: `;`, whitespace before one, or CR.
    ExtValEnd,
    /// Whitespace after a value: only `;` or more whitespace may follow.
    ExtValWs,
    /// Saw CR ending the size line.
    SizeLf,
    Data,
    /// Expect CR after chunk data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// Saw CR ending a trailer line.
    TrailerLf,
    /// Saw CR of the final empty line.
    EndLf,
    Done,
}

/// The result of one [`BodyDecoder::decode`] step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Input bytes consumed, framing and data together.
    pub consumed: usize,
    /// Where in the input the body bytes of this step are (within `..consumed`).
    pub data: Range<usize>,
}

fn err(what: &'static str) -> Error {
    Error::Chunked(what)
}

impl BodyDecoder {
    /// A body of exactly `n` bytes.
    pub(crate) const fn length(n: u64) -> BodyDecoder {
        BodyDecoder {
            kind: Kind::Length(n),
        }
    }

    /// A chunked body whose trailer section may be at most `max_trailers` bytes.
    pub(crate) const fn chunked(max_trailers: usize) -> BodyDecoder {
        BodyDecoder {
            kind: Kind::Chunked(Chunked {
                state: ChunkState::SizeStart,
                size: 0,
                line_len: 0,
                max_trailers,
            }),
        }
    }

    /// A body delimited by the end of the connection.
    pub(crate) const fn eof() -> BodyDecoder {
        BodyDecoder {
            kind: Kind::Eof {
                done: false,
                raw: false,
            },
        }
    }

    /// Raw mode: the peer's bytes as they come, no framing, ending when it
    /// closes its side (after an upgrade or a CONNECT).
    pub(crate) const fn raw() -> BodyDecoder {
        BodyDecoder {
            kind: Kind::Eof {
                done: false,
                raw: true,
            },
        }
    }

    /// Is this the raw mode of [`raw`](Self::raw)?
    pub(crate) fn is_raw(&self) -> bool {
        matches!(self.kind, Kind::Eof { raw: true, .. })
    }

    /// Has the whole body been decoded?
    pub(crate) fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Length(n) => *n == 0,
            Kind::Chunked(c) => c.state == ChunkState::Done,
            Kind::Eof { done, .. } => *done,
        }
    }

    /// Body bytes still expected, when known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match &self.kind {
            Kind::Length(n) => Some(*n),
            _ => None,
        }
    }

    /// The input has ended. Fine for an EOF-delimited body or a finished one;
    /// anything else was cut short.
    pub(crate) fn eof_reached(&mut self) -> bool {
        if let Kind::Eof { done, .. } = &mut self.kind {
            *done = true;
        }
        self.is_done()
    }

    /// Consumes framing from `input` up to and including the next run of at
    /// most `max` body bytes, and says where those bytes are.
    ///
    /// An empty `data` range with `consumed == input.len()` means more input
    /// is needed; with [`is_done`](Self::is_done), the body is over and the
    /// rest of `input` belongs to the next message.
    pub(crate) fn decode(&mut self, input: &[u8], max: usize) -> Result<Step, Error> {
        match &mut self.kind {
            Kind::Length(remaining) => {
                let n = (*remaining).min(input.len() as u64).min(max as u64) as usize;
                *remaining -= n as u64;
                Ok(Step {
                    consumed: n,
                    data: 0..n,
                })
            }
            Kind::Eof { done, .. } => {
                let n = if *done { 0 } else { input.len().min(max) };
                Ok(Step {
                    consumed: n,
                    data: 0..n,
                })
            }
            Kind::Chunked(c) => c.decode(input, max),
        }
    }
}

impl Chunked {
    fn decode(&mut self, input: &[u8], max: usize) -> Result<Step, Error> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            if self.state == Data {
                let n = self.size.min((input.len() - i) as u64).min(max as u64) as usize;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = DataCr;
                }
                return Ok(Step {
                    consumed: i + n,
                    data: i..i + n,
                });
            }
            if self.state == Done {
                break;
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                SizeStart | Size => match hex(b) {
                    Some(d) => {
                        self.count_line()?;
                        if self.size >> 60 != 0 {
                            return Err(err("chunk size overflows"));
                        }
                        self.size = self.size << 4 | d as u64;
                        Size
                    }
                    None if self.state == SizeStart => return Err(err("missing chunk size")),
                    None => self.after_size(b)?,
                },
                SizeWs => match b {
                    b' ' | b'\t' => {
                        self.count_line()?;
                        SizeWs
                    }
                    b';' => {
                        self.count_line()?;
                        ExtNameStart
                    }
                    _ => return Err(err("whitespace inside chunk size")),
                },
                ExtNameStart | ExtName | ExtNameWs | ExtValStart | ExtVal | ExtQuoted
                | ExtQuotedPair | ExtValEnd | ExtValWs => self.extension(b)?,
                SizeLf => {
                    if b != b'\n' {
                        return Err(err("bare CR in chunk size line"));
                    }
                    self.line_len = 0;
                    if self.size == 0 {
                        TrailerStart
                    } else {
                        Data
                    }
                }
                DataCr => match b {
                    b'\r' => DataLf,
                    _ => return Err(err("chunk data longer than its size")),
                },
                DataLf => match b {
                    b'\n' => SizeStart,
                    _ => return Err(err("bare CR after chunk data")),
                },
                TrailerStart => match b {
                    b'\r' => EndLf,
                    b' ' | b'\t' => return Err(err("obs-fold in trailer")),
                    _ => self.trailer_name_byte(b)?,
                },
                TrailerName => match b {
                    b':' => self.trailer_value_byte(b)?,
                    _ => self.trailer_name_byte(b)?,
                },
                TrailerValue => match b {
                    b'\r' => TrailerLf,
                    _ => self.trailer_value_byte(b)?,
                },
                TrailerLf => match b {
                    b'\n' => TrailerStart,
                    _ => return Err(err("bare CR in trailer")),
                },
                EndLf => match b {
                    b'\n' => Done,
                    _ => return Err(err("bare CR after last chunk")),
                },
                Data | Done => unreachable!("handled above"),
            };
        }
        Ok(Step {
            consumed: i,
            data: i..i,
        })
    }

    /// First non-hex byte after the size digits.
    fn after_size(&mut self, b: u8) -> Result<ChunkState, Error> {
        self.count_line()?;
        match b {
            b'\r' => Ok(ChunkState::SizeLf),
            b';' => Ok(ChunkState::ExtNameStart),
            b' ' | b'\t' => Ok(ChunkState::SizeWs),
            b'\n' => Err(err("bare LF after chunk size")),
            _ => Err(err("invalid chunk size")),
        }
    }

    /// A byte of the chunk extensions (RFC 9112 §7.1.1):
    /// `*( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )`, a name a token,
    /// a value a token or a closed quoted-string.
    fn extension(&mut self, b: u8) -> Result<ChunkState, Error> {
        use ChunkState::*;
        let ws = b == b' ' || b == b'\t';
        let next = match (self.state, b) {
            (SizeLf, _) => unreachable!(),
            (ExtQuoted, b'"') => ExtValEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..) => ExtQuoted,
            (ExtQuoted, b'\r' | b'\n') => {
                return Err(err("unclosed quoted string in chunk extension"))
            }
            (ExtQuoted, _) => return Err(err("control byte in chunk extension")),
            (ExtQuotedPair, b'\t' | b' '..=b'~' | 0x80..) => ExtQuoted,
            (ExtQuotedPair, _) => return Err(err("invalid quoted pair in chunk extension")),
            (ExtNameStart | ExtValStart, _) if ws => self.state,
            (ExtNameStart | ExtName, _) if is_tchar(b) => ExtName,
            (ExtNameStart, _) => return Err(err("empty chunk extension name")),
            (ExtName | ExtNameWs, b'=') => ExtValStart,
            (ExtName | ExtNameWs, _) if ws => ExtNameWs,
            (ExtValStart, b'"') => ExtQuoted,
            (ExtValStart | ExtVal, _) if is_tchar(b) => ExtVal,
            (ExtValStart, _) => return Err(err("chunk extension without a value after =")),
            (ExtName | ExtNameWs | ExtVal | ExtValEnd | ExtValWs, b';') => ExtNameStart,
            (ExtName | ExtVal | ExtValEnd, b'\r') => SizeLf,
            (ExtVal | ExtValEnd | ExtValWs, _) if ws => ExtValWs,
            (_, b'\n') => return Err(err("bare LF in chunk extension")),
            (_, b'\r') => return Err(err("whitespace before the end of a chunk size line")),
            _ => return Err(err("invalid chunk extension")),
        };
        if next != SizeLf {
            self.count_line()?;
        }
        Ok(next)
    }

    fn count_line(&mut self) -> Result<(), Error> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(err("chunk size line too long"));
        }
        Ok(())
    }

    /// Counts one byte against the trailer section's budget.
    fn count_trailer(&mut self) -> Result<(), Error> {
        self.line_len += 1;
        if self.line_len > self.max_trailers {
            return Err(err("trailer section too large"));
        }
        Ok(())
    }

    /// A byte of a trailer field name: a token, as in the head (no
    /// whitespace before the colon, no line without one).
    fn trailer_name_byte(&mut self, b: u8) -> Result<ChunkState, Error> {
        self.count_trailer()?;
        if is_tchar(b) {
            Ok(ChunkState::TrailerName)
        } else {
            Err(err("invalid trailer field name"))
        }
    }

    /// A byte of a trailer field value (not CR): no control bytes, no bare LF.
    fn trailer_value_byte(&mut self, b: u8) -> Result<ChunkState, Error> {
        self.count_trailer()?;
        match b {
            b'\n' => Err(err("bare LF in trailer")),
            b'\t' | b' '..=b'~' | 0x80.. => Ok(ChunkState::TrailerValue),
            _ => Err(err("control byte in trailer")),
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `split` bytes (the last one shorter),
    /// reading at most `max` body bytes per step. Returns body and leftover.
    fn run(
        mut dec: BodyDecoder,
        input: &[u8],
        split: usize,
        max: usize,
    ) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let mut body = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        loop {
            if !dec.is_done() && fed < input.len() {
                let end = (fed + split).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            loop {
                let step = dec.decode(&buf, max)?;
                body.extend_from_slice(&buf[step.data.clone()]);
                buf.drain(..step.consumed);
                if step.consumed == 0 || dec.is_done() {
                    break;
                }
            }
            if dec.is_done() || fed == input.len() {
                if dec.is_done() {
                    buf.extend_from_slice(&input[fed..]);
                }
                return Ok((body, buf));
            }
        }
    }

    fn chunked(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        run(BodyDecoder::chunked(1024), input, usize::MAX, usize::MAX)
    }

    #[test]
    fn length_stops_at_its_end() {
        let (body, rest) = run(BodyDecoder::length(5), b"helloGET /", 3, 2).unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(rest, b"GET /");
    }

    #[test]
    fn length_zero_is_done_at_once() {
        let dec = BodyDecoder::length(0);
        assert!(dec.is_done());
    }

    #[test]
    fn eof_body_ends_only_at_eof() {
        let mut dec = BodyDecoder::eof();
        let step = dec.decode(b"abc", 2).unwrap();
        assert_eq!(step.data, 0..2);
        assert!(!dec.is_done());
        assert!(dec.eof_reached());
        assert!(dec.is_done());
    }

    #[test]
    fn length_cut_short_is_not_done_at_eof() {
        let mut dec = BodyDecoder::length(3);
        dec.decode(b"ab", 10).unwrap();
        assert!(!dec.eof_reached());
    }

    /// (name, input, body, leftover after the body)
    type Case = (&'static str, &'static [u8], &'static [u8], &'static [u8]);

    const VALID: &[Case] = &[
        ("simple", b"5\r\nhello\r\n0\r\n\r\n", b"hello", b""),
        (
            "two chunks and leftover",
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET",
            b"abcde",
            b"GET",
        ),
        (
            "upper hex",
            b"A\r\n0123456789\r\n0\r\n\r\n",
            b"0123456789",
            b"",
        ),
        (
            "leading zeros",
            b"0005\r\nhello\r\n000\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "extensions",
            b"5;name=value;x=\"q s\"\r\nhello\r\n0;last\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "whitespace before ext",
            b"5 \t;a\r\nhello\r\n0\r\n\r\n",
            b"hello",
            b"",
        ),
        (
            "trailers",
            b"1\r\nx\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\nnext",
            b"x",
            b"next",
        ),
        ("empty body", b"0\r\n\r\n", b"", b""),
        (
            "extension grammar",
            b"2 ; a ; b = c\t;d=\"x\\\"y\\\\\" ;e\r\nhi\r\n0 ;f=\"\";g\r\n\r\n",
            b"hi",
            b"",
        ),
    ];

    #[test]
    fn valid_bodies_decode_at_every_split_and_read_size() {
        for (name, input, body, rest) in VALID {
            for split in 1..=input.len() {
                for max in [1, 2, 7, usize::MAX] {
                    let got = run(BodyDecoder::chunked(1024), input, split, max)
                        .unwrap_or_else(|e| panic!("{name} split {split}: {e:?}"));
                    assert_eq!(got.0, *body, "{name} split {split} max {max}");
                    assert_eq!(got.1, *rest, "{name} split {split} max {max}");
                }
            }
        }
    }

    const INVALID: &[(&str, &[u8])] = &[
        ("empty size", b"\r\nhello\r\n0\r\n\r\n"),
        ("empty size before ext", b";a\r\nhello\r\n0\r\n\r\n"),
        ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("minus sign", b"-5\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("space inside size", b"1 0\r\n0123456789abcdef\r\n0\r\n\r\n"),
        ("trailing space without ext", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("overflow", b"10000000000000000\r\n"),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
        ("bare LF in ext", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
        ("bare CR in size line", b"5\rhello\r\n0\r\n\r\n"),
        ("control byte in ext", b"5;a\x01\r\nhello\r\n0\r\n\r\n"),
        ("data longer than size", b"3\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after data", b"5\r\nhello\n0\r\n\r\n"),
        ("bare CR after data", b"5\r\nhello\rx0\r\n\r\n"),
        ("bare LF in trailer", b"0\r\nA: b\nC: d\r\n\r\n"),
        ("bare LF ending body", b"0\r\n\n"),
        ("obs-fold in trailer", b"0\r\nA: b\r\n c\r\n\r\n"),
        ("control byte in trailer", b"0\r\nA: \x00\r\n\r\n"),
        ("space before trailer colon", b"0\r\nA : b\r\n\r\n"),
        ("trailer without colon", b"0\r\nnot a field\r\n\r\n"),
        ("trailer with empty name", b"0\r\n: b\r\n\r\n"),
        ("empty ext name", b"5;\r\nhello\r\n0\r\n\r\n"),
        ("empty ext name before =", b"5;=a\r\nhello\r\n0\r\n\r\n"),
        ("empty ext name between ;", b"5;a;;b\r\nhello\r\n0\r\n\r\n"),
        ("space inside ext name", b"5;a b\r\nhello\r\n0\r\n\r\n"),
        ("ext = without value", b"5;a=\r\nhello\r\n0\r\n\r\n"),
        (
            "ext = without value before ;",
            b"5;a=;b\r\nhello\r\n0\r\n\r\n",
        ),
        ("ext value not a token", b"5;a=b(c\r\nhello\r\n0\r\n\r\n"),
        ("space inside ext value", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
        ("unclosed quote", b"5;a=\"b\r\nhello\r\n0\r\n\r\n"),
        (
            "text after closing quote",
            b"5;a=\"b\"c\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "control byte in quoted pair",
            b"5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "whitespace before CRLF after ext",
            b"5;a \r\nhello\r\n0\r\n\r\n",
        ),
        ("text without ; after size", b"5 a\r\nhello\r\n0\r\n\r\n"),
        ("bad ext on last chunk", b"5\r\nhello\r\n0;a=\r\n\r\n"),
        ("unclosed quote on last chunk", b"0;a=\"\r\n\r\n"),
    ];

    #[test]
    fn invalid_bodies_fail_at_every_split() {
        for (name, input) in INVALID {
            for split in 1..=input.len() {
                let got = run(BodyDecoder::chunked(1024), input, split, usize::MAX);
                assert!(
                    matches!(got, Err(Error::Chunked(_))),
                    "{name} split {split}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn long_extension_is_refused() {
        let mut input = b"5;".to_vec();
        input.resize(MAX_CHUNK_LINE + 10, b'a');
        assert!(chunked(&input).is_err());
    }

    #[test]
    fn large_trailers_are_refused() {
        let mut input = b"0\r\n".to_vec();
        for i in 0..100 {
            input.extend_from_slice(format!("X-{i}: {}\r\n", "v".repeat(20)).as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        assert!(run(BodyDecoder::chunked(1024), &input, 7, 9).is_err());
        assert!(run(BodyDecoder::chunked(8192), &input, 7, 9).is_ok());
    }

    #[test]
    fn largest_size_is_accepted() {
        let mut dec = BodyDecoder::chunked(16);
        let step = dec.decode(b"fffffffffffffff\r\nab", 10).unwrap();
        assert_eq!(step.data, 17..19);
    }
}
