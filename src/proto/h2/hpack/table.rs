//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2,
//! §4): a fixed-capacity ring of bytes plus a ring of entries, allocated
//! once, so inserting and evicting never allocate.

/// Index 1 to 61, in order.
pub(crate) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The static entries named `name`: their indexes (1-based), or an empty
/// range. One `match`, not a scan of the 61 entries.
pub(crate) fn static_named(name: &[u8]) -> std::ops::Range<usize> {
    match name {
        b":authority" => 1..2,
        b":method" => 2..4,
        b":path" => 4..6,
        b":scheme" => 6..8,
        b":status" => 8..15,
        b"accept-charset" => 15..16,
        b"accept-encoding" => 16..17,
        b"accept-language" => 17..18,
        b"accept-ranges" => 18..19,
        b"accept" => 19..20,
        b"access-control-allow-origin" => 20..21,
        b"age" => 21..22,
        b"allow" => 22..23,
        b"authorization" => 23..24,
        b"cache-control" => 24..25,
        b"content-disposition" => 25..26,
        b"content-encoding" => 26..27,
        b"content-language" => 27..28,
        b"content-length" => 28..29,
        b"content-location" => 29..30,
        b"content-range" => 30..31,
        b"content-type" => 31..32,
        b"cookie" => 32..33,
        b"date" => 33..34,
        b"etag" => 34..35,
        b"expect" => 35..36,
        b"expires" => 36..37,
        b"from" => 37..38,
        b"host" => 38..39,
        b"if-match" => 39..40,
        b"if-modified-since" => 40..41,
        b"if-none-match" => 41..42,
        b"if-range" => 42..43,
        b"if-unmodified-since" => 43..44,
        b"last-modified" => 44..45,
        b"link" => 45..46,
        b"location" => 46..47,
        b"max-forwards" => 47..48,
        b"proxy-authenticate" => 48..49,
        b"proxy-authorization" => 49..50,
        b"range" => 50..51,
        b"referer" => 51..52,
        b"refresh" => 52..53,
        b"retry-after" => 53..54,
        b"server" => 54..55,
        b"set-cookie" => 55..56,
        b"strict-transport-security" => 56..57,
        b"transfer-encoding" => 57..58,
        b"user-agent" => 58..59,
        b"vary" => 59..60,
        b"via" => 60..61,
        b"www-authenticate" => 61..62,
        _ => 0..0,
    }
}

/// The size an entry counts for (§4.1).
pub(crate) const fn entry_size(name: usize, value: usize) -> usize {
    name + value + 32
}

/// Bytes stored in the ring: at most two pieces, when they wrap.
pub(crate) type Parts<'a> = (&'a [u8], &'a [u8]);

/// Do `parts` hold exactly `bytes`?
pub(crate) fn parts_eq(parts: Parts<'_>, bytes: &[u8]) -> bool {
    parts.0.len() + parts.1.len() == bytes.len()
        && bytes.starts_with(parts.0)
        && &bytes[parts.0.len()..] == parts.1
}

/// Where one entry's name and value (stored back to back) sit in the ring.
#[derive(Clone, Copy, Default)]
struct Entry {
    at: u16,
    name: u16,
    value: u16,
}

/// The dynamic table, newest entry first (index 0 here is HPACK's 62).
pub(crate) struct Table {
    /// The ring: empty until the first insert (an unused table costs no
    /// heap), then `capacity` bytes.
    bytes: Box<[u8]>,
    entries: Box<[Entry]>,
    capacity: usize,
    /// Ring position of the oldest entry.
    oldest: usize,
    len: usize,
    /// Ring offset where the next entry's bytes go.
    tail: usize,
    /// The HPACK size: the entries' bytes plus 32 each.
    size: usize,
    max_size: usize,
}

impl Table {
    /// A table that can grow to `capacity` (at most 65,535) and starts
    /// with that maximum size, its memory allocated now.
    pub(crate) fn new(capacity: usize) -> Table {
        let mut t = Table::lazy(capacity);
        t.allocate();
        t
    }

