//! Deadlines: one min-heap for a whole loop.
//!
//! Each owner (a connection; in the client also an exchange or a host's
//! name lookup) has at most one deadline at a time (head, keep-alive,
//! handler or linger timeout, by its state). A heap entry names its owner
//! with the role's own key type (`K`), so what a timer is for is in its
//! type, not encoded in a number. Moving a deadline later — what
//! happens on every request — touches only the connection; the heap entry
//! is re-armed when it pops. Only moving it earlier pushes an entry, so the
//! heap stays about one entry per connection and, once grown, allocates
//! nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// `now + d`, or `None` (no deadline) when that is past what an
/// `Instant` can hold — a `Duration::MAX` timeout means "never".
pub(crate) fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// A connection's deadline as seen by its owner.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Deadline {
    /// When it fires; `None` when unset.
    pub at: Option<Instant>,
    /// The earliest entry the heap holds for this connection, if any.
    queued: Option<Instant>,
}

impl Deadline {
    /// Sets the deadline, queueing a heap entry only if none fires early enough.
    pub(crate) fn set<K: Copy + Ord>(
        &mut self,
        at: Option<Instant>,
        key: K,
        timers: &mut Timers<K>,
    ) {
        self.at = at;
        if let Some(at) = at {
            if self.queued.is_none_or(|q| at < q) {
                self.queued = Some(at);
                timers.heap.push(Reverse((at, key)));
            }
        }
    }

    /// Is it due at `now`?
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.at.is_some_and(|at| at <= now)
    }

    /// Is the heap entry for `at` the one this deadline counts on? Any
    /// other entry with its key is stale (superseded, or left by a
    /// connection that was in its slot before).
    pub(crate) fn owns(&self, at: Instant) -> bool {
        self.queued == Some(at)
    }
}

/// The loop's heap of `(when, owner)` entries.
pub(crate) struct Timers<K = usize> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Copy + Ord> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Copy + Ord> Timers<K> {
    /// The earliest entry, which bounds how long the loop may sleep.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops one entry due at `now`: `(when, key)`. The caller then asks
    /// [`fires`](Self::fires) whether its owner's deadline goes off.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// After popping `(popped_at, key)` for the owner of `d`: does its
    /// deadline go off now? If so it is cleared (the caller fires it). If
    /// that was its queued entry and the deadline has since moved past
    /// `now`, it is queued anew.
    pub(crate) fn fires(
        &mut self,
        popped_at: Instant,
        now: Instant,
        key: K,
        d: &mut Deadline,
    ) -> bool {
        if d.queued == Some(popped_at) {
            d.queued = None;
            if let Some(at) = d.at.filter(|&at| at > now) {
                d.queued = Some(at);
                self.heap.push(Reverse((at, key)));
            }
        }
        let due = d.is_due(now);
        if due {
            d.at = None;
        }
        due
    }

    /// Entries in the heap, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries `owned(at, key)` says a live deadline counts
    /// on. Stale entries are harmless but stay until their time: owners
    /// that come and go with long timeouts would otherwise pile them up.
    /// Memory beyond what `keep` entries (and twice the live ones) need is
    /// given back; up to that much is kept, so that the next round of
    /// churn does not grow the heap all over again.
    pub(crate) fn drop_stale(&mut self, keep: usize, mut owned: impl FnMut(Instant, K) -> bool) {
        self.heap.retain(|Reverse((at, key))| owned(*at, *key));
        let enough = keep.max(2 * self.heap.len());
        if self.heap.capacity() > 2 * enough {
            self.heap.shrink_to(enough);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fires everything due at `now` the way the event loop does; returns the keys.
    fn fire(timers: &mut Timers, now: Instant, conns: &mut [Deadline]) -> Vec<usize> {
        let mut fired = Vec::new();
        while let Some((at, key)) = timers.pop_due(now) {
            if timers.fires(at, now, key, &mut conns[key]) {
                fired.push(key);
            }
        }
        fired
    }

    #[test]
    fn stale_entries_can_be_dropped_and_live_ones_still_fire() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut conns: Vec<Deadline> = vec![Deadline::default(); 3000];
        for (key, d) in conns.iter_mut().enumerate() {
            d.set(Some(t0 + Duration::from_secs(3600)), key, &mut timers);
        }
        // Connection 0's deadline moves earlier: its first entry is stale.
        conns[0].set(Some(t0 + Duration::from_secs(1)), 0, &mut timers);
        // All but the first 1000 go away.
        conns.truncate(1000);
        assert_eq!(timers.len(), 3001);
        timers.drop_stale(256, |at, key| conns.get(key).is_some_and(|d| d.owns(at)));
        assert_eq!(timers.len(), 1000);
        assert!(timers.heap.capacity() <= 4 * 1000);
        assert_eq!(
            fire(&mut timers, t0 + Duration::from_secs(2), &mut conns),
            [0]
        );
        let all = fire(&mut timers, t0 + Duration::from_secs(3601), &mut conns);
        assert_eq!(all.len(), 999);
    }

    #[test]
    fn later_deadlines_do_not_grow_the_heap() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut conns = [Deadline::default()];
        for i in 1..1000 {
            conns[0].set(Some(t0 + Duration::from_millis(i)), 0, &mut timers);
        }
        assert_eq!(timers.len(), 1);
        // The first entry pops early, finds the deadline moved, re-arms.
        assert!(fire(&mut timers, t0 + Duration::from_millis(500), &mut conns).is_empty());
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(999)));
        assert_eq!(
            fire(&mut timers, t0 + Duration::from_secs(1), &mut conns),
            [0]
        );
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn earlier_deadline_fires_first_and_stale_entries_are_harmless() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        let mut conns = [Deadline::default(), Deadline::default()];
        conns[0].set(Some(ms(100)), 0, &mut timers);
        conns[0].set(Some(ms(10)), 0, &mut timers);
        conns[1].set(Some(ms(50)), 1, &mut timers);
        assert_eq!(timers.next(), Some(ms(10)));
        assert_eq!(fire(&mut timers, ms(10), &mut conns), [0]);
        assert_eq!(fire(&mut timers, ms(60), &mut conns), [1]);
        // conn 0's old entry at 100 pops, but conn 0 has no deadline now.
        assert!(fire(&mut timers, ms(200), &mut conns).is_empty());
        conns[1].set(None, 1, &mut timers);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn an_endless_duration_is_no_deadline() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), None);
        assert_eq!(after(now, Duration::ZERO), Some(now));
    }

    #[test]
    fn cleared_deadline_never_fires() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut conns = [Deadline::default()];
        conns[0].set(Some(t0), 0, &mut timers);
        conns[0].set(None, 0, &mut timers);
        assert!(fire(&mut timers, t0 + Duration::from_secs(1), &mut conns).is_empty());
    }
}
