//! From returned points to **observations with an uncertain time**, and what they bound.
//!
//! The two pipelines never sample at the same instants: the StatsD daemon flushes on its own
//! clock, the OTLP exporter on another, and some APIs move points onto their own grid. So this
//! stage does not resample onto a grid. Each point becomes an [`Obs`]: a value observed at some
//! instant within `[a, b]`:
//!
//! | where the points come from | [`Stamps`] | instant of a point stamped `T` |
//! |---|---|---|
//! | raw samples (`metric[range]` on a Prometheus API) | [`Stamps::Exact`] | `T` |
//! | Graphite `/render` (whisper, VictoriaMetrics), storage step `S` | [`Stamps::BucketStart`] | `[T, T+S)` |
//! | Prometheus `query_range` at step `s` | [`Stamps::GridEnd`] | `(T-s, T]` |
//!
//! A [`Track`] is one series' observations in time order. Questions are then asked at any
//! instant `t` and answered with **bounds**, never guesses:
//! - a running total (counters, made monotone first) at `t` lies between the last observation
//!   certainly before `t` and the first certainly after it ([`Track::total_at`]);
//! - a level (gauge, percentile, mean) over `[t - back, t]` lies in the hull of the observations
//!   from the last one certainly before `t - back` to the first one certainly after `t`
//!   ([`Track::level_at`]).
//!
//! Bounds are sound for any phase offset between the two sides and any rate, including less than
//! one event per step: nothing is interpolated and nothing is assumed zero.
//!
//! The spacing of returned timestamps ([`detect_spacing`]) is each side's storage step (flush or
//! export interval); the [`crate::coverage`] stage uses it to find gaps.

use crate::query::Series;

/// How a backend stamps the points it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamps {
    /// Raw sample timestamps.
    Exact,
    /// Graphite: a point stamped `T` holds the samples of `[T, T + storage step)`.
    BucketStart,
    /// An evaluation grid: a point stamped `T` was sampled within `(T - step, T]`.
    GridEnd,
}

/// One value seen at some instant within `[a, b]` (Unix seconds, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Obs {
    /// The timestamp the backend returned.
    pub t: i64,
    /// Earliest possible instant.
    pub a: i64,
    /// Latest possible instant.
    pub b: i64,
    /// The value (a running total for counters).
    pub v: f64,
}

/// Gaps are holes in a side's timestamps longer than this many storage steps.
pub const GAP_FACTOR: f64 = 1.5;

/// The storage step of a side: the median spacing of consecutive non-`NaN` points within each
/// series, or `None` when no series has two points.
pub fn detect_spacing(series: &[Series]) -> Option<i64> {
    let mut diffs: Vec<i64> = Vec::new();
    for s in series {
        let mut prev: Option<i64> = None;
        for &(ts, v) in &s.points {
            if v.is_nan() {
                continue;
            }
            if let Some(p) = prev {
                if ts > p {
                    diffs.push(ts - p);
                }
            }
            prev = Some(ts);
        }
    }
    if diffs.is_empty() {
        return None;
    }
    diffs.sort_unstable();
    Some(diffs[diffs.len() / 2])
}

/// The observations of one series' points (`NaN` points are no observation). `width` is the
/// storage step for [`Stamps::BucketStart`] and the grid step for [`Stamps::GridEnd`]; `slack`
/// widens every instant by that many seconds on both sides (clock skew between pipelines).
pub fn observations(points: &[(i64, f64)], stamps: Stamps, width: i64, slack: i64) -> Vec<Obs> {
    let w = width.max(1) - 1;
    let mut out: Vec<Obs> = points
        .iter()
        .filter(|(_, v)| !v.is_nan())
        .map(|&(t, v)| {
            let (a, b) = match stamps {
                Stamps::Exact => (t, t),
                // A sample late in the bucket may carry a fraction of a second past `T + S - 1`.
                Stamps::BucketStart => (t, t + w + 1),
                // Sampled after `T - step` (fractions of a second round down onto it).
                Stamps::GridEnd => (t - w - 1, t),
            };
            Obs { t, a: a - slack, b: b + slack, v }
        })
        .collect();
    out.sort_by_key(|o| o.a);
    out
}

