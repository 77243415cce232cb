//! Pairs for dotted StatsD keys that carry dimensions in their path nodes
//! (`checkout.prod.web-1.requests`), mapped by the same `statsd_exporter`-format mapping file
//! the collector shim reads ([`dualmetrics_model::mapping`]).
//!
//! On the legacy side such a key is a plain Graphite path written by the StatsD daemon
//! (`stats.counters.checkout.prod.web-1.requests.count`); on the new side the shim sent it as
//! the mapped metric with labels (`checkout_requests_total{env="prod",host="web-1"}`). For each
//! key, [`generate_mapped`] maps it and emits the pairs with the kind and forms of its StatsD
//! type, as [`crate::pairs::generate_from_catalog`] does for catalog instruments:
//!
//! | StatsD type | legacy (Graphite) | new (PromQL) | kind, forms |
//! |---|---|---|---|
//! | `c` | `stats.counters.K.count` | `name_total{labels}` | counter, per-flush delta vs cumulative |
//! | `g` | `stats.gauges.K` | `sum(name{labels})` | gauge, level |
//! | `ms` | `stats.timers.K.{count,sum,mean,upper,upper_N}` | `name_milliseconds_{count,sum}`, `increase` ratio, `histogram_quantile` over `_bucket{labels}` | counter / mean / quantile |
//! | `h`, `d` | `stats.counters.K.count` (the daemon counts them) | `name_sum{labels}` | counter (sum only) |
//!
//! (names shown with Prometheus naming; with `--new-naming otel` the mapped name is kept.)
//! Sets, dropped keys (`action: drop`) and keys no rule maps are skipped with a note.
//!
//! The keys come from the command line (`--mapped-key KEY:TYPE`, or `--mapped-key @FILE` with one
//! `KEY:TYPE` per line, `#` comments allowed) or are discovered on the legacy side
//! ([`discover_keys`]): each glob rule becomes a Graphite find pattern per namespace
//! (`stats.counters.checkout.*.*.requests.count`, `stats.gauges.…`, `stats.timers.….count`)
//! expanded through the Graphite API's `/metrics/expand?leavesOnly=1` (VictoriaMetrics answers
//! a JSON list, graphite-web `{"results": […]}`; `/metrics/find` is not enough: VictoriaMetrics
//! 1.112 keeps the wildcards of inner nodes in the ids it returns). Regex rules cannot be turned
//! into patterns and are reported in the notes.
use dualmetrics_model::mapping::{GlobComponent, Mapped, MappingFile, MetricType};
use dualmetrics_model::naming_map::{
    histogram_series, otel_label, otel_series_base, timer_percentile_stat, GraphiteNaming,
    HistogramPart,
};
use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::MetricKind;

use crate::error::{redact_url, CompareError, QueryError};
use crate::pairs::{
    promql_selector, Form, GenerateOptions, LegacyApi, Pair, PairKind, DEFAULT_BUCKETS,
};
use crate::query::http::HttpClient;
use crate::query::HttpConfig;

/// A dotted StatsD key and the type it is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedKey {
    /// The key as sent (`checkout.prod.web-1.requests`).
    pub key: String,
    /// Its StatsD type.
    pub ty: StatsdType,
}

impl MappedKey {
    /// Parses `KEY:TYPE` with TYPE one of `c`, `g`, `ms`, `h`, `d`, `s`.
    ///
    /// # Errors
    /// A missing or unknown type.
    pub fn parse(s: &str) -> Result<MappedKey, String> {
        let (key, ty) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: expected KEY:TYPE (c, g, ms, h, d, s)"))?;
        let ty = match ty {
            "c" => StatsdType::Counter,
            "g" => StatsdType::Gauge,
            "ms" => StatsdType::Timer,
            "h" => StatsdType::Histogram,
            "d" => StatsdType::Distribution,
            "s" => StatsdType::Set,
            other => {
                return Err(format!("{s:?}: unknown StatsD type {other:?} (c, g, ms, h, d, s)"))
            }
        };
        if key.is_empty() {
            return Err(format!("{s:?}: empty key"));
        }
        Ok(MappedKey { key: key.to_owned(), ty })
    }
}

