//! SETTINGS (RFC 9113 §6.5): ours, with safe defaults, and the peer's,
//! validated as they arrive.

use super::error::{conn, ErrorCode, H2Error};
use super::frame::{self, kind, MAX_MAX_FRAME_SIZE, MAX_WINDOW, MIN_MAX_FRAME_SIZE};

/// Setting identifiers (RFC 9113 §6.5.2, RFC 8441, RFC 9218).
pub(crate) mod id {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
    pub const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;
    pub const NO_RFC7540_PRIORITIES: u16 = 0x9;
}

/// The window both ends start with, for the connection and each stream.
pub const DEFAULT_WINDOW: u32 = 65_535;

/// What we ask of the peer and bound ourselves with. The defaults follow
/// the bounds `h2`/hyper and nginx use (research notes §B).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may have open
    /// at once (a stream counts until its owner calls
    /// [`stream_done`](super::Connection::stream_done)). Default 100.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: how much of a stream's body the peer
    /// may send before we grant more. Default 65,535.
    pub initial_window_size: u32,
    /// The connection's receive window, opened by a WINDOW_UPDATE right
    /// after our SETTINGS: bounds the body bytes of all streams together
    /// that can be waiting for their readers. Default 1 MiB.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept.
    /// Default 16,384 (the read buffer must hold one frame whole).
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a header list's decoded size (name +
    /// value + 32 per field) we accept; a larger one is answered 431.
    /// It also bounds one compressed header block (HEADERS and its
    /// CONTINUATIONs, with their frame headers) and one field.
    /// Default 16 KiB.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK table the peer may fill in our
    /// decoder, once it acknowledged our SETTINGS (until then 4,096).
    /// Small by default to keep an idle connection small: 1,024.
    pub header_table_size: u32,
    /// The HPACK table our encoder uses (at most what the peer allows). 0
    /// (the default) encodes with the static table and literals only, and
    /// holds no table at all.
    pub encoder_table_size: u32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): accept `:protocol`
    /// on CONNECT. Default off.
    pub enable_connect_protocol: bool,
    /// Resets from the peer of streams whose response had not finished,
    /// beyond those each completed stream pays back, before GOAWAY
    /// (ENHANCE_YOUR_CALM): Rapid Reset (CVE-2023-44487). Default 200.
    pub max_peer_resets: u32,
    /// Streams we reset because the peer broke a stream rule (or refused
    /// as over the limit), beyond those completed streams pay back, before
    /// GOAWAY (ENHANCE_YOUR_CALM): MadeYouReset (CVE-2025-8671).
    /// Default 200.
    pub max_local_resets: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_concurrent_streams: 100,
            initial_window_size: DEFAULT_WINDOW,
            connection_window_size: 1 << 20,
            max_frame_size: MIN_MAX_FRAME_SIZE,
            max_header_list_size: 16 * 1024,
            header_table_size: 1024,
            encoder_table_size: 0,
            enable_connect_protocol: false,
            max_peer_resets: 200,
            max_local_resets: 200,
        }
    }
}

impl Settings {
    /// The settings clamped to what the protocol and the engine allow.
    pub(crate) fn clamped(mut self) -> Settings {
        self.initial_window_size = self.initial_window_size.min(MAX_WINDOW);
        self.connection_window_size = self
            .connection_window_size
            .clamp(DEFAULT_WINDOW, MAX_WINDOW);
        self.max_frame_size = self
            .max_frame_size
            .clamp(MIN_MAX_FRAME_SIZE, MAX_MAX_FRAME_SIZE);
        self.max_header_list_size = self.max_header_list_size.clamp(1024, 1 << 20);
        self.header_table_size = self.header_table_size.min(u32::from(u16::MAX));
        self.encoder_table_size = self.encoder_table_size.min(u32::from(u16::MAX));
        self.max_concurrent_streams = self.max_concurrent_streams.clamp(1, 1 << 16);
        self
    }

