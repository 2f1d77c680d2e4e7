//! UTF-8 validation of a text message that arrives in pieces: a code
//! point may be split between frames and between reads. The standard
//! library's validator does the work; this keeps the up to three bytes
//! of a code point not yet complete, and fails as soon as the bytes so
//! far cannot begin valid UTF-8 (not only at the end).

/// The state between pieces: the start of a code point still open.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8 {
    carry: [u8; 4],
    carried: u8,
}

/// The bytes are not UTF-8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

impl Utf8 {
    /// Validates the next piece.
    pub(crate) fn feed(&mut self, mut input: &[u8]) -> Result<(), Invalid> {
        if self.carried > 0 {
            let have = usize::from(self.carried);
            let width = char_width(self.carry[0]);
            let take = (width - have).min(input.len());
            self.carry[have..have + take].copy_from_slice(&input[..take]);
            let now = have + take;
            match std::str::from_utf8(&self.carry[..now]) {
                Ok(_) => self.carried = 0,
                // Still a valid beginning: wait for more.
                Err(e) if e.error_len().is_none() && now < width => {
                    self.carried = now as u8;
                    return Ok(());
                }
                Err(_) => return Err(Invalid),
            }
            input = &input[take..];
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let rest = &input[e.valid_up_to()..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carried = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(Invalid),
        }
    }

    /// The message has ended: no code point may be left open.
    pub(crate) fn finish(&mut self) -> Result<(), Invalid> {
        let open = self.carried > 0;
        self.carried = 0;
        if open {
            Err(Invalid)
        } else {
            Ok(())
        }
    }
}

/// How many bytes the code point that `lead` begins has (`lead` is the
/// first byte of a valid incomplete sequence, so 2 to 4).
fn char_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8;

    /// Validates `bytes` cut into pieces at `cuts`.
    fn valid_in_pieces(bytes: &[u8], cuts: &[usize]) -> bool {
        let mut v = Utf8::default();
        let mut at = 0;
        for &cut in cuts.iter().chain([&bytes.len()]) {
            if v.feed(&bytes[at..cut]).is_err() {
                return false;
            }
            at = cut;
        }
        v.finish().is_ok()
    }

    #[test]
    fn every_split_in_two_and_three_gives_the_standard_verdict() {
        let cases: &[&[u8]] = &[
            "Hello-µ@ßöäüàá-UTF-8!!".as_bytes(),
            "κόσμε".as_bytes(),
            "\u{10FFFF}\u{FFFF}\u{800}\u{7FF}\u{80}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", // surrogate
            b"\xf4\x90\x80\x80",                                               // above U+10FFFF
            b"\xc0\xaf",                                                       // overlong
            b"\xe0\x80\xaf",                                                   // overlong, 3 bytes
            b"\xf0\x9f\x98",         // cut short at the end
            b"ab\xffcd",             // never valid
            b"\x80",                 // a lone continuation byte
            b"\xe2\x82\xac\xe2\x82", // a valid then a cut code point
            b"",
        ];
        for bytes in cases {
            let expected = std::str::from_utf8(bytes).is_ok();
            assert_eq!(valid_in_pieces(bytes, &[]), expected, "{bytes:x?}");
            for a in 0..=bytes.len() {
                assert_eq!(valid_in_pieces(bytes, &[a]), expected, "{bytes:x?} at {a}");
                for b in a..=bytes.len() {
                    assert_eq!(
                        valid_in_pieces(bytes, &[a, b]),
                        expected,
                        "{bytes:x?} at {a},{b}"
                    );
                }
            }
        }
    }

    #[test]
    fn fails_at_the_first_byte_that_cannot_be_valid() {
        // Autobahn 6.4: fail fast, before the frame ends.
        let mut v = Utf8::default();
        assert!(v
            .feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")
            .is_ok());
        assert!(v.feed(b"\xf4").is_ok()); // could begin U+10xxxx
        assert!(v.feed(b"\x90").is_err()); // U+110000 and up: never
        let mut v = Utf8::default();
        assert!(v.feed(b"\xed").is_ok());
        assert!(v.feed(b"\xa0").is_err()); // a surrogate
    }
}
