//! Semantics normalisation: turning what each backend stores into one comparable quantity.
//!
//! - **Counters.** The legacy side stores a count per StatsD flush (`stats.counters.K.count`);
//!   the new side stores a cumulative counter. Comparing `sum_over_time` with `increase()` is
//!   fragile: Prometheus extrapolates `increase()` to the window edges and ignores the first
//!   sample of a new series, VictoriaMetrics counts a new series from 0 and does not
//!   extrapolate (LAB.md §4: 6 vs 8 for the same data). So neither side uses `increase()`: both
//!   become **running totals** computed here from raw values ([`running_totals`]) — per-flush
//!   counts are summed; cumulative values are differenced, a drop is a counter reset (the new
//!   value counts in full), and a series that appears after the side's data began counts from 0
//!   (the SDK starts counters at 0). Only *increases* between two instants are compared, so the
//!   baseline of each side cancels out.
//! - **Levels** (gauges, percentiles, means): the observed values, bounded per instant.
//! - **Units**: new values are multiplied by the pair's scale (s → ms: 1000).
//! - **Tags vs labels**: series are grouped by the pair's tag keys (renamed to the legacy names)
//!   and combined; other labels (resource attributes such as `service_name`) drop out.
//! - **Time**: each point becomes an observation with the uncertainty of its stamp
//!   ([`crate::align`]); the side's storage step is detected from the data and its gaps found
//!   ([`crate::coverage`]).
use std::collections::BTreeMap;

use dualmetrics_model::naming_map::graphite_sanitize;

use crate::align::{detect_spacing, observations, running_totals, Stamps, Track};
use crate::coverage::Coverage;
use crate::pairs::Form;
use crate::query::Series;

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
    /// How the backend stamped the points.
    pub stamps: Stamps,
    /// Grid step of the query, seconds (the width of [`Stamps::GridEnd`] stamps, and the storage
    /// step when the data has too few points to tell).
    pub step: i64,
    /// Seconds every instant is widened by (clock skew between pipelines).
    pub slack: i64,
}

/// The series of one tag set.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Labels that identify it for matching (after grouping).
    pub labels: BTreeMap<String, String>,
    /// One track per series.
    pub tracks: Vec<Track>,
    /// How the tracks combine.
    pub combine: Combine,
}

impl Group {
    /// Bounds of the group's running total at `t` (counters): the sum of its series' bounds.
    pub fn total_at(&self, t: i64) -> Option<(f64, f64)> {
        let mut acc = (0.0, 0.0);
        for tr in &self.tracks {
            let (lo, hi) = tr.total_at(t)?;
            acc = (acc.0 + lo, acc.1 + hi);
        }
        Some(acc)
    }

    /// Best estimate of the group's running total at `t` ([`Track::estimate`]).
    pub fn estimate(&self, t: i64) -> Option<f64> {
        self.tracks.iter().map(|tr| tr.estimate(t)).sum()
    }

    /// Bounds of the group's level over `[t - back, t]`.
    pub fn level_at(&self, t: i64, back: i64) -> Option<(f64, f64)> {
        let mut acc: Option<(f64, f64)> = None;
        for tr in &self.tracks {
            let (lo, hi) = tr.level_at(t, back)?;
            acc = Some(match (acc, self.combine) {
                (None, _) => (lo, hi),
                (Some(a), Combine::Sum) => (a.0 + lo, a.1 + hi),
                (Some(a), Combine::Max) => (a.0.max(lo), a.1.max(hi)),
            });
        }
        acc
    }

    /// Hull of the values of the group's series within a window ([`Track::window_hull`]),
    /// combined over the series that have any.
    pub fn window_hull(&self, t: i64, back: i64) -> Option<(f64, f64)> {
        let mut acc: Option<(f64, f64)> = None;
        for tr in &self.tracks {
            let Some((lo, hi)) = tr.window_hull(t, back) else { continue };
            acc = Some(match (acc, self.combine) {
                (None, _) => (lo, hi),
                (Some(a), Combine::Sum) => (a.0 + lo, a.1 + hi),
                (Some(a), Combine::Max) => (a.0.max(lo), a.1.max(hi)),
            });
        }
        acc
    }

    /// The group's value stamped exactly `t` (grid answers): combined over its series that
    /// have one.
    pub fn value_stamped(&self, t: i64) -> Option<f64> {
        let mut acc: Option<f64> = None;
        for tr in &self.tracks {
            let Some(o) = tr.obs.iter().find(|o| o.t == t) else { continue };
            acc = Some(match (acc, self.combine) {
                (None, _) => o.v,
                (Some(a), Combine::Sum) => a + o.v,
                (Some(a), Combine::Max) => a.max(o.v),
            });
        }
        acc
    }

    /// The instant before which this group's windowed values are a warm-up, when its first
    /// value comes after `fetched_from` (it began within the fetch): `back` after that first
    /// value. `None` when it began before the fetch or has no value.
    pub fn warm_up_end(&self, fetched_from: i64, back: i64) -> Option<i64> {
        let first = self.tracks.iter().filter_map(|t| t.obs.first().map(|o| o.t)).min()?;
        (first > fetched_from).then_some(first + back)
    }

