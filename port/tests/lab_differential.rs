//! Differential test of the translator on real data (gated by `DUALMETRICS_E2E=1`).
//!
//! One workload goes through the real pipelines twice over: (1) StatsD into the collector shim,
//! whose tee feeds the lab's reference statsd daemon (1 s flush → Graphite plaintext →
//! VictoriaMetrics) and whose OTLP export (with a mapping file for the dotted keys) goes through
//! vmagent-prom (Prometheus naming) into Prometheus; (2) the SDK in dual mode, StatsD straight to
//! the same daemon and OTLP/HTTP to the same vmagent-prom → Prometheus (prefix `…s`). Then, for
//! every target below that the translator marks **exact**, the original Graphite target is
//! evaluated by VictoriaMetrics' render API
//! (`/render`, which implements the Graphite functions natively) and the translated PromQL by
//! Prometheus' `query_range`, and the comparator (its adapters, alignment and verdicts, not new
//! ones) must find them equivalent. Targets the translator marks approximate or untranslatable
//! are listed in the output and not compared.
//!
//! Targets (60) cover, when the translator marks them exact: `seriesByTag`, `sumSeries`/`sum`,
//! `averageSeries`/`avg`, `maxSeries`, `minSeries`, `countSeries`, `diffSeries`, `divideSeries`,
//! `multiplySeries`, `groupByTags`, `groupByNode`, `groupByNodes`, `sumSeriesWithWildcards`,
//! `aliasByTags`, `aliasByNode`, `alias`, `aliasSub`, `scale`, `scaleToSeconds`, `offset`,
//! `absolute`, `asPercent`, `timeShift`, `removeBelowValue`, `removeAboveValue`,
//! `constantLine`, `threshold`, and the StatsD namespaces `stats.gauges.*`,
//! `stats.counters.*.count` / `.rate` and `stats.timers.*.{count,mean}`, over tagged series
//! (shim and SDK) and over dotted keys through the mapping file. Also tried, and skipped while
//! the translator calls them approximate or untranslatable: `movingAverage`, `movingMax`,
//! `summarize`, `perSecond`, `consolidateBy`, `derivative`, `highestMax`, `exclude`, `grep`.
//! Four controls (deliberately wrong PromQL) must come out divergent.
//!
//! Not here: `legendValue` (VictoriaMetrics 1.112's render API answers it with HTTP 400; the
//! translator only turns it into a legend anyway).
//!
//! Tolerances: levels (gauges and what is computed from them) use the comparator's gauge
//! tolerance; values computed with `rate()` from a counter are compared within 5 % (plus a
//! small absolute slack), because Prometheus' `rate()` over a window of the shim's exports and
//! the daemon's per-flush counts of a paced sender agree only to the pacing jitter of the
//! sender and the phase of the daemon's flush.
//!
//! Wall time: ~40 s of workload, a few seconds of ingestion, one comparison pass.
use dualmetrics::{DualMetrics, Mode, Protocol as SdkProtocol};
use dualmetrics_compare::pairs::{Form, Pair, PairKind, Tolerance, DEFAULT_BUCKETS};
use dualmetrics_compare::{
    compare_all, CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, TimeRange,
};
use dualmetrics_model::mapping::MappingFile;
use dualmetrics_port::{translate, Context, Semantics, Status};
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::lab::{e2e_lab, poll_until, INGEST_TIMEOUT, POLL_INTERVAL};
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the workload runs; the gauges change level half-way.
const RUN: Duration = Duration::from_secs(40);
/// One packet of every series per tick.
const TICK: Duration = Duration::from_millis(10);
/// The lab daemon's flush interval (`STATSD_FLUSH_MS=1000`).
const FLUSH_SECS: f64 = 1.0;
/// Comparison grid step and `rate()` window.
const STEP: i64 = 2;
const WINDOW: &str = "10s";

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// CPU gauge level of a host before and after the change.
fn cpu(host: &str, late: bool) -> f64 {
    let base = match host {
        "web1" => 10.0,
        "web2" => 20.0,
        _ => 60.0,
    };
    if late {
        base + 5.0
    } else {
        base
    }
}

