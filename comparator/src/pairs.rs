//! What to compare: pairs of queries, one per side, with the semantics needed to compare them.
//!
//! Pairs come from a TOML file ([`load_pairs_file`]) or are generated from the SDK's catalog
//! ([`generate_from_catalog`]) with the naming rules of [`dualmetrics_model::naming_map`].
//!
//! Queries may contain `$step` and `$window`, replaced at run time by the grid step and the
//! rate window (`10s`, `1m`), so one pair file works at any resolution.
//!
//! # Pair file
//! ```toml
//! [[pair]]
//! name = "checkout requests"
//! kind = "counter"                 # counter | gauge | quantile | mean
//! legacy = "seriesByTag('name=stats.counters.svc.http.requests.count')"
//! new = "http_requests_total"
//! # optional:
//! legacy_form = "delta"            # delta | cumulative | level (defaults depend on kind)
//! new_form = "cumulative"
//! legacy_unit = "ms"               # time units convert (the new side is scaled to the legacy one)
//! new_unit = "s"
//! tolerance = { abs = 0.5, rel = 0.001 }
//! buckets = [0, 5, 10, 25, 50]     # quantile: bucket upper bounds in the new side's unit
//! group_by = ["code", "route"]     # compare per tag set; other labels are summed away
//! new_group_by = ["code", "http_route"]   # the same keys as the new side names them
//! legacy_matchers = { service = "checkout" }      # added to every selector / seriesByTag
//! new_matchers = { service_name = "checkout" }
//! ```
use std::collections::BTreeMap;
use std::path::Path;

use dualmetrics_model::naming_map::{
    histogram_series, otel_label, otel_series_base, timer_percentile_stat, GraphiteNaming,
    HistogramPart,
};
use dualmetrics_model::{MetricKind, Unit};
use serde::{Deserialize, Serialize};

use crate::error::CompareError;
use crate::scope::{graphite_with, is_graphite, promql_with, DEFAULT_SERVICE_LABEL};

/// What a pair measures, which decides how both sides are normalised and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// Counts: both sides become running totals since the start of the range.
    Counter,
    /// A level (gauge, up-down counter): the last value in each step.
    Gauge,
    /// A percentile or maximum vs `histogram_quantile`: tolerance is the holding bucket's width.
    Quantile,
    /// A mean vs `increase(sum)/increase(count)`.
    Mean,
}

impl PairKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            PairKind::Counter => "counter",
            PairKind::Gauge => "gauge",
            PairKind::Quantile => "quantile",
            PairKind::Mean => "mean",
        }
    }

    /// The tolerance used when a pair does not set one.
    pub fn default_tolerance(self) -> Tolerance {
        match self {
            PairKind::Counter => Tolerance { abs: 0.5, rel: 1e-3 },
            PairKind::Gauge => Tolerance { abs: 1e-9, rel: 1e-9 },
            PairKind::Quantile => Tolerance { abs: 1e-9, rel: 1e-9 },
            PairKind::Mean => Tolerance { abs: 1e-9, rel: 1e-3 },
        }
    }

    fn default_forms(self) -> (Form, Form) {
        match self {
            PairKind::Counter => (Form::Delta, Form::Cumulative),
            _ => (Form::Level, Form::Level),
        }
    }
}

/// What the points a side returns mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Each point is a count for its own interval (StatsD per-flush counts, `sum_over_time`).
    Delta,
    /// Each point is a cumulative counter value (OTLP cumulative sums, raw `_total`).
    Cumulative,
    /// Each point is a level (gauge, percentile, mean).
    Level,
}

/// Allowed difference: a point is within tolerance when `|a - b| <= abs + rel * |legacy|`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Absolute part, in the legacy side's unit.
    #[serde(default)]
    pub abs: f64,
    /// Relative part (0.001 = 0.1 %).
    #[serde(default)]
    pub rel: f64,
}

