//! The HTML report really renders: headless Chromium (Debian's `chromium` package, installed
//! here when missing) takes a screenshot, and the PNG must contain both series' colours; the
//! DOM after rendering must hold both SVG paths. Gated like every end-to-end test.
use std::path::Path;
use std::process::Command;

use dualmetrics_compare::diff::{Outcome, Verdict};
use dualmetrics_compare::report::html::{self, LEGACY_COLOUR, NEW_COLOUR};
use dualmetrics_compare::report::{Chart, PairReport, Report};
use dualmetrics_compare::PairKind;

fn gate() -> bool {
    if std::env::var("DUALMETRICS_E2E").as_deref() == Ok("1") {
        true
    } else {
        println!("skipped: set DUALMETRICS_E2E=1");
        false
    }
}

fn chromium() -> String {
    for bin in ["chromium", "chromium-browser"] {
        if Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return bin.to_owned();
        }
    }
    let sudo: &[&str] =
        if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0")) {
            &[]
        } else {
            &["sudo", "-n"]
        };
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.extend(args);
        let st = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap();
        assert!(st.success(), "{all:?} failed");
    };
    run(&["apt-get", "update", "-qq"]);
    run(&["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]);
    "chromium".to_owned()
}

fn report() -> Report {
    let t: Vec<i64> = (0..120).map(|i| 1_700_000_000 + i * 10).collect();
    let legacy: Vec<f64> = (0..120).map(|i| (i as f64 / 8.0).sin() * 40.0 + 50.0).collect();
    let mut new = legacy.iter().map(|v| v * 1.02).collect::<Vec<_>>();
    new[60] = f64::NAN;
    let totals: Vec<f64> = (0..120)
        .scan(0.0, |total, i| {
            *total += f64::from(i % 7);
            Some(*total)
        })
        .collect();
    let row = |name: &str, kind, verdict, legacy: Vec<f64>, new: Vec<f64>| PairReport {
        name: name.to_owned(),
        kind,
        unit: "1".to_owned(),
        legacy_query: "seriesByTag('name=stats.gauges.svc.q')".to_owned(),
        new_query: "sum (q)".to_owned(),
        outcome: Outcome {
            verdict,
            max_abs_err: 1.8,
            max_rel_err: 0.02,
            share_within: 0.5,
            points_compared: 120,
            missing_legacy: 0,
            missing_new: 1,
            worst_index: None,
            worst_at: None,
            explanation: "new side is 2.0% above <legacy>".to_owned(),
            ..Outcome::pending()
        },
        error: None,
        chart: Chart { t: t.clone(), legacy, new },
    };
    Report {
        legacy_backend: "graphite http://127.0.0.1:8428/".to_owned(),
        new_backend: "prometheus http://127.0.0.1:8428/".to_owned(),
        start: t[0],
        end: t[119],
        step: 10,
        notes: vec![],
        pairs: vec![
            row("queue.depth", PairKind::Gauge, Verdict::Divergent, legacy.clone(), new),
            row("queue.depth.copy", PairKind::Gauge, Verdict::Equivalent, legacy.clone(), legacy),
            row("http.requests", PairKind::Counter, Verdict::Equivalent, totals.clone(), totals),
        ],
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

fn chrome_flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
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
fn html_report_renders_both_series_in_chromium() {
    if !gate() {
        return;
    }
    let bin = chromium();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let html = html::render(&report());
    assert!(
        !html.contains("<script") && !html.contains("http-equiv") && !html.contains("<link"),
        "self-contained"
    );
    std::fs::write(&page, &html).unwrap();
    let shot = dir.path().join("shot.png");
    let url = format!("file://{}", page.display());

    let out = Command::new(&bin)
        .args(chrome_flags(&dir.path().join("profile-shot")))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=900,1200")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot; chromium said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (legacy_px, w, h) = count_colour(&shot, rgb(LEGACY_COLOUR));
    let (new_px, _, _) = count_colour(&shot, rgb(NEW_COLOUR));
    println!("screenshot {w}x{h}: {legacy_px} legacy-coloured and {new_px} new-coloured pixels");
    assert_eq!((w, h), (900, 1200));
    assert!(legacy_px > 500, "legacy series not drawn ({legacy_px} px)");
    assert!(new_px > 500, "new series not drawn ({new_px} px)");

    let dom = Command::new(&bin)
        .args(chrome_flags(&dir.path().join("profile-dom")))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    // one chart per pair, and a counter's second: its increase per step
    assert_eq!(dom.matches("<svg").count(), 4, "{dom}");
    assert!(dom.contains("increase per step</p>") && dom.contains("running total</p>"));
    assert!(dom.contains(r#"class="legacy" d="M"#) && dom.contains(r#"class="new" d="M"#));
    assert!(dom.contains("new side is 2.0% above &lt;legacy&gt;"));
}