fn tick_packet(p: &str, late: bool) -> String {
    let mut l = Vec::new();
    for h in ["web1", "web2", "web3"] {
        l.push(format!("{p}.cpu:{}|g|#host:{h}", cpu(h, late)));
    }
    for (h, e, n) in [("web1", "a", 1), ("web1", "b", 2), ("web2", "a", 3), ("web2", "b", 4)] {
        l.push(format!("{p}.hits:{n}|c|#host:{h},endpoint:{e}"));
        // dotted keys: dimensions in path nodes, mapped by the shim
        l.push(format!("{p}.{h}.{e}.req:{n}|c"));
    }
    l.push(format!("{p}.web1.mem:100|g\n{p}.web2.mem:300|g"));
    l.push(format!("{p}.lat:100|ms|#host:web1\n{p}.lat:250|ms|#host:web1"));
    l.join("\n")
}

fn mapping(p: &str) -> String {
    format!(
        "mappings:\n\
         - match: {p}.*.*.req\n  name: {p}_req\n  labels:\n    host: \"$1\"\n    endpoint: \"$2\"\n\
         - match: {p}.*.mem\n  name: {p}_mem\n  labels:\n    host: \"$1\"\n"
    )
}

/// A target, and optionally one group to compare (Graphite names a `groupByNode` result by the
/// node only, without tags, so such targets are compared one group at a time: `grep` with this
/// regex on the Graphite side, these label values on the PromQL side).
struct Case {
    target: String,
    group: Option<(&'static str, Vec<(&'static str, &'static str)>)>,
    /// Compare per value of these tags/labels (tagged results).
    by: Vec<&'static str>,
}

fn cases(p: &str) -> Vec<Case> {
    let cpu = format!("seriesByTag('name=stats.gauges.{p}.cpu')");
    let cpu1 = format!("seriesByTag('name=stats.gauges.{p}.cpu','host=web1')");
    let hits = format!("seriesByTag('name=stats.counters.{p}.hits.count')");
    let one = |t: String| Case { target: t, group: None, by: vec![] };
    let by_host = |t: String| Case { target: t, group: None, by: vec!["host"] };
    let group = |t: String, grep: &'static str, labels: Vec<(&'static str, &'static str)>| Case {
        target: t,
        group: Some((grep, labels)),
        by: vec![],
    };
    let mem1 = format!("stats.gauges.{p}.web1.mem");
    let mem2 = format!("stats.gauges.{p}.web2.mem");
    let mut v = vec![
        by_host(cpu.clone()),
        one(format!("sumSeries({cpu})")),
        one(format!("averageSeries({cpu})")),
        one(format!("maxSeries({cpu})")),
        one(format!("minSeries({cpu})")),
        one(format!("countSeries({cpu})")),
        by_host(format!("groupByTags({cpu}, 'sum', 'host')")),
        by_host(format!("aliasByTags({cpu}, 'host')")),
        one(format!("alias({cpu1}, 'cpu of web1')")),
        one(format!("scale({cpu1}, 2)")),
        one(format!("offset({cpu1}, 5)")),
        one(format!("absolute(offset({cpu1}, -50))")),
        one(format!("asPercent({cpu1}, sumSeries({cpu}))")),
        one(format!("timeShift({cpu1}, '10s')")),
        by_host(format!("removeBelowValue({cpu}, 15)")),
        by_host(format!("removeAboveValue({cpu}, 30)")),
        one(format!("movingAverage({cpu1}, '10s')")),
        one(format!("summarize({cpu1}, '10s', 'max')")),
        one("constantLine(42)".to_owned()),
        one(format!("sumSeries({hits})")),
        by_host(format!("groupByTags({hits}, 'sum', 'host')")),
        one(format!("sumSeries(seriesByTag('name=stats.counters.{p}.hits.count','endpoint=a'))")),
        one(format!("sumSeries(seriesByTag('name=stats.counters.{p}.hits.rate'))")),
        one(format!("perSecond(sumSeries(seriesByTag('name=stats.counters.{p}.hits.count')))")),
        one(format!("scaleToSeconds(sumSeries({hits}), 60)")),
        one(format!("seriesByTag('name=stats.timers.{p}.lat.count')")),
        one(format!("seriesByTag('name=stats.timers.{p}.lat.mean')")),
        // dotted keys through the mapping file
        one(format!("sumSeries(stats.counters.{p}.*.*.req.count)")),
        one(format!("sumSeries(stats.counters.{p}.web1.*.req.count)")),
        group(
            format!("groupByNode(stats.counters.{p}.*.*.req.count, 3, 'sum')"),
            "^web2$",
            vec![("host", "web2")],
        ),
        group(
            format!("groupByNode(stats.counters.{p}.*.*.req.count, 4, 'sum')"),
            "^b$",
            vec![("endpoint", "b")],
        ),
        group(
            format!("groupByNodes(stats.counters.{p}.*.*.req.count, 'sum', 3, 4)"),
            "^web1[.]b$",
            vec![("host", "web1"), ("endpoint", "b")],
        ),
        group(
            format!("sumSeriesWithWildcards(stats.counters.{p}.*.*.req.count, 4)"),
            "[.]web1[.]req",
            vec![("host", "web1")],
        ),
        group(format!("aliasByNode(stats.gauges.{p}.*.mem, 3)"), "^web2$", vec![("host", "web2")]),
        one(format!("sumSeries(stats.gauges.{p}.*.mem)")),
        one(format!("sum(stats.gauges.{p}.*.mem)")),
        one(format!("avg(stats.gauges.{p}.*.mem)")),
        one(format!("countSeries(stats.gauges.{p}.*.mem)")),
        one(mem1.clone()),
        one(format!("diffSeries({mem2}, {mem1})")),
        one(format!("divideSeries({mem2}, {mem1})")),
        one(format!("multiplySeries({mem2}, {mem1})")),
        one(format!("aliasSub({mem1}, 'web', 'host')")),
        one(format!("consolidateBy({mem1}, 'max')")),
        one(format!("derivative({mem1})")),
        one(format!("movingMax({cpu1}, 5)")),
        one(format!("timeShift({cpu1}, '20s')")),
        one("threshold(50)".to_owned()),
        by_host(format!("exclude({cpu}, 'web3')")),
        by_host(format!("grep({cpu}, 'web1')")),
        by_host(format!("highestMax({cpu}, 1)")),
    ];
    // the same through the SDK (tagged series only: the SDK has no dotted dimensions)
    let s = format!("{p}s");
    let scpu = format!("seriesByTag('name=stats.gauges.{s}.cpu')");
    let shits = format!("seriesByTag('name=stats.counters.{s}.hits.count')");
    v.extend([
        by_host(scpu.clone()),
        one(format!("sumSeries({scpu})")),
        one(format!("maxSeries({scpu})")),
        by_host(format!("groupByTags({scpu}, 'sum', 'host')")),
        one(format!("timeShift(seriesByTag('name=stats.gauges.{s}.cpu','host=web1'), '10s')")),
        one(format!("sumSeries({shits})")),
        by_host(format!("groupByTags({shits}, 'sum', 'host')")),
        one(format!("seriesByTag('name=stats.timers.{s}.lat.count')")),
        one(format!("seriesByTag('name=stats.timers.{s}.lat.mean')")),
    ]);
    v
}