/// One comparison: a legacy query, a new query and how to read them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    /// Name shown in reports.
    pub name: String,
    /// What is measured.
    pub kind: PairKind,
    /// Query for the legacy backend (Graphite target or PromQL).
    pub legacy: String,
    /// Query for the new backend (PromQL).
    pub new: String,
    /// Meaning of the legacy points.
    pub legacy_form: Form,
    /// Meaning of the new points.
    pub new_form: Form,
    /// Factor that converts new values into the legacy unit (s → ms: 1000).
    pub new_scale: f64,
    /// Unit of the compared values (the legacy side's), for reports.
    pub unit: String,
    /// Allowed difference.
    pub tolerance: Tolerance,
    /// Quantile pairs: bucket upper bounds in the new side's unit.
    pub buckets: Vec<f64>,
    /// Legacy label keys to compare per tag set (empty: match series by all labels).
    pub group_by: Vec<String>,
    /// The same keys as the new side names them (same order as `group_by`).
    pub new_group_by: Vec<String>,
}

/// OpenTelemetry's default explicit bucket bounds.
pub const DEFAULT_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairSpec {
    name: String,
    kind: PairKind,
    legacy: String,
    new: String,
    legacy_form: Option<Form>,
    new_form: Option<Form>,
    legacy_unit: Option<String>,
    new_unit: Option<String>,
    tolerance: Option<Tolerance>,
    buckets: Option<Vec<f64>>,
    #[serde(default)]
    group_by: Vec<String>,
    new_group_by: Option<Vec<String>>,
    #[serde(default)]
    legacy_matchers: BTreeMap<String, String>,
    #[serde(default)]
    new_matchers: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairFile {
    #[serde(default)]
    pair: Vec<PairSpec>,
}

/// The factor that converts a value in `from` into `to` (`s` → `ms`: 1000). Equal or unknown
/// units give 1; two different time units convert.
pub fn unit_factor(from: &str, to: &str) -> Result<f64, String> {
    if from == to {
        return Ok(1.0);
    }
    match (Unit::new(from).millis_factor(), Unit::new(to).millis_factor()) {
        (Some(f), Some(t)) => Ok(f / t),
        _ => Err(format!("cannot convert unit {from:?} into {to:?}")),
    }
}

/// Parses a pair file's text; `path` only names it in errors.
pub fn parse_pairs(text: &str, path: &str) -> Result<Vec<Pair>, CompareError> {
    let err = |message: String| CompareError::Pairs { path: path.to_owned(), message };
    let file: PairFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
    if file.pair.is_empty() {
        return Err(err("no [[pair]] entries".to_owned()));
    }
    let mut out = Vec::with_capacity(file.pair.len());
    for spec in file.pair {
        let (lf, nf) = spec.kind.default_forms();
        let legacy_unit = spec.legacy_unit.clone().unwrap_or_default();
        let new_unit = spec.new_unit.clone().unwrap_or_else(|| legacy_unit.clone());
        let new_scale = unit_factor(&new_unit, &legacy_unit)
            .map_err(|m| err(format!("pair {:?}: {m}", spec.name)))?;
        let new_group_by = spec.new_group_by.unwrap_or_else(|| spec.group_by.clone());
        if new_group_by.len() != spec.group_by.len() {
            return Err(err(format!(
                "pair {:?}: group_by and new_group_by differ in length",
                spec.name
            )));
        }
        let legacy = if is_graphite(&spec.legacy) {
            graphite_with(&spec.legacy, &spec.legacy_matchers)
        } else {
            promql_with(&spec.legacy, &spec.legacy_matchers)
        }
        .map_err(|m| err(format!("pair {:?}: legacy_matchers: {m}", spec.name)))?;
        let new = promql_with(&spec.new, &spec.new_matchers)
            .map_err(|m| err(format!("pair {:?}: new_matchers: {m}", spec.name)))?;
        out.push(Pair {
            name: spec.name,
            kind: spec.kind,
            legacy,
            new,
            legacy_form: spec.legacy_form.unwrap_or(lf),
            new_form: spec.new_form.unwrap_or(nf),
            new_scale,
            unit: legacy_unit,
            tolerance: spec.tolerance.unwrap_or_else(|| spec.kind.default_tolerance()),
            buckets: spec.buckets.unwrap_or_else(|| DEFAULT_BUCKETS.to_vec()),
            group_by: spec.group_by,
            new_group_by,
        });
    }
    Ok(out)
}

/// Reads and parses a pair file.
pub fn load_pairs_file(path: &Path) -> Result<Vec<Pair>, CompareError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|source| CompareError::Io { path: p.clone(), source })?;
    parse_pairs(&text, &p)
}

