//! Self-contained HTML report: inline CSS and one inline SVG chart per pair (legacy and new
//! series on the same axes). No JavaScript, no external fonts, styles or images.
use std::fmt::Write;

use super::{num, utc, utc_time, Chart, PairReport, Report};
use crate::diff::{SideGap, Verdict};
use crate::pairs::PairKind;

/// Colour of the legacy series.
pub const LEGACY_COLOUR: &str = "#1f77b4";
/// Colour of the new series.
pub const NEW_COLOUR: &str = "#ff7f0e";

const W: f64 = 640.0;
const H: f64 = 200.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 8.0;
const PAD_T: f64 = 8.0;
const PAD_B: f64 = 22.0;

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG path through the finite values; a gap (NaN) starts a new sub-path.
fn path(t: &[i64], v: &[f64], x: &dyn Fn(i64) -> f64, y: &dyn Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut pen_down = false;
    for (ti, vi) in t.iter().zip(v) {
        if !vi.is_finite() {
            pen_down = false;
            continue;
        }
        let _ = write!(d, "{}{:.1},{:.1} ", if pen_down { "L" } else { "M" }, x(*ti), y(*vi));
        pen_down = true;
    }
    d.trim_end().to_owned()
}

/// One chart as an SVG element.
pub fn chart_svg(chart: &Chart, title: &str) -> String {
    chart_svg_with_gaps(chart, title, &[])
}

/// Height of the residual strip under a chart.
const STRIP_H: f64 = 36.0;