    /// The bytes the owner's read buffer must be able to hold: one whole
    /// frame, or one whole header block (HEADERS and its CONTINUATIONs),
    /// since the engine reads either only once all of it is there — plus
    /// the next frame's header, which is where a block that runs past
    /// that bound is seen to (without it, a block that fills the buffer
    /// exactly and goes on would wait for room that never comes).
    pub fn read_buffer_size(&self) -> usize {
        let s = self.clone().clamped();
        (s.max_frame_size as usize + frame::HEADER_LEN).max(s.max_header_list_size as usize)
            + frame::HEADER_LEN
    }

    /// Appends our SETTINGS frame. A server sends every value that
    /// differs from the protocol default; `ENABLE_PUSH` 0 always (we never
    /// push, and as a client we accept no push).
    pub(crate) fn write(&self, out: &mut Vec<u8>, client: bool) {
        let mut entries = [(0u16, 0u32); 8];
        let mut n = 0;
        let mut add = |id: u16, value: u32| {
            entries[n] = (id, value);
            n += 1;
        };
        if self.header_table_size != 4096 {
            add(id::HEADER_TABLE_SIZE, self.header_table_size);
        }
        if client {
            add(id::ENABLE_PUSH, 0);
        }
        add(id::MAX_CONCURRENT_STREAMS, self.max_concurrent_streams);
        if self.initial_window_size != DEFAULT_WINDOW {
            add(id::INITIAL_WINDOW_SIZE, self.initial_window_size);
        }
        if self.max_frame_size != MIN_MAX_FRAME_SIZE {
            add(id::MAX_FRAME_SIZE, self.max_frame_size);
        }
        add(id::MAX_HEADER_LIST_SIZE, self.max_header_list_size);
        if self.enable_connect_protocol && !client {
            add(id::ENABLE_CONNECT_PROTOCOL, 1);
        }
        if !client {
            add(id::NO_RFC7540_PRIORITIES, 1);
        }
        frame::write_header(out, n * 6, kind::SETTINGS, 0, 0);
        for &(id, value) in &entries[..n] {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

/// What the peer asked of us, as far as the engine uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSettings {
    /// SETTINGS_HEADER_TABLE_SIZE: the most our encoder's table may use.
    pub header_table_size: u32,
    /// SETTINGS_ENABLE_PUSH.
    pub enable_push: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (`u32::MAX` until limited).
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: each stream's send window to start.
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we may send.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (`u32::MAX` until limited); advisory.
    pub max_header_list_size: u32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
    pub enable_connect_protocol: bool,
}

impl Default for PeerSettings {
    fn default() -> PeerSettings {
        PeerSettings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: u32::MAX,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: MIN_MAX_FRAME_SIZE,
            max_header_list_size: u32::MAX,
            enable_connect_protocol: false,
        }
    }
}

impl PeerSettings {
    /// Applies one setting (§6.5.2); unknown ids are ignored.
    pub(crate) fn apply(&mut self, id: u16, value: u32) -> Result<(), H2Error> {
        match id {
            id::HEADER_TABLE_SIZE => self.header_table_size = value,
            id::ENABLE_PUSH => match value {
                0 | 1 => self.enable_push = value == 1,
                _ => return Err(conn(ErrorCode::PROTOCOL_ERROR, "ENABLE_PUSH not 0 or 1")),
            },
            id::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = value,
            id::INITIAL_WINDOW_SIZE => {
                if value > MAX_WINDOW {
                    return Err(conn(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "INITIAL_WINDOW_SIZE over 2^31-1",
                    ));
                }
                self.initial_window_size = value;
            }
            id::MAX_FRAME_SIZE => {
                if !(MIN_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&value) {
                    return Err(conn(
                        ErrorCode::PROTOCOL_ERROR,
                        "MAX_FRAME_SIZE out of range",
                    ));
                }
                self.max_frame_size = value;
            }
            id::MAX_HEADER_LIST_SIZE => self.max_header_list_size = value,
            id::ENABLE_CONNECT_PROTOCOL => match value {
                0 | 1 => self.enable_connect_protocol = value == 1,
                _ => {
                    return Err(conn(
                        ErrorCode::PROTOCOL_ERROR,
                        "ENABLE_CONNECT_PROTOCOL not 0 or 1",
                    ))
                }
            },
            _ => {}
        }
        Ok(())
    }
}
