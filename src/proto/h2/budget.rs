//! Flood budgets: what a peer may make us do beyond useful work before
//! the connection ends with GOAWAY(ENHANCE_YOUR_CALM).
//!
//! - Peer resets of streams whose response was unfinished (Rapid Reset,
//!   CVE-2023-44487) and resets the peer provokes from us (MadeYouReset,
//!   CVE-2025-8671): counters, each completed stream paying one back.
//! - Framing without payload (empty DATA, PRIORITY, WINDOW_UPDATE, PING,
//!   SETTINGS, unknown frames): nginx's ratio, `total / 8 > payload +
//!   1 MiB` over the connection's life (`ngx_http_v2.c`, research §B.4).
//! - PING and SETTINGS acks: at most one unflushed each (in `conn.rs`).

use super::error::{conn, ErrorCode, H2Error};

/// The framing the ratio forgives outright.
const FREE_FRAMING: u64 = 1 << 20;

#[derive(Debug, Default)]
pub(crate) struct Budget {
    peer_resets: u32,
    local_resets: u32,
    total: u64,
    payload: u64,
}

impl Budget {
    /// A frame of `len` payload bytes, `useful` of them payload (DATA
    /// bytes, header block bytes).
    #[inline]
    pub(crate) fn frame(&mut self, len: usize, useful: usize) -> Result<(), H2Error> {
        self.total += 9 + len as u64;
        self.payload += useful as u64;
        if self.total / 8 > self.payload + FREE_FRAMING {
            return Err(conn(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too much framing for the payload",
            ));
        }
        Ok(())
    }

    /// The peer reset a stream whose response was unfinished.
    pub(crate) fn peer_reset(&mut self, max: u32) -> Result<(), H2Error> {
        self.peer_resets += 1;
        if self.peer_resets > max {
            return Err(conn(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many streams reset by the peer",
            ));
        }
        Ok(())
    }

    /// We reset (or refused) a stream for a rule the peer broke.
    pub(crate) fn local_reset(&mut self, max: u32) -> Result<(), H2Error> {
        self.local_resets += 1;
        if self.local_resets > max {
            return Err(conn(
                ErrorCode::ENHANCE_YOUR_CALM,
                "too many streams reset for errors",
            ));
        }
        Ok(())
    }

    /// A stream completed without a reset: pays one of each back.
    pub(crate) fn completed(&mut self) {
        self.peer_resets = self.peer_resets.saturating_sub(1);
        self.local_resets = self.local_resets.saturating_sub(1);
    }
}
