//! A socket-free server over the engine, for the fuzz target and the
//! allocation and memory tests (reached through `nextloop::fuzzing`):
//! it answers every request with a small response, reads every body,
//! and is done with each stream as a handler would be.

use super::conn::{Connection, Event, Role};
use super::frame::{self, flag, kind, PREFACE};
use super::head::{HeadKind, Scratch};
use super::hpack;
use super::settings::Settings;

/// A server connection driven from byte slices, with the loop's scratch
/// and a write buffer that is "flushed" (cleared) after every feed.
pub struct H2Server {
    conn: Box<Connection>,
    scratch: Scratch,
    out: Vec<u8>,
    buf: Vec<u8>,
    written: usize,
    responses: usize,
}

impl std::fmt::Debug for H2Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Server")
            .field("responses", &self.responses)
            .field("streams", &self.conn.streams_held())
            .finish()
    }
}

/// The response fields every request gets.
const RESPONSE: [(&[u8], &[u8]); 2] = [(b"content-type", b"text/plain"), (b"server", b"nextloop")];

impl Default for H2Server {
    fn default() -> H2Server {
        H2Server::new()
    }
}

impl H2Server {
    /// A server with the default settings.
    pub fn new() -> H2Server {
        let settings = Settings::default();
        let scratch = Scratch::new(&settings);
        let mut out = Vec::with_capacity(64 * 1024);
        let conn = Box::new(Connection::new(Role::Server, settings, &mut out));
        let written = out.len();
        out.clear();
        H2Server {
            conn,
            scratch,
            out,
            buf: Vec::with_capacity(64 * 1024),
            written,
            responses: 0,
        }
    }

    /// Feeds `input` (appended to what is left of earlier feeds): events
    /// handled, the output counted and dropped. `Err` after a connection
    /// error (its code).
    pub fn feed(&mut self, input: &[u8]) -> Result<(), u32> {
        self.buf.extend_from_slice(input);
        let mut used = 0;
        let result = loop {
            let r = match self
                .conn
                .recv(&self.buf[used..], &mut self.scratch, &mut self.out)
            {
                Ok(r) => r,
                Err(e) => break Err(e.code.0),
            };
            used += r.consumed;
            let Some(event) = r.event else {
                if self.conn.must_flush() {
                    self.written += self.out.len();
                    self.out.clear();
                    self.conn.flushed();
                    continue;
                }
                break Ok(());
            };
            match event {
                Event::Head {
                    id,
                    end_stream,
                    head,
                } => {
                    // A request without a body, or a body's trailers.
                    let kind = head.kind();
                    if end_stream && matches!(kind, HeadKind::Request | HeadKind::Trailers) {
                        self.respond(id);
                    }
                }
                Event::Data {
                    id,
                    data,
                    end_stream,
                } => {
                    let n = data.len();
                    self.conn.release(id, n, &mut self.out);
                    if end_stream {
                        self.respond(id);
                    }
                }
                Event::Reset { id, .. } => self.conn.stream_done(id, &mut self.out),
                _ => {}
            }
        };
        self.buf.drain(..used);
        self.written += self.out.len();
        self.out.clear();
        self.conn.flushed();
        result
    }

    fn respond(&mut self, id: u32) {
        let out = &mut self.out;
        if self
            .conn
            .send_response(id, 200, RESPONSE, false, out)
            .is_ok()
        {
            let _ = self.conn.send_data(id, b"Hello, world!", true, out);
            self.responses += 1;
        }
        self.conn.stream_done(id, out);
    }

    /// Responses sent so far.
    pub fn responses(&self) -> usize {
        self.responses
    }

    /// Output bytes written so far.
    pub fn written(&self) -> usize {
        self.written
    }

    /// Streams held now.
    pub fn streams_held(&self) -> usize {
        self.conn.streams_held()
    }

    /// Gives the stream table back when no stream is held (an idle
    /// connection).
    pub fn release_idle(&mut self) {
        self.conn.release_idle();
    }

