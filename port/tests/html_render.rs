//! The validation report's HTML really renders (the comparator's approach, see
//! comparator/tests/html_render.rs): headless Chromium (Debian's `chromium`, which
//! scripts/test.sh installs) takes a screenshot that must contain both curves' colours and the
//! alert timeline bars; the DOM after rendering must hold the charts and a readable time axis
//! (`HH:MM:SS` ticks, not Unix seconds). Gated like every end-to-end test.
use dualmetrics_compare::report::Chart;
use dualmetrics_port::report::html::{self, LEGACY_COLOUR, NEW_COLOUR};
use dualmetrics_port::report::ValidationReport;
use dualmetrics_port::validate::alerts::{AlertResult, Interval, Timeline};
use dualmetrics_port::validate::{DashboardResult, PanelResult, TargetResult, Verdict};
use std::path::Path;
use std::process::Command;

fn chromium() -> Option<String> {
    if std::env::var("DUALMETRICS_E2E").as_deref() != Ok("1") {
        println!("skipped: set DUALMETRICS_E2E=1");
        return None;
    }
    for bin in ["chromium", "chromium-browser"] {
        if Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return Some(bin.to_owned());
        }
    }
    panic!("DUALMETRICS_E2E=1 but no chromium: scripts/test.sh installs Debian's `chromium`");
}

const T0: i64 = 1_700_000_000; // 22:13:20 UTC

fn report() -> ValidationReport {
    let t: Vec<i64> = (0..120).map(|i| T0 + i * 10).collect();
    let legacy: Vec<f64> = (0..120).map(|i| (i as f64 / 8.0).sin() * 40.0 + 50.0).collect();
    let new: Vec<f64> = legacy.iter().map(|v| v * 1.3).collect();
    let target = |id: &str, verdict, chart: Chart| TargetResult {
        ref_id: id.into(),
        graphite: "aliasByTags(seriesByTag('name=stats.gauges.svc.q'), 'host')".into(),
        promql: Some("svc_q".into()),
        status: "exact".into(),
        verdict,
        comparator: Some(verdict.as_str().into()),
        explanation: "new side is 30% above <legacy>".into(),
        chart,
    };
    ValidationReport {
        legacy_backend: "graphite http://127.0.0.1:1".into(),
        new_backend: "prometheus http://127.0.0.1:2".into(),
        start: T0,
        end: T0 + 1190,
        step: 10,
        dashboards: vec![DashboardResult {
            title: "Checkout".into(),
            source: "d.json".into(),
            verdict: Verdict::Divergent,
            panels: vec![PanelResult {
                row: Some("Details".into()),
                title: "Queue depth".into(),
                id: Some(7),
                verdict: Verdict::Divergent,
                targets: vec![
                    target("A", Verdict::Divergent, Chart { t: t.clone(), legacy, new }),
                    target("B", Verdict::NotValidated, Chart::default()),
                ],
            }],
        }],
        alerts: vec![AlertResult {
            name: "Queue high".into(),
            rule: Some("QueueHigh".into()),
            verdict: Verdict::Divergent,
            explanation: "the alert: only Graphite fires at 22:20:00..22:25:00".into(),
            range: (T0, T0 + 1190, 10),
            timelines: vec![Timeline {
                labels: "host=web1".into(),
                legacy: vec![Interval { from: T0 + 400, to: T0 + 700 }],
                new: vec![Interval { from: T0 + 400, to: T0 + 500 }],
                legacy_only: vec![Interval { from: T0 + 510, to: T0 + 700 }],
                new_only: vec![],
            }],
            error: false,
        }],
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let h = hex.trim_start_matches('#');
    let p = |i| u8::from_str_radix(&h[i..i + 2], 16).unwrap();
    [p(0), p(2), p(4)]
}

fn count_colour(png_path: &Path, colour: [u8; 3]) -> (usize, u32, u32) {
    let decoder =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let close = |a: u8, b: u8| a.abs_diff(b) <= 24;
    let n = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|px| close(px[0], colour[0]) && close(px[1], colour[1]) && close(px[2], colour[2]))
        .count();
    (n, info.width, info.height)
}

fn flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

#[test]
fn validation_report_renders_curves_timelines_and_a_readable_time_axis_in_chromium() {
    let html = html::render(&report());
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained");
    assert!(html.contains(">22:15:00<"), "time ticks are times of day");
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let shot = dir.path().join("shot.png");
    let out = Command::new(&bin)
        .args(flags(&dir.path().join("p1")))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=900,1400")
        .arg(&url)
        .output()
        .unwrap();
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    let (legacy_px, w, h) = count_colour(&shot, rgb(LEGACY_COLOUR));
    let (new_px, _, _) = count_colour(&shot, rgb(NEW_COLOUR));
    let (mismatch_px, _, _) = count_colour(&shot, rgb("#b00020"));
    println!(
        "screenshot {w}x{h}: {legacy_px} Graphite, {new_px} PromQL, {mismatch_px} mismatch pixels"
    );
    assert!(legacy_px > 500 && new_px > 500, "both curves drawn");
    assert!(mismatch_px > 100, "the mismatched alert interval is drawn");
    let dom = Command::new(&bin)
        .args(flags(&dir.path().join("p2")))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 1, "one chart per target with data");
    assert_eq!(dom.matches("<svg class=\"timeline\"").count(), 1, "one timeline per alert");
    assert!(dom.contains(r#"class="legacy" d="M"#) && dom.contains(r#"class="new" d="M"#));
    for tick in ["22:15:00", "22:20:00", "22:25:00", "22:30:00"] {
        assert!(dom.contains(&format!(">{tick}</text>")), "time tick {tick} in the rendered axis");
    }
    assert!(dom.contains("new side is 30% above &lt;legacy&gt;"));
}
