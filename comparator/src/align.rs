//! Putting points on the step grid.
//!
//! Grid point `t_i = start + i*step` owns the interval `(t_i - step, t_i]`: a raw point belongs to
//! the first grid point at or after it. A backend that already answers on the grid (Prometheus
//! range queries) lands one point per cell; a Graphite store answering at its storage step
//! (one point per StatsD flush) lands several.
//!
//! Missing data stays explicit: a cell with no point, or only `null`/`NaN` points, is
//! [`Cell::MISSING`]; nothing is interpolated or carried forward here.
use std::collections::BTreeMap;

use crate::query::TimeRange;

/// One grid cell of one series: the representative value and the range of raw values in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Representative value (last value, or running total).
    pub value: f64,
    /// Smallest raw value in the cell.
    pub lo: f64,
    /// Largest raw value in the cell.
    pub hi: f64,
}

impl Cell {
    /// A cell without data.
    pub const MISSING: Cell = Cell { value: f64::NAN, lo: f64::NAN, hi: f64::NAN };

    /// A cell holding exactly `v`.
    pub fn exact(v: f64) -> Cell {
        Cell { value: v, lo: v, hi: v }
    }

    /// Whether the cell has no data.
    pub fn is_missing(&self) -> bool {
        self.value.is_nan()
    }
}

/// A series on the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Aligned {
    /// Labels that identify it for matching (after grouping).
    pub labels: BTreeMap<String, String>,
    /// One cell per grid point.
    pub cells: Vec<Cell>,
}

/// The grid index owning `ts`, or `None` outside `(start - step, start + (n-1)*step]`.
pub fn bucket_of(ts: i64, range: &TimeRange, n: usize) -> Option<usize> {
    let step = range.step.max(1);
    let offset = ts - range.start;
    if offset <= -step {
        return None;
    }
    let i = if offset <= 0 { 0 } else { (offset + step - 1) / step } as usize;
    (i < n).then_some(i)
}

/// Level semantics: per cell the last non-NaN value, and the min and max of the cell's values.
pub fn align_level(points: &[(i64, f64)], range: &TimeRange, n: usize) -> Vec<Cell> {
    let mut cells = vec![Cell::MISSING; n];
    for &(ts, v) in points {
        if v.is_nan() {
            continue;
        }
        let Some(i) = bucket_of(ts, range, n) else { continue };
        let c = &mut cells[i];
        if c.is_missing() {
            *c = Cell::exact(v);
        } else {
            c.value = v;
            c.lo = c.lo.min(v);
            c.hi = c.hi.max(v);
        }
    }
    cells
}

/// Delta semantics: per cell the sum of its non-NaN values (0 when it has none).
pub fn align_sum(points: &[(i64, f64)], range: &TimeRange, n: usize) -> Vec<f64> {
    let mut sums = vec![0.0; n];
    for &(ts, v) in points {
        if v.is_nan() {
            continue;
        }
        if let Some(i) = bucket_of(ts, range, n) {
            sums[i] += v;
        }
    }
    sums
}

/// The number of grid cells compared once the `skip_recent` most recent ones are left out
/// (ingestion lag: the newest samples may not be queryable yet on one side).
pub fn compared_len(n: usize, skip_recent: usize) -> usize {
    n.saturating_sub(skip_recent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: TimeRange = TimeRange { start: 100, end: 130, step: 10 };

    #[test]
    fn point_belongs_to_the_next_grid_point() {
        assert_eq!(bucket_of(100, &R, 4), Some(0));
        assert_eq!(bucket_of(91, &R, 4), Some(0));
        assert_eq!(bucket_of(90, &R, 4), None);
        assert_eq!(bucket_of(101, &R, 4), Some(1));
        assert_eq!(bucket_of(110, &R, 4), Some(1));
        assert_eq!(bucket_of(131, &R, 4), None);
    }

    #[test]
    fn level_keeps_last_value_and_range() {
        let cells = align_level(&[(101, 5.0), (105, 1.0), (109, 3.0)], &R, 4);
        assert_eq!(cells[1], Cell { value: 3.0, lo: 1.0, hi: 5.0 });
    }

    #[test]
    fn empty_and_nan_cells_are_missing() {
        let cells = align_level(&[(101, f64::NAN)], &R, 4);
        assert!(cells.iter().all(Cell::is_missing));
    }

    #[test]
    fn deltas_sum_per_cell() {
        let sums = align_sum(&[(101, 1.0), (102, 2.0), (111, f64::NAN), (120, 4.0)], &R, 4);
        assert_eq!(sums, vec![0.0, 3.0, 4.0, 0.0]);
    }

    #[test]
    fn skip_recent_never_underflows() {
        assert_eq!(compared_len(4, 2), 2);
        assert_eq!(compared_len(1, 2), 0);
    }
}