    /// The engine's own account of the heap one connection holds (its
    /// box, tables and stream slots), without the loop's scratch and
    /// buffers.
    pub fn connection_heap(&self) -> usize {
        std::mem::size_of::<Connection>() + self.conn.heap_bytes()
    }

    /// The heap the loop shares among its connections here: the scratch
    /// and the two buffers.
    pub fn loop_heap(&self) -> usize {
        self.scratch.heap_bytes() + self.out.capacity() + self.buf.capacity()
    }
}

/// A client's bytes: the preface, SETTINGS (and the ACK of the server's),
/// then `requests` GETs with a browser's fields, encoded in one HPACK
/// context that indexes (the steady state: later requests mostly refer
/// to the table), each on a new stream.
pub fn h2_client_requests(requests: usize) -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    frame::write_header(&mut out, 0, kind::SETTINGS, 0, 0);
    frame::write_settings_ack(&mut out);
    let mut enc = hpack::Encoder::new(4096);
    // The server's SETTINGS say 1,024.
    enc.set_peer_limit(1024);
    for i in 0..requests {
        let id = 1 + 2 * i as u32;
        let at = out.len();
        out.extend_from_slice(&[0; frame::HEADER_LEN]);
        let path = format!("/static/app.js?v={}", i % 7);
        let fields: [(&[u8], &[u8], bool); 7] = [
            (b":method", b"GET", false),
            (b":scheme", b"https", false),
            (b":authority", b"example.test", false),
            (b":path", path.as_bytes(), false),
            (
                b"user-agent",
                b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
                false,
            ),
            (b"accept", b"*/*", false),
            (b"cookie", b"session=0123456789abcdef; theme=dark", false),
        ];
        enc.encode(fields, &mut out);
        let len = out.len() - at - frame::HEADER_LEN;
        frame::patch_header(
            &mut out,
            at,
            len,
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            id,
        );
    }
    out
}

/// The HTTP/2 fuzz check: `data` after a first byte is fed to one server
/// whole, and to another cut into pieces whose lengths the first byte
/// seeds; both must agree (responses, output bytes, the error code if
/// any) and never panic. Returns the responses.
pub fn h2_split_invariant(data: &[u8]) -> usize {
    let Some((&seed, rest)) = data.split_first() else {
        return 0;
    };
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(rest);
    let mut whole = H2Server::new();
    let a = whole.feed(&input);
    let mut cut = H2Server::new();
    let mut b = Ok(());
    let mut pos = 0;
    let mut step = usize::from(seed % 17) + 1;
    while pos < input.len() && b.is_ok() {
        let end = (pos + step).min(input.len());
        b = cut.feed(&input[pos..end]);
        pos = end;
        step = step * 7 % 31 + 1;
    }
    assert_eq!(a, b, "error codes");
    assert_eq!(whole.responses(), cut.responses(), "responses");
    if a.is_ok() {
        assert_eq!(whole.written(), cut.written(), "bytes written");
    }
    whole.responses()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_answers_every_request() {
        let mut s = H2Server::new();
        s.feed(&h2_client_requests(50)).unwrap();
        assert_eq!(s.responses(), 50);
        assert_eq!(s.streams_held(), 0);
    }

    #[test]
    fn an_idle_connection_holds_under_2_kib() {
        let mut s = H2Server::new();
        s.feed(&h2_client_requests(20)).unwrap();
        s.release_idle();
        let heap = s.connection_heap();
        eprintln!(
            "idle connection: {heap} B ({} B struct), loop-shared {} B",
            std::mem::size_of::<Connection>(),
            s.loop_heap()
        );
        assert!(heap <= 2048, "{heap}");
    }

    #[test]
    fn random_and_mutated_inputs_split_alike() {
        let base = h2_client_requests(5);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            let mut data = vec![round as u8];
            data.extend_from_slice(&base[PREFACE.len()..]);
            for _ in 0..(round % 5) {
                let i = next() as usize % data.len();
                data[i] = next() as u8;
            }
            if round % 7 == 0 {
                let cut = next() as usize % data.len();
                data.truncate(cut.max(1));
            }
            h2_split_invariant(&data);
        }
    }
}