    /// Like [`new`](Self::new), its memory taken at the first insert (an
    /// unused table costs no heap).
    pub(crate) fn lazy(capacity: usize) -> Table {
        let capacity = capacity.min(usize::from(u16::MAX));
        Table {
            bytes: Box::default(),
            entries: Box::default(),
            capacity,
            oldest: 0,
            len: 0,
            tail: 0,
            size: 0,
            max_size: capacity,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.len() + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Rebuilds the table with room for `capacity` bytes (at most the
    /// current maximum size kept), the entries kept that fit: the one
    /// allocation after a peer acknowledged a smaller table than it
    /// started with.
    pub(crate) fn reallocate(&mut self, capacity: usize) {
        let mut next = Table::lazy(capacity);
        next.max_size = next.capacity.min(self.max_size);
        for i in (0..self.len).rev() {
            if let Some((n, v)) = self.get(i) {
                let name = [n.0, n.1].concat();
                let value = [v.0, v.1].concat();
                next.insert(&name, &value);
            }
        }
        *self = next;
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Sets the maximum size (at most the capacity), evicting to fit
    /// (§4.3).
    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        debug_assert!(max_size <= self.capacity());
        self.max_size = max_size.min(self.capacity());
        while self.size > self.max_size {
            self.evict();
        }
    }

    /// The entry `index` places from the newest: (name, value).
    pub(crate) fn get(&self, index: usize) -> Option<(Parts<'_>, Parts<'_>)> {
        if index >= self.len {
            return None;
        }
        let slot = (self.oldest + self.len - 1 - index) % self.entries.len();
        let e = self.entries[slot];
        let at = usize::from(e.at);
        let name = usize::from(e.name);
        Some((
            self.parts(at, name),
            self.parts((at + name) % self.capacity().max(1), usize::from(e.value)),
        ))
    }

    /// The newest entry holding `name` and `value` (`true`), else the
    /// newest named `name` (`false`): its index. Lengths are compared
    /// before bytes.
    pub(crate) fn find(&self, name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
        if self.len == 0 {
            return None;
        }
        let mut named = None;
        let mut slot = (self.oldest + self.len) % self.entries.len();
        for index in 0..self.len {
            slot = slot.checked_sub(1).unwrap_or(self.entries.len() - 1);
            let e = self.entries[slot];
            let at = usize::from(e.at);
            if usize::from(e.name) != name.len() || !parts_eq(self.parts(at, name.len()), name) {
                continue;
            }
            let value_at = (at + name.len()) % self.capacity();
            if usize::from(e.value) == value.len()
                && parts_eq(self.parts(value_at, value.len()), value)
            {
                return Some((index, true));
            }
            named.get_or_insert((index, false));
        }
        named
    }

    fn parts(&self, at: usize, len: usize) -> Parts<'_> {
        match self.bytes.get(at..at + len) {
            Some(whole) => (whole, &[]),
            None => (&self.bytes[at..], &self.bytes[..at + len - self.capacity()]),
        }
    }

    /// Adds an entry, evicting the oldest ones to make room; an entry
    /// larger than the maximum size empties the table (§4.4).
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name.len(), value.len());
        if size > self.max_size {
            while self.len > 0 {
                self.evict();
            }
            return;
        }
        while self.size + size > self.max_size {
            self.evict();
        }
        if self.bytes.is_empty() {
            self.allocate();
        }
        let at = self.tail;
        self.write(name);
        self.write(value);
        let slot = (self.oldest + self.len) % self.entries.len();
        // Sizes fit in u16: the capacity does.
        self.entries[slot] = Entry {
            at: at as u16,
            name: name.len() as u16,
            value: value.len() as u16,
        };
        self.len += 1;
        self.size += size;
    }

    fn allocate(&mut self) {
        if self.capacity > 0 {
            self.bytes = vec![0; self.capacity].into_boxed_slice();
            self.entries = vec![Entry::default(); (self.capacity / 32).max(1)].into_boxed_slice();
        }
    }

