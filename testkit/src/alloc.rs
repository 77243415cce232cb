//! A counting global allocator for allocation-budget tests.
//!
//! Install it in a dedicated test binary (one file under `tests/`, so no other test shares the
//! process-wide allocator), then measure a closure on the current thread:
//!
//! ```no_run
//! use dualmetrics_testkit::alloc::{count_allocs, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator;
//!
//! let mut buf = Vec::with_capacity(16);
//! let n = count_allocs(|| buf.push(1u8)); // no growth, no allocation
//! assert_eq!(n, 0);
//! ```
//!
//! Every `alloc`, `alloc_zeroed` and `realloc` counts as one allocation; `dealloc` does not.
//! [`count_allocs`] reads a thread-local counter, so allocations made meanwhile by other threads
//! (the test harness, a background exporter) do not show up in the result, while
//! [`allocations`] is the process-wide total.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static TOTAL: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // `const` and `Drop`-free: accessing it never allocates and never registers a destructor,
    // which is what makes it usable from inside the allocator.
    static THREAD: Cell<usize> = const { Cell::new(0) };
}

/// A [`GlobalAlloc`] that forwards to [`System`] and counts allocations, process-wide and per
/// thread. See the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct CountingAllocator;

impl CountingAllocator {
    #[inline]
    fn count() {
        TOTAL.fetch_add(1, Ordering::Relaxed);
        // `try_with`: during thread teardown the slot may be gone; skip counting then.
        let _ = THREAD.try_with(|c| c.set(c.get() + 1));
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only atomics and a const-initialised `Cell` thread-local, neither of which
// allocates or unwinds.
unsafe impl GlobalAlloc for CountingAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count();
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count();
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made by the whole process so far (through [`CountingAllocator`]).
pub fn allocations() -> usize {
    TOTAL.load(Ordering::Relaxed)
}

/// Allocations made by the current thread so far.
pub fn thread_allocations() -> usize {
    THREAD.with(Cell::get)
}

/// Whether [`CountingAllocator`] has seen an allocation, i.e. is the `#[global_allocator]`.
pub fn is_installed() -> bool {
    if !INSTALLED.load(Ordering::Relaxed) {
        // Give it a chance to see one.
        drop(std::hint::black_box(Box::new(0u8)));
    }
    INSTALLED.load(Ordering::Relaxed)
}

/// Runs `f` and returns how many allocations the current thread made while it ran. The value
/// `f` returns is dropped after counting. Panics if [`CountingAllocator`] is not the global
/// allocator (every count would be a meaningless 0).
#[track_caller]
pub fn count_allocs<R>(f: impl FnOnce() -> R) -> usize {
    count_allocs_with(f).0
}

/// Like [`count_allocs`], but hands back what `f` returned.
#[track_caller]
pub fn count_allocs_with<R>(f: impl FnOnce() -> R) -> (usize, R) {
    assert!(
        is_installed(),
        "CountingAllocator is not installed: add `#[global_allocator] static A: \
         CountingAllocator = CountingAllocator;` to this test binary"
    );
    let before = thread_allocations();
    let out = f();
    let n = thread_allocations() - before;
    (n, out)
}

/// The process's resident memory now, KiB (`VmRSS` of `/proc/self/status`): for memory-bound
/// tests that measure a whole stage rather than count allocations. Panics off Linux.
pub fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
