//! Why a WebSocket connection must fail, and the close code that says so.

use std::fmt;

use super::close::CloseCode;

/// The peer broke the protocol, or a limit: the connection must fail
/// (RFC 6455 §7.1.7). Send a close frame with
/// [`close_code`](Error::close_code), then close.
///
/// The codes: 1002 ([`CloseCode::PROTOCOL_ERROR`]) for framing, masking,
/// fragmentation and close-frame errors; 1007
/// ([`CloseCode::INVALID_DATA`]) for text (or a close reason) that is not
/// UTF-8; 1009 ([`CloseCode::TOO_BIG`]) for a frame or message over the
/// [`Limits`](super::Limits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    code: CloseCode,
    reason: &'static str,
}

impl Error {
    pub(crate) const fn protocol(reason: &'static str) -> Error {
        Error {
            code: CloseCode::PROTOCOL_ERROR,
            reason,
        }
    }

    pub(crate) const fn invalid_data(reason: &'static str) -> Error {
        Error {
            code: CloseCode::INVALID_DATA,
            reason,
        }
    }

    pub(crate) const fn too_big(reason: &'static str) -> Error {
        Error {
            code: CloseCode::TOO_BIG,
            reason,
        }
    }

    /// The code to close the connection with.
    pub fn close_code(&self) -> CloseCode {
        self.code
    }

    /// What is wrong, in a few words (fit for the close frame's reason).
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket error {}: {}", self.code.0, self.reason)
    }
}

impl std::error::Error for Error {}
