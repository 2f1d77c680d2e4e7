//! [`Writer`]: the sending half of the codec. It encodes frames into the
//! caller's buffers; a client's frames get a fresh masking key each
//! (RFC 6455 §5.3), a server's go unmasked.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use super::close::{encode_close_payload, CloseCode};
use super::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use super::mask::apply_mask;
use super::Role;

/// Encodes frames for one side of a connection.
///
/// ```
/// use nextloop::ws::{OpCode, Role, Writer};
///
/// let mut writer = Writer::new(Role::Server);
/// let mut out = Vec::new();
/// writer.encode(&mut out, OpCode::Text, true, b"Hello");
/// assert_eq!(out, b"\x81\x05Hello"); // RFC 6455 §5.7
/// ```
#[derive(Clone, Debug)]
pub struct Writer {
    role: Role,
    keys: MaskKeys,
}

impl Writer {
    /// A writer for `role`'s side.
    pub fn new(role: Role) -> Writer {
        Writer {
            role,
            keys: MaskKeys::new(),
        }
    }

    /// The header of a frame with a `len`-byte payload: unmasked for a
    /// server, with a new masking key for a client (mask the payload with
    /// it, [`apply_mask`], before sending).
    pub fn header(&mut self, opcode: OpCode, fin: bool, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            mask: match self.role {
                Role::Server => None,
                Role::Client => Some(self.keys.next()),
            },
            len,
        }
    }

    /// Appends a whole frame to `out`: its header and its payload (masked
    /// for a client). A reused `out` makes this allocation-free once it
    /// has grown.
    ///
    /// A control frame (close, ping, pong) must be final and carry at
    /// most 125 bytes; a debug build checks it.
    pub fn encode(&mut self, out: &mut Vec<u8>, opcode: OpCode, fin: bool, payload: &[u8]) {
        debug_assert!(!opcode.is_control() || (fin && payload.len() <= 125));
        let h = self.header(opcode, fin, payload.len() as u64);
        let mut head = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut head);
        out.extend_from_slice(&head[..n]);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut out[start..], key, 0);
        }
    }

    /// Like [`encode`](Writer::encode), into a slice: the frame's length,
    /// or `None` (nothing written) if it does not fit.
    pub fn encode_into(
        &mut self,
        out: &mut [u8],
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
    ) -> Option<usize> {
        debug_assert!(!opcode.is_control() || (fin && payload.len() <= 125));
        let h = self.header(opcode, fin, payload.len() as u64);
        let mut head = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut head);
        let total = n + payload.len();
        let out = out.get_mut(..total)?;
        out[..n].copy_from_slice(&head[..n]);
        out[n..].copy_from_slice(payload);
        if let Some(key) = h.mask {
            apply_mask(&mut out[n..], key, 0);
        }
        Some(total)
    }

    /// Appends a close frame with `code` and as much of `reason` as fits
    /// (123 bytes); a code that may not be sent (1005, 1006, 1015) gives
    /// an empty close frame.
    pub fn encode_close(&mut self, out: &mut Vec<u8>, code: CloseCode, reason: &str) {
        let mut payload = [0; 125];
        let n = encode_close_payload(code, reason, &mut payload);
        self.encode(out, OpCode::Close, true, &payload[..n]);
    }
}

/// Masking keys: xorshift64* seeded from the standard library's random
/// hasher keys (drawn from the operating system). RFC 6455 §10.3 asks
/// for keys a script in the page cannot predict; a fresh seed per
/// writer and a full-period generator give that.
#[derive(Clone, Debug)]
struct MaskKeys(u64);

impl MaskKeys {
    fn new() -> MaskKeys {
        MaskKeys(random_u64() | 1)
    }

    fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let [a, b, c, d, ..] = r.to_be_bytes();
        [a, b, c, d]
    }
}

/// 64 random bits from the operating system, by way of `RandomState`.
pub(crate) fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}
