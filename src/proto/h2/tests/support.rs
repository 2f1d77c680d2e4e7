//! A test peer: builds frames (valid or not) and reads what the engine
//! wrote.

use crate::proto::h2::frame::{flag, kind, Header, HEADER_LEN, PREFACE};
use crate::proto::h2::hpack;
use crate::proto::h2::{ConnError, Connection, ErrorCode, Event, Role, Scratch, Settings};

/// An event with its borrowed parts copied out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Head {
        id: u32,
        kind: crate::proto::h2::HeadKind,
        pseudo: Vec<(String, String)>,
        fields: Vec<(String, String)>,
        end_stream: bool,
    },
    Data {
        id: u32,
        data: Vec<u8>,
        end_stream: bool,
    },
    Reset {
        id: u32,
        code: ErrorCode,
        remote: bool,
    },
    Window(Option<u32>),
    GoAway {
        last_id: u32,
        code: ErrorCode,
    },
    Settings,
    SettingsAcked,
    PingAck([u8; 8]),
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Ev {
    pub fn of(e: &Event<'_>) -> Ev {
        match *e {
            Event::Head {
                id,
                head,
                end_stream,
            } => {
                let mut pseudo = Vec::new();
                for (n, v) in [
                    (":method", head.method()),
                    (":scheme", head.scheme()),
                    (":authority", head.authority()),
                    (":path", head.path()),
                    (":protocol", head.protocol()),
                ] {
                    if let Some(v) = v {
                        pseudo.push((n.to_string(), s(v)));
                    }
                }
                if let Some(st) = head.status() {
                    pseudo.push((":status".into(), st.to_string()));
                }
                Ev::Head {
                    id,
                    kind: head.kind(),
                    pseudo,
                    fields: head.fields().map(|(n, v)| (n.to_string(), s(v))).collect(),
                    end_stream,
                }
            }
            Event::Data {
                id,
                data,
                end_stream,
            } => Ev::Data {
                id,
                data: data.to_vec(),
                end_stream,
            },
            Event::Reset { id, code, remote } => Ev::Reset { id, code, remote },
            Event::WindowOpened { id } => Ev::Window(id),
            Event::GoAway { last_id, code, .. } => Ev::GoAway { last_id, code },
            Event::Settings => Ev::Settings,
            Event::SettingsAcked => Ev::SettingsAcked,
            Event::PingAck { payload } => Ev::PingAck(payload),
        }
    }
}

/// A frame.
pub fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::proto::h2::frame::write_header(&mut out, payload.len(), kind, flags, id);
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with `entries`.
pub fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for &(id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(kind::SETTINGS, 0, 0, &p)
}

pub fn settings_ack() -> Vec<u8> {
    frame(kind::SETTINGS, flag::ACK, 0, &[])
}

pub fn window_update(id: u32, inc: u32) -> Vec<u8> {
    frame(kind::WINDOW_UPDATE, 0, id, &inc.to_be_bytes())
}

pub fn rst(id: u32, code: ErrorCode) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, id, &code.0.to_be_bytes())
}

pub fn ping(payload: [u8; 8]) -> Vec<u8> {
    frame(kind::PING, 0, 0, &payload)
}

pub fn data(id: u32, bytes: &[u8], end: bool) -> Vec<u8> {
    frame(
        kind::DATA,
        if end { flag::END_STREAM } else { 0 },
        id,
        bytes,
    )
}

/// What a frame in the output says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Out {
    pub kind: u8,
    pub flags: u8,
    pub id: u32,
    pub payload: Vec<u8>,
}

impl Out {
    pub fn code(&self) -> ErrorCode {
        let at = if self.kind == kind::GOAWAY { 4 } else { 0 };
        ErrorCode(u32::from_be_bytes(
            self.payload[at..at + 4].try_into().unwrap(),
        ))
    }

    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }
}

/// The frames in `out` (which must hold whole frames), emptied.
pub fn frames(out: &mut Vec<u8>) -> Vec<Out> {
    let mut v = Vec::new();
    let mut pos = 0;
    while pos < out.len() {
        let h = Header::parse(&out[pos..]).expect("whole frame header");
        v.push(Out {
            kind: h.kind,
            flags: h.flags,
            id: h.id,
            payload: out[pos + HEADER_LEN..pos + HEADER_LEN + h.len].to_vec(),
        });
        pos += HEADER_LEN + h.len;
    }
    assert_eq!(pos, out.len());
    out.clear();
    v
}

/// The peer: an HPACK encoder for the heads it sends, and a decoder for
/// the heads the engine sends.
pub struct Peer {
    pub enc: hpack::Encoder,
    pub dec: hpack::Decoder,
}

impl Peer {
    pub fn new() -> Peer {
        Peer {
            enc: hpack::Encoder::new(4096),
            dec: hpack::Decoder::new(4096),
        }
    }

