//! Close codes (RFC 6455 §7.4, the IANA "WebSocket Close Code Number"
//! registry) and the close frame's payload: a code, then a UTF-8 reason.

use super::error::Error;

/// A close status code.
///
/// The constants are the codes RFC 6455 §7.4.1 and the IANA registry
/// define. [`NO_STATUS`](CloseCode::NO_STATUS),
/// [`ABNORMAL`](CloseCode::ABNORMAL) and [`TLS`](CloseCode::TLS) only
/// describe a closure and never go on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page left).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: a protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint cannot accept (binary to a
    /// text-only endpoint, say).
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: the close frame had no code. Never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a close frame. Never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data is not consistent with its type (text
    /// that is not UTF-8).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a message violates the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: (client) the server did not negotiate an extension it needs.
    pub const EXTENSION_REQUIRED: CloseCode = CloseCode(1010);
    /// 1011: (server) an unexpected condition prevented the request.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway got an invalid response upstream.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Never sent.
    pub const TLS: CloseCode = CloseCode(1015);

    /// May this code be sent in a close frame (and be received in one)?
    /// 1000–1003, 1007–1014, and 3000–4999 (registered with IANA, and
    /// private use); not 1005, 1006, 1015, the unassigned or reserved
    /// rest of 1000–2999, nor anything outside 1000–4999.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A close frame's payload, validated: empty, or a sendable code and a
/// UTF-8 reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The code; `None` for an empty close frame (reported as 1005,
    /// [`CloseCode::NO_STATUS`]).
    pub code: Option<CloseCode>,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Validates a received close payload: one byte (a code cut short)
    /// or a code that may not be sent is a protocol error (1002), a
    /// reason that is not UTF-8 invalid data (1007).
    pub fn parse(payload: &'a [u8]) -> Result<CloseFrame<'a>, Error> {
        match payload {
            [] => Ok(CloseFrame {
                code: None,
                reason: "",
            }),
            [_] => Err(Error::protocol("close frame of one byte")),
            [a, b, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*a, *b]));
                if !code.is_sendable() {
                    return Err(Error::protocol("close code that may not be sent"));
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| Error::invalid_data("close reason not UTF-8"))?;
                Ok(CloseFrame {
                    code: Some(code),
                    reason,
                })
            }
        }
    }

    /// The code, 1005 ([`CloseCode::NO_STATUS`]) for none.
    pub fn code_or_no_status(&self) -> CloseCode {
        self.code.unwrap_or(CloseCode::NO_STATUS)
    }
}

/// Encodes a close payload into `out`: the code, then as much of
/// `reason` as fits in 123 bytes (cut at a character boundary); returns
/// its length. A code that may not be sent (1005, 1006, 1015, ...)
/// gives the empty payload: "no status".
pub fn encode_close_payload(code: CloseCode, reason: &str, out: &mut [u8; 125]) -> usize {
    if !code.is_sendable() {
        return 0;
    }
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    2 + end
}

#[cfg(test)]
mod tests {
    use super::{encode_close_payload, CloseCode, CloseFrame};

    #[test]
    fn sendable_codes_follow_rfc_6455_and_the_iana_registry() {
        let sendable: Vec<u16> = (0..=u16::MAX)
            .filter(|&c| CloseCode(c).is_sendable())
            .collect();
        let expected: Vec<u16> = (1000..=1003)
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(sendable, expected);
        for never in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let payload = [(never >> 8) as u8, never as u8];
            assert_eq!(
                CloseFrame::parse(&payload).unwrap_err().close_code().0,
                1002
            );
        }
    }

    #[test]
    fn payloads_parse_or_map_to_their_close_code() {
        assert_eq!(
            CloseFrame::parse(b"").unwrap().code_or_no_status(),
            CloseCode(1005)
        );
        assert_eq!(
            CloseFrame::parse(b"\x03").unwrap_err().close_code(),
            CloseCode(1002)
        );
        let ok = CloseFrame::parse(b"\x03\xe8bye \xc3\xa9").unwrap();
        assert_eq!((ok.code, ok.reason), (Some(CloseCode::NORMAL), "bye é"));
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")
                .unwrap_err()
                .close_code(),
            CloseCode(1007)
        );
    }

    #[test]
    fn encoding_cuts_long_reasons_at_a_character_and_drops_unsendable_codes() {
        let mut out = [0; 125];
        let reason = "é".repeat(100); // 200 bytes
        let n = encode_close_payload(CloseCode::GOING_AWAY, &reason, &mut out);
        assert_eq!(n, 2 + 122);
        let back = CloseFrame::parse(&out[..n]).unwrap();
        assert_eq!(back.code, Some(CloseCode::GOING_AWAY));
        assert_eq!(back.reason, &reason[..122]);
        assert_eq!(encode_close_payload(CloseCode::NO_STATUS, "x", &mut out), 0);
        assert_eq!(encode_close_payload(CloseCode::ABNORMAL, "x", &mut out), 0);
    }
}
