//! What the protocol core finds wrong with a message.

/// A message, or part of one, that the protocol core refuses: which rule
/// it breaks, with a static reason where there are several.
///
/// Each role turns it into its own public error at its boundary: the
/// server into [`ParseError`](crate::ParseError) (which carries the status
/// it answers with), the client into
/// [`client::Error::Malformed`](crate::client::Error::Malformed) with
/// [`reason`](Error::reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Error {
    // In a head:
    /// A malformed start line or header field.
    Malformed(&'static str),
    /// A request method longer than the head may be.
    MethodTooLong,
    /// A request target longer than the head may be.
    TargetTooLong,
    /// A head over the size limit, or with too many fields.
    HeadTooLarge,
    /// A protocol version other than HTTP/1.0 and HTTP/1.1.
    Version,
    /// An HTTP/1.1 request without exactly one valid `Host`.
    Host,
    /// An `Expect` other than `100-continue`.
    Expectation,
    // In the framing fields:
    /// Ambiguous or invalid framing.
    Framing(&'static str),
    /// A transfer coding that is not implemented.
    UnknownCoding,
    // In the body:
    /// A malformed chunked body.
    Chunked(&'static str),
    /// The input ended before the body did.
    Truncated,
    /// A body longer than the receiver's limit.
    BodyTooLarge,
}

impl Error {
    /// What is wrong, in a few words.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Error::Malformed(what) | Error::Framing(what) | Error::Chunked(what) => what,
            Error::MethodTooLong => "method too long",
            Error::TargetTooLong => "request target too long",
            Error::HeadTooLarge => "head too large",
            Error::Version => "HTTP version not supported",
            Error::Host => "not exactly one valid Host",
            Error::Expectation => "expectation not supported",
            Error::UnknownCoding => "transfer coding not implemented",
            Error::Truncated => "body cut short",
            Error::BodyTooLarge => "body too large",
        }
    }
}
