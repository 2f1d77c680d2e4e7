//! A counting `#[global_allocator]` for tests that measure the server.
//!
//! Every allocation in the process is counted unless it happens on a
//! thread that called [`client_thread`], so what the counters see is the
//! server's threads (the test harness's own threads sit idle meanwhile).
//! Include it only in test binaries that measure, with
//! `#[path = "common/counting.rs"] mod counting;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static IS_CLIENT: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    !IS_CLIENT.try_with(Cell::get).unwrap_or(true)
}

fn grow(n: i64) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every method forwards unchanged to the system allocator; the
// bookkeeping touches only atomics and a const-initialised thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            grow(layout.size() as i64);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            grow(layout.size() as i64);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            grow(new_size as i64 - layout.size() as i64);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Marks this thread as a client: its allocations are not counted.
pub fn client_thread() {
    IS_CLIENT.with(|c| c.set(true));
}

/// Allocations counted so far.
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

/// Heap bytes currently held by counted threads.
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

/// Server heap growth, from [`start`](Self::start) to its peak.
pub struct HeapWindow {
    base: i64,
}

impl HeapWindow {
    pub fn start() -> HeapWindow {
        let base = LIVE.load(Ordering::SeqCst);
        PEAK.store(base, Ordering::SeqCst);
        HeapWindow { base }
    }

    pub fn peak_growth(&self) -> i64 {
        PEAK.load(Ordering::SeqCst) - self.base
    }
}
