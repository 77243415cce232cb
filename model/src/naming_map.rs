//! How each backend names the same instrument: the one mapping from a StatsD key and an OTel
//! instrument to the series names a Graphite store and a Prometheus-compatible store show.
//!
//! The comparator generates the queries of both sides with it, the translator (`port`) maps
//! Graphite paths to PromQL series with it, the shim names the series it translates, and the
//! demo's embedded stores name what they store. (The SDK does not: its catalog carries the names
//! as registered, and the readers apply this mapping.) Every function is pure.
//!
//! # Graphite names of the reference StatsD daemon (statsd 0.9.0, `backends/graphite`)
//! For a StatsD key `K` and the default `globalPrefix = "stats"`:
//!
//! | StatsD type | `legacyNamespace: false` | `legacyNamespace: true` (the daemon's default) |
//! |---|---|---|
//! | `c` (and `h`/`d`, which the daemon counts as counters) | `stats.counters.K.count` (sum per flush), `stats.counters.K.rate` (per second) | `stats_counts.K`, `stats.K` |
//! | `g` | `stats.gauges.K` | same |
//! | `ms` | `stats.timers.K.{count,sum,mean,upper,lower,upper_90,…}` | same |
//!
//! DogStatsD tags become Graphite tags, `name;k=v;k2=v2` (see [`graphite_tagged`]); a
//! VictoriaMetrics store turns them into labels.
//!
//! # OTLP → Prometheus names
//! With `-opentelemetry.usePrometheusNaming` (VictoriaMetrics and vmagent 1.112, which is also the
//! lab's OTLP front door of Prometheus) a name is split into words at `/ _ . - : ` and space,
//! the unit's word is appended unless the name already has it (`ms` → `milliseconds`, `s` →
//! `seconds`, `By` → `bytes`, `Cel` → `celsius`, `1` → nothing, `{…}` annotations → nothing),
//! `total` is moved to the end of monotonic counters, and the words are joined with `_`.
//! Histograms add `_bucket`, `_sum` and `_count` to that base name. Attribute keys become labels
//! with every character outside `[A-Za-z0-9_]` replaced by `_` (`service.name` → `service_name`).
//!
//! Without that flag VictoriaMetrics keeps OTel names as they are (`http.requests`,
//! `http.latency_bucket`) and keeps dots in labels. Newer VictoriaMetrics releases also append
//! `ratio` to gauges in unit `1`; 1.112 (observed in the lab) does not, and neither do we.
use crate::MetricKind;

/// The reference daemon's default `globalPrefix`.
pub const DEFAULT_GRAPHITE_GLOBAL_PREFIX: &str = "stats";

/// Graphite naming settings of the reference StatsD daemon's graphite backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphiteNaming {
    /// `graphite.legacyNamespace`: `true` gives `stats_counts.K` / `stats.K` for counters.
    pub legacy_namespace: bool,
    /// `graphite.globalPrefix`. Defaults to `stats`.
    pub global_prefix: String,
}

impl Default for GraphiteNaming {
    fn default() -> Self {
        GraphiteNaming {
            legacy_namespace: false,
            global_prefix: DEFAULT_GRAPHITE_GLOBAL_PREFIX.to_owned(),
        }
    }
}

impl GraphiteNaming {
    /// Settings for `legacyNamespace: true` with the default global prefix.
    pub fn legacy() -> Self {
        GraphiteNaming { legacy_namespace: true, ..Self::default() }
    }

    fn join(&self, parts: &[&str]) -> String {
        let mut out = String::new();
        for p in std::iter::once(self.global_prefix.as_str()).chain(parts.iter().copied()) {
            if p.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
        out
    }

    /// The per-flush count of counter `key`: `stats.counters.K.count`, or `stats_counts.K`.
    pub fn counter_count(&self, key: &str) -> String {
        if self.legacy_namespace {
            let prefix = if self.global_prefix.is_empty() {
                "stats_counts".to_owned()
            } else {
                format!("{}_counts", self.global_prefix)
            };
            format!("{prefix}.{key}")
        } else {
            self.join(&["counters", key, "count"])
        }
    }

    /// The per-second rate of counter `key`: `stats.counters.K.rate`, or `stats.K`.
    pub fn counter_rate(&self, key: &str) -> String {
        if self.legacy_namespace {
            self.join(&[key])
        } else {
            self.join(&["counters", key, "rate"])
        }
    }

    /// The gauge `key`: `stats.gauges.K` in both namespaces.
    pub fn gauge(&self, key: &str) -> String {
        self.join(&["gauges", key])
    }

    /// One statistic of timer `key`: `stats.timers.K.<stat>` (`count`, `sum`, `mean`, `upper`,
    /// `lower`, `upper_90`, …) in both namespaces.
    pub fn timer(&self, key: &str, stat: &str) -> String {
        self.join(&["timers", key, stat])
    }
}

/// The statistic name of timer percentile `p` (`90` → `upper_90`, `99.9` → `upper_99_9`), as the
/// reference daemon writes it.
pub fn timer_percentile_stat(p: f64) -> String {
    let s = format!("{p}");
    format!("upper_{}", s.replace('.', "_"))
}

/// The reference StatsD daemon's `sanitizeKeyName`, applied to names, tag keys and tag values
/// before it writes them to Graphite: whitespace runs become `_`, `/` becomes `-`, and every
/// character outside `[A-Za-z0-9_.;=-]` is removed (`route:/cart` is stored as `route=-cart`).
///
/// Idempotent, so the comparator can apply it to both sides before matching tag values.
pub fn graphite_sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match c {
            '/' => out.push('-'),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ';' | '=') => {
                out.push(c)
            }
            _ => {}
        }
    }
    out
}