/// `name{k="v",…}` (or `{__name__="name",k="v",…}` for a name PromQL cannot write bare).
pub fn labelled_selector(name: &str, labels: &[(String, String)]) -> String {
    let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    let matchers: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", esc(v))).collect();
    let bare = promql_selector(name);
    if bare == name {
        if matchers.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{}}}", matchers.join(","))
        }
    } else {
        let mut all = vec![format!("__name__=\"{}\"", esc(name))];
        all.extend(matchers);
        format!("{{{}}}", all.join(","))
    }
}

fn legacy(opts: &GenerateOptions, graphite_path: &str, agg: &str) -> String {
    match opts.legacy_api {
        LegacyApi::Graphite => graphite_path.to_owned(),
        LegacyApi::Prometheus => format!("{agg}({}[$step])", promql_selector(graphite_path)),
    }
}

/// The `KEY:TYPE` lines of a key file: trimmed, without blank lines and `#` comments.
pub fn key_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Pairs for `keys` under `file`, and notes on the keys skipped.
///
/// Per key: the mapping file names its metric and labels (or drops it, or has no rule for it),
/// then [`MappedPairs`] builds the pairs of its StatsD type.
pub fn generate_mapped(
    file: &MappingFile,
    keys: &[MappedKey],
    opts: &GenerateOptions,
) -> (Vec<Pair>, Vec<String>) {
    let mut pairs = Vec::new();
    let mut notes = Vec::new();
    for MappedKey { key, ty } in keys {
        let m = match file.map(key, MetricType::of(*ty)) {
            Mapped::Metric(m) => m,
            Mapped::Drop { rule_index } => {
                notes.push(format!("{key}: dropped by mappings[{rule_index}], skipped"));
                continue;
            }
            Mapped::Unmapped => {
                notes.push(format!("{key}: no rule of {} maps it, skipped", file.source()));
                continue;
            }
        };
        let p = MappedPairs {
            key,
            opts,
            name: &m.name,
            labels: m
                .labels
                .iter()
                .map(|(k, v)| (otel_label(k, opts.prometheus_naming), v.clone()))
                .collect(),
        };
        match ty {
            StatsdType::Counter => pairs.push(p.counter()),
            StatsdType::Gauge => pairs.push(p.gauge()),
            StatsdType::Timer => pairs.extend(p.timer(
                &m.rule.timer_buckets_ms().unwrap_or_else(|| DEFAULT_BUCKETS.to_vec()),
            )),
            StatsdType::Histogram | StatsdType::Distribution => {
                pairs.push(p.histogram_sum());
                notes.push(format!(
                    "{key}: statsd type {} is counted as a counter by the reference daemon; only its sum is compared",
                    ty.code()
                ));
            }
            StatsdType::Set => notes.push(format!(
                "{key}: sets are not compared (the daemon writes a per-flush count, the shim a gauge of distinct members)"
            )),
        }
    }
    (pairs, notes)
}

/// What every pair of one mapped StatsD key shares: the key, and the metric name and labels
/// the mapping file gives it.
struct MappedPairs<'a> {
    key: &'a str,
    opts: &'a GenerateOptions,
    /// The mapped metric name.
    name: &'a str,
    /// The mapped labels, as the new side names them.
    labels: Vec<(String, String)>,
}

