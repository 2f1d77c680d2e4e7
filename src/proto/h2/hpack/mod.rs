//! HPACK (RFC 7541), sans-IO: header blocks in, fields out, and back.
//!
//! - [`Decoder`]: one whole header block at a time (the frame layer joins
//!   HEADERS and CONTINUATION first), fields handed to a callback as
//!   slices of the block, of the tables or of a caller's scratch buffer —
//!   nothing allocated per block.
//! - [`Encoder`]: fields to a block, with the static table, its own
//!   dynamic table and Huffman coding where it is shorter.
//! - `table.rs`: the static table and the fixed-capacity dynamic ring
//!   both use; `huffman.rs`, `integer.rs`: the primitive codings.
//!
//! Both tables are allocated once, when the codec is made: for a table
//! of `n` bytes, `n + 6 * n / 32` bytes of heap (4,864 for 4,096).

mod decoder;
mod encoder;
mod huffman;
mod integer;
mod table;

#[cfg(test)]
mod tests;

pub(crate) use decoder::Decoder;
pub(crate) use encoder::Encoder;

/// The table size both ends start with (RFC 9113 §6.5.2).
pub(crate) const DEFAULT_TABLE_SIZE: usize = 4096;

/// HTTP/2 `COMPRESSION_ERROR`.
pub const COMPRESSION_ERROR: u32 = 0x9;
/// HTTP/2 `ENHANCE_YOUR_CALM`.
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Why a header block could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Index 0, or past the end of the static and dynamic tables.
    Index,
    /// A Huffman string holding EOS, or padded with more than seven bits
    /// or with bits that are not all ones.
    Huffman,
    /// An integer too large for anything a block can describe.
    Integer,
    /// The block ends inside a representation.
    Truncated,
    /// A dynamic table size update after a field.
    SizeUpdatePlacement,
    /// A dynamic table size update above the size we allow.
    SizeUpdateTooLarge,
    /// We lowered our table size and the block does not start with the
    /// size update that must acknowledge it (§4.2).
    SizeUpdateMissing,
    /// One field (name and value) larger than the scratch buffer.
    FieldTooLarge,
    /// The decoded fields (name + value + 32 each) exceed the list budget.
    /// The block was still decoded to its end, so the tables are in sync
    /// and only this stream is refused (431).
    ListTooLarge,
}

impl Error {
    /// The HTTP/2 error code of a connection error (GOAWAY), or `None`
    /// when only the stream is refused and the connection goes on.
    pub fn connection_error(self) -> Option<u32> {
        match self {
            Error::ListTooLarge => None,
            Error::FieldTooLarge => Some(ENHANCE_YOUR_CALM),
            _ => Some(COMPRESSION_ERROR),
        }
    }
}
