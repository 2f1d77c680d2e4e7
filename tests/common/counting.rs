//! A counting `#[global_allocator]` for tests that measure the server.
//!
//! Two ways to choose what is counted:
//! - by default every thread counts unless it called [`client_thread`];
//! - after [`count_marked_only`], only threads that called
//!   [`server_thread`] count (exact, whatever else the process does — the
//!   test harness's own threads allocate when tests start and end).
//!
//! Include it only in test binaries that measure, with
//! `#[path = "common/counting.rs"] mod counting;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

static MARKED_ONLY: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Unmarked,
    Client,
    Server,
}

thread_local! {
    static ROLE: Cell<Role> = const { Cell::new(Role::Unmarked) };
}

fn counted() -> bool {
    match ROLE.try_with(Cell::get).unwrap_or(Role::Client) {
        Role::Server => true,
        Role::Client => false,
        Role::Unmarked => !MARKED_ONLY.load(Ordering::Relaxed),
    }
}

fn grow(n: i64) {
    if n > 0 {
        ALLOCATED.fetch_add(n as u64, Ordering::Relaxed);
    }
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
    ROLE.with(|r| r.set(Role::Client));
}

/// Marks this thread as the server's: its allocations are always counted.
pub fn server_thread() {
    ROLE.with(|r| r.set(Role::Server));
}

/// From now on, count only threads marked with [`server_thread`].
pub fn count_marked_only() {
    MARKED_ONLY.store(true, Ordering::SeqCst);
}

/// Allocations counted so far.
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

/// Bytes counted threads have allocated so far (a realloc counts what it
/// grew by), whoever frees them: unlike [`live_bytes`], blind to frees of
/// memory other threads allocated.
pub fn allocated_bytes() -> u64 {
    ALLOCATED.load(Ordering::SeqCst)
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
