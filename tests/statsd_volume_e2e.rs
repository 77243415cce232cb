//! The StatsD path at production rates, end to end through the real servers: the SDK dual-emits
//! all four kinds over 40 tag sets (with an ms histogram) at 50,000 points/s for 20 s into the
//! reference statsd daemon (statsd 0.9.0, the kernel's default receive buffer) and into the OTLP
//! collector (rotel → VictoriaMetrics). Both sides must be exact: counters, up-down counters and
//! gauges per tag set, histogram count and sum per tag set, p90 in the same bucket; the daemon's
//! socket must drop nothing (the `drops` column of `/proc/net/udp`, the part of the host's
//! `RcvbufErrors` that is this daemon's).
//!
//! Two runs: into the shared lab's daemon (1 s flush, SDK flush 1 s), and into a daemon of the
//! test's own with a 10 s flush (SDK flush at its 10 s default), where nobody else sends, so the
//! daemon's received line count is also checked against the SDK's sent count.
//!
//! `DUALMETRICS_E2E_POINTS_PER_S` and `DUALMETRICS_E2E_SECONDS` change the rate and the duration
//! (to look for the largest rate at which the StatsD side stays exact), `DUALMETRICS_E2E_PACING`
//! the pacing budget (`0`: every flush in one burst, as before pacing). Runs only with
//! `DUALMETRICS_E2E=1`.
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::lab::{e2e_lab, poll_until, Lab, PromClient, INGEST_TIMEOUT};

/// The two runs share two cores with everything else: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const TAG_SETS: u64 = 40;
const POLL: Duration = Duration::from_millis(500);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run_id(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("vol{tag}{}x{}", std::process::id(), nanos % 1_000_000_000)
}

/// The `drops` column of the UDP sockets bound to `port` (`/proc/net/udp`).
fn socket_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    let hex = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1)?.ends_with(&hex)).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}

/// The host's UDP `RcvbufErrors` (`/proc/net/snmp`).
fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").expect("/proc/net/snmp");
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (h, v) = (udp.next().unwrap(), udp.next().unwrap());
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap()
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned()
}

/// What the workload sent, per tag set.
#[derive(Default)]
struct Expected {
    counter: BTreeMap<String, f64>,
    level: BTreeMap<String, f64>,
    gauge: BTreeMap<String, f64>,
    count: BTreeMap<String, f64>,
    sum: BTreeMap<String, f64>,
    points: u64,
}

/// Emits four points per step (a counter add, an up-down add, a gauge value, an ms histogram
/// sample), tag set `step % 40`, paced by the clock at `points_per_s` for `seconds`.
fn emit(metrics: &DualMetrics, p: &str, points_per_s: u64, seconds: u64) -> Expected {
    let requests = metrics.counter(&format!("{p}.requests")).build().unwrap();
    let inflight = metrics.up_down_counter(&format!("{p}.inflight")).build().unwrap();
    let temp = metrics.gauge(&format!("{p}.temp")).build().unwrap();
    let latency = metrics.histogram(&format!("{p}.latency")).with_unit("ms").build().unwrap();
    let tags: Vec<String> = (0..TAG_SETS).map(|i| format!("t{i:02}")).collect();
    let steps_per_s = points_per_s / 4;
    let steps = steps_per_s * seconds;
    let mut e = Expected::default();
    let start = Instant::now();
    let mut behind_max = Duration::ZERO;
    for n in 0..steps {
        let due = Duration::from_secs_f64(n as f64 / steps_per_s as f64);
        let now = start.elapsed();
        if now < due {
            std::thread::sleep(due - now);
        } else {
            behind_max = behind_max.max(now - due);
        }
        let t = tags[(n % TAG_SETS) as usize].as_str();
        let attrs = [("ts", t)];
        let add = 1 + n % 3;
        requests.add(add, &attrs);
        let delta = if n % 2 == 0 { 3 } else { -1 };
        inflight.add(delta, &attrs);
        let g = (n % 1000) as f64;
        temp.record(g, &attrs);
        let v = (1 + (n * 7919) % 1000) as f64;
        latency.record(v, &attrs);
        *e.counter.entry(t.to_owned()).or_default() += add as f64;
        *e.level.entry(t.to_owned()).or_default() += delta as f64;
        e.gauge.insert(t.to_owned(), g);
        *e.count.entry(t.to_owned()).or_default() += 1.0;
        *e.sum.entry(t.to_owned()).or_default() += v;
        e.points += 4;
    }
    let took = start.elapsed();
    println!(
        "emitted {} points in {took:.1?} ({:.0}/s), at most {behind_max:.1?} behind schedule; load {}",
        e.points,
        e.points as f64 / took.as_secs_f64(),
        load()
    );
    e
}

