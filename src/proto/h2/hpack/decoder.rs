//! Header block decoding (RFC 7541 §3, §6).

use super::table::{entry_size, Parts, Table, STATIC};
use super::{huffman, integer, Error};

/// The decoding context of one connection (HPACK state is connection-wide,
/// so every block is decoded, even a refused stream's).
pub(crate) struct Decoder {
    table: Table,
    /// The size we allow (our SETTINGS_HEADER_TABLE_SIZE once acknowledged).
    limit: usize,
    /// We lowered `limit` below the table's size: the next block must start
    /// with a size update.
    update_due: bool,
}

/// Where a decoded string is: its bytes outlive the representation.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    Scratch(usize, usize),
    Static(&'static [u8]),
}

impl Str {
    fn get<'a>(self, block: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Str::Block(from, to) => &block[from..to],
            Str::Scratch(from, to) => &scratch[from..to],
            Str::Static(s) => s,
        }
    }
}

impl Decoder {
    /// A context whose dynamic table can hold `capacity` bytes (at most
    /// 65,535): the SETTINGS_HEADER_TABLE_SIZE we advertise, usually
    /// [`DEFAULT_TABLE_SIZE`](super::DEFAULT_TABLE_SIZE).
    pub(crate) fn new(capacity: usize) -> Decoder {
        Decoder::with_table(Table::new(capacity))
    }

    /// Like [`new`](Self::new), the table allocated at its first entry.
    pub(crate) fn lazy(capacity: usize) -> Decoder {
        Decoder::with_table(Table::lazy(capacity))
    }

