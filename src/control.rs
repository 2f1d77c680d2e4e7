//! [`Control`]: wake a waiting exchange from any thread.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use crate::Next;

/// A handle to one request/response exchange, usable from any thread.
///
/// A server's handler factory receives the `Control` of the exchange it
/// creates a handler for; a client handler gets its own from
/// `client::Request::control`. A handler that returned [`Next::wait()`] is resumed by
/// [`ready`](Control::ready), typically from a thread that did some
/// blocking work.
///
/// `Control` is cheap to clone (one reference count) and is tied to its
/// exchange: once that exchange ends — the response is complete or the
/// connection gone — `ready` returns [`Gone`] and does nothing, even if the
/// connection slot has since been reused.
///
/// ```no_run
/// use std::time::Duration;
/// use nextloop::{Control, Next};
///
/// fn answer_later(control: Control) {
///     std::thread::spawn(move || {
///         std::thread::sleep(Duration::from_millis(10));
///         // Resume the handler: it will be asked to write its response.
///         let _ = control.ready(Next::write());
///     });
/// }
/// ```
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
    key: usize,
    generation: u64,
}

/// [`Control::ready`] was called for an exchange that has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the exchange this Control belongs to has ended")
    }
}

impl std::error::Error for Gone {}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("key", &self.key)
            .field("generation", &self.generation)
            .finish()
    }
}

impl Control {
    /// Resumes the exchange with `next`.
    ///
    /// If the handler is parked in [`Next::wait()`], it continues with
    /// `next` on the loop thread. If it is doing something else (reading
    /// the body, writing), `next` is kept and applied the moment it returns
    /// `wait()`, so a wake-up that overtakes the handler is not lost and
    /// never cuts a body short; only the latest such `next` is kept. A
    /// burst of calls costs the loop one wake-up.
    ///
    /// Returns [`Gone`], doing nothing, if the exchange has ended.
    pub fn ready(&self, next: Next) -> Result<(), Gone> {
        let shared = &*self.shared;
        if !shared.is_current(self.key, self.generation) {
            return Err(Gone);
        }
        // The receiver lives as long as the loop; after it is gone, the
        // generation check above fails first for every exchange.
        shared
            .queue
            .send(Wake {
                key: self.key,
                generation: self.generation,
                next,
            })
            .map_err(|_| Gone)?;
        shared.wake();
        Ok(())
    }
}

/// The most slots (connections or exchanges) one loop tracks: its
/// generation table is allocated up front, 8 bytes a slot.
pub(crate) const MAX_SLOTS: usize = 1 << 20;

/// A wake-up sent through [`Control::ready`].
pub(crate) struct Wake {
    pub key: usize,
    pub generation: u64,
    pub next: Next,
}

/// What a loop shares with the `Control`s and the `Listening` handle.
pub(crate) struct Shared {
    waker: mio::Waker,
    queue: Sender<Wake>,
    /// Set by the first `wake` after the loop drained; cleared by the loop.
    woken: AtomicBool,
    /// The current exchange generation of each slab slot. Written by the
    /// loop thread only (`retire`); read by any thread.
    generations: Box<[AtomicU64]>,
    pub shutdown: AtomicBool,
}

impl Shared {
    pub(crate) fn new(waker: mio::Waker, slots: usize) -> (Arc<Shared>, Receiver<Wake>) {
        let (queue, rx) = crossbeam_channel::unbounded();
        let shared = Shared {
            waker,
            queue,
            woken: AtomicBool::new(false),
            generations: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            shutdown: AtomicBool::new(false),
        };
        (Arc::new(shared), rx)
    }

    /// Wakes the loop unless a wake-up is already pending.
    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // If waking fails the loop is gone; nothing is left to wake.
            let _ = self.waker.wake();
        }
    }

    /// Called by the loop before draining the queue, so that a `ready`
    /// racing with the drain wakes it again.
    pub(crate) fn clear_woken(&self) {
        // A swap, not a store: a store could be ordered after the loop's
        // next reads of the queue, so a `ready` racing with it would see
        // `woken` still set, skip the wake, and its message would wait.
        self.woken.swap(false, Ordering::AcqRel);
    }

    pub(crate) fn is_current(&self, key: usize, generation: u64) -> bool {
        self.generations
            .get(key)
            .is_some_and(|g| g.load(Ordering::Acquire) == generation)
    }

    /// Ends the exchange in slot `key`: every `Control` handed out for it
    /// goes stale.
    ///
    /// Only the loop thread writes generations, so this is a load and a
    /// store rather than a locked read-modify-write (one per request).
    pub(crate) fn retire(&self, key: usize) {
        let generation = &self.generations[key];
        generation.store(generation.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// A `Control` for the current exchange in slot `key`.
    pub(crate) fn control(self: &Arc<Self>, key: usize) -> Control {
        Control {
            shared: Arc::clone(self),
            key,
            generation: self.generations[key].load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};

    fn shared() -> (Poll, Arc<Shared>, Receiver<Wake>) {
        let poll = Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), Token(0)).unwrap();
        let (shared, rx) = Shared::new(waker, 4);
        (poll, shared, rx)
    }

    #[test]
    fn stale_control_is_refused() {
        let (_poll, shared, rx) = shared();
        let old = shared.control(2);
        shared.retire(2);
        let new = shared.control(2);
        assert_eq!(old.ready(Next::write()), Err(Gone));
        assert_eq!(new.ready(Next::write()), Ok(()));
        let wakes: Vec<Wake> = rx.try_iter().collect();
        assert_eq!(wakes.len(), 1);
        assert_eq!(wakes[0].generation, new.generation);
    }

    #[test]
    fn a_burst_of_ready_calls_wakes_once() {
        let (mut poll, shared, rx) = shared();
        let control = shared.control(1);
        for _ in 0..100 {
            control.ready(Next::write()).unwrap();
        }
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events.iter().count(), 1);
        assert_eq!(rx.try_iter().count(), 100);
        // Without clear_woken, further calls do not wake again.
        control.ready(Next::write()).unwrap();
        poll.poll(&mut events, Some(std::time::Duration::from_millis(50)))
            .unwrap();
        assert_eq!(events.iter().count(), 0);
        shared.clear_woken();
        control.ready(Next::write()).unwrap();
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events.iter().count(), 1);
    }
}
