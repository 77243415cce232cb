//! One self-contained HTML page: dashboard → panel → target, both curves on one SVG chart
//! with a human time axis (`HH:MM:SS` ticks in UTC), and each alert's firing intervals as two
//! timelines side by side (Graphite above, Prometheus below).
use super::ValidationReport;
use super::{utc, utc_time};
use crate::validate::alerts::{AlertResult, Interval};
use crate::validate::Verdict;
use dualmetrics_compare::report::html::escape;
use dualmetrics_compare::report::{num, Chart};
use std::fmt::Write;

/// Chart width, px.
pub const CHART_W: f64 = 720.0;
/// Chart height, px.
pub const CHART_H: f64 = 200.0;
/// Colour of the Graphite curve.
pub const LEGACY_COLOUR: &str = "#1f77b4";
/// Colour of the PromQL curve.
pub const NEW_COLOUR: &str = "#ff7f0e";
/// Number of time ticks on an axis.
pub const TICKS: i64 = 6;

const PAD_L: f64 = 56.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 10.0;
const PAD_B: f64 = 28.0;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
h2{margin-top:2em;border-bottom:1px solid #ddd}.target{margin:1em 0 1.5em 1em}\
.axis{font:10px sans-serif;fill:#555}code{background:#f4f4f4;padding:0 3px;word-break:break-all}\
.equivalent{color:#2a7d2a}.divergent{color:#b00020}.not-validated{color:#b26b00}\
.key span{display:inline-block;width:2em;height:4px;vertical-align:middle;margin:0 4px}";

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Equivalent => "equivalent",
        Verdict::Divergent => "divergent",
        Verdict::NotValidated => "not-validated",
    }
}

/// Time ticks: about [`TICKS`] round instants between `t0` and `t1`.
pub fn time_ticks(t0: i64, t1: i64) -> Vec<i64> {
    let span = (t1 - t0).max(1);
    let nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
    let step = nice.iter().copied().find(|s| span / s <= TICKS).unwrap_or(86400);
    let first = (t0 + step - 1).div_euclid(step) * step;
    (0..).map(|i| first + i * step).take_while(|t| *t <= t1).collect()
}

fn axis(s: &mut String, t0: i64, t1: i64, x: &dyn Fn(i64) -> f64, y0: f64) {
    for t in time_ticks(t0, t1) {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="#999"/><text x="{0:.1}" y="{3:.1}" class="axis" text-anchor="middle">{4}</text>"##,
            x(t),
            y0,
            y0 + 4.0,
            y0 + 15.0,
            utc_time(t)
        );
    }
}