/// A Graphite tagged series name: `name;k=v;…` with the tags sorted by key, as Graphite stores it.
/// Without tags the name is returned unchanged.
pub fn graphite_tagged(name: &str, tags: &[(&str, &str)]) -> String {
    let mut sorted: Vec<_> = tags.to_vec();
    sorted.sort_unstable();
    let mut out = name.to_owned();
    for (k, v) in sorted {
        out.push(';');
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The Prometheus word of a UCUM unit (`ms` → `milliseconds`), `None` for units that add no word
/// (`1`, empty, `{annotations}`); unknown units are used as they are.
pub fn prometheus_unit_word(unit: &str) -> Option<String> {
    let unit = unit.split('/').next().unwrap_or("").trim();
    if unit.is_empty() || unit.contains('{') {
        return None;
    }
    let word = match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => return None,
        other => other,
    };
    Some(word.to_owned())
}

fn per_unit_word(unit: &str) -> Option<&str> {
    let (_, per) = unit.split_once('/')?;
    let per = per.trim();
    if per.is_empty() || per.contains('{') {
        return None;
    }
    Some(match per {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    })
}

/// The Prometheus name of an OTel instrument as VictoriaMetrics' `-opentelemetry.usePrometheusNaming`
/// writes it. For a histogram this is the base name; add [`HistogramPart`] suffixes to it.
pub fn prometheus_name(otel_name: &str, unit: &str, kind: MetricKind) -> String {
    let mut words: Vec<String> = otel_name
        .split(['/', '_', '.', '-', ':', ' '])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(word) = prometheus_unit_word(unit) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if let Some(per) = per_unit_word(unit) {
        if !words.iter().any(|w| w == per) {
            words.push("per".to_owned());
            words.push(per.to_owned());
        }
    }
    if kind == MetricKind::Counter {
        words.retain(|w| w != "total");
        words.push("total".to_owned());
    }
    words.join("_")
}

/// A Prometheus label name for an OTel attribute key: characters outside `[A-Za-z0-9_]` become
/// `_`, and a leading digit gets a `key_` prefix.
pub fn prometheus_label(key: &str) -> String {
    let mut out: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// The three series of an explicit-bucket histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramPart {
    /// `<base>_bucket{le="…"}`: cumulative count per upper bound.
    Bucket,
    /// `<base>_sum`: cumulative sum of the recorded values.
    Sum,
    /// `<base>_count`: cumulative number of recorded values.
    Count,
}

impl HistogramPart {
    /// The suffix, with its leading underscore.
    pub fn suffix(self) -> &'static str {
        match self {
            HistogramPart::Bucket => "_bucket",
            HistogramPart::Sum => "_sum",
            HistogramPart::Count => "_count",
        }
    }
}

/// A histogram series name: `base` followed by the part's suffix (`x_bucket`, `x.y_sum`, …).
pub fn histogram_series(base: &str, part: HistogramPart) -> String {
    format!("{base}{}", part.suffix())
}

/// The series name a Prometheus-compatible store shows for an OTel instrument, in either naming
/// mode: `prometheus == true` applies [`prometheus_name`], otherwise the name is kept as it is.
pub fn otel_series_base(otel_name: &str, unit: &str, kind: MetricKind, prometheus: bool) -> String {
    if prometheus {
        prometheus_name(otel_name, unit, kind)
    } else {
        otel_name.to_owned()
    }
}

