//! The counting allocator, installed as this binary's global allocator.

use std::hint::black_box;

use dualmetrics_testkit::alloc::{
    allocations, count_allocs, count_allocs_with, is_installed, thread_allocations,
    CountingAllocator,
};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[test]
fn it_is_installed() {
    assert!(is_installed());
}

#[test]
fn counts_each_allocation_on_this_thread() {
    assert_eq!(count_allocs(|| black_box(1 + 1)), 0);
    assert_eq!(count_allocs(|| black_box(Box::new(7u64))), 1);
    assert_eq!(
        count_allocs(|| {
            let mut v = black_box(Vec::<u64>::with_capacity(1));
            v.extend([1, 2, 3]); // grows: realloc
            v
        }),
        2
    );
    let (n, s) = count_allocs_with(|| format!("{}-{}", black_box("a"), black_box(1)));
    assert_eq!((n, s.as_str()), (1, "a-1"));
}

#[test]
fn reuse_of_a_buffer_is_free() {
    let mut buf = String::with_capacity(64);
    let n = count_allocs(|| {
        for i in 0..10 {
            buf.clear();
            buf.push_str(black_box("metric:"));
            buf.push(char::from(b'0' + i));
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn other_threads_do_not_count() {
    let before_total = allocations();
    let n = count_allocs(|| {
        // The spawn itself allocates on this thread; measure the other thread's work apart.
        let handle = std::thread::spawn(|| {
            let before = thread_allocations();
            for _ in 0..100 {
                black_box(vec![0u8; 32]);
            }
            thread_allocations() - before
        });
        handle.join().unwrap()
    });
    assert!(n < 100, "spawning counted {n}, the thread's 100 must not be");
    assert!(allocations() - before_total >= 100);
}
