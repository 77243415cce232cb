//! Same-series emits from 1 and 2 threads (barrier start; wall time from the first start to the
//! last end), total Mops/s, as in `shared/PERF-ANCHORS.md` "Multi-thread scaling".
//!
//! `cargo run --release --example scaling`
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dualmetrics::Mode;
use dualmetrics_testkit::OtlpGrpcReceiver;

#[path = "../benches/support/mod.rs"]
mod support;
use support::*;

const OPS: u64 = 10_000_000;

#[repr(align(128))]
#[derive(Default)]
struct Padded(std::sync::atomic::AtomicU64);

/// Cache-padded counter slots; a thread always uses the slot it was assigned on first use.
#[derive(Default)]
struct Striped([Padded; 8]);

impl Striped {
    #[inline]
    fn add(&self, v: u64) {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local!(static SLOT: usize = NEXT.fetch_add(1, Relaxed) % 8);
        let i = SLOT.with(|s| *s);
        self.0[i].0.fetch_add(v, Relaxed);
    }
}

fn run<F: Fn() + Send + Sync + 'static>(threads: usize, f: Arc<F>) -> f64 {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (b, f) = (Arc::clone(&barrier), Arc::clone(&f));
            std::thread::spawn(move || {
                b.wait();
                for _ in 0..OPS {
                    f();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    (threads as u64 * OPS) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn case<F: Fn() + Send + Sync + 'static>(name: &str, f: F) {
    let f = Arc::new(f);
    let one = run(1, Arc::clone(&f));
    let two = run(2, f);
    println!("| {name} | {one:.1} | {two:.1} | {:.2} |", two / one);
}

fn main() {
    let drain = UdpDrain::start();
    let otlp = OtlpGrpcReceiver::start();
    let (provider, meter) = otel_provider();
    let attrs = attrs();
    let dm = dualmetrics(Mode::Dual, drain.addr(), otlp.local_addr());
    let tags: &'static [(&str, &str)] = &TAGS;

    println!("| case (same series from every thread) | 1 thread Mops/s | 2 threads Mops/s | 2/1 |");
    println!("|---|---:|---:|---:|");
    let a = Arc::new(std::sync::atomic::AtomicU64::new(0));
    case("atomic fetch_add (floor)", move || {
        a.fetch_add(black_box(1), std::sync::atomic::Ordering::Relaxed);
    });
    let c = meter.u64_counter("scaling.counter").build();
    let at = attrs.clone();
    let c2 = c.clone();
    case("otel counter_add_3attrs", move || c2.add(black_box(1), &at));
    let bc = c.bind(&attrs);
    case("otel counter_bound", move || bc.add(black_box(1)));
    // Two contended cache lines per call: a separate atomic (as the StatsD cell) + OTel bound.
    let cell = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bc2 = c.bind(&attrs);
    case("atomic + otel counter_bound (two hot lines)", move || {
        cell.fetch_add(black_box(1), std::sync::atomic::Ordering::Relaxed);
        bc2.add(black_box(1));
    });
    // Prototype for the lead: the StatsD cell striped over cache-padded slots (one per thread
    // slot, summed by the flusher), so only OTel's line is contended.
    let striped = Arc::new(Striped::default());
    let bc3 = c.bind(&attrs);
    case("striped atomic + otel counter_bound (prototype)", move || {
        striped.add(black_box(1));
        bc3.add(black_box(1));
    });
    let h = meter.f64_histogram("scaling.histogram").build();
    let bh = h.bind(&attrs);
    case("otel histogram_bound", move || bh.record(black_box(12.5)));
    let at = attrs.clone();
    case("otel histogram_3attrs", move || h.record(black_box(12.5), &at));

    let dc = dm.counter("scaling.counter").build().unwrap();
    let dbc = dc.bind(tags).unwrap();
    case("dualmetrics dual counter_3tags", move || dc.add(black_box(1), tags));
    case("dualmetrics dual counter_bound", move || dbc.add(black_box(1)));
    let dh = dm.histogram("scaling.histogram").build().unwrap();
    let dbh = dh.bind(tags).unwrap();
    case("dualmetrics dual histogram_3tags", move || dh.record(black_box(12.5), tags));
    case("dualmetrics dual histogram_bound", move || dbh.record(black_box(12.5)));
    let t = dm.telemetry();
    eprintln!("dualmetrics StatsD samples dropped (buffer full): {}", t.statsd.samples_sampled_out);
    let _ = provider.shutdown();
    let _ = dm.shutdown(Duration::from_secs(5));
}
