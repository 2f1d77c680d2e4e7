//! Body encoding: Content-Length, chunked, close-delimited, or none.
//!
//! Sans-IO: [`BodyEncoder::encode`] appends framed bytes to a write buffer
//! and says how many body bytes it took; [`BodyEncoder::finish`] writes the
//! last chunk. A suppressed body (HEAD, 204, 304) takes every byte and writes
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
    /// No body on the wire (HEAD, 1xx, 204, 304). Writes are swallowed; a
    /// declared length is kept for the head only.
    Suppressed,
}

/// `Next::end()` came before all of a `Content-Length` body was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ShortBody(pub u64);

impl BodyEncoder {
    /// Appends as much of `data` as the framing allows to `dst`; returns the
    /// number of body bytes taken. `Length` takes no more than it has left.
    pub(crate) fn encode(&mut self, data: &[u8], dst: &mut Vec<u8>) -> usize {
        match self {
            BodyEncoder::Length(remaining) => {
                let n = (*remaining).min(data.len() as u64) as usize;
                dst.extend_from_slice(&data[..n]);
                *remaining -= n as u64;
                n
            }
            BodyEncoder::Chunked => {
                if !data.is_empty() {
                    push_hex(dst, data.len());
                    dst.extend_from_slice(b"\r\n");
                    dst.extend_from_slice(data);
                    dst.extend_from_slice(b"\r\n");
                }
                data.len()
            }
            BodyEncoder::CloseDelimited => {
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
        *self == BodyEncoder::CloseDelimited
    }
}

fn push_hex(dst: &mut Vec<u8>, mut n: usize) {
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::h1::decode::BodyDecoder;

    #[test]
    fn length_takes_only_what_it_declared() {
        let mut enc = BodyEncoder::Length(5);
        let mut out = Vec::new();
        assert_eq!(enc.encode(b"hel", &mut out), 3);
        assert_eq!(enc.finish(&mut out), Err(ShortBody(2)));
        assert_eq!(enc.encode(b"lo, world", &mut out), 2);
        assert_eq!(enc.encode(b"!", &mut out), 0);
        assert_eq!(enc.finish(&mut out), Ok(()));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn chunked_frames_each_write_and_ends_with_zero_chunk() {
        let mut enc = BodyEncoder::Chunked;
        let mut out = Vec::new();
        enc.encode(b"hello", &mut out);
        enc.encode(b"", &mut out);
        enc.encode(&[b'x'; 300], &mut out);
        enc.finish(&mut out).unwrap();
        let mut expected = b"5\r\nhello\r\n12c\r\n".to_vec();
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
            enc.encode(&piece, &mut wire);
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
        assert_eq!(enc.encode(b"hello", &mut out), 5);
        enc.finish(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn close_delimited_is_raw_and_closes() {
        let mut enc = BodyEncoder::CloseDelimited;
        let mut out = Vec::new();
        enc.encode(b"abc", &mut out);
        enc.finish(&mut out).unwrap();
        assert_eq!(out, b"abc");
        assert!(enc.closes());
    }

    #[test]
    fn hex_sizes() {
        for (n, s) in [(0, "0"), (1, "1"), (15, "f"), (16, "10"), (4096, "1000")] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(out, s.as_bytes());
        }
    }
}
