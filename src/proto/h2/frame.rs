//! The frame layer (RFC 9113 §4, §6): the 9-octet header, the frame
//! types and flags, and writers that append whole frames to an output
//! buffer. Reading a frame's payload rules lives with the state it
//! changes, in `conn.rs`.

use super::error::ErrorCode;

/// The length of a frame header.
pub const HEADER_LEN: usize = 9;

/// The 24 octets a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest stream id, window and window increment: 2^31 - 1.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// The smallest MAX_FRAME_SIZE (and the default): 2^14.
pub const MIN_MAX_FRAME_SIZE: u32 = 1 << 14;

/// The largest MAX_FRAME_SIZE: 2^24 - 1.
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// Frame types (RFC 9113 §6).
pub(crate) mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(crate) mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// The payload length.
    pub len: usize,
    /// The frame type.
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream id (the reserved bit cleared).
    pub id: u32,
}

impl Header {
    /// The header at the start of `input`, if all 9 octets are there.
    #[inline]
    pub(crate) fn parse(input: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = input.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & MAX_WINDOW,
        })
    }

    /// Is `f` set?
    #[inline]
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Appends a frame header.
#[inline]
pub(crate) fn write_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    debug_assert!(len <= MAX_MAX_FRAME_SIZE as usize);
    let l = (len as u32).to_be_bytes();
    let i = id.to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags, i[0], i[1], i[2], i[3]]);
}

/// Fills in a header written earlier as a placeholder at `at`.
pub(crate) fn patch_header(out: &mut [u8], at: usize, len: usize, kind: u8, flags: u8, id: u32) {
    let l = (len as u32).to_be_bytes();
    let i = id.to_be_bytes();
    out[at..at + HEADER_LEN]
        .copy_from_slice(&[l[1], l[2], l[3], kind, flags, i[0], i[1], i[2], i[3]]);
}

/// Appends RST_STREAM.
pub(crate) fn write_rst(out: &mut Vec<u8>, id: u32, code: ErrorCode) {
    write_header(out, 4, kind::RST_STREAM, 0, id);
    out.extend_from_slice(&code.0.to_be_bytes());
}

/// Appends WINDOW_UPDATE.
pub(crate) fn write_window_update(out: &mut Vec<u8>, id: u32, increment: u32) {
    debug_assert!(increment > 0 && increment <= MAX_WINDOW);
    write_header(out, 4, kind::WINDOW_UPDATE, 0, id);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends PING (or its ACK).
pub(crate) fn write_ping(out: &mut Vec<u8>, ack: bool, payload: [u8; 8]) {
    write_header(out, 8, kind::PING, if ack { flag::ACK } else { 0 }, 0);
    out.extend_from_slice(&payload);
}

/// Appends GOAWAY.
pub(crate) fn write_goaway(out: &mut Vec<u8>, last_id: u32, code: ErrorCode, debug: &[u8]) {
    write_header(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&last_id.to_be_bytes());
    out.extend_from_slice(&code.0.to_be_bytes());
    out.extend_from_slice(debug);
}

/// Appends an empty SETTINGS ACK.
pub(crate) fn write_settings_ack(out: &mut Vec<u8>) {
    write_header(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Splits the header block written at `at + HEADER_LEN ..` (after a
/// placeholder header at `at`) into a HEADERS frame and as many
/// CONTINUATION frames as `max_frame` requires, in place.
pub(crate) fn finish_header_block(
    out: &mut Vec<u8>,
    at: usize,
    id: u32,
    end_stream: bool,
    max_frame: usize,
) {
    let block = out.len() - at - HEADER_LEN;
    let es = if end_stream { flag::END_STREAM } else { 0 };
    if block <= max_frame {
        patch_header(out, at, block, kind::HEADERS, es | flag::END_HEADERS, id);
        return;
    }
    // Frames after the first: each needs a header of its own. Grow the
    // buffer once, then move the fragments back to front.
    let extra = (block - 1) / max_frame;
    let old_end = out.len();
    out.resize(old_end + extra * HEADER_LEN, 0);
    let start = at + HEADER_LEN;
    for k in (1..=extra).rev() {
        let from = start + k * max_frame;
        let len = (block - k * max_frame).min(max_frame);
        let to = start + k * (max_frame + HEADER_LEN);
        out.copy_within(from..from + len, to);
        let flags = if k == extra { flag::END_HEADERS } else { 0 };
        patch_header(out, to - HEADER_LEN, len, kind::CONTINUATION, flags, id);
    }
    patch_header(out, at, max_frame, kind::HEADERS, es, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_and_the_reserved_bit_is_ignored() {
        let mut out = Vec::new();
        write_header(&mut out, 0x12_3456, kind::HEADERS, 0x25, 0x8000_0007);
        assert_eq!(out, [0x12, 0x34, 0x56, 1, 0x25, 0x80, 0, 0, 7]);
        let h = Header::parse(&out).unwrap();
        assert_eq!((h.len, h.kind, h.flags, h.id), (0x12_3456, 1, 0x25, 7));
        assert!(Header::parse(&out[..8]).is_none());
    }

    #[test]
    fn a_large_header_block_splits_into_continuations() {
        for block in [1usize, 5, 6, 10, 11, 25] {
            let mut out = vec![0xaa];
            let at = out.len();
            out.extend_from_slice(&[0; HEADER_LEN]);
            let bytes: Vec<u8> = (0..block as u8).collect();
            out.extend_from_slice(&bytes);
            finish_header_block(&mut out, at, 3, true, 5);
            let mut pos = 1;
            let mut joined = Vec::new();
            let mut frames = 0;
            loop {
                let h = Header::parse(&out[pos..]).unwrap();
                assert_eq!(
                    h.kind,
                    if frames == 0 {
                        kind::HEADERS
                    } else {
                        kind::CONTINUATION
                    }
                );
                assert_eq!(h.id, 3);
                assert!(h.len <= 5);
                assert_eq!(h.has(flag::END_STREAM), frames == 0, "{block}");
                joined.extend_from_slice(&out[pos + 9..pos + 9 + h.len]);
                pos += 9 + h.len;
                frames += 1;
                if h.has(flag::END_HEADERS) {
                    break;
                }
            }
            assert_eq!(pos, out.len(), "{block}");
            assert_eq!(joined, bytes);
            assert_eq!(frames, block.div_ceil(5));
        }
    }
}
