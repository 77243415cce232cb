//! Terminal table: one line per pair, then the explanations of the pairs that are not equivalent.
use std::fmt::Write;

use super::{num, Report};
use crate::diff::Verdict;

fn pad(s: &str, w: usize) -> String {
    let len = s.chars().count();
    if len >= w {
        s.chars().take(w).collect()
    } else {
        format!("{s}{}", " ".repeat(w - len))
    }
}

/// Renders the report as a fixed-width table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let name_w =
        report.pairs.iter().map(|p| p.name.chars().count()).max().unwrap_or(4).clamp(4, 48);
    let _ = writeln!(
        out,
        "{} {} {} {:>7} {:>10} {:>8} {:>6}",
        pad("PAIR", name_w),
        pad("KIND", 8),
        pad("VERDICT", 14),
        "WITHIN",
        "MAX_ABS",
        "MAX_REL",
        "POINTS"
    );
    for p in &report.pairs {
        let o = &p.outcome;
        let _ = writeln!(
            out,
            "{} {} {} {:>6.1}% {:>10} {:>7.2}% {:>6}",
            pad(&p.name, name_w),
            pad(p.kind.as_str(), 8),
            pad(o.verdict.as_str(), 14),
            o.share_within * 100.0,
            num(o.max_abs_err),
            o.max_rel_err * 100.0,
            o.points_compared
        );
    }
    let notable: Vec<_> =
        report.pairs.iter().filter(|p| p.outcome.verdict != Verdict::Equivalent).collect();
    if !notable.is_empty() {
        out.push('\n');
        for p in notable {
            let _ = writeln!(
                out,
                "{} [{}]: {}",
                p.name,
                p.outcome.verdict.as_str(),
                p.outcome.explanation
            );
        }
    }
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let s = report.summary();
    let _ = writeln!(
        out,
        "\n{} pairs: {} equivalent, {} divergent, {} missing, {} error",
        report.pairs.len(),
        s.equivalent,
        s.divergent,
        s.missing,
        s.error
    );
    out
}