    /// A header block. (A name with uppercase letters goes as a raw
    /// literal without indexing: our encoder refuses to make one.)
    pub fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        self.enc.start_block(&mut b);
        for (n, v) in fields {
            if n.bytes().any(|c| c.is_ascii_uppercase()) {
                assert!(n.len() < 127 && v.len() < 127);
                b.push(0);
                b.push(n.len() as u8);
                b.extend_from_slice(n.as_bytes());
                b.push(v.len() as u8);
                b.extend_from_slice(v.as_bytes());
            } else {
                self.enc.field(n.as_bytes(), v.as_bytes(), false, &mut b);
            }
        }
        b
    }

    /// HEADERS (END_HEADERS) with `fields`.
    pub fn headers(&mut self, id: u32, fields: &[(&str, &str)], end: bool) -> Vec<u8> {
        let b = self.block(fields);
        let flags = flag::END_HEADERS | if end { flag::END_STREAM } else { 0 };
        frame(kind::HEADERS, flags, id, &b)
    }

    /// A GET request's HEADERS.
    pub fn get(&mut self, id: u32, path: &str) -> Vec<u8> {
        self.headers(
            id,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":authority", "example.test"),
                (":path", path),
            ],
            true,
        )
    }

    /// A POST request's HEADERS (no END_STREAM).
    pub fn post(&mut self, id: u32, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut f = vec![
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", "example.test"),
            (":path", "/up"),
        ];
        f.extend_from_slice(extra);
        self.headers(id, &f, false)
    }

    /// Decodes a block the engine sent (the payload of a HEADERS with
    /// END_HEADERS and no padding or priority).
    pub fn decode(&mut self, block: &[u8]) -> Vec<(String, String)> {
        let mut scratch = vec![0; 64 * 1024];
        let mut f = Vec::new();
        self.dec
            .decode(block, &mut scratch, usize::MAX, |n, v, _| {
                f.push((s(n), s(v)))
            })
            .expect("engine's block decodes");
        f
    }
}

/// An engine under test with its scratch and output.
pub struct Engine {
    pub conn: Connection,
    pub scratch: Scratch,
    pub out: Vec<u8>,
    /// Input not yet consumed.
    pub pending: Vec<u8>,
}

impl Engine {
    /// A server with `settings`, past the preface and the peer's empty
    /// SETTINGS; the output so far dropped.
    pub fn server_with(settings: Settings) -> Engine {
        let scratch = Scratch::new(&settings);
        let mut out = Vec::new();
        let conn = Connection::new(Role::Server, settings, &mut out);
        let mut e = Engine {
            conn,
            scratch,
            out,
            pending: Vec::new(),
        };
        let mut start = PREFACE.to_vec();
        start.extend(settings_frame_empty());
        let evs = e.feed(&start).unwrap();
        assert_eq!(evs, [Ev::Settings]);
        e.conn.flushed();
        e.out.clear();
        e
    }

    pub fn server() -> Engine {
        Engine::server_with(Settings::default())
    }

    /// Feeds `bytes` (after what is pending); the events until the input
    /// is used up or incomplete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Ev>, ConnError> {
        self.pending.extend_from_slice(bytes);
        let mut evs = Vec::new();
        for _ in 0..10_000 {
            let r = self
                .conn
                .recv(&self.pending, &mut self.scratch, &mut self.out)?;
            let consumed = r.consumed;
            let ev = r.event.as_ref().map(Ev::of);
            self.pending.drain(..consumed);
            match ev {
                Some(ev) => evs.push(ev),
                None => return Ok(evs),
            }
        }
        panic!("recv loops");
    }

    /// Feeds, expecting a connection error: its code, and that the
    /// output ends with a GOAWAY carrying it.
    pub fn conn_error(&mut self, bytes: &[u8]) -> ErrorCode {
        let e = self.feed(bytes).expect_err("a connection error");
        let f = frames(&mut self.out);
        let last = f.last().expect("GOAWAY written");
        assert_eq!(last.kind, kind::GOAWAY);
        assert_eq!(last.code(), e.code);
        e.code
    }

    /// The frames written so far, emptied.
    pub fn frames(&mut self) -> Vec<Out> {
        frames(&mut self.out)
    }

    /// Feeds, expecting no event, and one RST_STREAM on `id` written: its
    /// code.
    pub fn rst_of(&mut self, bytes: &[u8], id: u32) -> ErrorCode {
        let evs = self.feed(bytes).expect("no connection error");
        let f = self.frames();
        let r: Vec<_> = f.iter().filter(|f| f.kind == kind::RST_STREAM).collect();
        assert_eq!(r.len(), 1, "{f:?} {evs:?}");
        assert_eq!(r[0].id, id);
        r[0].code()
    }
}

pub fn settings_frame_empty() -> Vec<u8> {
    settings(&[])
}
