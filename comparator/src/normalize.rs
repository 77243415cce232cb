//! Semantics normalisation: turning what each backend stores into one comparable quantity.
//!
//! - **Counters.** The legacy side stores a count per StatsD flush (`stats.counters.K.count`);
//!   the new side stores a cumulative counter. Comparing `sum_over_time` with `increase()` is
//!   fragile: Prometheus extrapolates `increase()` to the window edges and ignores the first
//!   sample of a new series, VictoriaMetrics counts a new series from 0 and does not
//!   extrapolate (LAB.md §4: 6 vs 8 for the same data). So neither side uses `increase()`: both
//!   become **running totals since the first grid point**, computed here from raw values —
//!   per-flush counts are summed; cumulative values are differenced, a drop is a counter reset
//!   (the new value counts in full), and a series whose first sample comes after the first grid
//!   point counts from 0 (the SDK starts counters at 0). The result is the same whichever store
//!   answers. The first cell is the baseline (0 on both sides).
//! - **Levels** (gauges, percentiles, means): the last value of each cell, with the cell's range.
//! - **Units**: new values are multiplied by the pair's scale (s → ms: 1000).
//! - **Tags vs labels**: series are grouped by the pair's tag keys (renamed to the legacy names)
//!   and combined; other labels (resource attributes such as `service_name`) drop out.
use std::collections::BTreeMap;

use dualmetrics_model::naming_map::graphite_sanitize;

use crate::align::{align_level, align_sum, bucket_of, Aligned, Cell};
use crate::pairs::Form;
use crate::query::{Series, TimeRange};

/// How the series of one group are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Add them (counts, additive levels).
    Sum,
    /// Keep the largest (percentiles, means: adding them is meaningless).
    Max,
}

/// How to normalise one side of a pair.
#[derive(Debug, Clone)]
pub struct SideSpec<'a> {
    /// Meaning of the points.
    pub form: Form,
    /// Whether the pair counts (running totals) or compares levels.
    pub running_total: bool,
    /// Factor applied to every value.
    pub scale: f64,
    /// Label keys as this side names them (empty: keep every label).
    pub keys: &'a [String],
    /// The names the keys get in the output (the legacy side's names).
    pub names: &'a [String],
    /// How series of one group combine.
    pub combine: Combine,
}

/// Running totals from per-cell counts; the first cell is the baseline 0.
pub fn running_total_from_deltas(sums: &[f64]) -> Vec<f64> {
    let mut total = 0.0;
    sums.iter()
        .enumerate()
        .map(|(i, d)| {
            if i > 0 {
                total += d;
            }
            total
        })
        .collect()
}

/// Per-cell increases of a cumulative counter (resets and new series handled as above).
pub fn increases_from_cumulative(points: &[(i64, f64)], range: &TimeRange, n: usize) -> Vec<f64> {
    let mut inc = vec![0.0; n];
    let mut prev: Option<f64> = None;
    for &(ts, v) in points {
        if v.is_nan() {
            continue;
        }
        if ts <= range.start {
            prev = Some(v);
            continue;
        }
        let d = match prev {
            None => v,
            Some(p) if v >= p => v - p,
            Some(_) => v,
        };
        prev = Some(v);
        if let Some(i) = bucket_of(ts, range, n) {
            inc[i] += d;
        }
    }
    inc
}

fn one_series(s: &Series, spec: &SideSpec<'_>, range: &TimeRange, n: usize) -> Vec<Cell> {
    let scale = |c: Cell| Cell {
        value: c.value * spec.scale,
        lo: c.lo * spec.scale,
        hi: c.hi * spec.scale,
    };
    if spec.running_total {
        let per_cell = match spec.form {
            Form::Cumulative => increases_from_cumulative(&s.points, range, n),
            Form::Delta | Form::Level => align_sum(&s.points, range, n),
        };
        running_total_from_deltas(&per_cell).into_iter().map(|v| scale(Cell::exact(v))).collect()
    } else {
        align_level(&s.points, range, n).into_iter().map(scale).collect()
    }
}

fn combine(a: Cell, b: Cell, how: Combine) -> Cell {
    if a.is_missing() {
        return b;
    }
    if b.is_missing() {
        return a;
    }
    match how {
        Combine::Sum => Cell { value: a.value + b.value, lo: a.lo + b.lo, hi: a.hi + b.hi },
        Combine::Max => {
            Cell { value: a.value.max(b.value), lo: a.lo.min(b.lo), hi: a.hi.max(b.hi) }
        }
    }
}