/// Polls `promql` (a vector by `ts`) until it equals `expected`.
fn by_tag_set(store: &PromClient, promql: &str, expected: &BTreeMap<String, f64>) {
    let got = poll_until(INGEST_TIMEOUT, POLL, || {
        let got: BTreeMap<String, f64> = match store.query(promql) {
            Ok(samples) => samples
                .into_iter()
                .filter_map(|s| Some((s.labels.get("ts")?.clone(), s.value)))
                .collect(),
            Err(e) => return Err(e.to_string()),
        };
        if &got == expected {
            Ok(got)
        } else {
            let diff: Vec<_> = expected
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .take(3)
                .map(|(k, v)| format!("{k}: got {:?}, expected {v}", got.get(k)))
                .collect();
            let differ = expected.iter().filter(|(k, v)| got.get(*k) != Some(v)).count();
            Err(format!("{differ} of {} tag sets differ, e.g. {diff:?}", expected.len()))
        }
    });
    if let Err(e) = got {
        panic!("{promql} on {}: {e}", store.base_url());
    }
}

/// Every tag set's p90 from `promql`, polled until all 40 are there.
fn p90s(store: &PromClient, promql: &str) -> BTreeMap<String, f64> {
    poll_until(INGEST_TIMEOUT, POLL, || {
        let got: BTreeMap<String, f64> = store
            .query(promql)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| s.value.is_finite())
            .filter_map(|s| Some((s.labels.get("ts")?.clone(), s.value)))
            .collect();
        if got.len() == TAG_SETS as usize {
            Ok(got)
        } else {
            Err(format!("{} of {TAG_SETS} tag sets", got.len()))
        }
    })
    .unwrap_or_else(|e| panic!("{promql}: {e}"))
}

/// The explicit bucket (OpenTelemetry's default ms boundaries) that holds `v`.
fn bucket(v: f64) -> (f64, f64) {
    let b = dualmetrics::config::DEFAULT_HISTOGRAM_BOUNDARIES_MS;
    let hi = b.iter().position(|&x| v <= x).unwrap_or(b.len());
    (
        if hi == 0 { f64::NEG_INFINITY } else { b[hi - 1] },
        b.get(hi).copied().unwrap_or(f64::INFINITY),
    )
}