/// Both curves of a target as an SVG chart, with a value axis and a human time axis.
pub fn chart_svg(chart: &Chart, title: &str) -> String {
    let finite = chart.legacy.iter().chain(&chart.new).copied().filter(|v| v.is_finite());
    let (mut lo, mut hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let (t0, t1) = (chart.t.first().copied().unwrap_or(0), chart.t.last().copied().unwrap_or(1));
    let span = ((t1 - t0) as f64).max(1.0);
    let x = move |t: i64| PAD_L + (t - t0) as f64 / span * (CHART_W - PAD_L - PAD_R);
    let y = move |v: f64| PAD_T + (hi - v) / (hi - lo) * (CHART_H - PAD_T - PAD_B);
    let mut s = format!(
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{CHART_H}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{PAD_L}" y="{PAD_T}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        CHART_W - PAD_L - PAD_R,
        CHART_H - PAD_T - PAD_B
    );
    let _ = write!(
        s,
        r#"<text x="{0}" y="{1}" class="axis" text-anchor="end">{2}</text><text x="{0}" y="{3}" class="axis" text-anchor="end">{4}</text>"#,
        PAD_L - 4.0,
        PAD_T + 10.0,
        escape(&num(hi)),
        CHART_H - PAD_B,
        escape(&num(lo))
    );
    axis(&mut s, t0, t1, &x, CHART_H - PAD_B);
    for (class, values, colour, width) in
        [("legacy", &chart.legacy, LEGACY_COLOUR, 4), ("new", &chart.new, NEW_COLOUR, 2)]
    {
        let mut d = String::new();
        let mut down = false;
        for (t, v) in chart.t.iter().zip(values.iter()) {
            if !v.is_finite() {
                down = false;
                continue;
            }
            let _ = write!(d, "{}{:.1},{:.1} ", if down { "L" } else { "M" }, x(*t), y(*v));
            down = true;
        }
        let _ = write!(
            s,
            r#"<path class="{class}" d="{}" fill="none" stroke="{colour}" stroke-width="{width}" stroke-linejoin="round"/>"#,
            d.trim_end()
        );
    }
    s.push_str("</svg>");
    s
}

/// An alert's firing intervals, Graphite above and Prometheus below, on one time axis.
pub fn timeline_svg(a: &AlertResult) -> String {
    let (t0, t1, _) = a.range;
    let span = ((t1 - t0) as f64).max(1.0);
    let x = move |t: i64| PAD_L + (t - t0) as f64 / span * (CHART_W - PAD_L - PAD_R);
    let lane = 14.0;
    let rows = a.timelines.len().max(1);
    let h = PAD_T + rows as f64 * (2.0 * lane + 14.0) + PAD_B;
    let mut s = format!(
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{CHART_W}" height="{h}" role="img" aria-label="{}">"#,
        escape(&a.name)
    );
    let bars = |s: &mut String, v: &[Interval], y: f64, colour: &str, class: &str| {
        for i in v {
            let w = (x(i.to) - x(i.from)).max(2.0);
            let _ = write!(
                s,
                r#"<rect class="{class}" x="{:.1}" y="{y:.1}" width="{w:.1}" height="{}" fill="{colour}"/>"#,
                x(i.from),
                lane - 2.0
            );
        }
    };
    for (k, tl) in a.timelines.iter().enumerate() {
        let y = PAD_T + k as f64 * (2.0 * lane + 14.0);
        let label = if tl.labels.is_empty() { "alert".to_owned() } else { tl.labels.clone() };
        // the label set above its two lanes, so a long one is not cut at the left edge
        let _ = write!(
            s,
            r#"<text x="{PAD_L}" y="{:.1}" class="axis">{}</text>"#,
            y + 2.0 * lane + 6.0,
            escape(&label)
        );
        let _ = write!(
            s,
            r#"<text x="{0}" y="{1:.1}" class="axis" text-anchor="end">Graphite</text><text x="{0}" y="{2:.1}" class="axis" text-anchor="end">PromQL</text>"#,
            PAD_L - 4.0,
            y + lane - 3.0,
            y + 2.0 * lane - 3.0
        );
        bars(&mut s, &tl.legacy, y, LEGACY_COLOUR, "legacy");
        bars(&mut s, &tl.new, y + lane, NEW_COLOUR, "new");
        bars(&mut s, &tl.legacy_only, y + lane * 2.0 - 1.0, "#b00020", "mismatch");
        bars(&mut s, &tl.new_only, y + lane * 2.0 - 1.0, "#b00020", "mismatch");
    }
    axis(&mut s, t0, t1, &x, h - PAD_B);
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn render(r: &ValidationReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>dualmetrics: dashboards and alerts validation</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        s,
        "<h1>Dashboards and alerts: Graphite vs PromQL</h1><p>legacy <code>{}</code> vs new <code>{}</code>, {} .. {} UTC, step {} s. Overall: <b class=\"{}\">{}</b></p>",
        escape(&r.legacy_backend),
        escape(&r.new_backend),
        utc(r.start),
        utc(r.end),
        r.step,
        class(r.verdict()),
        r.verdict().as_str()
    );
    let _ = write!(
        s,
        "<p class=\"key\"><span style=\"background:{LEGACY_COLOUR}\"></span>Graphite (render API)<span style=\"background:{NEW_COLOUR}\"></span>PromQL (query_range)</p>"
    );
    for d in &r.dashboards {
        let _ = write!(
            s,
            "<h2>Dashboard {} — <span class=\"{}\">{}</span></h2>",
            escape(&d.title),
            class(d.verdict),
            d.verdict.as_str()
        );
        for p in &d.panels {
            let row = p.row.as_ref().map(|r| format!("{} / ", escape(r))).unwrap_or_default();
            let _ = write!(
                s,
                "<h3>{row}{} — <span class=\"{}\">{}</span></h3>",
                escape(&p.title),
                class(p.verdict),
                p.verdict.as_str()
            );
            for t in &p.targets {
                let _ = write!(
                    s,
                    "<div class=\"target\"><p><b>{}</b> [{}] <span class=\"{}\">{}</span>: {}<br>Graphite <code>{}</code><br>PromQL <code>{}</code></p>",
                    escape(&t.ref_id),
                    escape(&t.status),
                    class(t.verdict),
                    t.verdict.as_str(),
                    escape(&t.explanation),
                    escape(&t.graphite),
                    escape(t.promql.as_deref().unwrap_or("-"))
                );
                if !t.chart.t.is_empty() {
                    s.push_str(&chart_svg(&t.chart, &format!("{} {}", p.title, t.ref_id)));
                }
                s.push_str("</div>");
            }
        }
    }
    if !r.alerts.is_empty() {
        s.push_str("<h2>Alerts</h2>");
    }
    for a in &r.alerts {
        let _ = write!(
            s,
            "<div class=\"target\"><h3>{}{} — <span class=\"{}\">{}</span></h3><p>{}</p>",
            escape(&a.name),
            a.rule.as_ref().map(|r| format!(" (<code>{}</code>)", escape(r))).unwrap_or_default(),
            class(a.verdict),
            a.verdict.as_str(),
            escape(&a.explanation)
        );
        s.push_str(&timeline_svg(a));
        s.push_str("</div>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ticks_are_round_instants_inside_the_range() {
        let t = time_ticks(1_700_000_005, 1_700_000_305);
        assert!(t.len() <= TICKS as usize && t.len() >= 3, "{t:?}");
        assert!(t.iter().all(|x| x % 60 == 0 && *x >= 1_700_000_005 && *x <= 1_700_000_305));
    }
}
