//! The static Huffman code of RFC 7541 Appendix B.
//!
//! Encoding reads the code table; decoding runs a state machine over
//! nibbles whose table is built from the same code table at compile time
//! (a `const fn`), so nothing is built or allocated at run time.

use super::Error;

/// `(bit length, code)` of each octet, right-aligned, then EOS (256).
#[rustfmt::skip]
const CODES: [(u8, u32); 257] = [
    (13, 0x1ff8), (23, 0x7fffd8), (28, 0xfffffe2), (28, 0xfffffe3),
    (28, 0xfffffe4), (28, 0xfffffe5), (28, 0xfffffe6), (28, 0xfffffe7),
    (28, 0xfffffe8), (24, 0xffffea), (30, 0x3ffffffc), (28, 0xfffffe9),
    (28, 0xfffffea), (30, 0x3ffffffd), (28, 0xfffffeb), (28, 0xfffffec),
    (28, 0xfffffed), (28, 0xfffffee), (28, 0xfffffef), (28, 0xffffff0),
    (28, 0xffffff1), (28, 0xffffff2), (30, 0x3ffffffe), (28, 0xffffff3),
    (28, 0xffffff4), (28, 0xffffff5), (28, 0xffffff6), (28, 0xffffff7),
    (28, 0xffffff8), (28, 0xffffff9), (28, 0xffffffa), (28, 0xffffffb),
    (6, 0x14), (10, 0x3f8), (10, 0x3f9), (12, 0xffa),
    (13, 0x1ff9), (6, 0x15), (8, 0xf8), (11, 0x7fa),
    (10, 0x3fa), (10, 0x3fb), (8, 0xf9), (11, 0x7fb),
    (8, 0xfa), (6, 0x16), (6, 0x17), (6, 0x18),
    (5, 0x0), (5, 0x1), (5, 0x2), (6, 0x19),
    (6, 0x1a), (6, 0x1b), (6, 0x1c), (6, 0x1d),
    (6, 0x1e), (6, 0x1f), (7, 0x5c), (8, 0xfb),
    (15, 0x7ffc), (6, 0x20), (12, 0xffb), (10, 0x3fc),
    (13, 0x1ffa), (6, 0x21), (7, 0x5d), (7, 0x5e),
    (7, 0x5f), (7, 0x60), (7, 0x61), (7, 0x62),
    (7, 0x63), (7, 0x64), (7, 0x65), (7, 0x66),
    (7, 0x67), (7, 0x68), (7, 0x69), (7, 0x6a),
    (7, 0x6b), (7, 0x6c), (7, 0x6d), (7, 0x6e),
    (7, 0x6f), (7, 0x70), (7, 0x71), (7, 0x72),
    (8, 0xfc), (7, 0x73), (8, 0xfd), (13, 0x1ffb),
    (19, 0x7fff0), (13, 0x1ffc), (14, 0x3ffc), (6, 0x22),
    (15, 0x7ffd), (5, 0x3), (6, 0x23), (5, 0x4),
    (6, 0x24), (5, 0x5), (6, 0x25), (6, 0x26),
    (6, 0x27), (5, 0x6), (7, 0x74), (7, 0x75),
    (6, 0x28), (6, 0x29), (6, 0x2a), (5, 0x7),
    (6, 0x2b), (7, 0x76), (6, 0x2c), (5, 0x8),
    (5, 0x9), (6, 0x2d), (7, 0x77), (7, 0x78),
    (7, 0x79), (7, 0x7a), (7, 0x7b), (15, 0x7ffe),
    (11, 0x7fc), (14, 0x3ffd), (13, 0x1ffd), (28, 0xffffffc),
    (20, 0xfffe6), (22, 0x3fffd2), (20, 0xfffe7), (20, 0xfffe8),
    (22, 0x3fffd3), (22, 0x3fffd4), (22, 0x3fffd5), (23, 0x7fffd9),
    (22, 0x3fffd6), (23, 0x7fffda), (23, 0x7fffdb), (23, 0x7fffdc),
    (23, 0x7fffdd), (23, 0x7fffde), (24, 0xffffeb), (23, 0x7fffdf),
    (24, 0xffffec), (24, 0xffffed), (22, 0x3fffd7), (23, 0x7fffe0),
    (24, 0xffffee), (23, 0x7fffe1), (23, 0x7fffe2), (23, 0x7fffe3),
    (23, 0x7fffe4), (21, 0x1fffdc), (22, 0x3fffd8), (23, 0x7fffe5),
    (22, 0x3fffd9), (23, 0x7fffe6), (23, 0x7fffe7), (24, 0xffffef),
    (22, 0x3fffda), (21, 0x1fffdd), (20, 0xfffe9), (22, 0x3fffdb),
    (22, 0x3fffdc), (23, 0x7fffe8), (23, 0x7fffe9), (21, 0x1fffde),
    (23, 0x7fffea), (22, 0x3fffdd), (22, 0x3fffde), (24, 0xfffff0),
    (21, 0x1fffdf), (22, 0x3fffdf), (23, 0x7fffeb), (23, 0x7fffec),
    (21, 0x1fffe0), (21, 0x1fffe1), (22, 0x3fffe0), (21, 0x1fffe2),
    (23, 0x7fffed), (22, 0x3fffe1), (23, 0x7fffee), (23, 0x7fffef),
    (20, 0xfffea), (22, 0x3fffe2), (22, 0x3fffe3), (22, 0x3fffe4),
    (23, 0x7ffff0), (22, 0x3fffe5), (22, 0x3fffe6), (23, 0x7ffff1),
    (26, 0x3ffffe0), (26, 0x3ffffe1), (20, 0xfffeb), (19, 0x7fff1),
    (22, 0x3fffe7), (23, 0x7ffff2), (22, 0x3fffe8), (25, 0x1ffffec),
    (26, 0x3ffffe2), (26, 0x3ffffe3), (26, 0x3ffffe4), (27, 0x7ffffde),
    (27, 0x7ffffdf), (26, 0x3ffffe5), (24, 0xfffff1), (25, 0x1ffffed),
    (19, 0x7fff2), (21, 0x1fffe3), (26, 0x3ffffe6), (27, 0x7ffffe0),
    (27, 0x7ffffe1), (26, 0x3ffffe7), (27, 0x7ffffe2), (24, 0xfffff2),
    (21, 0x1fffe4), (21, 0x1fffe5), (26, 0x3ffffe8), (26, 0x3ffffe9),
    (28, 0xffffffd), (27, 0x7ffffe3), (27, 0x7ffffe4), (27, 0x7ffffe5),
    (20, 0xfffec), (24, 0xfffff3), (20, 0xfffed), (21, 0x1fffe6),
    (22, 0x3fffe9), (21, 0x1fffe7), (21, 0x1fffe8), (23, 0x7ffff3),
    (22, 0x3fffea), (22, 0x3fffeb), (25, 0x1ffffee), (25, 0x1ffffef),
    (24, 0xfffff4), (24, 0xfffff5), (26, 0x3ffffea), (23, 0x7ffff4),
    (26, 0x3ffffeb), (27, 0x7ffffe6), (26, 0x3ffffec), (26, 0x3ffffed),
    (27, 0x7ffffe7), (27, 0x7ffffe8), (27, 0x7ffffe9), (27, 0x7ffffea),
    (27, 0x7ffffeb), (28, 0xffffffe), (27, 0x7ffffec), (27, 0x7ffffed),
    (27, 0x7ffffee), (27, 0x7ffffef), (27, 0x7fffff0), (26, 0x3ffffee),
    (30, 0x3fffffff),
];

