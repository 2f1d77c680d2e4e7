//! Connection buffers and the per-loop pool they return to when empty, so
//! an idle connection holds no buffer memory.

/// A fixed-capacity read buffer: bytes live in `buf[start..end]`.
///
/// The storage is zeroed once when allocated and reused afterwards, so
/// reading into it needs no `unsafe` and no re-initialisation.
#[derive(Default)]
pub(crate) struct ReadBuf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// Buffered, not yet consumed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Buffered bytes, to be rewritten in place (obs-fold in a response
    /// head).
    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Has storage been attached?
    pub(crate) fn is_allocated(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Marks `n` bytes as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into, after moving unconsumed bytes to the front if
    /// that makes room. Empty when the buffer is full.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as filled.
    pub(crate) fn filled(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// Drops all buffered bytes.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Capacity of its storage.
    #[cfg(feature = "__tls")]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Storage of `size` bytes (at least what is buffered), keeping the
    /// buffered bytes.
    pub(crate) fn resize(&mut self, size: usize) {
        let mut buf = vec![0; size.max(self.len())].into_boxed_slice();
        buf[..self.len()].copy_from_slice(self.data());
        self.end = self.len();
        self.start = 0;
        self.buf = buf;
    }

    /// Appends bytes (HTTP/2 DATA into a stream's buffer, tests,
    /// fuzzing); returns how many fit.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> usize {
        if self.buf.len() - self.end < bytes.len() && self.start > 0 {
            // Room at the front: move what is buffered there first.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let spare = self.spare();
        let n = spare.len().min(bytes.len());
        spare[..n].copy_from_slice(&bytes[..n]);
        self.filled(n);
        n
    }

    /// Appends all of `bytes`, growing the storage when it is too small.
    /// For HTTP/2 DATA: until the peer acknowledges our SETTINGS, it may
    /// fill a stream's window of the protocol's default 65,535 bytes,
    /// more than a read buffer; after, our window never promises more
    /// than one.
    pub(crate) fn push_all(&mut self, bytes: &[u8]) {
        let n = self.push(bytes);
        if n < bytes.len() {
            self.resize(self.len() + bytes.len() - n);
            self.push(&bytes[n..]);
        }
    }
}

/// Written bytes at the front of a [`WriteBuf`] worth moving the rest for.
const COMPACT_AT: usize = 16 * 1024;

/// A write buffer: bytes in `buf[pos..]` are still to be written.
#[derive(Default)]
pub(crate) struct WriteBuf {
    pub(crate) buf: Vec<u8>,
    pos: usize,
}

impl WriteBuf {
    /// Bytes not yet written.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Drops all pending bytes.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    /// Marks `n` pending bytes as written. Written bytes are dropped from
    /// the front once they are a good part of the buffer, so a socket that
    /// takes a little at a time never makes the buffer grow by what passed
    /// through it.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos >= COMPACT_AT && self.pos >= self.buf.len() - self.pos {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
            self.pos = 0;
        }
    }
}

/// Bytes of buffers of each kind (read, write) that a pool keeps at most,
/// whatever their count: the most a burst of busy connections leaves
/// behind once they are idle or gone.
const KEPT_BYTES: usize = 4 << 20;

/// Empty buffers kept by one event loop for reuse.
pub(crate) struct BufPool {
    read_size: usize,
    reads: Vec<Box<[u8]>>,
    writes: Vec<Vec<u8>>,
    /// The capacity of the write buffers in `writes`, in all.
    write_bytes: usize,
    /// Write buffers that grew beyond this are freed rather than kept.
    max_write_capacity: usize,
    /// How many buffers of each kind to keep at most.
    max_kept: usize,
    /// TLS record buffers (ciphertext in and out), of [`RECORD_BUF`] bytes.
    #[cfg(feature = "__tls")]
    records: Vec<Box<[u8]>>,
}

/// The size of a TLS record buffer: one record of the largest kind (16 KiB
/// of plaintext, 2 KiB of TLS 1.2 expansion, a 5-byte header).
#[cfg(feature = "__tls")]
pub(crate) const RECORD_BUF: usize = 16 * 1024 + 2048 + 5;

impl BufPool {
    pub(crate) fn new(read_size: usize, max_write_capacity: usize, max_kept: usize) -> BufPool {
        BufPool {
            read_size,
            reads: Vec::new(),
            writes: Vec::new(),
            write_bytes: 0,
            max_write_capacity,
            max_kept,
            #[cfg(feature = "__tls")]
            records: Vec::new(),
        }
    }