/// The SDK's catalog, read through the type the SDK writes it with.
pub use dualmetrics_model::catalog::{Catalog, CatalogInstrument};

/// Parses the catalog JSON; `path` only names it in errors.
pub fn parse_catalog(text: &str, path: &str) -> Result<Catalog, CompareError> {
    let err = |message: String| CompareError::Catalog { path: path.to_owned(), message };
    let catalog: Catalog = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
    catalog.check_version().map_err(err)?;
    Ok(catalog)
}

/// Which query language the legacy side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyApi {
    /// Graphite render API targets (`seriesByTag(...)`, plain paths).
    Graphite,
    /// PromQL over the Graphite names (VictoriaMetrics stores both).
    Prometheus,
}

/// How to derive pairs from a catalog.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The StatsD daemon's Graphite naming.
    pub graphite: GraphiteNaming,
    /// Query language of the legacy side.
    pub legacy_api: LegacyApi,
    /// Whether the new store applies Prometheus naming (`_total`, unit words, `_` for dots).
    pub prometheus_naming: bool,
    /// The daemon's `percentThreshold` list (one `upper_N` pair each). Defaults to `[90]`.
    pub percentiles: Vec<f64>,
    /// The new side's label holding the catalog's service (`None`: no restriction). Defaults
    /// to [`DEFAULT_SERVICE_LABEL`]. Applied only with `prometheus_naming`: without it the store
    /// keeps the attribute as `service.name`, which a PromQL matcher cannot name.
    pub service_label: Option<String>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            graphite: GraphiteNaming::default(),
            legacy_api: LegacyApi::Graphite,
            prometheus_naming: true,
            percentiles: vec![90.0],
            service_label: Some(DEFAULT_SERVICE_LABEL.to_owned()),
        }
    }
}

/// A PromQL selector for a metric name: bare when it is a valid identifier, otherwise
/// `{__name__="…"}` (dotted names).
pub fn promql_selector(name: &str) -> String {
    selector_with(name, &BTreeMap::new())
}

/// A PromQL selector for a metric name with equality matchers.
pub fn selector_with(name: &str, matchers: &BTreeMap<String, String>) -> String {
    let valid = name.chars().enumerate().all(|(i, c)| {
        c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
    });
    let ms: Vec<String> = matchers.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    match (valid && !name.is_empty(), ms.is_empty()) {
        (true, true) => name.to_owned(),
        (true, false) => format!("{name}{{{}}}", ms.join(",")),
        (false, true) => format!("{{__name__={name:?}}}"),
        (false, false) => format!("{{__name__={name:?},{}}}", ms.join(",")),
    }
}

fn by_clause(keys: &[String], extra: &[&str]) -> String {
    let mut all: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    all.extend(keys.iter().cloned());
    if all.is_empty() {
        String::new()
    } else {
        format!(" by ({})", all.join(", "))
    }
}

struct Gen<'a> {
    opts: &'a GenerateOptions,
    tagged: bool,
    /// The catalog's global tags: every legacy series of this service carries them.
    legacy_tags: &'a BTreeMap<String, String>,
    /// The new side's service matcher.
    new_matchers: BTreeMap<String, String>,
}

