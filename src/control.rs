//! [`Control`]: wake a waiting exchange from any thread.

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

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
/// `Control` is cheap to clone (a reference and two integers) and is tied to its
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
    shared: &'static Shared,
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
        let shared = self.shared;
        if !shared.is_current(self.key, self.generation) {
            return Err(Gone);
        }
        // The queue outlives every loop (its `Shared` is never freed), so
        // the send cannot fail. A wake that races with the end of the
        // exchange is dropped by the loop, which checks the generation too.
        let _ = shared.queue.send(Wake {
            key: self.key,
            generation: self.generation,
            next,
        });
        shared.wake();
        Ok(())
    }
}

/// The most slots (connections or exchanges) one loop tracks: its
/// generation table is allocated up front, 8 bytes a slot (rounded up to
/// a power of two).
pub(crate) const MAX_SLOTS: usize = 1 << 20;

/// A wake-up sent through [`Control::ready`].
pub(crate) struct Wake {
    pub key: usize,
    pub generation: u64,
    pub next: Next,
}

/// What a loop shares with its `Control`s and with the handles that shut it
/// down or wake it.
///
/// Allocated once and never freed: when its loop ends it goes back to a
/// free list, and the next loop to start takes it over (a new *term*). So a
/// `Control` is a plain `&'static` reference — making and dropping one per
/// request costs no reference count, where an `Arc` clone and drop (two
/// locked instructions) were about 8% of the loop's own work on a small
/// pipelined request — and a `Control` that outlives its loop is stale by
/// generation like any other, whoever has the `Shared` now: a loop's end
/// retires every slot. Memory stays bounded by the most loops alive at
/// once (per table size: see [`Lease::take`]).
pub(crate) struct Shared {
    /// The waker of the loop holding this `Shared`; `None` between terms.
    waker: Mutex<Option<mio::Waker>>,
    queue: Sender<Wake>,
    wakes: Receiver<Wake>,
    /// Set by the first `wake` after the loop drained; cleared by the loop.
    woken: AtomicBool,
    /// The current exchange generation of each slab slot. Written by the
    /// loop thread only (`retire`); read by any thread.
    generations: Box<[AtomicU64]>,
    /// The current term: bumped each time a loop takes this `Shared` over.
    term: AtomicU64,
    /// The latest term asked to shut down.
    shutdown: AtomicU64,
}

/// `Shared`s whose loops have ended, waiting for the next loop.
static FREE: Mutex<Vec<&'static Shared>> = Mutex::new(Vec::new());

/// A loop's hold on a [`Shared`]: it goes back to the free list when the
/// loop ends (the lease is dropped), every slot retired.
pub(crate) struct Lease {
    shared: &'static Shared,
    term: u64,
}

impl Lease {
    /// A `Shared` with at least `slots` slots for a new loop woken by
    /// `waker`: a free one, or a new one.
    pub(crate) fn take(waker: mio::Waker, slots: usize) -> Lease {
        // Tables come in power-of-two sizes and a loop takes only one of its
        // own size: a free table is always reused by the next loop of that
        // size, so the tables kept are bounded by the most loops alive at
        // once in each size (at most 21 sizes), and a small loop never pays
        // to retire a big table.
        let size = slots.max(1).next_power_of_two();
        let free = {
            let mut free = lock(&FREE);
            let fit = free.iter().position(|s| s.generations.len() == size);
            fit.map(|i| free.swap_remove(i))
        };
        let shared: &'static Shared = free.unwrap_or_else(|| {
            let (queue, wakes) = crossbeam_channel::unbounded();
            Box::leak(Box::new(Shared {
                waker: Mutex::new(None),
                queue,
                wakes,
                woken: AtomicBool::new(false),
                generations: (0..size).map(|_| AtomicU64::new(0)).collect(),
                term: AtomicU64::new(0),
                shutdown: AtomicU64::new(0),
            }))
        });
        let term = shared.term.fetch_add(1, Ordering::AcqRel) + 1;
        // Wakes sent to the last term: stale, drop them now.
        while shared.wakes.try_recv().is_ok() {}
        // The waker first: a late `wake` from the last term that finds
        // `woken` clear must find a waker to use, or `woken` would stay set
        // and this loop's first real wake-up would be skipped.
        *lock(&shared.waker) = Some(waker);
        shared.woken.store(false, Ordering::Release);
        Lease { shared, term }
    }

    /// The `Shared` itself, for the loop.
    pub(crate) fn shared(&self) -> &'static Shared {
        self.shared
    }

    /// A handle that shuts this loop down or wakes it, and nothing after.
    pub(crate) fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.shared,
            term: self.term,
        }
    }

    /// Marks this thread as the one running this loop until the guard
    /// drops: see [`LoopHandle::on_own_thread`].
    pub(crate) fn enter(&self) -> Running {
        let this = (self.shared as *const Shared as usize, self.term);
        Running(RUNNING.with(|r| r.replace(this)))
    }

    /// Has this loop been asked to shut down?
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shared.shutdown.load(Ordering::Acquire) >= self.term
    }

    /// The wake-ups sent through `Control::ready`, in order.
    pub(crate) fn wakes(&self) -> &Receiver<Wake> {
        &self.shared.wakes
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let shared = self.shared;
        // Every `Control` of this loop goes stale, before anyone else can
        // take the `Shared` over.
        for key in 0..shared.generations.len() {
            shared.retire(key);
        }
        lock(&shared.waker).take();
        lock(&FREE).push(shared);
    }
}