    /// Gives a TLS record buffer storage if it has none.
    #[cfg(feature = "__tls")]
    pub(crate) fn attach_record(&mut self, rb: &mut ReadBuf) {
        if !rb.is_allocated() {
            rb.buf = self
                .records
                .pop()
                .unwrap_or_else(|| vec![0; RECORD_BUF].into_boxed_slice());
        }
    }

    /// Takes the storage of an empty TLS record buffer back (one that grew
    /// for a large handshake message is freed).
    #[cfg(feature = "__tls")]
    pub(crate) fn release_record(&mut self, rb: &mut ReadBuf) {
        if rb.is_allocated() && rb.is_empty() {
            let buf = std::mem::take(&mut rb.buf);
            let kept = (self.records.len() + 1) * RECORD_BUF;
            if buf.len() == RECORD_BUF && self.records.len() < self.max_kept && kept <= KEPT_BYTES {
                self.records.push(buf);
            }
        }
    }

    /// Gives `rb` storage if it has none.
    pub(crate) fn attach_read(&mut self, rb: &mut ReadBuf) {
        if !rb.is_allocated() {
            rb.buf = self
                .reads
                .pop()
                .unwrap_or_else(|| vec![0; self.read_size].into_boxed_slice());
        }
    }

    /// Gives `wb` storage if it has none.
    pub(crate) fn attach_write(&mut self, wb: &mut WriteBuf) {
        if wb.buf.capacity() == 0 {
            wb.buf = self.writes.pop().unwrap_or_default();
            self.write_bytes -= wb.buf.capacity();
        }
    }

    /// Takes the storage of empty buffers back.
    pub(crate) fn release(&mut self, rb: &mut ReadBuf, wb: &mut WriteBuf) {
        if rb.is_allocated() && rb.is_empty() {
            let buf = std::mem::take(&mut rb.buf);
            let kept = (self.reads.len() + 1) * self.read_size;
            // (One grown past the read size is not kept.)
            if self.reads.len() < self.max_kept && kept <= KEPT_BYTES && buf.len() == self.read_size
            {
                self.reads.push(buf);
            }
        }
        if wb.buf.capacity() > 0 && wb.is_empty() {
            let buf = std::mem::take(&mut wb.buf);
            let size = buf.capacity();
            if self.writes.len() < self.max_kept
                && size <= self.max_write_capacity
                && self.write_bytes + size <= KEPT_BYTES
            {
                self.write_bytes += size;
                self.writes.push(buf);
            }
        }
    }
}

/// Writes short byte strings into a slice whose size bounds them: the
/// hot-path way to build status lines and the server's fields, with no
/// allocation and no copy of a length known only at run time.
pub(crate) struct Fill<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Fill<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Fill<'a> {
        Fill { buf, len: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `bytes`.
    ///
    /// # Panics
    ///
    /// If they do not fit: callers size the slice for their worst case.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Appends `n` in decimal, digit by digit in place (a copy of a
    /// run-time length is a `memcpy` call, costly for two bytes).
    ///
    /// # Panics
    ///
    /// If the digits do not fit.
    pub(crate) fn push_u64(&mut self, mut n: u64) {
        let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
        let end = self.len + digits;
        for slot in self.buf[self.len..end].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
    }
}

