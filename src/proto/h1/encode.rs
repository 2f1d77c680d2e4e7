//! Body encoding: Content-Length, chunked, close-delimited, or none.
//!
//! Sans-IO: [`BodyEncoder::encode`] appends framed bytes to a write buffer
//! and says how many body bytes it took; [`BodyEncoder::finish`] writes the
//! last chunk. Chunked writes that follow one another in one buffer join
//! one chunk ([`OpenChunk`]): its size line is reserved, fixed-width, when
//! it opens and filled in when it closes. A suppressed body (HEAD, 204, 304) takes every byte and writes
//! nothing.

/// How a response body is framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyEncoder {
    /// `Content-Length`: this many bytes still to write.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    CloseDelimited,
    /// Raw mode after a switch (`101`, `2xx` to CONNECT): bytes go out as
    /// they are, no framing; the connection is never reused.
    Raw,
    /// No body on the wire (HEAD, 1xx, 204, 304). Writes are swallowed; a
    /// declared length is kept for the head only.
    Suppressed,
}

/// A chunk still taking bytes at the end of a write buffer: where its
/// size line starts, and how many hex digits were reserved for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OpenChunk {
    start: usize,
    width: usize,
}

impl OpenChunk {
    /// Largest chunk data this size line can state.
    fn capacity(self) -> usize {
        usize::MAX >> (usize::BITS as usize - 4 * self.width)
    }

    /// Writes the size line and the CRLF after the data.
    pub(crate) fn close(self, dst: &mut Vec<u8>) {
        let data = self.start + self.width + 2;
        let mut len = dst.len() - data;
        for digit in dst[self.start..self.start + self.width].iter_mut().rev() {
            *digit = b"0123456789abcdef"[len & 0xf];
            len >>= 4;
        }
        dst.extend_from_slice(b"\r\n");
    }
}

/// `Next::end()` came before all of a `Content-Length` body was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShortBody(pub u64);

impl BodyEncoder {
    /// Appends as much of `data` as the framing allows to `dst`; returns the
    /// number of body bytes taken. `Length` takes no more than it has left.
    /// Chunked data joins `open`, the chunk this buffer ends with, or
    /// opens one, whose size line gets as many hex digits as `most` (the
    /// most data it may come to) needs; it takes no more than that chunk
    /// can state. The caller closes the chunk ([`OpenChunk::close`])
    /// before anything else is written after it.
    pub(crate) fn encode(
        &mut self,
        data: &[u8],
        dst: &mut Vec<u8>,
        open: &mut Option<OpenChunk>,
        most: usize,
    ) -> usize {
        match self {
            BodyEncoder::Length(remaining) => {
                let n = (*remaining).min(data.len() as u64) as usize;
                dst.extend_from_slice(&data[..n]);
                *remaining -= n as u64;
                n
            }
            BodyEncoder::Chunked if data.is_empty() => 0,
            BodyEncoder::Chunked => {
                let chunk = *open.get_or_insert_with(|| {
                    let width = hex_len(most.max(1));
                    let start = dst.len();
                    dst.resize(start + width, b'0');
                    dst.extend_from_slice(b"\r\n");
                    OpenChunk { start, width }
                });
                let used = dst.len() - chunk.start - chunk.width - 2;
                let n = data.len().min(chunk.capacity() - used);
                dst.extend_from_slice(&data[..n]);
                n
            }
            BodyEncoder::CloseDelimited | BodyEncoder::Raw => {
                dst.extend_from_slice(data);
                data.len()
            }
            BodyEncoder::Suppressed => data.len(),
        }
    }