    fn write(&mut self, mut src: &[u8]) {
        while !src.is_empty() {
            let room = &mut self.bytes[self.tail..];
            let n = room.len().min(src.len());
            room[..n].copy_from_slice(&src[..n]);
            src = &src[n..];
            self.tail = (self.tail + n) % self.capacity();
        }
    }

    fn evict(&mut self) {
        let e = self.entries[self.oldest];
        self.size -= entry_size(usize::from(e.name), usize::from(e.value));
        self.oldest = (self.oldest + 1) % self.entries.len();
        self.len -= 1;
        if self.len == 0 {
            self.oldest = 0;
            self.tail = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(table: &Table, i: usize) -> (Vec<u8>, Vec<u8>) {
        let ((n0, n1), (v0, v1)) = table.get(i).unwrap();
        ([n0, n1].concat(), [v0, v1].concat())
    }

    #[test]
    fn static_named_finds_every_static_entry() {
        for (i, &(name, _)) in STATIC.iter().enumerate() {
            let range = static_named(name);
            assert!(range.contains(&(i + 1)), "{i}");
            assert!(range.clone().all(|j| STATIC[j - 1].0 == name));
        }
        assert_eq!(static_named(b":status"), 8..15);
        assert_eq!(static_named(b"x-unknown"), 0..0);
    }

    #[test]
    fn newest_first_and_eviction_of_the_oldest() {
        let mut t = Table::new(100);
        t.insert(b"aaaa", b"1111"); // 40
        t.insert(b"bbbb", b"2222"); // 40
        assert_eq!((t.len(), t.size()), (2, 80));
        assert_eq!(field(&t, 0), (b"bbbb".to_vec(), b"2222".to_vec()));
        assert_eq!(field(&t, 1), (b"aaaa".to_vec(), b"1111".to_vec()));
        assert!(t.get(2).is_none());
        t.insert(b"cc", b"3"); // 35: evicts aaaa
        assert_eq!((t.len(), t.size()), (2, 75));
        assert_eq!(field(&t, 1), (b"bbbb".to_vec(), b"2222".to_vec()));
        // Larger than the table: empties it.
        t.insert(&[b'x'; 80], b"");
        assert_eq!((t.len(), t.size()), (0, 0));
    }

    #[test]
    fn find_prefers_a_whole_match_then_the_newest_name() {
        let mut t = Table::new(4096);
        t.insert(b"a", b"1");
        t.insert(b"b", b"2");
        t.insert(b"a", b"3");
        assert_eq!(t.find(b"a", b"1"), Some((2, true)));
        assert_eq!(t.find(b"a", b"9"), Some((0, false)));
        assert_eq!(t.find(b"b", b"2"), Some((1, true)));
        assert_eq!(t.find(b"c", b""), None);
    }

    #[test]
    fn entries_that_wrap_read_back_whole() {
        let mut t = Table::new(64);
        for i in 0..50u8 {
            let name = vec![b'a' + i % 26; 1 + usize::from(i % 13)];
            let value = vec![b'0' + i % 10; usize::from(i % 7)];
            t.insert(&name, &value);
            assert_eq!(t.find(&name, &value), Some((0, true)), "{i}");
            assert_eq!(field(&t, 0), (name, value), "{i}");
            assert!(t.size() <= 64);
        }
    }

    #[test]
    fn shrinking_evicts_and_zero_empties() {
        let mut t = Table::new(4096);
        for i in 0..10 {
            t.insert(format!("name{i}").as_bytes(), b"value");
        }
        assert_eq!(t.size(), 10 * 42);
        t.set_max_size(100);
        assert_eq!((t.len(), t.size()), (2, 84));
        assert_eq!(field(&t, 0).0, b"name9");
        t.set_max_size(0);
        assert_eq!(t.len(), 0);
        t.insert(b"a", b"b");
        assert_eq!(t.len(), 0);
        t.set_max_size(4096);
        t.insert(b"a", b"b");
        assert_eq!(t.len(), 1);
    }
}
