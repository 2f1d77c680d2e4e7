//! [`Http2`]: the HTTP/2 settings of a server.

use std::time::Duration;

/// HTTP/2 settings for [`Server::http2`](crate::server::Server::http2).
///
/// HTTP/2 is on by default, with these values: in clear, a connection
/// that starts with the HTTP/2 preface (prior knowledge, as
/// `curl --http2-prior-knowledge` sends it) speaks HTTP/2 on the same port
/// as HTTP/1.1; over TLS, the server offers ALPN `h2` before `http/1.1`.
/// [`Server::http1_only`](crate::server::Server::http1_only) turns it off.
///
/// | setting | default |
/// |---|---|
/// | [`max_concurrent_streams`](Self::max_concurrent_streams) | 100 |
/// | [`initial_stream_window`](Self::initial_stream_window) | 65,535 bytes |
/// | [`initial_connection_window`](Self::initial_connection_window) | 1 MiB |
/// | [`max_frame_size`](Self::max_frame_size) | 16,384 bytes |
/// | [`max_header_list_size`](Self::max_header_list_size) | 16 KiB |
/// | [`header_table_size`](Self::header_table_size) | 1,024 bytes |
/// | [`max_requests`](Self::max_requests) | none |
/// | [`ping_timeout`](Self::ping_timeout) | 10 s |
///
/// ```
/// use nextloop::server::{Http2, Server};
///
/// let server = Server::bind("127.0.0.1:0")?
///     .http2(Http2::default().max_concurrent_streams(32).max_requests(10_000));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Http2 {
    pub(crate) max_concurrent_streams: u32,
    pub(crate) initial_stream_window: u32,
    pub(crate) initial_connection_window: u32,
    pub(crate) max_frame_size: u32,
    pub(crate) max_header_list_size: u32,
    pub(crate) header_table_size: u32,
    pub(crate) max_requests: Option<u64>,
    pub(crate) ping_timeout: Duration,
}

/// The largest flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Default for Http2 {
    fn default() -> Http2 {
        Http2 {
            max_concurrent_streams: 100,
            initial_stream_window: 65_535,
            initial_connection_window: 1 << 20,
            max_frame_size: 16_384,
            max_header_list_size: 16 * 1024,
            header_table_size: 1024,
            max_requests: None,
            ping_timeout: Duration::from_secs(10),
        }
    }
}

impl Http2 {
    /// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS);
    /// a stream counts until its handler is done. At least 1.
    pub fn max_concurrent_streams(mut self, n: u32) -> Http2 {
        self.max_concurrent_streams = n.max(1);
        self
    }

    /// The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE):
    /// how much of a request body the client may send before the handler
    /// reads it. Between 1 and 2^31−1.
    pub fn initial_stream_window(mut self, bytes: u32) -> Http2 {
        self.initial_stream_window = bytes.clamp(1, MAX_WINDOW);
        self
    }

    /// The receive window of the whole connection, across its streams.
    /// Between 65,535 (the protocol's start) and 2^31−1.
    pub fn initial_connection_window(mut self, bytes: u32) -> Http2 {
        self.initial_connection_window = bytes.clamp(65_535, MAX_WINDOW);
        self
    }

    /// The largest frame payload the client may send (SETTINGS_MAX_FRAME_SIZE),
    /// between 16,384 and 16,777,215.
    pub fn max_frame_size(mut self, bytes: u32) -> Http2 {
        self.max_frame_size = bytes.clamp(16_384, (1 << 24) - 1);
        self
    }

    /// The largest request header list, decoded (name + value + 32 per
    /// field, SETTINGS_MAX_HEADER_LIST_SIZE). A larger one is refused with
    /// `431`, the connection goes on.
    pub fn max_header_list_size(mut self, bytes: u32) -> Http2 {
        self.max_header_list_size = bytes.max(64);
        self
    }

    /// The HPACK dynamic table the client may use (SETTINGS_HEADER_TABLE_SIZE).
    pub fn header_table_size(mut self, bytes: u32) -> Http2 {
        self.header_table_size = bytes.min(1 << 16);
        self
    }

    /// Streams served on one connection before it is ended gracefully
    /// (GOAWAY, the open streams finish): the client opens a new one.
    pub fn max_requests(mut self, n: u64) -> Http2 {
        self.max_requests = Some(n.max(1));
        self
    }

    /// How long a PING or a SETTINGS of ours may wait for its
    /// acknowledgement before the connection is closed.
    pub fn ping_timeout(mut self, d: Duration) -> Http2 {
        self.ping_timeout = d;
        self
    }
}