    /// Ends the body: writes the last chunk if chunked. Fails if a declared
    /// length was not reached (the connection must then be closed).
    pub(crate) fn finish(&mut self, dst: &mut Vec<u8>) -> Result<(), ShortBody> {
        match *self {
            BodyEncoder::Length(n) if n > 0 => Err(ShortBody(n)),
            BodyEncoder::Chunked => {
                dst.extend_from_slice(b"0\r\n\r\n");
                *self = BodyEncoder::Length(0);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Bytes of body still owed, when the length is declared.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            BodyEncoder::Length(n) => Some(*n),
            _ => None,
        }
    }

    /// Does the end of this body need the connection closed?
    pub(crate) fn closes(&self) -> bool {
        matches!(self, BodyEncoder::CloseDelimited | BodyEncoder::Raw)
    }
}

/// Hex digits of `n`.
fn hex_len(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).div_ceil(4).max(1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h1::decode::BodyDecoder;

    /// One write in a callback of its own: its own chunk, closed.
    fn put(enc: &mut BodyEncoder, data: &[u8], out: &mut Vec<u8>) -> usize {
        let mut open = None;
        let n = enc.encode(data, out, &mut open, 0x10000);
        if let Some(chunk) = open {
            chunk.close(out);
        }
        n
    }

    #[test]
    fn length_takes_only_what_it_declared() {
        let mut enc = BodyEncoder::Length(5);
        let mut out = Vec::new();
        assert_eq!(put(&mut enc, b"hel", &mut out), 3);
        assert_eq!(enc.finish(&mut out), Err(ShortBody(2)));
        assert_eq!(put(&mut enc, b"lo, world", &mut out), 2);
        assert_eq!(put(&mut enc, b"!", &mut out), 0);
        assert_eq!(enc.finish(&mut out), Ok(()));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn chunked_frames_each_callback_and_ends_with_zero_chunk() {
        let mut enc = BodyEncoder::Chunked;
        let mut out = Vec::new();
        put(&mut enc, b"hello", &mut out);
        put(&mut enc, b"", &mut out);
        put(&mut enc, &[b'x'; 300], &mut out);
        enc.finish(&mut out).unwrap();
        let mut expected = b"00005\r\nhello\r\n0012c\r\n".to_vec();
        expected.extend_from_slice(&[b'x'; 300]);
        expected.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, expected);
    }

    #[test]
    fn chunked_output_round_trips_through_the_decoder() {
        let mut enc = BodyEncoder::Chunked;
        let mut wire = Vec::new();
        let mut body = Vec::new();
        for i in 0..40u8 {
            let piece = vec![i; i as usize * 7];
            put(&mut enc, &piece, &mut wire);
            body.extend_from_slice(&piece);
        }
        enc.finish(&mut wire).unwrap();
        let mut dec = BodyDecoder::chunked(0);
        let mut got = Vec::new();
        let mut pos = 0;
        while !dec.is_done() {
            let step = dec.decode(&wire[pos..], usize::MAX).unwrap();
            got.extend_from_slice(&wire[pos..][step.data]);
            pos += step.consumed;
        }
        assert_eq!(pos, wire.len());
        assert_eq!(got, body);
    }

    #[test]
    fn suppressed_swallows_everything() {
        let mut enc = BodyEncoder::Suppressed;
        let mut out = Vec::new();
        assert_eq!(put(&mut enc, b"hello", &mut out), 5);
        enc.finish(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn close_delimited_is_raw_and_closes() {
        let mut enc = BodyEncoder::CloseDelimited;
        let mut out = Vec::new();
        put(&mut enc, b"abc", &mut out);
        enc.finish(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(enc.closes());
    }

    #[test]
    fn joined_writes_make_one_chunk_with_a_fixed_width_size_line() {
        let mut enc = BodyEncoder::Chunked;
        let mut out = b"head".to_vec();
        let mut open = None;
        for piece in ["data: ", "tick 1", "\n\n"] {
            assert_eq!(
                enc.encode(piece.as_bytes(), &mut out, &mut open, 0x10000),
                piece.len()
            );
        }
        open.take().unwrap().close(&mut out);
        enc.finish(&mut out).unwrap();
        assert_eq!(out, b"head0000e\r\ndata: tick 1\n\n\r\n0\r\n\r\n");
    }

    #[test]
    fn a_joined_chunk_takes_no_more_than_its_size_line_states() {
        let mut enc = BodyEncoder::Chunked;
        let mut out = Vec::new();
        let mut open = None;
        assert_eq!(enc.encode(&[b'x'; 20], &mut out, &mut open, 15), 15);
        assert_eq!(enc.encode(b"y", &mut out, &mut open, 15), 0);
        open.take().unwrap().close(&mut out);
        assert_eq!(&out[..3], b"f\r\n");
        // Round trip through the decoder, with a second chunk.
        enc.encode(b"abc", &mut out, &mut open, 0xfff);
        open.take().unwrap().close(&mut out);
        enc.finish(&mut out).unwrap();
        let mut dec = BodyDecoder::chunked(0);
        let mut got = Vec::new();
        let mut pos = 0;
        while !dec.is_done() {
            let step = dec.decode(&out[pos..], usize::MAX).unwrap();
            got.extend_from_slice(&out[pos..][step.data]);
            pos += step.consumed;
        }
        assert_eq!(got, [&[b'x'; 15][..], b"abc"].concat());
    }

    #[test]
    fn joined_writes_of_other_framings_are_plain() {
        let mut enc = BodyEncoder::Length(3);
        let mut out = Vec::new();
        let mut open = None;
        assert_eq!(enc.encode(b"abcd", &mut out, &mut open, 100), 3);
        assert_eq!(open, None);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn hex_sizes() {
        for (n, len) in [(0, 1), (1, 1), (15, 1), (16, 2), (0xffff, 4), (0x10000, 5)] {
            assert_eq!(hex_len(n), len, "{n:#x}");
        }
    }
}
