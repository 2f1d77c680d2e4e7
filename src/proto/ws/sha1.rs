//! SHA-1 (FIPS 180-4), only for the handshake's `Sec-WebSocket-Accept`:
//! the input is a 24-byte key and a 36-byte GUID, and SHA-1 is not used
//! for security there (RFC 6455 §10.8), so a small own implementation
//! serves instead of a dependency.

/// The SHA-1 digest of `parts` concatenated.
pub(crate) fn digest(parts: &[&[u8]]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut block = [0u8; 64];
    let mut filled = 0;
    let mut total: u64 = 0;
    for part in parts {
        for &b in *part {
            block[filled] = b;
            filled += 1;
            if filled == 64 {
                compress(&mut h, &block);
                filled = 0;
            }
        }
        total += part.len() as u64;
    }
    // Padding: 0x80, zeros, then the length in bits, big-endian.
    block[filled] = 0x80;
    filled += 1;
    if filled > 56 {
        block[filled..].fill(0);
        compress(&mut h, &block);
        filled = 0;
    }
    block[filled..56].fill(0);
    block[56..].copy_from_slice(&(total * 8).to_be_bytes());
    compress(&mut h, &block);
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn compress(h: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for (i, chunk) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, &wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (x, v) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::digest;

    fn hex(d: [u8; 20]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn fips_180_examples() {
        assert_eq!(
            hex(digest(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(digest(&[b""])),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex(digest(&[
                b"abcdbcdecdefdefgefghfghighij",
                b"hijkijkljklmklmnlmnomnopnopq"
            ])),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(digest(&[&million])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn every_length_around_the_padding_boundary() {
        // 55, 56, 63, 64, 65 bytes: the padding spills into a second block
        // or not; split anywhere, the digest is the same.
        for len in [55usize, 56, 57, 63, 64, 65, 119, 120] {
            let data: Vec<u8> = (0..len as u8).collect();
            let whole = digest(&[&data]);
            for cut in 0..=len {
                assert_eq!(
                    digest(&[&data[..cut], &data[cut..]]),
                    whole,
                    "{len} cut {cut}"
                );
            }
        }
        // 56 bytes of 'a' (a known vector).
        assert_eq!(
            hex(digest(&[&[b'a'; 56]])),
            "c2db330f6083854c99d4b5bfb6e8f29f201be699"
        );
    }
}