thread_local! {
    /// The loop this thread is running (its `Shared`'s address and term),
    /// or zeros.
    static RUNNING: Cell<(usize, u64)> = const { Cell::new((0, 0)) };
}

/// This thread runs a loop until dropped ([`Lease::enter`]).
pub(crate) struct Running((usize, u64));

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.set(self.0));
    }
}

/// Shuts down or wakes the loop of one term; after that loop has ended it
/// does nothing (a wake may reach the next loop: a spurious one).
#[derive(Clone, Copy)]
pub(crate) struct LoopHandle {
    shared: &'static Shared,
    term: u64,
}

impl LoopHandle {
    /// Asks the loop to shut down and wakes it.
    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.fetch_max(self.term, Ordering::AcqRel);
        self.shared.wake();
    }

    /// Wakes the loop.
    pub(crate) fn wake(&self) {
        self.shared.wake();
    }

    /// Is this call made on the loop's own thread, from inside its run (a
    /// callback)? The loop then looks at its queues before it sleeps, so
    /// what is queued for it needs no wake-up (a write to its waker, and
    /// one more turn to read it).
    pub(crate) fn on_own_thread(&self) -> bool {
        RUNNING.with(Cell::get) == (self.shared as *const Shared as usize, self.term)
    }
}

/// A lock that a panic elsewhere does not poison for good: what it guards
/// stays consistent at every step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Wakes the loop unless a wake-up is already pending.
    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // No waker: between loops, nothing to wake. If waking fails
            // the loop is gone.
            if let Some(waker) = lock(&self.waker).as_ref() {
                let _ = waker.wake();
            }
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

    /// How many slots the generation table has: exchanges beyond it
    /// cannot be addressed (an HTTP/2 stream is then refused).
    pub(crate) fn slots(&self) -> usize {
        self.generations.len()
    }

    /// A `Control` for the current exchange in slot `key`.
    pub(crate) fn control(&'static self, key: usize) -> Control {
        Control {
            shared: self,
            key,
            generation: self.generations[key].load(Ordering::Acquire),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};

    fn lease(slots: usize) -> (Poll, Lease) {
        let poll = Poll::new().unwrap();
        let waker = mio::Waker::new(poll.registry(), Token(0)).unwrap();
        (poll, Lease::take(waker, slots))
    }

    #[test]
    fn tables_are_reused_by_loops_of_their_size_only() {
        // Sizes no other test uses.
        let (_p1, big) = lease(300_000);
        let big_shared = big.shared();
        drop(big);
        // A small loop does not take the big table.
        let (_p2, small) = lease(3);
        assert!(!std::ptr::eq(small.shared(), big_shared));
        // A loop of the same size (after rounding) does.
        let (_p3, again) = lease(270_000);
        assert!(std::ptr::eq(again.shared(), big_shared));
        assert_eq!(again.shared().generations.len(), 1 << 19);
    }

    #[test]
    fn stale_control_is_refused() {
        let (_poll, lease) = lease(4);
        let shared = lease.shared();
        let old = shared.control(2);
        shared.retire(2);
        let new = shared.control(2);
        assert_eq!(old.ready(Next::write()), Err(Gone));
        assert_eq!(new.ready(Next::write()), Ok(()));
        let wakes: Vec<Wake> = lease.wakes().try_iter().collect();
        assert_eq!(wakes.len(), 1);
        assert_eq!(wakes[0].generation, new.generation);
    }

    #[test]
    fn a_burst_of_ready_calls_wakes_once() {
        let (mut poll, lease) = lease(4);
        let shared = lease.shared();
        let control = shared.control(1);
        for _ in 0..100 {
            control.ready(Next::write()).unwrap();
        }
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events.iter().count(), 1);
        assert_eq!(lease.wakes().try_iter().count(), 100);
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

    /// A loop ends and another takes its `Shared` over: the old loop's
    /// `Control`s and handles reach nothing of the new one.
    #[test]
    fn what_outlives_a_loop_cannot_touch_the_next() {
        // A table size no other test uses: the next loop of this size is
        // sure to get this `Shared` back.
        const SLOTS: usize = 100_000;
        let (_poll, first) = lease(SLOTS);
        let shared = first.shared();
        let control = shared.control(5);
        let old_handle = first.handle();
        drop(first);
        assert_eq!(control.ready(Next::write()), Err(Gone));
        let (mut poll, second) = lease(SLOTS - 1);
        assert!(std::ptr::eq(second.shared(), shared), "reused");
        // The old Control is still stale, the old handle shuts nothing down.
        assert_eq!(control.ready(Next::write()), Err(Gone));
        assert!(second.wakes().try_recv().is_err());
        old_handle.shutdown();
        assert!(!second.shutdown_requested());
        // The new loop's own Control and handle work, waking the new poll.
        let mut events = mio::Events::with_capacity(8);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        second.shared().clear_woken();
        assert_eq!(second.shared().control(5).ready(Next::write()), Ok(()));
        poll.poll(&mut events, Some(std::time::Duration::from_secs(1)))
            .unwrap();
        assert_eq!(events.iter().count(), 1);
        second.handle().shutdown();
        assert!(second.shutdown_requested());
    }
}