/// The group labels of a series: its values for `keys`, under `names` (a missing key is `""`).
///
/// Values pass through the reference daemon's [`graphite_sanitize`] on both sides: the legacy
/// side already stores `route=-cart` for a tag sent as `route:/cart`, which the new side keeps
/// as `/cart`, and the rewrite is idempotent, so equal tag values meet in one group.
pub fn group_labels(
    labels: &BTreeMap<String, String>,
    keys: &[String],
    names: &[String],
) -> BTreeMap<String, String> {
    if keys.is_empty() {
        return labels.clone();
    }
    keys.iter()
        .zip(names)
        .map(|(k, name)| {
            (name.clone(), labels.get(k).map(|v| graphite_sanitize(v)).unwrap_or_default())
        })
        .collect()
}

/// Normalises every series of one side onto the grid and groups them. The result is sorted by
/// labels; `n` is the number of grid cells.
pub fn normalize(
    series: &[Series],
    spec: &SideSpec<'_>,
    range: &TimeRange,
    n: usize,
) -> Vec<Aligned> {
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Cell>> = BTreeMap::new();
    for s in series {
        let cells = one_series(s, spec, range, n);
        let key = group_labels(&s.labels, spec.keys, spec.names);
        match groups.get_mut(&key) {
            Some(acc) => {
                for (a, c) in acc.iter_mut().zip(cells) {
                    *a = combine(*a, c, spec.combine);
                }
            }
            None => {
                groups.insert(key, cells);
            }
        }
    }
    groups.into_iter().map(|(labels, cells)| Aligned { labels, cells }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: TimeRange = TimeRange { start: 100, end: 140, step: 10 };

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn per_flush_counts_become_running_totals_with_baseline_zero() {
        assert_eq!(running_total_from_deltas(&[7.0, 1.0, 2.0, 0.0]), vec![0.0, 1.0, 3.0, 3.0]);
    }

    #[test]
    fn cumulative_series_existing_before_start_is_a_baseline() {
        let inc = increases_from_cumulative(&[(100, 50.0), (110, 55.0), (120, 58.0)], &R, 5);
        assert_eq!(inc, vec![0.0, 5.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn new_cumulative_series_counts_from_zero() {
        // VictoriaMetrics' increase() semantics; Prometheus would drop the first 5.
        let inc = increases_from_cumulative(&[(110, 5.0), (120, 8.0)], &R, 5);
        assert_eq!(inc, vec![0.0, 5.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn counter_reset_counts_the_new_value() {
        let inc = increases_from_cumulative(&[(100, 10.0), (110, 12.0), (120, 3.0)], &R, 5);
        assert_eq!(inc, vec![0.0, 2.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn new_side_values_are_scaled() {
        let spec = SideSpec {
            form: Form::Level,
            running_total: false,
            scale: 1000.0,
            keys: &[],
            names: &[],
            combine: Combine::Max,
        };
        let out = normalize(&[series(&[], &[(110, 0.25)])], &spec, &R, 5);
        assert_eq!(out[0].cells[1].value, 250.0);
    }

    #[test]
    fn extra_labels_are_summed_away_and_keys_renamed() {
        let keys = vec!["http_route".to_owned()];
        let names = vec!["http.route".to_owned()];
        let spec = SideSpec {
            form: Form::Cumulative,
            running_total: true,
            scale: 1.0,
            keys: &keys,
            names: &names,
            combine: Combine::Sum,
        };
        let a = series(&[("http_route", "/a"), ("service_instance_id", "1")], &[(110, 2.0)]);
        let b = series(&[("http_route", "/a"), ("service_instance_id", "2")], &[(120, 3.0)]);
        let out = normalize(&[a, b], &spec, &R, 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels["http.route"], "-a", "values meet in the daemon's spelling");
        assert_eq!(out[0].cells[4].value, 5.0);
    }

    #[test]
    fn a_tag_value_the_daemon_rewrote_matches_the_new_sides_original() {
        let keys = vec!["route".to_owned()];
        let spec = SideSpec {
            form: Form::Level,
            running_total: false,
            scale: 1.0,
            keys: &keys,
            names: &keys,
            combine: Combine::Sum,
        };
        let legacy = normalize(&[series(&[("route", "-cart")], &[(110, 1.0)])], &spec, &R, 5);
        let new = normalize(&[series(&[("route", "/cart")], &[(110, 1.0)])], &spec, &R, 5);
        assert_eq!(legacy[0].labels, new[0].labels);
    }
}
