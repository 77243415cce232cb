//! Which instants a side **knows**: gaps are a state, not zeros.
//!
//! A side (all series one query returned) is known from its first observation until the last
//! observation of its slowest still-reporting series (a series that reports a little later
//! than the others may not have reported yet: ingestion lag), except inside **gaps**: holes longer than
//! [`GAP_FACTOR`](crate::align::GAP_FACTOR) storage steps between consecutive observations of
//! the whole side (a collector, daemon or backend outage). A hole in one series while others
//! still report is that series being idle, not a gap.
//!
//! What a gap means depends on what the side stores:
//! - per-flush counts (delta): the counts of the gap are lost for good, so increases are never
//!   compared across it (a **break**);
//! - cumulative counters: the total carries across the gap, so increases across it are compared
//!   (the bounds are just wide inside it);
//! - levels: nothing is compared inside it.
use serde::Serialize;

use crate::align::{Obs, GAP_FACTOR};

/// One hole in a side's data, `(from, to)` exclusive, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Last instant with data before the hole.
    pub from: i64,
    /// First instant with data after the hole.
    pub to: i64,
}

/// A side's known instants.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// First instant with data.
    pub first: i64,
    /// Last instant every series has certainly reported up to.
    pub last: i64,
    /// Holes, in time order.
    pub gaps: Vec<Gap>,
    /// Storage step used, seconds.
    pub spacing: i64,
}

impl Coverage {
    /// The coverage of the observations of one side's series; `None` when there are none.
    pub fn of<'a>(
        series: impl Iterator<Item = &'a [Obs]> + Clone,
        spacing: i64,
    ) -> Option<Coverage> {
        let mut all: Vec<(i64, i64)> = series.clone().flatten().map(|o| (o.a, o.b)).collect();
        if all.is_empty() {
            return None;
        }
        all.sort_unstable();
        let limit = (GAP_FACTOR * spacing.max(1) as f64) as i64;
        // Series still reporting at the end (their last point within a gap of the side's last
        // one): the side is known up to the earliest of their last points.
        let side_last = all[all.len() - 1].0;
        let last = series
            .filter_map(|s| s.iter().map(|o| o.a).max())
            .filter(|a| side_last - a <= limit)
            .min()
            .unwrap_or(side_last);
        let mut gaps = Vec::new();
        let mut reach = all[0].1;
        let mut prev_a = all[0].0;
        for &(a, b) in &all[1..] {
            if a - prev_a > limit {
                gaps.push(Gap { from: reach, to: a });
            }
            prev_a = a;
            reach = reach.max(b);
        }
        Some(Coverage { first: all[0].0, last, gaps, spacing })
    }

    /// Whether `t` is known: within the data and outside every gap.
    pub fn known(&self, t: i64) -> bool {
        t >= self.first && t <= self.last && !self.gaps.iter().any(|g| t > g.from && t < g.to)
    }

    /// Whether a gap lies (partly) within `(t0, t1]`.
    pub fn gap_between(&self, t0: i64, t1: i64) -> bool {
        self.gaps.iter().any(|g| g.to > t0 && g.from < t1)
    }

    /// The gaps within `[start, end]`, clipped to it.
    pub fn gaps_within(&self, start: i64, end: i64) -> Vec<Gap> {
        let mut out: Vec<Gap> = self
            .gaps
            .iter()
            .filter(|g| g.to > start && g.from < end)
            .map(|g| Gap { from: g.from.max(start), to: g.to.min(end) })
            .collect();
        if self.first > start + self.spacing {
            out.insert(0, Gap { from: start, to: self.first.min(end) });
        }
        if self.last < end - self.spacing {
            out.push(Gap { from: self.last.max(start), to: end });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(ts: &[i64]) -> Vec<Obs> {
        ts.iter().map(|&t| Obs { t, a: t, b: t, v: 0.0 }).collect()
    }

    #[test]
    fn holes_longer_than_one_and_a_half_steps_are_gaps() {
        let o = obs(&[100, 110, 120, 160, 170, 180]);
        let c = Coverage::of([o.as_slice()].into_iter(), 10).unwrap();
        assert_eq!(c.gaps, vec![Gap { from: 120, to: 160 }]);
        assert!(c.known(120) && !c.known(140) && c.known(160));
        assert!(c.gap_between(110, 170) && !c.gap_between(160, 180));
        assert!(!c.known(181), "after the last point");
    }

    #[test]
    fn a_series_that_reports_later_holds_the_end_back() {
        let (a, b) = (obs(&[100, 110, 120]), obs(&[105, 115]));
        let c = Coverage::of([a.as_slice(), b.as_slice()].into_iter(), 10).unwrap();
        assert_eq!(c.last, 115);
        let ended = obs(&[60, 70]);
        let c = Coverage::of([a.as_slice(), ended.as_slice()].into_iter(), 10).unwrap();
        assert_eq!(c.last, 120, "a series that ended long ago holds nothing back");
    }

    #[test]
    fn one_idle_series_is_no_gap_while_others_report() {
        let (a, b) = (obs(&[100, 110, 120, 130, 140]), obs(&[105, 145]));
        assert!(Coverage::of([a.as_slice(), b.as_slice()].into_iter(), 10)
            .unwrap()
            .gaps
            .is_empty());
    }

    #[test]
    fn missing_data_at_the_edges_is_listed_as_gaps() {
        let o = obs(&[150, 160, 170]);
        let c = Coverage::of([o.as_slice()].into_iter(), 10).unwrap();
        assert_eq!(
            c.gaps_within(100, 300),
            vec![Gap { from: 100, to: 150 }, Gap { from: 170, to: 300 }]
        );
    }
}