fn assert_statsd_side(vm: &PromClient, p: &str, e: &Expected) {
    let w = "[30m]";
    let c = format!("stats.counters.{p}.requests.count");
    by_tag_set(vm, &format!(r#"sum by (ts) (sum_over_time({{__name__="{c}"}}{w}))"#), &e.counter);
    let g = format!("stats.gauges.{p}");
    by_tag_set(vm, &format!(r#"last_over_time({{__name__="{g}.inflight"}}{w})"#), &e.level);
    by_tag_set(vm, &format!(r#"last_over_time({{__name__="{g}.temp"}}{w})"#), &e.gauge);
    let t = format!("stats.timers.{p}.latency");
    by_tag_set(
        vm,
        &format!(r#"sum by (ts) (sum_over_time({{__name__="{t}.count"}}{w}))"#),
        &e.count,
    );
    by_tag_set(vm, &format!(r#"sum by (ts) (sum_over_time({{__name__="{t}.sum"}}{w}))"#), &e.sum);
}

fn assert_otlp_side(vm: &PromClient, p: &str, e: &Expected) {
    let w = "[30m]";
    let last = |name: &str| format!(r#"sum by (ts) (last_over_time({{__name__="{name}"}}{w}))"#);
    by_tag_set(vm, &last(&format!("{p}.requests")), &e.counter);
    by_tag_set(vm, &last(&format!("{p}.inflight")), &e.level);
    by_tag_set(vm, &last(&format!("{p}.temp")), &e.gauge);
    by_tag_set(vm, &last(&format!("{p}.latency_count")), &e.count);
    by_tag_set(vm, &last(&format!("{p}.latency_sum")), &e.sum);
}

/// p90 of each tag set: StatsD's per-flush `upper_90` (averaged over the flushes) and the OTLP
/// histogram's, in the same bucket.
fn assert_p90(statsd_vm: &PromClient, otlp_vm: &PromClient, p: &str) {
    let legacy = p90s(
        statsd_vm,
        &format!(
            r#"avg by (ts) (avg_over_time({{__name__="stats.timers.{p}.latency.upper_90"}}[30m]))"#
        ),
    );
    let otlp = p90s(
        otlp_vm,
        &format!(
            r#"histogram_quantile(0.9, sum by (ts, le) (last_over_time({{__name__="{p}.latency_bucket"}}[30m])))"#
        ),
    );
    for (ts, l) in &legacy {
        let o = otlp[ts];
        assert_eq!(bucket(*l), bucket(o), "{ts}: StatsD upper_90 {l} vs OTLP p90 {o}");
    }
}

fn sdk(statsd: &str, otlp: &str, flush: Option<Duration>) -> DualMetrics {
    let mut b = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("volume")
        .with_statsd_address(statsd)
        .with_otlp_endpoint(otlp)
        .with_otlp_export_interval(Duration::from_secs(2));
    if let Ok(budget) = std::env::var("DUALMETRICS_E2E_PACING") {
        b = b.with_setting("statsd.pacing_bytes_per_ms", &budget);
    }
    if let Some(f) = flush {
        b = b.with_statsd_flush_interval(f);
    }
    b.build().expect("SDK config")
}

fn report(label: &str, metrics: &DualMetrics, drops: u64, host: u64) {
    let t = metrics.telemetry().statsd;
    println!(
        "{label}: lines {} in {} datagrams ({} bytes), largest flush {} datagrams, largest burst {}, \
         budget exceeded {}, send errors {}/{}, daemon socket drops {drops}, host RcvbufErrors +{host}, load {}",
        t.lines_sent,
        t.packets_sent,
        t.bytes_sent,
        t.max_flush_packets,
        t.largest_burst_packets,
        t.pacing_budget_exceeded,
        t.send_errors_queue_full,
        t.send_errors_socket,
        load()
    );
}

#[test]
fn dual_emission_at_50k_points_per_s_is_exact_on_both_sides_with_a_1_s_daemon_flush() {
    let Some(lab) = e2e_lab() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (rate, seconds) =
        (env_u64("DUALMETRICS_E2E_POINTS_PER_S", 50_000), env_u64("DUALMETRICS_E2E_SECONDS", 20));
    let p = run_id("a");
    let port = lab.statsd_addr().port();
    let (drops0, host0) = (socket_drops(port), rcvbuf_errors());
    // The SDK flushes as often as this daemon does.
    let metrics = sdk(
        &lab.statsd_addr().to_string(),
        &lab.rotel_grpc_endpoint(),
        Some(lab.statsd_flush_interval()),
    );
    let e = emit(&metrics, &p, rate, seconds);
    metrics.shutdown(Duration::from_secs(30)).expect("both pipelines flushed");
    let vm = lab.vm();
    assert_statsd_side(&vm, &p, &e);
    let (drops, host) = (socket_drops(port) - drops0, rcvbuf_errors() - host0);
    report(&format!("{rate} points/s, 1 s flush"), &metrics, drops, host);
    let t = metrics.telemetry().statsd;
    assert_eq!(
        (t.lines_dropped_socket, t.lines_dropped_queue_full, t.lines_dropped_oversize),
        (0, 0, 0)
    );
    assert_eq!(drops, 0, "the daemon's socket dropped datagrams");
    assert_otlp_side(&vm, &p, &e);
    assert_p90(&vm, &vm, &p);
}

#[test]
fn dual_emission_at_50k_points_per_s_is_exact_with_a_10_s_daemon_flush_and_the_daemon_counts_every_line(
) {
    let Some(shared) = e2e_lab() else { return };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (rate, seconds) =
        (env_u64("DUALMETRICS_E2E_POINTS_PER_S", 50_000), env_u64("DUALMETRICS_E2E_SECONDS", 20));
    // A daemon (and a VictoriaMetrics behind it) of this test's own, flushing every 10 s: nobody
    // else sends to it, so its received count is ours.
    let mut own: Lab = Lab::start_with(&[
        ("STATSD_FLUSH_MS", "10000"),
        ("LAB_COMPONENTS", "vm statsd"),
        ("LAB_SKIP_INSTALL", "1"),
    ])
    .expect("own statsd + vm");
    let p = run_id("b");
    let port = own.statsd_addr().port();
    let (drops0, host0) = (socket_drops(port), rcvbuf_errors());
    // The SDK at its default flush interval (10 s, as the daemon).
    let metrics = sdk(&own.statsd_addr().to_string(), &shared.rotel_grpc_endpoint(), None);
    let e = emit(&metrics, &p, rate, seconds);
    metrics.shutdown(Duration::from_secs(30)).expect("both pipelines flushed");
    let own_vm = own.vm();
    assert_statsd_side(&own_vm, &p, &e);
    let (drops, host) = (socket_drops(port) - drops0, rcvbuf_errors() - host0);
    report(&format!("{rate} points/s, 10 s flush"), &metrics, drops, host);
    let t = metrics.telemetry().statsd;
    assert_eq!(
        (t.lines_dropped_socket, t.lines_dropped_queue_full, t.lines_dropped_oversize),
        (0, 0, 0)
    );
    assert_eq!(drops, 0, "the daemon's socket dropped datagrams");
    // The daemon's own count of what it received equals what the SDK sent.
    let received =
        r#"sum(sum_over_time({__name__="stats.counters.statsd.metrics_received.count"}[30m]))"#;
    let got = poll_until(INGEST_TIMEOUT, POLL, || match own_vm.query_value(received) {
        Ok(Some(v)) if v == t.lines_sent as f64 => Ok(v),
        other => Err(format!("{other:?}, SDK sent {} lines", t.lines_sent)),
    });
    let packets =
        r#"sum(sum_over_time({__name__="stats.counters.statsd.packets_received.count"}[30m]))"#;
    println!(
        "daemon received {got:?} lines, {:?} packets; SDK sent {} lines in {} datagrams",
        own_vm.query_value(packets),
        t.lines_sent,
        t.packets_sent
    );
    got.expect("the daemon received every line the SDK sent");
    assert_otlp_side(&shared.vm(), &p, &e);
    assert_p90(&own_vm, &shared.vm(), &p);
    own.stop().expect("own lab stopped");
}