/// Appends at most `N` bytes to `out` with `build`, written in place: `out`
/// grows by `N` zeroed bytes (a size known when compiling) and is cut
/// back to what `build` wrote.
pub(crate) fn append_with<const N: usize>(out: &mut Vec<u8>, build: impl FnOnce(&mut Fill<'_>)) {
    let start = out.len();
    out.resize(start + N, 0);
    let mut fill = Fill::new(&mut out[start..]);
    build(&mut fill);
    let len = fill.len();
    out.truncate(start + len);
}

/// A small stack buffer for short byte strings built on the hot path
/// (status lines, numbers), so building them allocates nothing.
pub(crate) struct ArrayBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> ArrayBuf<N> {
    pub(crate) const fn new() -> Self {
        ArrayBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// Appends `bytes` (see [`Fill::push`]).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.fill(|f| f.push(bytes));
    }

    /// Appends `n` in decimal (see [`Fill::push_u64`]).
    pub(crate) fn push_u64(&mut self, n: u64) {
        self.fill(|f| f.push_u64(n));
    }

    fn fill(&mut self, write: impl FnOnce(&mut Fill<'_>)) {
        let mut fill = Fill::new(&mut self.buf[self.len..]);
        write(&mut fill);
        self.len += fill.len();
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_appending_in_place() {
        for n in [0, 7, 9, 10, 13, 99, 100, 65_535, 1 << 40, u64::MAX] {
            let mut digits = ArrayBuf::<24>::new();
            digits.push(b"=");
            digits.push_u64(n);
            assert_eq!(digits.as_slice(), format!("={n}").as_bytes());
            let mut out = b"ab".to_vec();
            append_with::<24>(&mut out, |f| f.push(digits.as_slice()));
            assert_eq!(out, format!("ab={n}").as_bytes());
        }
    }

    #[test]
    fn read_buf_compacts_only_when_full() {
        let mut pool = BufPool::new(8, 64, 4);
        let mut rb = ReadBuf::default();
        pool.attach_read(&mut rb);
        assert_eq!(rb.push(b"abcdefgh"), 8);
        rb.consume(3);
        assert_eq!(rb.data(), b"defgh");
        assert_eq!(rb.spare().len(), 3);
        assert_eq!(rb.push(b"ijkl"), 3);
        assert_eq!(rb.data(), b"defghijk");
        rb.consume(8);
        assert!(rb.is_empty());
        assert_eq!(rb.spare().len(), 8);
    }

    #[test]
    fn pool_reuses_empty_buffers_and_keeps_full_ones_attached() {
        let mut pool = BufPool::new(8, 64, 4);
        let (mut rb, mut wb) = (ReadBuf::default(), WriteBuf::default());
        pool.attach_read(&mut rb);
        pool.attach_write(&mut wb);
        wb.buf.extend_from_slice(b"xy");
        rb.push(b"a");
        pool.release(&mut rb, &mut wb);
        assert!(rb.is_allocated(), "non-empty read buffer stays");
        assert_eq!(wb.pending(), b"xy");
        wb.advance(2);
        rb.consume(1);
        pool.release(&mut rb, &mut wb);
        assert!(!rb.is_allocated());
        assert_eq!(wb.buf.capacity(), 0);
        assert_eq!((pool.reads.len(), pool.writes.len()), (1, 1));
    }

    #[test]
    fn short_writes_do_not_grow_the_write_buffer() {
        let mut wb = WriteBuf::default();
        let chunk = [7u8; 1000];
        for _ in 0..10_000 {
            // Produce 1000, the socket takes 999: the backlog grows by one
            // byte per round, the buffer must not grow by 1000.
            wb.buf.extend_from_slice(&chunk);
            wb.advance(999);
        }
        assert_eq!(wb.len(), 10_000);
        assert!(wb.buf.capacity() < 64 * 1024, "{}", wb.buf.capacity());
    }

    #[test]
    fn a_pool_keeps_at_most_its_byte_budget_of_each_kind() {
        let read_size = 1 << 20;
        let mut pool = BufPool::new(read_size, 1 << 20, 1000);
        let mut bufs: Vec<(ReadBuf, WriteBuf)> = (0..10)
            .map(|_| {
                let (mut rb, mut wb) = (ReadBuf::default(), WriteBuf::default());
                pool.attach_read(&mut rb);
                pool.attach_write(&mut wb);
                wb.buf.reserve_exact(1 << 20);
                (rb, wb)
            })
            .collect();
        for (rb, wb) in &mut bufs {
            pool.release(rb, wb);
        }
        assert_eq!(pool.reads.len(), KEPT_BYTES / read_size);
        assert!(pool.write_bytes <= KEPT_BYTES, "{}", pool.write_bytes);
        let kept: usize = pool.writes.iter().map(Vec::capacity).sum();
        assert_eq!(kept, pool.write_bytes);
        // Taking one back out frees its share of the budget.
        let mut wb = WriteBuf::default();
        pool.attach_write(&mut wb);
        assert_eq!(pool.write_bytes, kept - wb.buf.capacity());
    }

    #[test]
    fn oversized_write_buffers_are_not_kept() {
        let mut pool = BufPool::new(8, 64, 4);
        let mut wb = WriteBuf::default();
        pool.attach_write(&mut wb);
        wb.buf.extend_from_slice(&[0; 100]);
        wb.advance(100);
        pool.release(&mut ReadBuf::default(), &mut wb);
        assert!(pool.writes.is_empty());
    }
}