/// One series' observations in time order, with what is known before the first one.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// Observations sorted by `a` (and so by `b`: all have the same width).
    pub obs: Vec<Obs>,
    /// The series appeared after the side's data began: before its first observation (minus
    /// one storage step) its running total is 0, not unknown.
    pub starts_late: bool,
    /// The side's storage step, seconds.
    pub spacing: i64,
}

impl Track {
    /// Index of the last observation certainly at or before `t`.
    fn before(&self, t: i64) -> Option<usize> {
        self.obs.partition_point(|o| o.b <= t).checked_sub(1)
    }

    /// Index of the first observation certainly at or after `t`.
    fn after(&self, t: i64) -> Option<usize> {
        let i = self.obs.partition_point(|o| o.a < t);
        (i < self.obs.len()).then_some(i)
    }

    /// Bounds of a running total at `t` (observations must be monotone). After the last
    /// observation the total stays (the series ended); whether the side as a whole still
    /// reported is for [`crate::coverage`] to say.
    pub fn total_at(&self, t: i64) -> Option<(f64, f64)> {
        let first = self.obs.first()?;
        let last = self.obs.last()?;
        let hi = self.after(t).map_or(last.v, |i| self.obs[i].v);
        match self.before(t) {
            Some(i) => Some((self.obs[i].v, hi)),
            None if self.starts_late && t < first.a - self.spacing => Some((0.0, 0.0)),
            None if self.starts_late => Some((0.0, hi)),
            None => None,
        }
    }

    /// A best estimate of a running total at `t`: linear between the centres of the
    /// observations around it (`None` outside them). Used for the figures an explanation
    /// quotes, never for the verdict.
    pub fn estimate(&self, t: i64) -> Option<f64> {
        let c = |o: &Obs| (o.a + o.b) as f64 / 2.0;
        let t = t as f64;
        let i = self.obs.partition_point(|o| c(o) <= t);
        if i == 0 {
            return (self.starts_late && t < c(self.obs.first()?)).then_some(0.0);
        }
        let p = &self.obs[i - 1];
        let Some(n) = self.obs.get(i) else {
            return Some(p.v);
        };
        let span = c(n) - c(p);
        Some(if span > 0.0 { p.v + (n.v - p.v) * (t - c(p)) / span } else { n.v })
    }

    /// Hull of the values observed within `[t - back, t + spacing]` (a per-flush statistic
    /// over the window a new-side rate covers). Series that only report when they have events
    /// (StatsD timers) have holes that are no outage, so no gap check is made; `None` when no
    /// observation falls in the window.
    pub fn window_hull(&self, t: i64, back: i64) -> Option<(f64, f64)> {
        let from = self.obs.partition_point(|o| o.b < t - back);
        let to = self.obs.partition_point(|o| o.a <= t + self.spacing);
        (from < to).then(|| {
            self.obs[from..to]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| (lo.min(o.v), hi.max(o.v)))
        })
    }

    /// Hull of the level over `[t - back, t]`: the observations from the last one certainly
    /// before `t - back` to the first one certainly after `t`. `None` when either is missing or
    /// they are further apart than a gap.
    pub fn level_at(&self, t: i64, back: i64) -> Option<(f64, f64)> {
        let i = self.before(t - back)?;
        let j = self.after(t)?;
        if j < i {
            return None;
        }
        // Neighbours one storage step apart, each as wide as its stamp, are no gap.
        let width = self.obs[i].b - self.obs[i].a;
        let limit = (GAP_FACTOR * self.spacing as f64) as i64 + back + 2 * width;
        if self.obs[j].a - self.obs[i].b > limit {
            return None;
        }
        Some(
            self.obs[i..=j]
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| (lo.min(o.v), hi.max(o.v))),
        )
    }
}