    /// Whether any track counted anything (counters) or has any observation (levels).
    pub fn has_data(&self, counter: bool) -> bool {
        self.tracks.iter().any(|t| match (counter, t.obs.first(), t.obs.last()) {
            (_, None, _) | (_, _, None) => false,
            (true, Some(f), Some(l)) => l.v != f.v || (t.starts_late && l.v != 0.0),
            (false, _, _) => true,
        })
    }
}

/// One side of a pair, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// Tag sets, sorted by labels.
    pub groups: Vec<Group>,
    /// Known instants; `None` when the side returned no data.
    pub coverage: Option<Coverage>,
    /// Storage step detected from the timestamps (`None`: too few points to tell).
    pub detected_step: Option<i64>,
    /// Points are per-interval counts: a gap loses counts (increases never span it).
    pub delta: bool,
}

impl Side {
    /// Whether a known instant lies at `t`.
    pub fn known(&self, t: i64) -> bool {
        self.coverage.as_ref().is_some_and(|c| c.known(t))
    }

    /// Whether increases from `t0` to `t1` must not be compared (a gap lost counts).
    pub fn breaks(&self, t0: i64, t1: i64) -> bool {
        self.delta && self.coverage.as_ref().is_some_and(|c| c.gap_between(t0, t1))
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

/// Normalises every series of one side and groups them by tag set.
pub fn normalize(series: &[Series], spec: &SideSpec<'_>) -> Side {
    let detected = detect_spacing(series);
    let spacing = detected.unwrap_or(spec.step).max(1);
    let width = match spec.stamps {
        Stamps::Exact => 1,
        Stamps::BucketStart => spacing,
        Stamps::GridEnd => spec.step,
    };
    let delta = spec.running_total && spec.form != Form::Cumulative;
    let mut all: Vec<(BTreeMap<String, String>, Vec<crate::align::Obs>)> = series
        .iter()
        .map(|s| {
            let mut obs = observations(&s.points, spec.stamps, width, spec.slack);
            for o in &mut obs {
                o.v *= spec.scale;
            }
            (group_labels(&s.labels, spec.keys, spec.names), obs)
        })
        .filter(|(_, obs)| !obs.is_empty())
        .collect();
    let coverage = Coverage::of(all.iter().map(|(_, o)| o.as_slice()), spacing);
    let side_first = coverage.as_ref().map_or(i64::MIN, |c| c.first);
    let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Track>> = BTreeMap::new();
    for (labels, mut obs) in all.drain(..) {
        let starts_late = obs[0].a > side_first + spacing;
        if spec.running_total {
            running_totals(&mut obs, delta, starts_late);
        }
        groups.entry(labels).or_default().push(Track { obs, starts_late, spacing });
    }
    Side {
        groups: groups
            .into_iter()
            .map(|(labels, tracks)| Group { labels, tracks, combine: spec.combine })
            .collect(),
        coverage,
        detected_step: detected,
        delta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            points: points.to_vec(),
        }
    }

    fn spec<'a>(keys: &'a [String], names: &'a [String], form: Form, total: bool) -> SideSpec<'a> {
        SideSpec {
            form,
            running_total: total,
            scale: 1.0,
            keys,
            names,
            combine: Combine::Sum,
            stamps: Stamps::Exact,
            step: 10,
            slack: 0,
        }
    }

    #[test]
    fn new_side_values_are_scaled() {
        let mut s = spec(&[], &[], Form::Level, false);
        s.scale = 1000.0;
        let side = normalize(&[series(&[], &[(110, 0.25), (120, 0.25)])], &s);
        assert_eq!(side.groups[0].level_at(110, 0), Some((250.0, 250.0)));
    }

    #[test]
    fn extra_labels_are_summed_away_and_keys_renamed() {
        let keys = vec!["http_route".to_owned()];
        let names = vec!["http.route".to_owned()];
        let a = series(
            &[("http_route", "/a"), ("service_instance_id", "1")],
            &[(100, 0.0), (110, 2.0), (120, 2.0)],
        );
        let b = series(
            &[("http_route", "/a"), ("service_instance_id", "2")],
            &[(105, 0.0), (115, 3.0), (125, 3.0)],
        );
        let side = normalize(&[a, b], &spec(&keys, &names, Form::Cumulative, true));
        assert_eq!(side.groups.len(), 1);
        assert_eq!(
            side.groups[0].labels["http.route"], "-a",
            "values meet in the daemon's spelling"
        );
        assert_eq!(side.groups[0].total_at(115), Some((5.0, 5.0)));
        assert_eq!(side.groups[0].total_at(112), Some((2.0, 5.0)));
    }

    #[test]
    fn a_tag_value_the_daemon_rewrote_matches_the_new_sides_original() {
        let keys = vec!["route".to_owned()];
        let s = spec(&keys, &keys, Form::Level, false);
        let legacy = normalize(&[series(&[("route", "-cart")], &[(110, 1.0)])], &s);
        let new = normalize(&[series(&[("route", "/cart")], &[(110, 1.0)])], &s);
        assert_eq!(legacy.groups[0].labels, new.groups[0].labels);
    }

    #[test]
    fn per_flush_counts_lose_what_a_gap_held() {
        let pts: Vec<(i64, f64)> = [100, 110, 120, 160, 170].iter().map(|t| (*t, 1.0)).collect();
        let side = normalize(&[series(&[], &pts)], &spec(&[], &[], Form::Delta, true));
        assert!(side.delta);
        assert!(side.breaks(110, 170) && !side.breaks(160, 170));
        assert!(!side.known(140));
    }
}