impl MappedPairs<'_> {
    /// One pair named after the key plus `suffix` (counters delta against cumulative, the rest
    /// levels).
    fn pair(
        &self,
        suffix: &str,
        kind: PairKind,
        legacy: String,
        new: String,
        unit: &str,
        buckets: &[f64],
    ) -> Pair {
        let (legacy_form, new_form) = match kind {
            PairKind::Counter => (Form::Delta, Form::Cumulative),
            _ => (Form::Level, Form::Level),
        };
        Pair {
            name: format!("{}{suffix}", self.key),
            kind,
            legacy,
            new,
            legacy_form,
            new_form,
            new_scale: 1.0,
            unit: unit.to_owned(),
            tolerance: kind.default_tolerance(),
            buckets: buckets.to_vec(),
            group_by: Vec::new(),
            new_group_by: Vec::new(),
        }
    }

    /// The new side's series base of the mapped name for `kind` (and `unit`).
    fn base(&self, unit: &str, kind: MetricKind) -> String {
        otel_series_base(self.name, unit, kind, self.opts.prometheus_naming)
    }

    fn counter(&self) -> Pair {
        let base = self.base("", MetricKind::Counter);
        self.pair(
            "",
            PairKind::Counter,
            legacy(self.opts, &self.opts.graphite.counter_count(self.key), "sum_over_time"),
            labelled_selector(&base, &self.labels),
            "",
            &DEFAULT_BUCKETS,
        )
    }

    fn gauge(&self) -> Pair {
        let base = self.base("", MetricKind::Gauge);
        self.pair(
            "",
            PairKind::Gauge,
            legacy(self.opts, &self.opts.graphite.gauge(self.key), "last_over_time"),
            format!("sum({})", labelled_selector(&base, &self.labels)),
            "",
            &DEFAULT_BUCKETS,
        )
    }

    /// A timer's pairs: count, sum, mean, upper and each configured percentile (the quantiles
    /// from the histogram's `buckets`).
    fn timer(&self, buckets: &[f64]) -> Vec<Pair> {
        let base = self.base("ms", MetricKind::Histogram);
        let part = |p| labelled_selector(&histogram_series(&base, p), &self.labels);
        let timer = |stat: &str, agg: &str| {
            legacy(self.opts, &self.opts.graphite.timer(self.key, stat), agg)
        };
        let mean = format!(
            "sum(increase({}[$window])) / sum(increase({}[$window]))",
            part(HistogramPart::Sum),
            part(HistogramPart::Count)
        );
        let quantile = |q: f64| {
            format!(
                "histogram_quantile({q}, sum by (le) (increase({}[$window])))",
                part(HistogramPart::Bucket)
            )
        };
        let (count, sum) = (part(HistogramPart::Count), part(HistogramPart::Sum));
        let mut pairs = vec![
            self.pair(
                ".count",
                PairKind::Counter,
                timer("count", "sum_over_time"),
                count,
                "1",
                buckets,
            ),
            self.pair(".sum", PairKind::Counter, timer("sum", "sum_over_time"), sum, "ms", buckets),
            self.pair(
                ".mean",
                PairKind::Mean,
                timer("mean", "last_over_time"),
                mean,
                "ms",
                buckets,
            ),
            self.pair(
                ".upper",
                PairKind::Quantile,
                timer("upper", "max_over_time"),
                quantile(1.0),
                "ms",
                buckets,
            ),
        ];
        for p in &self.opts.percentiles {
            let stat = timer_percentile_stat(*p);
            let legacy = timer(&stat, "max_over_time");
            let q = quantile(p / 100.0);
            pairs.push(self.pair(
                &format!(".{stat}"),
                PairKind::Quantile,
                legacy,
                q,
                "ms",
                buckets,
            ));
        }
        pairs
    }

    /// A histogram or distribution: only its sum, which the reference daemon counts.
    fn histogram_sum(&self) -> Pair {
        let base = self.base("", MetricKind::Histogram);
        self.pair(
            ".sum",
            PairKind::Counter,
            legacy(self.opts, &self.opts.graphite.counter_count(self.key), "sum_over_time"),
            labelled_selector(&histogram_series(&base, HistogramPart::Sum), &self.labels),
            "",
            &DEFAULT_BUCKETS,
        )
    }
}

