//! The terminal summary: worst first, one line per dashboard, panel and target, then alerts.
use super::ValidationReport;
use crate::validate::Verdict;
use std::fmt::Write;

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Equivalent => "ok  ",
        Verdict::NotValidated => "??  ",
        Verdict::Divergent => "DIFF",
    }
}

/// Renders the summary.
pub fn render(r: &ValidationReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "legacy {} vs new {}, {} .. {} UTC, step {} s",
        r.legacy_backend,
        r.new_backend,
        crate::report::utc(r.start),
        crate::report::utc(r.end),
        r.step
    );
    for d in &r.dashboards {
        let _ = writeln!(s, "{} dashboard {:?}: {}", mark(d.verdict), d.title, d.verdict.as_str());
        let mut panels: Vec<_> = d.panels.iter().collect();
        panels.sort_by_key(|p| std::cmp::Reverse(p.verdict));
        for p in panels {
            let row = p.row.as_ref().map(|r| format!("{r} / ")).unwrap_or_default();
            let _ = writeln!(
                s,
                "  {} panel {row}{:?}: {}",
                mark(p.verdict),
                p.title,
                p.verdict.as_str()
            );
            let mut ts: Vec<_> = p.targets.iter().collect();
            ts.sort_by_key(|t| std::cmp::Reverse(t.verdict));
            for t in ts {
                let _ = writeln!(
                    s,
                    "    {} {} [{}] {}: {}",
                    mark(t.verdict),
                    t.ref_id,
                    t.status,
                    t.verdict.as_str(),
                    t.explanation
                );
            }
        }
    }
    for a in &r.alerts {
        let _ = writeln!(
            s,
            "{} alert {:?}{}: {}: {}",
            mark(a.verdict),
            a.name,
            a.rule.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
            a.verdict.as_str(),
            a.explanation
        );
    }
    let count = |v: Verdict| {
        r.dashboards
            .iter()
            .flat_map(|d| &d.panels)
            .flat_map(|p| &p.targets)
            .filter(|t| t.verdict == v)
            .count()
    };
    let acount = |v: Verdict| r.alerts.iter().filter(|a| a.verdict == v).count();
    let _ = writeln!(
        s,
        "{} dashboards; targets: {} equivalent, {} divergent, {} not validated; alerts: {} equivalent, {} divergent, {} not validated",
        r.dashboards.len(),
        count(Verdict::Equivalent),
        count(Verdict::Divergent),
        count(Verdict::NotValidated),
        acount(Verdict::Equivalent),
        acount(Verdict::Divergent),
        acount(Verdict::NotValidated),
    );
    s
}