impl Gen<'_> {
    /// The legacy query for a Graphite name: a `seriesByTag` with the service's global tags, a
    /// plain path, or a plain PromQL selector (raw samples are fetched).
    fn legacy(&self, graphite_name: &str) -> String {
        match self.opts.legacy_api {
            LegacyApi::Graphite if self.tagged => {
                let mut args = vec![format!("'name={graphite_name}'")];
                // Values as the daemon stores them (`/` → `-`, …).
                args.extend(self.legacy_tags.iter().map(|(k, v)| {
                    format!("'{k}={}'", dualmetrics_model::naming_map::graphite_sanitize(v))
                }));
                format!("seriesByTag({})", args.join(","))
            }
            LegacyApi::Graphite => graphite_name.to_owned(),
            LegacyApi::Prometheus => selector_with(graphite_name, self.legacy_tags),
        }
    }

    /// A new-side selector restricted to the catalog's service.
    fn new_sel(&self, name: &str) -> String {
        selector_with(name, &self.new_matchers)
    }
}

/// Names of the SDK's own metrics (`dualmetrics.sdk.*`). They describe each pipeline's own
/// traffic (bytes, packets, exports), so the two sides never agree by design and no pair is made.
pub const SDK_SELF_METRICS_PREFIX: &str = "dualmetrics.sdk.";

/// Derives the pairs of every `dual` instrument. Returns the pairs and one note per instrument
/// left out (and why).
///
/// Per instrument: [`skipped`] says why it has no pairs, otherwise [`InstrumentPairs`] builds
/// them by kind (a counter, a gauge, a timer's count/sum/mean/quantiles, a histogram's sum).
pub fn generate_from_catalog(
    catalog: &Catalog,
    opts: &GenerateOptions,
) -> (Vec<Pair>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut notes = Vec::new();
    for inst in &catalog.instruments {
        if let Some(why) = skipped(inst) {
            notes.push(why);
            continue;
        }
        let p = InstrumentPairs::new(catalog, inst, opts);
        match (inst.kind, inst.statsd_type.as_str()) {
            (MetricKind::Counter, _) => pairs.push(p.pair(
                "",
                PairKind::Counter,
                p.gen.legacy(&opts.graphite.counter_count(&p.key)),
                p.gen.new_sel(&p.base),
                1.0,
                &inst.unit,
            )),
            // Plain selectors: raw samples are fetched and tag sets summed here.
            (MetricKind::UpDownCounter | MetricKind::Gauge, _) => pairs.push(p.pair(
                "",
                PairKind::Gauge,
                p.gen.legacy(&opts.graphite.gauge(&p.key)),
                p.gen.new_sel(&p.base),
                1.0,
                &inst.unit,
            )),
            (MetricKind::Histogram, "ms") => pairs.extend(p.timer()),
            (MetricKind::Histogram, _) => {
                // The reference daemon counts `h`/`d` values as a counter: per flush, the sum.
                pairs.push(p.pair(
                    ".sum",
                    PairKind::Counter,
                    p.gen.legacy(&opts.graphite.counter_count(&p.key)),
                    p.gen.new_sel(&histogram_series(&p.base, HistogramPart::Sum)),
                    1.0,
                    &inst.unit,
                ));
                notes.push(format!(
                    "{}: statsd type {} is counted as a counter by the reference daemon; only its sum is compared",
                    inst.name, inst.statsd_type
                ));
            }
        }
    }
    (pairs, notes)
}

/// Why an instrument gets no pairs: SDK self-telemetry, or a mode with one side only.
fn skipped(inst: &CatalogInstrument) -> Option<String> {
    if inst.name.starts_with(SDK_SELF_METRICS_PREFIX) {
        return Some(format!(
            "{}: SDK self-telemetry counts each pipeline's own traffic, skipped",
            inst.name
        ));
    }
    (inst.mode != "dual")
        .then(|| format!("{}: mode {} has only one side, skipped", inst.name, inst.mode))
}

/// What every pair of one catalog instrument shares: its query builder, StatsD key, OTel
/// series base and group-by labels.
struct InstrumentPairs<'a> {
    inst: &'a CatalogInstrument,
    opts: &'a GenerateOptions,
    gen: Gen<'a>,
    /// The StatsD name.
    key: String,
    /// The OTel series name before histogram suffixes.
    base: String,
    /// The tag keys as the new side's labels.
    new_group_by: Vec<String>,
}