/// Makes a counter's observations monotone running totals.
///
/// - `delta` points (per-flush counts) are summed.
/// - cumulative points are differenced; a drop is a reset and the new value counts in full.
///
/// The first observation's value counts when the series `starts_late` (it began within the
/// range: the SDK starts counters at 0); otherwise it is the baseline and the total starts at 0
/// there (cumulative), or at its own count (delta: any constant cancels in increases).
pub fn running_totals(obs: &mut [Obs], delta: bool, starts_late: bool) {
    let mut total = 0.0;
    let mut prev: Option<f64> = None;
    for o in obs.iter_mut() {
        let v = o.v;
        if delta {
            total += v;
        } else {
            total += match prev {
                None if starts_late => v,
                None => 0.0,
                Some(p) if v >= p => v - p,
                Some(_) => v,
            };
            prev = Some(v);
        }
        o.v = total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(points: &[(i64, f64)], stamps: Stamps, width: i64) -> Track {
        Track { obs: observations(points, stamps, width, 0), starts_late: false, spacing: 10 }
    }

    #[test]
    fn stamps_become_intervals() {
        let o = observations(&[(100, 1.0), (110, f64::NAN)], Stamps::BucketStart, 10, 0);
        assert_eq!(o, vec![Obs { t: 100, a: 100, b: 110, v: 1.0 }]);
        let o = observations(&[(100, 1.0)], Stamps::GridEnd, 10, 2);
        assert_eq!(o, vec![Obs { t: 100, a: 88, b: 102, v: 1.0 }]);
    }

    #[test]
    fn spacing_is_the_median_of_point_distances() {
        let s = Series {
            labels: Default::default(),
            points: vec![(0, 1.0), (10, f64::NAN), (20, 1.0), (30, 1.0), (40, 1.0)],
        };
        assert_eq!(detect_spacing(&[s]), Some(10));
        assert_eq!(detect_spacing(&[]), None);
    }

    #[test]
    fn total_between_the_observations_around_an_instant() {
        let t = track(&[(103, 0.0), (113, 4.0), (123, 4.0), (133, 9.0)], Stamps::Exact, 1);
        assert_eq!(t.total_at(113), Some((4.0, 4.0)));
        assert_eq!(t.total_at(125), Some((4.0, 9.0)));
        assert_eq!(t.total_at(100), None, "before a baseline series: unknown");
        assert_eq!(t.total_at(200), Some((9.0, 9.0)), "the series ended");
    }

    #[test]
    fn bucketed_points_are_ambiguous_inside_their_bucket() {
        // A Graphite point at 110 holds a flush somewhere in [110, 120).
        let t = track(&[(100, 1.0), (110, 2.0), (120, 3.0)], Stamps::BucketStart, 10);
        assert_eq!(t.total_at(115), Some((1.0, 3.0)));
        assert_eq!(t.total_at(119), Some((1.0, 3.0)));
        assert_eq!(t.total_at(120), Some((2.0, 3.0)));
    }

    #[test]
    fn a_late_series_counts_from_zero() {
        let mut t = track(&[(150, 5.0), (160, 7.0)], Stamps::Exact, 1);
        t.starts_late = true;
        running_totals(&mut t.obs, false, true);
        assert_eq!(t.total_at(100), Some((0.0, 0.0)));
        assert_eq!(t.total_at(145), Some((0.0, 5.0)));
        assert_eq!(t.total_at(160), Some((7.0, 7.0)));
    }

    #[test]
    fn resets_count_the_new_value() {
        let mut o = observations(&[(0, 10.0), (10, 12.0), (20, 3.0)], Stamps::Exact, 1, 0);
        running_totals(&mut o, false, false);
        assert_eq!(o.iter().map(|o| o.v).collect::<Vec<_>>(), vec![0.0, 2.0, 5.0]);
        let mut d = observations(&[(0, 10.0), (10, 2.0)], Stamps::Exact, 1, 0);
        running_totals(&mut d, true, false);
        assert_eq!(d.iter().map(|o| o.v).collect::<Vec<_>>(), vec![10.0, 12.0]);
    }

    #[test]
    fn level_hull_over_a_window_and_gaps() {
        let t = track(&[(100, 1.0), (110, 5.0), (120, 3.0), (180, 4.0)], Stamps::Exact, 1);
        assert_eq!(t.level_at(110, 0), Some((5.0, 5.0)));
        assert_eq!(t.level_at(115, 0), Some((3.0, 5.0)));
        assert_eq!(t.level_at(120, 20), Some((1.0, 5.0)));
        assert_eq!(t.level_at(150, 0), None, "inside a gap");
    }
}
