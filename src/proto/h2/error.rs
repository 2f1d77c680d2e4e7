//! HTTP/2 error codes (RFC 9113 §7) and the two scopes an error has:
//! a stream error ends one stream with RST_STREAM, a connection error
//! ends the connection with GOAWAY.

use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7), as carried by RST_STREAM and
/// GOAWAY. Unknown codes from the peer are kept as they are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown, or a stream ended without error.
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    /// A protocol rule was broken.
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    /// An unexpected internal error.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    /// A flow-control window was overrun or overflowed.
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    /// SETTINGS were not acknowledged in time.
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    /// A frame arrived on a stream already half-closed or closed.
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    /// A frame of the wrong size.
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    /// The stream was refused before any processing: safe to retry.
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    /// The HPACK context can no longer be kept in sync.
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    /// A CONNECT tunnel's connection failed.
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    /// The peer is generating excessive load.
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    /// The transport's security properties are not good enough.
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    /// The request must be made over HTTP/1.1.
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    /// The code's name in RFC 9113, or `"UNKNOWN"`.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 14] = [
            "NO_ERROR",
            "PROTOCOL_ERROR",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "SETTINGS_TIMEOUT",
            "STREAM_CLOSED",
            "FRAME_SIZE_ERROR",
            "REFUSED_STREAM",
            "CANCEL",
            "COMPRESSION_ERROR",
            "CONNECT_ERROR",
            "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY",
            "HTTP_1_1_REQUIRED",
        ];
        NAMES.get(self.0 as usize).copied().unwrap_or("UNKNOWN")
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(0x{:x})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A connection error: the engine has written GOAWAY(last processed
/// stream, `code`) to the output; the owner flushes it and closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnError {
    /// The code sent in the GOAWAY.
    pub code: ErrorCode,
    /// What went wrong, in a few words (also the GOAWAY's debug data).
    pub reason: &'static str,
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP/2 connection error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for ConnError {}

/// An error found while reading a frame, with its scope. Internal: the
/// engine turns a stream error into RST_STREAM and a connection error
/// into GOAWAY before the owner sees anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum H2Error {
    /// RST_STREAM(`code`) on `id`; the connection goes on.
    Stream {
        /// The stream.
        id: u32,
        /// The code.
        code: ErrorCode,
        /// Why.
        reason: &'static str,
    },
    /// GOAWAY(`code`); the connection ends.
    Conn(ConnError),
}

/// A connection error with `code`.
pub(crate) fn conn(code: ErrorCode, reason: &'static str) -> H2Error {
    H2Error::Conn(ConnError { code, reason })
}

/// A stream error on `id` with `code`.
pub(crate) fn stream(id: u32, code: ErrorCode, reason: &'static str) -> H2Error {
    H2Error::Stream { id, code, reason }
}
