//! Base64 (RFC 4648 §4, with padding), only as far as the handshake needs:
//! encoding a 16-byte key or a 20-byte digest, and checking that a
//! `Sec-WebSocket-Key` decodes to 16 bytes.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `input` into `out`, which must hold `4 * ceil(len / 3)` bytes;
/// returns how many it wrote.
pub(crate) fn encode(input: &[u8], out: &mut [u8]) -> usize {
    let mut n = 0;
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let quad = [
            ALPHABET[(v >> 18) as usize & 63],
            ALPHABET[(v >> 12) as usize & 63],
            if chunk.len() > 1 {
                ALPHABET[(v >> 6) as usize & 63]
            } else {
                b'='
            },
            if chunk.len() > 2 {
                ALPHABET[v as usize & 63]
            } else {
                b'='
            },
        ];
        out[n..n + 4].copy_from_slice(&quad);
        n += 4;
    }
    n
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes canonical padded base64 of exactly 16 bytes (24 characters,
/// ending in `==`, the unused bits zero); `None` for anything else.
pub(crate) fn decode16(input: &[u8]) -> Option<[u8; 16]> {
    if input.len() != 24 || &input[22..] != b"==" {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    for quad in input[..20].chunks_exact(4) {
        let mut v = 0u32;
        for &c in quad {
            v = v << 6 | value(c)?;
        }
        out[n..n + 3].copy_from_slice(&v.to_be_bytes()[1..]);
        n += 3;
    }
    // The last byte: two characters, the low four bits of the second zero.
    let v = value(input[20])? << 6 | value(input[21])?;
    if v & 0xF != 0 {
        return None;
    }
    out[15] = (v >> 4) as u8;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode16, encode};

    fn enc(input: &[u8]) -> String {
        let mut out = [0u8; 64];
        let n = encode(input, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(enc(input.as_bytes()), expected);
        }
    }

    #[test]
    fn sixteen_byte_keys_round_trip_and_nothing_else_decodes() {
        let key: [u8; 16] = *b"the sample nonce";
        let text = enc(&key);
        assert_eq!(text, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(decode16(text.as_bytes()), Some(key));
        for bad in [
            "dGhlIHNhbXBsZSBub25jZQ=",   // short
            "dGhlIHNhbXBsZSBub25jZQ===", // long
            "dGhlIHNhbXBsZSBub25jZR==",  // non-zero unused bits
            "dGhlIHNhbXBsZSBub25jZ*==",  // not in the alphabet
            "dGhlIHNhbXBsZSBub25jZQA=",  // 17 bytes
            "dGhlIHNhbXBsZSBub25j ZQ=",  // a space
        ] {
            assert_eq!(decode16(bad.as_bytes()), None, "{bad}");
        }
    }
}