/// One chart as an SVG element: both series on a UTC time axis, the gaps of either side
/// shaded, and a strip under it with the residual (new − legacy) per step.
pub fn chart_svg_with_gaps(chart: &Chart, title: &str, gaps: &[SideGap]) -> String {
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
    let x = move |t: i64| PAD_L + (t - t0) as f64 / span * (W - PAD_L - PAD_R);
    let y = move |v: f64| PAD_T + (hi - v) / (hi - lo) * (H - PAD_T - PAD_B);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" viewBox="0 0 {W} {}" role="img" aria-label="{}">"#,
        H + STRIP_H,
        H + STRIP_H,
        escape(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{PAD_L}" y="{PAD_T}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/>"##,
        W - PAD_L - PAD_R,
        H - PAD_T - PAD_B
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" class="axis" text-anchor="end">{}</text><text x="{}" y="{}" class="axis" text-anchor="end">{}</text>"##,
        PAD_L - 4.0,
        PAD_T + 10.0,
        escape(&num(hi)),
        PAD_L - 4.0,
        H - PAD_B,
        escape(&num(lo))
    );
    let _ = write!(
        s,
        r##"<text x="{PAD_L}" y="{}" class="axis">{}</text><text x="{}" y="{}" class="axis" text-anchor="middle">{} UTC</text><text x="{}" y="{}" class="axis" text-anchor="end">{}</text>"##,
        H - 6.0,
        utc_time(t0),
        (PAD_L + W - PAD_R) / 2.0,
        H - 6.0,
        &utc(t0)[..10],
        W - PAD_R,
        H - 6.0,
        utc_time(t1)
    );
    // Gaps: shaded bands (legacy above the middle, new below).
    for g in gaps {
        let (a, b) = (x(g.from.max(t0)), x(g.to.min(t1)));
        if b <= a {
            continue;
        }
        let half = (H - PAD_T - PAD_B) / 2.0;
        let top = if g.side == "legacy" { PAD_T } else { PAD_T + half };
        let _ = write!(
            s,
            r##"<rect class="gap gap-{}" x="{a:.1}" y="{top:.1}" width="{:.1}" height="{half:.1}" fill="#999" fill-opacity="0.18"><title>{} side: no data</title></rect>"##,
            g.side,
            b - a,
            g.side
        );
    }
    // Residual strip: new − legacy per step, scaled to its own range.
    let res: Vec<f64> = chart.legacy.iter().zip(&chart.new).map(|(l, n)| n - l).collect();
    let m = res.iter().filter(|v| v.is_finite()).fold(0.0_f64, |m, v| m.max(v.abs())).max(1e-12);
    let mid = H + STRIP_H / 2.0;
    let ry = move |v: f64| mid - v / m * (STRIP_H / 2.0 - 3.0);
    let _ = write!(
        s,
        r##"<line x1="{PAD_L}" x2="{}" y1="{mid}" y2="{mid}" stroke="#ccc"/><text x="{}" y="{}" class="axis" text-anchor="end">new−legacy ±{}</text><path class="residual" d="{}" fill="none" stroke="#555" stroke-width="1"/>"##,
        W - PAD_R,
        PAD_L - 4.0,
        mid + 3.0,
        escape(&num(m)),
        path(&chart.t, &res, &x, &ry)
    );
    let _ = write!(
        s,
        r#"<path class="legacy" d="{}" fill="none" stroke="{LEGACY_COLOUR}" stroke-width="4" stroke-linejoin="round"/>"#,
        path(&chart.t, &chart.legacy, &x, &y)
    );
    let _ = write!(
        s,
        r#"<path class="new" d="{}" fill="none" stroke="{NEW_COLOUR}" stroke-width="2" stroke-linejoin="round"/>"#,
        path(&chart.t, &chart.new, &x, &y)
    );
    s.push_str("</svg>");
    s
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
.pair{margin:1.5em 0;padding-top:.5em;border-top:1px solid #eee}.axis{font:10px sans-serif;fill:#555}\
.v-equivalent{color:#2a7d2a}.v-divergent,.v-error{color:#b00020}.v-missing-legacy,.v-missing-new,.v-no-data{color:#b26b00}\
code{background:#f4f4f4;padding:0 3px}.key span{display:inline-block;width:2em;height:4px;vertical-align:middle;margin:0 4px}\
.chart-label{margin:.3em 0 0;font-size:12px;color:#555}";

/// A running-total chart as increases per step: each point minus the one before (`NaN` where
/// either is unknown, and at the first point).
pub fn per_step(chart: &Chart) -> Chart {
    let diff = |v: &[f64]| -> Vec<f64> {
        std::iter::once(f64::NAN).chain(v.windows(2).map(|w| w[1] - w[0])).take(v.len()).collect()
    };
    Chart { t: chart.t.clone(), legacy: diff(&chart.legacy), new: diff(&chart.new) }
}

/// The pairs worst first: errors, divergent, missing, then equivalent; by relative error within.
pub fn worst_first(report: &Report) -> Vec<&PairReport> {
    let rank = |v: Verdict| match v {
        Verdict::Error => 0,
        Verdict::Divergent => 1,
        Verdict::MissingLegacy | Verdict::MissingNew | Verdict::NoData => 2,
        Verdict::Equivalent => 3,
    };
    let mut pairs: Vec<&PairReport> = report.pairs.iter().collect();
    pairs.sort_by(|a, b| {
        rank(a.outcome.verdict)
            .cmp(&rank(b.outcome.verdict))
            .then(b.outcome.max_rel_err.total_cmp(&a.outcome.max_rel_err))
    });
    pairs
}

/// Renders the whole report as one HTML page, the worst pairs first.
pub fn render(report: &Report) -> String {
    let ordered = worst_first(report);
    let s = report.summary();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>dualmetrics equivalence report</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        out,
        "<h1>dualmetrics equivalence report</h1><p>Legacy: <code>{}</code> · New: <code>{}</code> · range {} – {} (UTC), step {} s</p>",
        escape(&report.legacy_backend),
        escape(&report.new_backend),
        utc(report.start),
        utc(report.end),
        report.step
    );
    let _ = write!(
        out,
        "<p id=\"summary\">{} equivalent, {} divergent, {} missing, {} error</p>\
         <p class=\"key\">legacy<span style=\"background:{LEGACY_COLOUR}\"></span> new<span style=\"background:{NEW_COLOUR}\"></span></p>",
        s.equivalent, s.divergent, s.missing, s.error
    );
    out.push_str("<table><tr><th>pair</th><th>kind</th><th>verdict</th><th>within</th><th>max abs</th><th>max rel</th><th>explanation</th></tr>");
    for p in &ordered {
        let o = &p.outcome;
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"v-{v}\">{v}</td><td>{:.1}%</td><td>{}</td><td>{:.2}%</td><td>{}</td></tr>",
            escape(&p.name),
            p.kind.as_str(),
            o.share_within * 100.0,
            escape(&num(o.max_abs_err)),
            o.max_rel_err * 100.0,
            escape(&o.explanation),
            v = o.verdict.as_str()
        );
    }
    out.push_str("</table>");
    for p in &ordered {
        let o = &p.outcome;
        let _ = write!(
            out,
            "<section class=\"pair\"><h2>{} <small class=\"v-{v}\">{v}</small></h2><p>{}</p><p>legacy: <code>{}</code><br>new: <code>{}</code></p>",
            escape(&p.name),
            escape(&o.explanation),
            escape(&p.legacy_query),
            escape(&p.new_query),
            v = o.verdict.as_str()
        );
        if !p.chart.t.is_empty() {
            if p.kind == PairKind::Counter {
                // both views of a count: what accumulated, and what each step added
                out.push_str("<p class=\"chart-label\">running total</p>");
                out.push_str(&chart_svg_with_gaps(&p.chart, &p.name, &o.gaps));
                out.push_str("<p class=\"chart-label\">increase per step</p>");
                let title = format!("{} increase per step", p.name);
                out.push_str(&chart_svg_with_gaps(&per_step(&p.chart), &title, &o.gaps));
            } else {
                out.push_str(&chart_svg_with_gaps(&p.chart, &p.name, &o.gaps));
            }
        }
        out.push_str("</section>");
    }
    for n in &report.notes {
        let _ = write!(out, "<p>note: {}</p>", escape(n));
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_is_utc_gaps_are_shaded_and_worst_pairs_come_first() {
        let chart = Chart {
            t: vec![1_700_000_000, 1_700_000_010],
            legacy: vec![1.0, 2.0],
            new: vec![1.0, 3.0],
        };
        let gaps = [SideGap { side: "new", from: 1_700_000_002, to: 1_700_000_008 }];
        let svg = chart_svg_with_gaps(&chart, "p", &gaps);
        assert!(svg.contains(">22:13:20<") && svg.contains("2023-11-14 UTC"), "{svg}");
        assert!(svg.contains("class=\"gap gap-new\""), "{svg}");
        assert!(svg.contains("class=\"residual\" d=\"M"), "{svg}");
    }

    #[test]
    fn gaps_split_the_path() {
        let chart = Chart {
            t: vec![0, 10, 20],
            legacy: vec![1.0, f64::NAN, 2.0],
            new: vec![1.0, 1.5, 2.0],
        };
        let svg = chart_svg(&chart, "x<y");
        assert!(svg.contains("aria-label=\"x&lt;y\""));
        let d = |class: &str| {
            let rest = svg.split(&format!("class=\"{class}\" d=\"")).nth(1).unwrap();
            rest.split('"').next().unwrap().to_owned()
        };
        assert_eq!(d("legacy").matches('M').count(), 2);
        assert_eq!(d("new").matches('M').count(), 1);
    }

    #[test]
    fn a_counter_chart_shows_the_increase_of_each_step_next_to_the_running_total() {
        let chart = Chart {
            t: vec![0, 10, 20, 30],
            legacy: vec![0.0, 5.0, f64::NAN, 12.0],
            new: vec![0.0, 5.0, 9.0, 13.0],
        };
        let steps = per_step(&chart);
        assert!(steps.legacy[0].is_nan() && steps.legacy[2].is_nan() && steps.legacy[3].is_nan());
        assert_eq!(&steps.legacy[1..2], &[5.0]);
        assert_eq!(&steps.new[1..], &[5.0, 4.0, 4.0]);
    }
}