const EOS: u16 = 256;

/// A child in the code tree that is a symbol, not another node.
const LEAF: u16 = 0x8000;

/// A symbol was completed by this nibble.
const EMIT: u8 = 1;
/// The bits read since the last symbol are valid padding: at most seven,
/// all ones (a prefix of EOS).
const ACCEPT: u8 = 2;
/// The nibble completes EOS, which may not appear in the data.
const FAIL: u8 = 4;

/// One transition: the node reached, and the symbol emitted on the way.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// `DECODE[node][nibble]`. The nodes are the 256 inner nodes of the code
/// tree (257 leaves), the root is 0. No code is shorter than five bits, so
/// a nibble completes at most one symbol.
static DECODE: [[Step; 16]; 256] = decode_table();

/// The code tree: `[zero child, one child]` per inner node, a child being
/// another node or `LEAF | symbol`.
const fn tree() -> [[u16; 2]; 256] {
    let mut nodes = [[0u16; 2]; 256];
    let mut count = 1;
    let mut sym = 0;
    while sym < CODES.len() {
        let (len, code) = CODES[sym];
        let mut node = 0;
        let mut bit = len - 1;
        while bit > 0 {
            let b = ((code >> bit) & 1) as usize;
            if nodes[node][b] == 0 {
                nodes[node][b] = count;
                count += 1;
            }
            node = nodes[node][b] as usize;
            bit -= 1;
        }
        nodes[node][(code & 1) as usize] = LEAF | sym as u16;
        sym += 1;
    }
    nodes
}