impl<'a> InstrumentPairs<'a> {
    fn new(catalog: &'a Catalog, inst: &'a CatalogInstrument, opts: &'a GenerateOptions) -> Self {
        let prom = opts.prometheus_naming;
        // Without Prometheus naming the store keeps the resource attribute as `service.name`,
        // which a PromQL label matcher cannot name: such pairs are not restricted to the service.
        let new_matchers = match (&opts.service_label, catalog.service.is_empty(), prom) {
            (Some(label), false, true) => {
                BTreeMap::from([(label.clone(), catalog.service.clone())])
            }
            _ => BTreeMap::new(),
        };
        let gen = Gen {
            opts,
            tagged: !inst.tag_keys.is_empty() || !catalog.global_tags.is_empty(),
            legacy_tags: &catalog.global_tags,
            new_matchers,
        };
        let otel = inst.otel_name_or_name().to_owned();
        InstrumentPairs {
            inst,
            opts,
            gen,
            key: catalog.statsd_name_of(inst),
            base: otel_series_base(&otel, &inst.unit, inst.kind, prom),
            new_group_by: inst.tag_keys.iter().map(|k| otel_label(k, prom)).collect(),
        }
    }

    /// One pair named after the instrument plus `suffix`, with the kind's default forms and
    /// tolerance.
    fn pair(
        &self,
        suffix: &str,
        kind: PairKind,
        legacy: String,
        new: String,
        scale: f64,
        unit: &str,
    ) -> Pair {
        Pair {
            name: format!("{}{suffix}", self.inst.name),
            kind,
            legacy,
            new,
            legacy_form: kind.default_forms().0,
            new_form: kind.default_forms().1,
            new_scale: scale,
            unit: unit.to_owned(),
            tolerance: kind.default_tolerance(),
            buckets: self.inst.buckets.clone().unwrap_or_else(|| DEFAULT_BUCKETS.to_vec()),
            group_by: self.inst.tag_keys.clone(),
            new_group_by: self.new_group_by.clone(),
        }
    }

    /// A StatsD timer's pairs: count, sum, mean, upper and each configured percentile (the
    /// quantiles from the histogram's buckets).
    fn timer(&self) -> Vec<Pair> {
        // StatsD timers are always milliseconds; the SDK converts other time units.
        let scale = Unit::new(self.inst.unit.as_str()).millis_factor().unwrap_or(1.0);
        let part = |p| self.gen.new_sel(&histogram_series(&self.base, p));
        let timer = |stat: &str| self.gen.legacy(&self.opts.graphite.timer(&self.key, stat));
        let by = by_clause(&self.new_group_by, &[]);
        let mean = format!(
            "sum{by} (increase({}[$window])) / sum{by} (increase({}[$window]))",
            part(HistogramPart::Sum),
            part(HistogramPart::Count)
        );
        let bucket_by = by_clause(&self.new_group_by, &["le"]);
        let quantile = |q: f64| {
            format!(
                "histogram_quantile({q}, sum{bucket_by} (increase({}[$window])))",
                part(HistogramPart::Bucket)
            )
        };
        let mut pairs = vec![
            self.pair(
                ".count",
                PairKind::Counter,
                timer("count"),
                part(HistogramPart::Count),
                1.0,
                "1",
            ),
            self.pair(
                ".sum",
                PairKind::Counter,
                timer("sum"),
                part(HistogramPart::Sum),
                scale,
                "ms",
            ),
            self.pair(".mean", PairKind::Mean, timer("mean"), mean, scale, "ms"),
            self.pair(".upper", PairKind::Quantile, timer("upper"), quantile(1.0), scale, "ms"),
        ];
        for p in &self.opts.percentiles {
            let stat = timer_percentile_stat(*p);
            let (name, legacy) = (format!(".{stat}"), timer(&stat));
            pairs.push(self.pair(
                &name,
                PairKind::Quantile,
                legacy,
                quantile(p / 100.0),
                scale,
                "ms",
            ));
        }
        pairs
    }
}

