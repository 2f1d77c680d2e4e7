//! The frame header (RFC 6455 §5.2): parsing it from bytes and encoding
//! it. What a header may say in context (a role's masking, the
//! fragmentation rules, limits) is the [`Reader`](super::Reader)'s to
//! judge; this only knows the wire format.

use super::error::Error;

/// The longest header: 2 bytes, an 8-byte length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2, §11.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// `0x0`: the next fragment of the message in progress.
    Continuation,
    /// `0x1`: the first (or only) frame of a text message.
    Text,
    /// `0x2`: the first (or only) frame of a binary message.
    Binary,
    /// `0x8`: the close handshake.
    Close,
    /// `0x9`: a ping, to be answered with a pong.
    Ping,
    /// `0xA`: a pong.
    Pong,
}

impl OpCode {
    /// The opcode of a 4-bit value; `None` for the reserved ones.
    pub fn from_u8(bits: u8) -> Option<OpCode> {
        Some(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit value on the wire.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, and
    /// allowed between the fragments of a message.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed or to-be-encoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The last frame of its message.
    pub fin: bool,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key, when the payload is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub len: u64,
}

/// The outcome of parsing the start of a buffer as a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A header, and how many bytes it took.
    Header(FrameHeader, usize),
    /// Not enough bytes yet.
    Partial,
}

impl FrameHeader {
    /// Parses a header from the start of `bytes`. Refuses what no
    /// context could make valid: reserved bits (no extension is
    /// negotiated), reserved opcodes, a length with its top bit set, a
    /// length not in its shortest form, a fragmented or long control
    /// frame.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, Error> {
        let [b0, b1, ..] = *bytes else {
            return Ok(Parsed::Partial);
        };
        if b0 & 0x70 != 0 {
            return Err(Error::protocol("reserved bits set"));
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(Error::protocol("reserved opcode"))?;
        let fin = b0 & 0x80 != 0;
        let masked = b1 & 0x80 != 0;
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                let Some(b) = bytes.get(2..4) else {
                    return Ok(Parsed::Partial);
                };
                let len = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if len < 126 {
                    return Err(Error::protocol("length not in its shortest form"));
                }
                (len, 4)
            }
            127 => {
                let Some(b) = bytes.get(2..10) else {
                    return Ok(Parsed::Partial);
                };
                let len = u64::from_be_bytes(b.try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(Error::protocol("length with its top bit set"));
                }
                if len <= 0xFFFF {
                    return Err(Error::protocol("length not in its shortest form"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode.is_control() {
            if !fin {
                return Err(Error::protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(Error::protocol("control frame longer than 125 bytes"));
            }
        }
        let mask = if masked {
            let Some(k) = bytes.get(at..at + 4) else {
                return Ok(Parsed::Partial);
            };
            at += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        Ok(Parsed::Header(
            FrameHeader {
                fin,
                opcode,
                mask,
                len,
            },
            at,
        ))
    }

    /// Encodes the header into `out`; returns how many bytes it took (2
    /// to [`MAX_HEADER_LEN`]). The shortest length form is used.
    pub fn encode(&self, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
        out[0] = u8::from(self.fin) << 7 | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.len {
            0..=125 => {
                out[1] = mask_bit | self.len as u8;
                2
            }
            126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(self.len as u16).to_be_bytes());
                4
            }
            _ => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&self.len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameHeader, OpCode, Parsed, MAX_HEADER_LEN};

    fn round_trip(h: FrameHeader) {
        let mut out = [0; MAX_HEADER_LEN];
        let n = h.encode(&mut out);
        assert_eq!(FrameHeader::parse(&out[..n]), Ok(Parsed::Header(h, n)));
        for short in 0..n {
            assert_eq!(
                FrameHeader::parse(&out[..short]),
                Ok(Parsed::Partial),
                "{h:?} {short}"
            );
        }
    }

    #[test]
    fn encodes_every_length_form_and_parses_it_back() {
        for len in [
            0,
            1,
            125,
            126,
            127,
            0xFFFF,
            0x1_0000,
            1 << 40,
            (1 << 63) - 1,
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [OpCode::Text, OpCode::Binary, OpCode::Continuation] {
                    for fin in [false, true] {
                        round_trip(FrameHeader {
                            fin,
                            opcode,
                            mask,
                            len,
                        });
                    }
                }
            }
        }
    }

    #[test]
    fn rfc_6455_section_5_7_headers() {
        let mut out = [0; MAX_HEADER_LEN];
        let h = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: None,
            len: 256,
        };
        let n = h.encode(&mut out);
        assert_eq!(&out[..n], &[0x82, 0x7E, 0x01, 0x00]);
        let h = FrameHeader {
            fin: true,
            opcode: OpCode::Binary,
            mask: None,
            len: 65536,
        };
        let n = h.encode(&mut out);
        assert_eq!(&out[..n], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