    fn with_table(table: Table) -> Decoder {
        Decoder {
            limit: table.capacity(),
            table,
            update_due: false,
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE, once the peer acknowledged it (at
    /// most the capacity). Lowering it evicts now and makes a size update
    /// mandatory at the start of the next block.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.min(self.table.capacity());
        if self.limit < self.table.max_size() {
            self.table.set_max_size(self.limit);
            self.update_due = true;
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE acknowledged, and the table's memory
    /// cut down to it: for a peer that started with a larger table than we
    /// keep (4,096 until it acknowledges our SETTINGS).
    pub(crate) fn shrink_to(&mut self, limit: usize) {
        self.set_limit(limit);
        if self.table.capacity() > self.limit {
            self.table.reallocate(self.limit);
        }
    }

    /// Heap bytes held by the table.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// The dynamic table: its entry count, size and maximum size.
    pub(crate) fn table_state(&self) -> (usize, usize, usize) {
        (self.table.len(), self.table.size(), self.table.max_size())
    }

    /// Decodes one whole header block, handing each field to `sink` as
    /// `(name, value, never_indexed)`.
    ///
    /// `scratch` holds Huffman-decoded strings and copies of table entries
    /// that wrap the ring; its length is the largest field (name + value)
    /// accepted. `max_list` bounds the decoded list (name + value + 32 per
    /// field); past it `sink` is no longer called, the block is still
    /// decoded to its end, and the result is [`Error::ListTooLarge`].
    pub(crate) fn decode(
        &mut self,
        block: &[u8],
        scratch: &mut [u8],
        max_list: usize,
        mut sink: impl FnMut(&[u8], &[u8], bool),
    ) -> Result<(), Error> {
        let mut pos = 0;
        let mut at_start = true;
        let mut list = 0usize;
        while pos < block.len() {
            let first = block[pos];
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                if !at_start {
                    return Err(Error::SizeUpdatePlacement);
                }
                let size = integer::decode(block, &mut pos, 5)?;
                if size > self.limit {
                    return Err(Error::SizeUpdateTooLarge);
                }
                self.table.set_max_size(size);
                self.update_due = false;
                continue;
            }
            if self.update_due {
                return Err(Error::SizeUpdateMissing);
            }
            at_start = false;
            let mut used = 0;
            if first & 0x80 != 0 {
                // Indexed field (§6.1): straight from the table unless the
                // entry wraps the ring.
                let index = integer::decode(block, &mut pos, 7)?;
                let (n, v) = self.entry(index)?;
                if list > max_list {
                    // Over the budget: only counted (an HPACK bomb of
                    // references to a large entry costs no copying).
                    let size = entry_size(n.0.len() + n.1.len(), v.0.len() + v.1.len());
                    list = list.saturating_add(size);
                    continue;
                }
                if n.0.len() + n.1.len() + v.0.len() + v.1.len() > scratch.len() {
                    return Err(Error::FieldTooLarge);
                }
                if n.1.is_empty() && v.1.is_empty() {
                    emit(&mut list, max_list, n.0, v.0, false, &mut sink);
                } else {
                    let name = copy(n, scratch, &mut used)?;
                    let value = copy(v, scratch, &mut used)?;
                    let (n, v) = (name.get(block, scratch), value.get(block, scratch));
                    emit(&mut list, max_list, n, v, false, &mut sink);
                }
                continue;
            }
            // Literals (§6.2): with incremental indexing, without
            // indexing, never indexed. A name from the dynamic table is
            // copied first: inserting may evict it.
            let (prefix, insert) = if first & 0x40 != 0 {
                (6, true)
            } else {
                (4, false)
            };
            let sensitive = first & 0xf0 == 0x10;
            let index = integer::decode(block, &mut pos, prefix)?;
            let name = match index {
                0 => string(block, &mut pos, scratch, &mut used)?,
                _ if index <= STATIC.len() => Str::Static(STATIC[index - 1].0),
                _ => copy(self.entry(index)?.0, scratch, &mut used)?,
            };
            let value = string(block, &mut pos, scratch, &mut used)?;
            let (n, v) = (name.get(block, scratch), value.get(block, scratch));
            if n.len() + v.len() > scratch.len() {
                return Err(Error::FieldTooLarge);
            }
            if insert {
                self.table.insert(n, v);
            }
            emit(&mut list, max_list, n, v, sensitive, &mut sink);
        }
        if self.update_due {
            return Err(Error::SizeUpdateMissing);
        }
        if list > max_list {
            return Err(Error::ListTooLarge);
        }
        Ok(())
    }

    /// The field at `index` (1-based, static then dynamic).
    fn entry(&self, index: usize) -> Result<(Parts<'_>, Parts<'_>), Error> {
        if let Some(&(n, v)) = index.checked_sub(1).and_then(|i| STATIC.get(i)) {
            return Ok(((n, &[]), (v, &[])));
        }
        index
            .checked_sub(STATIC.len() + 1)
            .and_then(|i| self.table.get(i))
            .ok_or(Error::Index)
    }
}

/// Counts a field against the list budget; hands it on while within it.
fn emit(
    list: &mut usize,
    max_list: usize,
    name: &[u8],
    value: &[u8],
    sensitive: bool,
    sink: &mut impl FnMut(&[u8], &[u8], bool),
) {
    *list = list.saturating_add(entry_size(name.len(), value.len()));
    if *list <= max_list {
        sink(name, value, sensitive);
    }
}

/// Copies ring bytes into `scratch` at `used`.
fn copy(parts: Parts<'_>, scratch: &mut [u8], used: &mut usize) -> Result<Str, Error> {
    let from = *used;
    for part in [parts.0, parts.1] {
        let to = *used + part.len();
        scratch
            .get_mut(*used..to)
            .ok_or(Error::FieldTooLarge)?
            .copy_from_slice(part);
        *used = to;
    }
    Ok(Str::Scratch(from, *used))
}

/// A string literal (§5.2) at `pos`: left in the block when raw, decoded
/// into `scratch` when Huffman-coded.
fn string(
    block: &[u8],
    pos: &mut usize,
    scratch: &mut [u8],
    used: &mut usize,
) -> Result<Str, Error> {
    let huffman = block.get(*pos).ok_or(Error::Truncated)? & 0x80 != 0;
    let len = integer::decode(block, pos, 7)?;
    let from = *pos;
    let to = from
        .checked_add(len)
        .filter(|&to| to <= block.len())
        .ok_or(Error::Truncated)?;
    *pos = to;
    if !huffman {
        return if len > scratch.len() {
            Err(Error::FieldTooLarge)
        } else {
            Ok(Str::Block(from, to))
        };
    }
    let n = huffman::decode(&block[from..to], &mut scratch[*used..])?;
    let start = *used;
    *used += n;
    Ok(Str::Scratch(start, *used))
}