/// Replaces `$step` and `$window` in a query.
pub fn expand(query: &str, step_secs: i64, window_secs: i64) -> String {
    query.replace("$window", &format!("{window_secs}s")).replace("$step", &format!("{step_secs}s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"{"version":1,"service":"checkout","statsd_prefix":"svc",
      "global_tags":{"service":"checkout","env":"prod"},
      "instruments":[
       {"name":"http.requests","kind":"counter","unit":"1","description":"d","statsd_name":"svc.http.requests","statsd_type":"c","otel_name":"http.requests","tag_keys":["code","route"],"mode":"dual","temporality":"cumulative","rule":null},
       {"name":"http.latency","kind":"histogram","unit":"s","statsd_name":"svc.http.latency","statsd_type":"ms","otel_name":"http.latency","tag_keys":[],"mode":"dual"},
       {"name":"queue.depth","kind":"up_down_counter","unit":"1","statsd_type":"g","tag_keys":[],"mode":"dual"},
       {"name":"cpu.temp","kind":"gauge","unit":"Cel","statsd_type":"g","mode":"otlp"}]}"#;

    fn generated() -> (Vec<Pair>, Vec<String>) {
        let c = parse_catalog(CATALOG, "c.json").unwrap();
        generate_from_catalog(&c, &GenerateOptions::default())
    }

    #[test]
    fn counter_pair_uses_series_by_tag_and_total() {
        let (pairs, _) = generated();
        let p = &pairs[0];
        assert_eq!(
            p.legacy,
            "seriesByTag('name=stats.counters.svc.http.requests.count','env=prod','service=checkout')"
        );
        assert_eq!(p.new, r#"http_requests_total{service_name="checkout"}"#);
        assert_eq!(p.group_by, ["code", "route"]);
        assert_eq!((p.legacy_form, p.new_form), (Form::Delta, Form::Cumulative));
    }

    #[test]
    fn timer_in_seconds_is_scaled_to_milliseconds() {
        let (pairs, _) = generated();
        let sum = pairs.iter().find(|p| p.name == "http.latency.sum").unwrap();
        assert_eq!(sum.new, r#"http_latency_seconds_sum{service_name="checkout"}"#);
        assert_eq!(sum.new_scale, 1000.0);
        let q = pairs.iter().find(|p| p.name == "http.latency.upper_90").unwrap();
        assert_eq!(
            q.new,
            r#"histogram_quantile(0.9, sum by (le) (increase(http_latency_seconds_bucket{service_name="checkout"}[$window])))"#
        );
        assert_eq!(
            q.legacy,
            "seriesByTag('name=stats.timers.svc.http.latency.upper_90','env=prod','service=checkout')"
        );
    }

    #[test]
    fn up_down_counter_defaults_statsd_name_and_sums() {
        let (pairs, _) = generated();
        let g = pairs.iter().find(|p| p.name == "queue.depth").unwrap();
        assert!(g.legacy.starts_with("seriesByTag('name=stats.gauges.svc.queue.depth',"));
        assert_eq!(g.new, r#"queue_depth{service_name="checkout"}"#, "raw samples, summed here");
    }

    #[test]
    fn otlp_only_instruments_are_skipped_with_a_note() {
        let (pairs, notes) = generated();
        assert!(pairs.iter().all(|p| !p.name.starts_with("cpu.temp")));
        assert!(notes[0].contains("cpu.temp"));
    }

    #[test]
    fn dotted_names_and_promql_legacy_api() {
        let c = parse_catalog(CATALOG, "c.json").unwrap();
        let opts = GenerateOptions {
            legacy_api: LegacyApi::Prometheus,
            prometheus_naming: false,
            graphite: GraphiteNaming::legacy(),
            ..GenerateOptions::default()
        };
        let (pairs, _) = generate_from_catalog(&c, &opts);
        assert_eq!(
            pairs[0].legacy,
            r#"{__name__="stats_counts.svc.http.requests",env="prod",service="checkout"}"#
        );
        // OTel names kept as they are: `service.name` cannot be matched in PromQL, no scoping.
        assert_eq!(pairs[0].new, r#"{__name__="http.requests"}"#);
    }

    #[test]
    fn sdk_catalog_entry_with_extra_fields_parses() {
        let json = r#"{"version":1,"service":"checkout","statsd_prefix":"svc","global_tags":{"service":"checkout"},
          "instruments":[{"name":"http.requests","kind":"counter","unit":"1","description":"",
          "statsd_name":"svc.http.requests","statsd_type":"c","otel_name":"http.requests",
          "tag_keys":["route"],"mode":"dual","temporality":"cumulative","rule":"http.*","buckets":null,"series":3}]}"#;
        let c = parse_catalog(json, "sdk.json").unwrap();
        let opts = GenerateOptions { service_label: None, ..GenerateOptions::default() };
        let (pairs, _) = generate_from_catalog(&c, &opts);
        assert_eq!(pairs[0].new, "http_requests_total", "no service restriction asked");
    }

    #[test]
    fn sdk_self_metrics_in_a_catalog_get_no_pair() {
        let json = r#"{"version":1,"service":"checkout","statsd_prefix":"","global_tags":{},
          "instruments":[{"name":"dualmetrics.sdk.statsd.bytes.sent","kind":"counter","unit":"By",
          "description":"","statsd_name":"dualmetrics.sdk.statsd.bytes.sent","statsd_type":"c",
          "otel_name":"dualmetrics.sdk.statsd.bytes.sent","tag_keys":[],"mode":"dual"}]}"#;
        let c = parse_catalog(json, "sdk.json").unwrap();
        let (pairs, notes) = generate_from_catalog(&c, &GenerateOptions::default());
        assert!(pairs.is_empty(), "{pairs:?}");
        assert!(notes[0].contains("self-telemetry"), "{notes:?}");
    }

    #[test]
    fn catalog_version_is_checked() {
        assert!(parse_catalog(r#"{"version":2,"instruments":[]}"#, "x").is_err());
    }

    #[test]
    fn pair_file_units_give_scale_and_defaults() {
        let toml = r#"
            [[pair]]
            name = "lat"
            kind = "quantile"
            legacy = "a"
            new = "b"
            legacy_unit = "ms"
            new_unit = "s"
        "#;
        let p = &parse_pairs(toml, "p.toml").unwrap()[0];
        assert_eq!(p.new_scale, 1000.0);
        assert_eq!(p.buckets, DEFAULT_BUCKETS);
        assert_eq!(p.tolerance, PairKind::Quantile.default_tolerance());
    }

    #[test]
    fn pair_file_with_unknown_field_is_rejected() {
        let toml = "[[pair]]\nname='a'\nkind='gauge'\nlegacy='a'\nnew='b'\nlegcy_unit='ms'\n";
        let err = parse_pairs(toml, "p.toml").unwrap_err().to_string();
        assert!(err.contains("p.toml"), "{err}");
    }

    #[test]
    fn pair_file_matchers_restrict_each_side() {
        let toml = r#"
            [[pair]]
            name = "a"
            kind = "counter"
            legacy = "seriesByTag('name=stats.counters.a.count')"
            new = "sum by (code) (a_total)"
            legacy_matchers = { service = "checkout" }
            new_matchers = { service_name = "checkout" }
        "#;
        let p = &parse_pairs(toml, "p.toml").unwrap()[0];
        assert_eq!(p.legacy, "seriesByTag('name=stats.counters.a.count','service=checkout')");
        assert_eq!(p.new, r#"sum by (code) (a_total{service_name="checkout"})"#);
    }

    #[test]
    fn placeholders_expand() {
        assert_eq!(expand("increase(x[$window]) $step", 10, 60), "increase(x[60s]) 10s");
    }
}