/// The tolerance for a translation's semantics (see the module docs).
fn tolerance(s: &Semantics) -> Tolerance {
    fn rated(s: &Semantics) -> bool {
        match s {
            Semantics::CountPerInterval { .. }
            | Semantics::SumPerInterval { .. }
            | Semantics::PerSecond => true,
            Semantics::Across { of, .. }
            | Semantics::OverTime { of, .. }
            | Semantics::Derived { of, .. } => rated(of),
            _ => false,
        }
    }
    if rated(s) {
        Tolerance { abs: 0.5, rel: 0.05 }
    } else {
        PairKind::Gauge.default_tolerance()
    }
}

#[test]
fn exact_translations_agree_with_graphite_on_live_data() {
    let Some(lab) = e2e_lab() else { return };
    assert_eq!(
        (lab.statsd_flush_interval(), lab.var("STATSD_LEGACY_NAMESPACE")),
        (Duration::from_secs_f64(FLUSH_SECS), Some("false")),
        "the workload and the targets assume the lab's default daemon (1 s flush, legacyNamespace false)"
    );
    let p = format!(
        "dt{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping_path = dir.path().join("mapping.yml");
    std::fs::write(&mapping_path, mapping(&p)).unwrap();

    // 1. the workload, through the shim: tee → daemon → VM Graphite; OTLP → vmagent → Prometheus
    let mut cfg = ShimConfig::loopback();
    cfg.aggregate.flush_interval_ms = 500;
    cfg.export.protocol = Protocol::Http;
    cfg.export.endpoint = lab.prometheus_otlp_url();
    cfg.export.self_telemetry = false;
    cfg.tee.target = Some(lab.statsd_addr().to_string());
    cfg.mapping.file = Some(mapping_path.clone());
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // the SDK, dual: StatsD straight to the daemon, OTLP/HTTP to vmagent-prom → Prometheus
    let sdk = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("lab-differential")
        .with_statsd_address(&lab.statsd_addr().to_string())
        .with_statsd_flush_interval(TICK)
        .with_otlp_endpoint(&lab.prometheus_otlp_url())
        .with_otlp_protocol(SdkProtocol::HttpProtobuf)
        .with_otlp_export_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let s = format!("{p}s");
    let sdk_cpu = sdk.gauge(&format!("{s}.cpu")).build().unwrap();
    let sdk_hits = sdk.counter(&format!("{s}.hits")).build().unwrap();
    let sdk_lat = sdk.histogram(&format!("{s}.lat")).with_unit("ms").build().unwrap();
    let t0 = unix_now();
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < RUN {
        let late = started.elapsed() >= RUN / 2;
        sock.send_to(tick_packet(&p, late).as_bytes(), addr).unwrap();
        for h in ["web1", "web2", "web3"] {
            sdk_cpu.record(cpu(h, late), &[("host", h)]);
        }
        for (h, e, n) in [("web1", "a", 1), ("web1", "b", 2), ("web2", "a", 3), ("web2", "b", 4)] {
            sdk_hits.add(n, &[("host", h), ("endpoint", e)]);
        }
        sdk_lat.record(100.0, &[("host", "web1")]);
        sdk_lat.record(250.0, &[("host", "web1")]);
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let t_end = unix_now();
    // both sides hold the end of the workload (one daemon flush, one vmagent flush)
    let prom = lab.prometheus();
    let vm = lab.vm();
    poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || -> Result<(), String> {
        let last = |v: Option<f64>| v.unwrap_or(0.0);
        let legacy = vm
            .query_value(&format!(r#"max(timestamp({{__name__="stats.gauges.{p}.cpu"}}))"#))
            .map_err(|e| e.to_string())?;
        let new =
            prom.query_value(&format!("max(timestamp({p}_cpu))")).map_err(|e| e.to_string())?;
        let sdk_legacy = vm
            .query_value(&format!(r#"max(timestamp({{__name__="stats.gauges.{p}s.cpu"}}))"#))
            .map_err(|e| e.to_string())?;
        let sdk_new =
            prom.query_value(&format!("max(timestamp({p}s_cpu))")).map_err(|e| e.to_string())?;
        let want = (t_end - 1) as f64;
        if [legacy, new, sdk_legacy, sdk_new].into_iter().all(|v| last(v) >= want) {
            Ok(())
        } else {
            Err(format!("last legacy sample at {legacy:?}, last new at {new:?}, want {want}"))
        }
    })
    .unwrap();
    shim.shutdown().unwrap();
    sdk.shutdown(Duration::from_secs(10)).unwrap();

    // 2. translate every case; keep the exact ones
    let ctx = Context {
        flush_interval_secs: FLUSH_SECS,
        prometheus_naming: true,
        mapping: Some(MappingFile::load(&mapping_path).unwrap()),
        rate_interval: WINDOW.to_owned(),
        ..Context::default()
    };
    let mut pairs = Vec::new();
    let mut skipped = Vec::new();
    for c in cases(&p) {
        let t = translate(&c.target, &ctx).unwrap_or_else(|e| panic!("{}: {e}", c.target));
        let (Status::Exact, Some(promql)) = (&t.status, &t.promql) else {
            skipped.push(format!("{} [{}]", c.target, t.status.as_str()));
            continue;
        };
        let (legacy, new) = match c.group {
            None => (c.target.clone(), promql.clone()),
            Some((grep, labels)) => {
                let mut new = format!("({promql})");
                for (l, v) in labels {
                    new = format!(
                        r#"{new} and on({l}) label_replace(vector(1), "{l}", "{v}", "", "")"#
                    );
                }
                (format!("grep({}, '{grep}')", c.target), new)
            }
        };
        let semantics = t.semantics.clone().unwrap_or(Semantics::Level);
        pairs.push(Pair {
            name: c.target.clone(),
            kind: PairKind::Gauge,
            legacy,
            new,
            legacy_form: Form::Level,
            new_form: Form::Level,
            new_scale: 1.0,
            unit: t.unit.clone().unwrap_or_default(),
            tolerance: tolerance(&semantics),
            buckets: DEFAULT_BUCKETS.to_vec(),
            group_by: c.by.iter().map(|s| (*s).to_owned()).collect(),
            new_group_by: c.by.iter().map(|s| (*s).to_owned()).collect(),
        });
    }
    for s in &skipped {
        println!("not compared: {s}");
    }
    // Controls: deliberately wrong PromQL; the harness must call them divergent (proof that the
    // agreement above is not vacuous: a wrong factor, a lost time shift, a rate 10 % off under
    // the rate tolerance, a mapped label bound to the wrong value).
    let cpu1 = format!("seriesByTag('name=stats.gauges.{p}.cpu','host=web1')");
    let level = PairKind::Gauge.default_tolerance();
    let rated = Tolerance { abs: 0.5, rel: 0.05 };
    let controls = [
        (format!("scale({cpu1}, 2)"), format!(r#"{p}_cpu{{host="web1"}} * 3"#), level),
        (format!("timeShift({cpu1}, '10s')"), format!(r#"{p}_cpu{{host="web1"}}"#), level),
        (
            format!("sumSeries(seriesByTag('name=stats.counters.{p}.hits.count'))"),
            format!("sum(rate({p}_hits_total[{WINDOW}])) * 1.1"),
            rated,
        ),
        (
            format!("grep(groupByNode(stats.counters.{p}.*.*.req.count, 3, 'sum'), '^web2$')"),
            format!(r#"sum(rate({p}_req_total{{host="web1"}}[{WINDOW}]))"#),
            rated,
        ),
    ];
    let n_cases = pairs.len();
    for (legacy, new, tolerance) in controls {
        pairs.push(Pair {
            name: format!("control: {legacy} vs {new}"),
            kind: PairKind::Gauge,
            legacy,
            new,
            legacy_form: Form::Level,
            new_form: Form::Level,
            new_scale: 1.0,
            unit: String::new(),
            tolerance,
            buckets: DEFAULT_BUCKETS.to_vec(),
            group_by: vec![],
            new_group_by: vec![],
        });
    }

    // 3. evaluate both sides through the comparator's adapters and compare
    let url = |u: String| url::Url::parse(&u).unwrap();
    let legacy = GraphiteAdapter::new(HttpConfig::new(url(lab.vm_url())))
        .unwrap()
        .with_storage_step(Some(format!("{}s", FLUSH_SECS as i64)));
    let new = PrometheusAdapter::new(HttpConfig::new(url(lab.prometheus_url()))).unwrap();
    // skip the first 15 s: rate() and the moving windows need history on both sides
    let start = (t0 + 15) / STEP * STEP;
    let settings = CompareSettings {
        range: TimeRange { start, end: t_end, step: STEP },
        skip_recent: 0,
        window_secs: 10,
        ..CompareSettings::default()
    };
    let mut rows = compare_all(&pairs, &legacy, &new, &settings);
    let control_rows = rows.split_off(n_cases);
    for r in &control_rows {
        let v = r.outcome.verdict.as_str();
        println!("{v:>12}  {}\n              {}", r.name, r.outcome.explanation);
        assert_eq!(v, "divergent", "{}: {}", r.name, r.outcome.explanation);
    }
    let mut failed = Vec::new();
    for r in &rows {
        let v = r.outcome.verdict.as_str();
        println!(
            "{v:>12}  {}\n              new: {}\n              {}",
            r.name, r.new_query, r.outcome.explanation
        );
        if v != "equivalent" {
            failed.push(format!("{}: {v}: {}", r.name, r.outcome.explanation));
        }
    }
    println!("{} compared, {} not exact", rows.len(), skipped.len());
    assert!(rows.len() >= 20, "too few exact translations to compare: {skipped:#?}");
    assert!(
        failed.is_empty(),
        "exact translations that disagree with Graphite:\n{}",
        failed.join("\n")
    );
}
