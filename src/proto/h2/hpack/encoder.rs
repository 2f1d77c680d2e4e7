//! Header block encoding (RFC 7541 §6), for the fields we send.

use super::table::{entry_size, static_named, Table, STATIC};
use super::{huffman, integer, DEFAULT_TABLE_SIZE};

/// The encoding context of one connection.
pub(crate) struct Encoder {
    table: Table,
    /// Size updates owed at the start of the next block: the smallest
    /// maximum since the last block, then the final one (§4.2).
    pending: Option<(usize, usize)>,
}

/// Names never put in a table, whatever the caller says (§7.1.3): their
/// values are secrets or too varied to be worth it.
fn never_indexed(name: &[u8]) -> bool {
    matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

/// Names whose values change with nearly every message: sent as literals
/// without indexing, so they do not flush the useful entries.
fn not_indexed(name: &[u8]) -> bool {
    matches!(
        name,
        b":path"
            | b"content-length"
            | b"content-range"
            | b"etag"
            | b"if-modified-since"
            | b"if-none-match"
            | b"last-modified"
            | b"location"
            | b"age"
    )
}

impl Encoder {
    /// A context whose dynamic table uses at most `capacity` bytes (at
    /// most 65,535), however large the peer allows.
    pub(crate) fn new(capacity: usize) -> Encoder {
        let mut table = Table::new(capacity);
        let start = table.capacity().min(DEFAULT_TABLE_SIZE);
        table.set_max_size(start);
        let pending = (start < DEFAULT_TABLE_SIZE).then_some((start, start));
        Encoder { table, pending }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE: the table uses the smaller
    /// of it and the capacity, announced at the start of the next block.
    pub(crate) fn set_peer_limit(&mut self, limit: usize) {
        let size = limit.min(self.table.capacity());
        if size == self.table.max_size() && self.pending.is_none() {
            return;
        }
        let min = self.pending.map_or(size, |(min, _)| min.min(size));
        self.pending = Some((min, size));
        self.table.set_max_size(size);
    }

    /// Heap bytes held by the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// The dynamic table: its entry count, size and maximum size.
    pub(crate) fn table_state(&self) -> (usize, usize, usize) {
        (self.table.len(), self.table.size(), self.table.max_size())
    }

    /// Appends one header block holding `fields`, each `(name, value,
    /// sensitive)`; names must be lowercase (RFC 9113 §8.2.1). A sensitive
    /// field is sent never-indexed, as are `authorization`,
    /// `proxy-authorization`, `cookie` and `set-cookie`.
    pub(crate) fn encode<'f>(
        &mut self,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8], bool)>,
        out: &mut Vec<u8>,
    ) {
        self.start_block(out);
        for (name, value, sensitive) in fields {
            self.field(name, value, sensitive, out);
        }
    }

    /// Starts a block: the size updates owed (§4.2). Fields follow with
    /// [`field`](Self::field).
    pub(crate) fn start_block(&mut self, out: &mut Vec<u8>) {
        if let Some((min, last)) = self.pending.take() {
            if min < last {
                integer::encode(min, 5, 0x20, out);
            }
            integer::encode(last, 5, 0x20, out);
        }
    }

    /// Appends one field to a block begun with
    /// [`start_block`](Self::start_block).
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8], sensitive: bool, out: &mut Vec<u8>) {
        debug_assert!(!name.iter().any(u8::is_ascii_uppercase), "{name:?}");
        let never = sensitive || never_indexed(name);
        let statics = static_named(name);
        let mut name_index = (!statics.is_empty()).then_some(statics.start);
        if !never {
            if let Some(i) = statics.into_iter().find(|&i| STATIC[i - 1].1 == value) {
                return integer::encode(i, 7, 0x80, out);
            }
            match self.table.find(name, value) {
                Some((i, true)) => return integer::encode(STATIC.len() + 1 + i, 7, 0x80, out),
                Some((i, false)) => {
                    name_index.get_or_insert(STATIC.len() + 1 + i);
                }
                None => {}
            }
        }
        let insert = !never
            && !not_indexed(name)
            && entry_size(name.len(), value.len()) <= self.table.max_size();
        let (prefix, flags) = match (never, insert) {
            (true, _) => (4, 0x10),
            (false, true) => (6, 0x40),
            (false, false) => (4, 0x00),
        };
        match name_index {
            Some(index) => integer::encode(index, prefix, flags, out),
            None => {
                out.push(flags);
                string(name, out);
            }
        }
        string(value, out);
        if insert {
            self.table.insert(name, value);
        }
    }
}

/// A string literal, Huffman-coded when that is shorter.
fn string(s: &[u8], out: &mut Vec<u8>) {
    let len = huffman::encoded_len(s);
    if len < s.len() {
        integer::encode(len, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        integer::encode(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}