/// The Graphite find pattern of `rule` for one namespace, and how to take the key back out of a
/// found path: `(pattern, prefix, suffix)`.
fn find_patterns(pattern: &str, g: &GraphiteNaming) -> Vec<(StatsdType, String, String, String)> {
    const MARK: &str = "\u{1}";
    let mut out = Vec::new();
    for (ty, path) in [
        (StatsdType::Counter, g.counter_count(MARK)),
        (StatsdType::Gauge, g.gauge(MARK)),
        (StatsdType::Timer, g.timer(MARK, "count")),
    ] {
        if let Some((pre, post)) = path.split_once(MARK) {
            out.push((ty, format!("{pre}{pattern}{post}"), pre.to_owned(), post.to_owned()));
        }
    }
    out
}

/// Keys on the legacy side that a glob rule of `file` matches, found with the Graphite
/// `/metrics/expand` API of `legacy` (VictoriaMetrics or Graphite), for counters, gauges and
/// timers. Sorted, without duplicates; notes name the rules that cannot be searched.
///
/// # Errors
/// The backend cannot be reached or answers with something other than a find result.
pub fn discover_keys(
    legacy: &HttpConfig,
    file: &MappingFile,
    g: &GraphiteNaming,
) -> Result<(Vec<MappedKey>, Vec<String>), QueryError> {
    let client = HttpClient::new(legacy.clone())?;
    let mut keys = Vec::new();
    let mut notes = Vec::new();
    for rule in file.rules() {
        let Some(components) = rule.glob_components() else {
            notes.push(format!(
                "mappings[{}] ({}): a regex rule cannot be searched on the legacy side; give its keys with --mapped-key",
                rule.index, rule.pattern
            ));
            continue;
        };
        let pattern: Vec<&str> = components
            .iter()
            .map(|c| match c {
                GlobComponent::Literal(l) => l.as_str(),
                GlobComponent::Capture(_) => "*",
            })
            .collect();
        let pattern = pattern.join(".");
        for (ty, pattern, pre, post) in find_patterns(&pattern, g) {
            if rule.match_metric_type.is_some_and(|t| t != MetricType::of(ty)) {
                continue;
            }
            for id in expand(&client, &pattern)? {
                if let Some(key) =
                    id.strip_prefix(pre.as_str()).and_then(|k| k.strip_suffix(post.as_str()))
                {
                    keys.push(MappedKey { key: key.to_owned(), ty });
                }
            }
        }
    }
    keys.sort_by(|a, b| (&a.key, a.ty.code()).cmp(&(&b.key, b.ty.code())));
    keys.dedup();
    Ok((keys, notes))
}

/// One `/metrics/expand?query=…&leavesOnly=1` on the legacy backend: the full paths of the
/// leaves the pattern matches (through the adapters' client: headers, auth, TLS, retries, the
/// response size cap).
fn expand(client: &HttpClient, query: &str) -> Result<Vec<String>, QueryError> {
    let url = client
        .url("/metrics/expand", &[("query", query.to_owned()), ("leavesOnly", "1".to_owned())]);
    let (status, body) = client.get(&url)?;
    if !status.is_success() {
        let message: String = body.trim().chars().take(300).collect();
        return Err(QueryError::Http {
            url: redact_url(url.as_str()),
            status: status.as_u16(),
            message,
        });
    }
    let not_json = |m: String| QueryError::NotJson {
        url: redact_url(url.as_str()),
        message: format!("{m}: {}", body.chars().take(200).collect::<String>()),
    };
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| not_json(e.to_string()))?;
    let list = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("results") {
            Some(serde_json::Value::Array(a)) => a,
            _ => return Err(not_json("no \"results\" list".into())),
        },
        _ => return Err(not_json("not a list of paths".into())),
    };
    Ok(list.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
}