const fn decode_table() -> [[Step; 16]; 256] {
    let nodes = tree();
    // Padding: the nodes reached by up to seven ones from the root.
    let mut accept = [false; 256];
    accept[0] = true;
    let mut node = 0;
    let mut depth = 0;
    while depth < 7 {
        node = nodes[node][1] as usize;
        accept[node] = true;
        depth += 1;
    }
    let mut table = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut step = Step {
                next: 0,
                sym: 0,
                flags: 0,
            };
            let mut node = state;
            let mut bit = 4;
            while bit > 0 {
                bit -= 1;
                let child = nodes[node][(nibble >> bit) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                } else if child == LEAF | EOS {
                    step.flags = FAIL;
                    break;
                } else {
                    step.sym = child as u8;
                    step.flags |= EMIT;
                    node = 0;
                }
            }
            if step.flags & FAIL == 0 {
                step.next = node as u8;
                if accept[node] {
                    step.flags |= ACCEPT;
                }
            }
            table[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    table
}

/// Decodes `src` into `dst`; the length written. Errors: [`Error::Huffman`]
/// for EOS in the data or bad padding (RFC 7541 §5.2), and
/// [`Error::FieldTooLarge`] when `dst` is full.
pub(crate) fn decode(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let mut state = 0;
    let mut accept = true;
    let mut n = 0;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0xf] {
            let step = DECODE[state][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(Error::Huffman);
            }
            if step.flags & EMIT != 0 {
                *dst.get_mut(n).ok_or(Error::FieldTooLarge)? = step.sym;
                n += 1;
            }
            state = usize::from(step.next);
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(n)
    } else {
        Err(Error::Huffman)
    }
}

/// The length of `src` once encoded.
pub(crate) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].0))
        .sum();
    bits.div_ceil(8)
}

/// Appends `src` encoded, padded with ones to a whole octet.
pub(crate) fn encode(src: &[u8], out: &mut Vec<u8>) {
    // At most 7 pending bits plus a 30-bit code: fits in 64.
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in src {
        let (len, code) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(src: &[u8]) -> Result<Vec<u8>, Error> {
        let mut dst = [0u8; 256];
        let n = decode(src, &mut dst)?;
        Ok(dst[..n].to_vec())
    }

    /// The table is a complete prefix code and canonical (codes of one
    /// length are consecutive, in symbol order): a typo would break this.
    #[test]
    fn the_code_is_complete_and_canonical() {
        let kraft: u64 = CODES.iter().map(|&(len, _)| 1u64 << (30 - len)).sum();
        assert_eq!(kraft, 1 << 30);
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (CODES[s].0, s));
        let mut code = 0u32;
        let mut len = CODES[order[0]].0;
        for s in order {
            code <<= CODES[s].0 - len;
            len = CODES[s].0;
            assert_eq!(CODES[s].1, code, "symbol {s}");
            code += 1;
        }
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode(&all, &mut out);
        assert_eq!(out.len(), encoded_len(&all));
        let mut dst = [0u8; 256];
        assert_eq!(decode(&out, &mut dst), Ok(256));
        assert_eq!(&dst[..], &all[..]);
    }

    /// RFC 7541 C.4.1 and C.6.1.
    #[test]
    fn decodes_the_rfc_strings() {
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decoded(&www).unwrap(), b"www.example.com");
        assert_eq!(decoded(&[0x64, 0x02]).unwrap(), b"302");
        let mut out = Vec::new();
        encode(b"www.example.com", &mut out);
        assert_eq!(out, www);
    }

    #[test]
    fn refuses_eos_and_bad_padding() {
        // '0' is 00000, then three ones of padding.
        assert_eq!(decoded(&[0x07]).unwrap(), b"0");
        assert_eq!(decoded(&[]).unwrap(), b"");
        // Padding not all ones.
        assert_eq!(decoded(&[0x00]), Err(Error::Huffman));
        assert_eq!(decoded(&[0x06]), Err(Error::Huffman));
        // Eight bits of padding or more.
        assert_eq!(decoded(&[0x07, 0xff]), Err(Error::Huffman));
        assert_eq!(decoded(&[0xff]), Err(Error::Huffman));
        // EOS (30 ones) inside the data.
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xfc]), Err(Error::Huffman));
        assert_eq!(decoded(&[0xff, 0xff, 0xff, 0xff]), Err(Error::Huffman));
    }

    #[test]
    fn a_full_destination_is_field_too_large() {
        let mut out = Vec::new();
        encode(b"abcdef", &mut out);
        assert_eq!(decode(&out, &mut [0u8; 5]), Err(Error::FieldTooLarge));
        assert_eq!(decode(&out, &mut [0u8; 6]), Ok(6));
    }
}
