//! Prefix-coded integers (RFC 7541 §5.1).

use super::Error;

/// Continuation octets accepted after the prefix: enough for any size,
/// length or index that fits a bounded block (values below 2^28).
const MAX_CONTINUATIONS: u32 = 4;

/// Reads an integer with an `prefix`-bit prefix at `src[*pos]` (the bits
/// above the prefix are the caller's flags) and moves `pos` past it.
pub(crate) fn decode(src: &[u8], pos: &mut usize, prefix: u8) -> Result<usize, Error> {
    let mask = (1u8 << prefix) - 1;
    let first = src.get(*pos).ok_or(Error::Truncated)? & mask;
    *pos += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut value = usize::from(mask);
    for i in 0..MAX_CONTINUATIONS {
        let b = *src.get(*pos).ok_or(Error::Truncated)?;
        *pos += 1;
        value += usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Integer)
}

/// Appends `value` with a `prefix`-bit prefix under the flag bits `flags`.
pub(crate) fn encode(value: usize, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = value - mask;
    while rest >= 0x80 {
        out.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(src: &[u8], prefix: u8) -> Result<(usize, usize), Error> {
        let mut pos = 0;
        let value = decode(src, &mut pos, prefix)?;
        Ok((value, pos))
    }

    /// RFC 7541 C.1.
    #[test]
    fn rfc_examples() {
        let mut out = Vec::new();
        encode(10, 5, 0, &mut out);
        assert_eq!(out, [0x0a]);
        out.clear();
        encode(1337, 5, 0, &mut out);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
        out.clear();
        encode(42, 8 - 1, 0x80, &mut out);
        assert_eq!(out, [0x80 | 42]);
        assert_eq!(read(&[0xea], 5), Ok((10, 1)));
        assert_eq!(read(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
    }

    #[test]
    fn round_trips_at_every_prefix() {
        for prefix in 1..=7 {
            for value in [
                0,
                1,
                126,
                127,
                128,
                254,
                255,
                256,
                16_383,
                1 << 20,
                (1 << 28) - 1,
            ] {
                let mut out = vec![];
                encode(value, prefix, 0, &mut out);
                assert_eq!(
                    read(&out, prefix),
                    Ok((value, out.len())),
                    "{value} {prefix}"
                );
            }
        }
    }

    #[test]
    fn truncated_and_overlong_integers() {
        assert_eq!(read(&[], 5), Err(Error::Truncated));
        assert_eq!(read(&[0x1f], 5), Err(Error::Truncated));
        assert_eq!(read(&[0x1f, 0x80], 5), Err(Error::Truncated));
        assert_eq!(
            read(&[0x1f, 0xff, 0xff, 0xff, 0x7f], 5),
            Ok((31 + (1 << 28) - 1, 5))
        );
        assert_eq!(
            read(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x01], 5),
            Err(Error::Integer)
        );
    }
}