/// The `--mapping` hook of `dualmetrics compare`: loads the file, takes the `--mapped-key`s or
/// discovers keys on the legacy side, and generates the pairs.
///
/// # Errors
/// A bad mapping file or key, or a failed discovery.
pub fn plan_pairs(
    mapping: &std::path::Path,
    keys: &[String],
    legacy: &HttpConfig,
    opts: &GenerateOptions,
) -> Result<(Vec<Pair>, Vec<String>), CompareError> {
    let path = mapping.display().to_string();
    let file = MappingFile::load(mapping)
        .map_err(|e| CompareError::Pairs { path: path.clone(), message: e.to_string() })?;
    let mut notes = Vec::new();
    let keys = if keys.is_empty() {
        if opts.legacy_api != LegacyApi::Graphite {
            return Err(CompareError::InvalidArgument {
                arg: "--mapped-key",
                reason: "keys are discovered through the Graphite API; give them with --mapped-key KEY:TYPE for --legacy-api prometheus".into(),
            });
        }
        let (k, n) =
            discover_keys(legacy, &file, &opts.graphite).map_err(|e| CompareError::Pairs {
                path: path.clone(),
                message: format!("discovering mapped keys: {e}"),
            })?;
        notes.extend(n);
        if k.is_empty() {
            notes.push(format!("{path}: no key matching a glob rule was found on the legacy side"));
        }
        k
    } else {
        let mut lines = Vec::new();
        for k in keys {
            match k.strip_prefix('@') {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .map_err(|source| CompareError::Io { path: file.to_owned(), source })?;
                    lines.extend(key_lines(&text).map(str::to_owned));
                }
                None => lines.push(k.clone()),
            }
        }
        lines
            .iter()
            .map(|s| MappedKey::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| CompareError::InvalidArgument { arg: "--mapped-key", reason })?
    };
    let (pairs, n) = generate_mapped(&file, &keys, opts);
    notes.extend(n);
    Ok((pairs, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: $2\n- match: checkout.*.*.latency\n  name: checkout_latency\n  buckets: [0.01, 0.1]\n  labels:\n    env: $1\n    host: $2\n- match: checkout.*.*.depth\n  name: queue_depth\n  labels:\n    env: $1\n    host: $2\n- match: debug.*\n  action: drop\n";

    fn gen(keys: &[&str], prom: bool) -> (Vec<Pair>, Vec<String>) {
        let f = MappingFile::parse(RULES, "m.yml").unwrap();
        let keys: Vec<MappedKey> = keys.iter().map(|k| MappedKey::parse(k).unwrap()).collect();
        let opts = GenerateOptions { prometheus_naming: prom, ..GenerateOptions::default() };
        generate_mapped(&f, &keys, &opts)
    }

    #[test]
    fn a_mapped_counter_pairs_the_graphite_path_with_the_labelled_total() {
        let (p, _) = gen(&["checkout.prod.web-1.requests:c"], true);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].legacy, "stats.counters.checkout.prod.web-1.requests.count");
        assert_eq!(p[0].new, r#"checkout_requests_total{env="prod",host="web-1"}"#);
        assert_eq!(
            (p[0].kind, p[0].legacy_form, p[0].new_form),
            (PairKind::Counter, Form::Delta, Form::Cumulative)
        );
        let (p, _) = gen(&["checkout.prod.web-1.requests:c"], false);
        assert_eq!(p[0].new, r#"checkout_requests{env="prod",host="web-1"}"#);
    }

    #[test]
    fn a_mapped_gauge_is_a_level_summed_over_extra_labels() {
        let (p, _) = gen(&["checkout.prod.web-1.depth:g"], true);
        assert_eq!(p[0].legacy, "stats.gauges.checkout.prod.web-1.depth");
        assert_eq!(p[0].new, r#"sum(queue_depth{env="prod",host="web-1"})"#);
        assert_eq!(p[0].kind, PairKind::Gauge);
    }

    #[test]
    fn a_mapped_timer_gets_count_sum_mean_and_quantiles_over_the_rule_buckets_in_ms() {
        let (p, _) = gen(&["checkout.prod.web-1.latency:ms"], true);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "checkout.prod.web-1.latency.count",
                "checkout.prod.web-1.latency.sum",
                "checkout.prod.web-1.latency.mean",
                "checkout.prod.web-1.latency.upper",
                "checkout.prod.web-1.latency.upper_90"
            ]
        );
        assert_eq!(p[1].new, r#"checkout_latency_milliseconds_sum{env="prod",host="web-1"}"#);
        assert_eq!(p[1].legacy, "stats.timers.checkout.prod.web-1.latency.sum");
        assert_eq!(
            p[4].new,
            r#"histogram_quantile(0.9, sum by (le) (increase(checkout_latency_milliseconds_bucket{env="prod",host="web-1"}[$window])))"#
        );
        assert_eq!(p[4].buckets, [10.0, 100.0]);
        assert_eq!(p[2].kind, PairKind::Mean);
    }

    #[test]
    fn dropped_unmapped_and_set_keys_are_skipped_with_a_note() {
        let (p, notes) = gen(&["debug.x:c", "other.key:c", "checkout.a.b.requests:s"], true);
        assert!(p.is_empty());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("dropped by mappings[3]"));
        assert!(notes[1].contains("no rule of m.yml"));
    }

    #[test]
    fn keys_parse_with_their_type_and_bad_ones_are_named() {
        assert_eq!(
            MappedKey::parse("a.b:ms").unwrap(),
            MappedKey { key: "a.b".into(), ty: StatsdType::Timer }
        );
        assert!(MappedKey::parse("a.b").unwrap_err().contains("KEY:TYPE"));
        assert!(MappedKey::parse("a.b:x").unwrap_err().contains("\"x\""));
    }

    #[test]
    fn keys_come_from_the_command_line_or_a_key_file() {
        let dir = std::env::temp_dir().join(format!("mapped-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (m, k) = (dir.join("m.yml"), dir.join("keys.txt"));
        std::fs::write(&m, RULES).unwrap();
        std::fs::write(
            &k,
            "# keys\ncheckout.prod.web-1.requests:c\n\n  checkout.prod.web-1.depth:g  \n",
        )
        .unwrap();
        let legacy = HttpConfig::new(url::Url::parse("http://127.0.0.1:1").unwrap());
        let opts = GenerateOptions::default();
        let arg = format!("@{}", k.display());
        let (p, _) =
            plan_pairs(&m, &[arg, "checkout.stage.web-2.requests:c".into()], &legacy, &opts)
                .unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "checkout.prod.web-1.requests",
                "checkout.prod.web-1.depth",
                "checkout.stage.web-2.requests"
            ]
        );
        let err = plan_pairs(&m, &["nope".into()], &legacy, &opts).unwrap_err().to_string();
        assert!(err.contains("--mapped-key") && err.contains("KEY:TYPE"), "{err}");
        let err =
            plan_pairs(&dir.join("missing.yml"), &[], &legacy, &opts).unwrap_err().to_string();
        assert!(err.contains("missing.yml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn find_patterns_follow_the_daemon_namespaces() {
        let p = find_patterns("checkout.*.*.requests", &GraphiteNaming::default());
        let finds: Vec<&str> = p.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(
            finds,
            [
                "stats.counters.checkout.*.*.requests.count",
                "stats.gauges.checkout.*.*.requests",
                "stats.timers.checkout.*.*.requests.count"
            ]
        );
        let legacy = find_patterns("a.*", &GraphiteNaming::legacy());
        assert_eq!(legacy[0].1, "stats_counts.a.*");
        assert_eq!((legacy[0].2.as_str(), legacy[0].3.as_str()), ("stats_counts.", ""));
    }

    #[test]
    fn label_values_are_escaped_in_selectors() {
        assert_eq!(labelled_selector("m", &[("k".into(), "a\"b\\c".into())]), r#"m{k="a\"b\\c"}"#);
        assert_eq!(
            labelled_selector("a.b", &[("k".into(), "v".into())]),
            r#"{__name__="a.b",k="v"}"#
        );
    }
}