/// A label name in either naming mode (dots kept without Prometheus naming).
pub fn otel_label(key: &str, prometheus: bool) -> String {
    if prometheus {
        prometheus_label(key)
    } else {
        key.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphite_sanitize_rewrites_like_the_reference_daemon_and_is_idempotent() {
        assert_eq!(graphite_sanitize("/cart"), "-cart");
        assert_eq!(graphite_sanitize("a b\t c"), "a_b_c");
        assert_eq!(graphite_sanitize("héllo:x"), "hllox");
        for s in ["/cart/:id", "a b", "ok.value-1"] {
            let once = graphite_sanitize(s);
            assert_eq!(graphite_sanitize(&once), once);
        }
    }

    #[test]
    fn counter_names_without_legacy_namespace() {
        let g = GraphiteNaming::default();
        assert_eq!(g.counter_count("svc.http.requests"), "stats.counters.svc.http.requests.count");
        assert_eq!(g.counter_rate("svc.http.requests"), "stats.counters.svc.http.requests.rate");
    }

    #[test]
    fn counter_names_with_legacy_namespace() {
        let g = GraphiteNaming::legacy();
        assert_eq!(g.counter_count("svc.hits"), "stats_counts.svc.hits");
        assert_eq!(g.counter_rate("svc.hits"), "stats.svc.hits");
    }

    #[test]
    fn gauges_and_timers_are_the_same_in_both_namespaces() {
        for g in [GraphiteNaming::default(), GraphiteNaming::legacy()] {
            assert_eq!(g.gauge("q.depth"), "stats.gauges.q.depth");
            assert_eq!(g.timer("lat", "upper_90"), "stats.timers.lat.upper_90");
        }
    }

    #[test]
    fn empty_global_prefix_is_left_out() {
        let g = GraphiteNaming { legacy_namespace: false, global_prefix: String::new() };
        assert_eq!(g.gauge("x"), "gauges.x");
    }

    #[test]
    fn percentile_stat_names() {
        assert_eq!(timer_percentile_stat(90.0), "upper_90");
        assert_eq!(timer_percentile_stat(99.9), "upper_99_9");
    }

    #[test]
    fn graphite_tags_are_sorted() {
        assert_eq!(
            graphite_tagged("a.count", &[("route", "/x"), ("code", "200")]),
            "a.count;code=200;route=/x"
        );
        assert_eq!(graphite_tagged("a", &[]), "a");
    }

    #[test]
    fn monotonic_counter_gets_total() {
        assert_eq!(
            prometheus_name("http.server.requests", "1", MetricKind::Counter),
            "http_server_requests_total"
        );
    }

    #[test]
    fn unit_word_is_not_duplicated() {
        assert_eq!(
            prometheus_name("lab.bytes.sent", "By", MetricKind::Counter),
            "lab_bytes_sent_total"
        );
    }

    #[test]
    fn up_down_counter_in_unit_one_has_no_suffix() {
        assert_eq!(prometheus_name("lab.inflight", "1", MetricKind::UpDownCounter), "lab_inflight");
    }

    #[test]
    fn histogram_and_gauge_get_unit_words() {
        assert_eq!(
            prometheus_name("lab.latency", "ms", MetricKind::Histogram),
            "lab_latency_milliseconds"
        );
        assert_eq!(
            prometheus_name("lab.temperature", "Cel", MetricKind::Gauge),
            "lab_temperature_celsius"
        );
        assert_eq!(prometheus_name("rpc.dur", "s", MetricKind::Histogram), "rpc_dur_seconds");
    }

    #[test]
    fn annotation_units_add_nothing_and_per_units_add_per() {
        assert_eq!(prometheus_name("q", "{requests}", MetricKind::Gauge), "q");
        assert_eq!(prometheus_name("net.io", "By/s", MetricKind::Gauge), "net_io_bytes_per_second");
    }

    #[test]
    fn total_already_in_name_moves_to_the_end() {
        assert_eq!(prometheus_name("total.hits", "1", MetricKind::Counter), "hits_total");
    }

    #[test]
    fn histogram_series_suffixes() {
        assert_eq!(
            histogram_series("lab_latency_milliseconds", HistogramPart::Bucket),
            "lab_latency_milliseconds_bucket"
        );
        assert_eq!(histogram_series("lab.latency", HistogramPart::Count), "lab.latency_count");
    }

    #[test]
    fn labels_lose_dots_only_with_prometheus_naming() {
        assert_eq!(otel_label("service.name", true), "service_name");
        assert_eq!(otel_label("service.name", false), "service.name");
        assert_eq!(prometheus_label("1a"), "key_1a");
    }

    #[test]
    fn otel_names_kept_without_prometheus_naming() {
        assert_eq!(
            otel_series_base("http.requests", "1", MetricKind::Counter, false),
            "http.requests"
        );
    }
}
