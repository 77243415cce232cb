//! Markdown report: a summary line and one table row per pair.
use std::fmt::Write;

use super::{num, Report};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let s = report.summary();
    let mut out = String::new();
    let _ = writeln!(out, "# dualmetrics equivalence report\n");
    let _ = writeln!(
        out,
        "Legacy: `{}` · New: `{}` · range {}–{} step {} s\n",
        report.legacy_backend, report.new_backend, report.start, report.end, report.step
    );
    let _ = writeln!(
        out,
        "**{}** equivalent, **{}** divergent, **{}** missing, **{}** error\n",
        s.equivalent, s.divergent, s.missing, s.error
    );
    let _ = writeln!(out, "| pair | kind | verdict | within | max abs | max rel | explanation |");
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
    for p in &report.pairs {
        let o = &p.outcome;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1}% | {} | {:.2}% | {} |",
            cell(&p.name),
            p.kind.as_str(),
            o.verdict.as_str(),
            o.share_within * 100.0,
            num(o.max_abs_err),
            o.max_rel_err * 100.0,
            cell(&o.explanation)
        );
    }
    for n in &report.notes {
        let _ = writeln!(out, "\n> note: {}", cell(n));
    }
    out
}
