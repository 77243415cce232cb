//! `dashboards port` over the corpus under tests/corpus: what a ported dashboard contains,
//! idempotence, atomic output, bad input.
use dualmetrics_port::grafana::cli::{exit_code, run_port, ContextArgs, PortArgs};
use dualmetrics_port::grafana::{dashboard, io, panel, port_all, PortError, PortOptions};
use dualmetrics_port::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn corpus(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(p)
}

fn options() -> PortOptions {
    let mapping =
        dualmetrics_model::mapping::MappingFile::load(corpus("mapping.yml")).expect("mapping");
    PortOptions {
        ctx: Context { mapping: Some(mapping), ..Context::default() },
        ..PortOptions::default()
    }
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn all_panels(d: &Value) -> Vec<Value> {
    dashboard::panels(dashboard::dashboard_of(d).unwrap())
        .into_iter()
        .map(|(_, p)| p.clone())
        .collect()
}

fn panel_titled(d: &Value, title: &str) -> Value {
    all_panels(d)
        .into_iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no panel {title}"))
}

fn port_corpus() -> (tempfile::TempDir, dualmetrics_port::grafana::BatchReport) {
    let out = tempfile::tempdir().unwrap();
    let batch = port_all(&[corpus("dashboards")], out.path(), &options(), &mut |_, _| {}).unwrap();
    (out, batch)
}

#[test]
fn every_corpus_dashboard_is_ported_with_the_same_refids_layout_and_thresholds() {
    let (out, batch) = port_corpus();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    assert_eq!(batch.dashboards.len(), 3);
    for rel in ["service-overview.json", "team/checkout-export.json", "team/mixed.json"] {
        let before = read(&corpus("dashboards").join(rel));
        let after = read(&out.path().join(rel));
        let (pb, pa) = (all_panels(&before), all_panels(&after));
        assert_eq!(pb.len(), pa.len(), "{rel}");
        for (b, a) in pb.iter().zip(&pa) {
            assert_eq!(b["gridPos"], a["gridPos"], "{rel} {}", b["title"]);
            assert_eq!(
                b["fieldConfig"]["defaults"]["thresholds"],
                a["fieldConfig"]["defaults"]["thresholds"]
            );
            assert_eq!(b["thresholds"], a["thresholds"]);
            let refs = |p: &Value| -> Vec<Value> {
                p["targets"].as_array().into_iter().flatten().map(|t| t["refId"].clone()).collect()
            };
            assert_eq!(refs(b), refs(a), "{rel} {}", b["title"]);
            for t in a["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str().filter(|e| !e.is_empty()) {
                    dualmetrics_port::promql::check(e).unwrap_or_else(|m| panic!("{e}: {m}"));
                    assert_eq!(t["datasource"].is_null(), a["datasource"]["type"] == "prometheus");
                }
            }
        }
    }
    // every Graphite target is in the report, with a status
    assert_eq!(
        batch.count("exact")
            + batch.count("approximate")
            + batch.count("untranslatable")
            + batch.count("error"),
        22
    );
    assert_eq!(batch.count("error"), 0);
}

#[test]
fn service_overview_gets_promql_legends_variables_and_the_collapsed_row() {
    let (out, batch) = port_corpus();
    let d = read(&out.path().join("service-overview.json"));
    let rate = panel_titled(&d, "Request rate");
    assert_eq!(rate["datasource"], serde_json::json!({"type": "prometheus", "uid": "prometheus"}));
    let t = &rate["targets"][0];
    assert_eq!(t["legendFormat"], "requests/s");
    // env is multi-value: Grafana sends a regex, so its matcher becomes =~
    assert!(t["expr"].as_str().unwrap().contains("env=~\"$env\""), "{t}");
    assert!(t["expr"].as_str().unwrap().contains("service=\"$service\""), "{t}");
    assert!(t[panel::GRAPHITE_FIELD].as_str().unwrap().starts_with("alias(sumSeries(seriesByTag("));

    // #A references: the hidden targets stay hidden, C is the ratio of the two
    let err = panel_titled(&d, "Error ratio");
    assert_eq!(err["targets"][0]["hide"], true);
    let c = err["targets"][2]["expr"].as_str().unwrap();
    assert!(c.contains("checkout_errors_total") && c.contains("checkout_requests_total"), "{c}");
    assert_eq!(err["targets"][2]["legendFormat"], "error %");

    // collapsed row: nested panels ported in place
    let row = d["panels"].as_array().unwrap().iter().find(|p| p["type"] == "row").unwrap();
    assert_eq!(row["collapsed"], true);
    assert_eq!(row["panels"][1]["targets"][0]["expr"], "checkout_queue_depth");
    let wow = panel_titled(&d, "Requests, week over week");
    assert!(wow["targets"][1]["expr"].as_str().unwrap().contains("offset 1w"), "{wow}");
    assert_eq!(wow["targets"][1]["legendFormat"], "last week");

    // approximate and untranslatable targets are marked on the panel
    let spread = panel_titled(&d, "Latency spread");
    let desc = spread["description"].as_str().unwrap();
    assert!(desc.contains(panel::DESCRIPTION_MARKER));
    assert!(desc.contains("- A: untranslatable: path:"), "{desc}");
    assert!(desc.contains("- B: approximate:"), "{desc}");
    assert_eq!(spread["targets"][0]["expr"], "");
    let lat = panel_titled(&d, "Latency p50 / p90");
    assert!(lat["description"]
        .as_str()
        .unwrap()
        .starts_with("Checkout latency as StatsD timers see it.\n\n"));
    assert_eq!(lat["fieldConfig"]["overrides"][0]["matcher"]["options"], "p90");
    assert_eq!(lat["targets"][1]["legendFormat"], "p90");

    // template variables
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |n: &str| vars.iter().find(|v| v["name"] == n).unwrap().clone();
    assert_eq!(var("service")["query"], "label_values(checkout_requests_total, service)");
    assert_eq!(var("service")["datasource"]["type"], "prometheus");
    assert_eq!(var("env")["query"], "label_values(env)");
    assert_eq!(
        var("region_env")["query"],
        "label_values({__name__=~\"checkout_requests(_.*)?\"}, env)"
    );
    assert_eq!(var("interval")["query"], "1m,5m,10m,1h");
    assert_eq!(var("team")["query"], "payments");
    assert!(d["tags"].as_array().unwrap().iter().any(|t| t == dashboard::PORTED_TAG));

    // the report lists every approximate/untranslatable target with its place
    let rep = batch.dashboards.iter().find(|r| r.title == "Checkout service overview").unwrap();
    let untr: Vec<String> =
        rep.targets.iter().filter(|t| t.status() == "untranslatable").map(|t| t.place()).collect();
    assert_eq!(untr, vec!["row \"Details\", panel \"Latency spread\" (id 9), refId A".to_owned()]);
}

#[test]
fn export_model_inputs_become_a_prometheus_input_and_legacy_rows_are_ported() {
    let (out, _) = port_corpus();
    let d = read(&out.path().join("team/checkout-export.json"));
    let inputs = d["__inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0]["pluginId"], "prometheus");
    assert_eq!(inputs[0]["name"], "DS_PROMETHEUS");
    assert!(d["__requires"].as_array().unwrap().iter().all(|r| r["id"] != "graphite"));
    let p = &d["rows"][0]["panels"][0];
    assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}");
    assert_eq!(p["yaxes"][0]["format"], "short");
    assert_eq!(p["alert"]["name"], "Queue depth high", "the legacy alert stays for `alerts port`");
    let ds_var = &d["templating"]["list"][0];
    assert_eq!(ds_var["query"], "prometheus");
    // `$ds` (a datasource variable of type graphite) is Graphite too
    let ratio = &d["rows"][0]["panels"][1];
    assert!(ratio["targets"][2]["expr"].as_str().unwrap().contains(" / "), "{ratio}");
    // multi-value host variable: =~ stays =~
    assert!(p["targets"][1]["expr"].as_str().unwrap().contains("host=~\"(?:$host)"), "{p}");
    assert_eq!(
        d["templating"]["list"][1]["query"],
        "label_values(checkout_queue_depth{env=\"prod\"}, host)"
    );
}

#[test]
fn mixed_panels_keep_their_other_datasource_targets() {
    let (out, _) = port_corpus();
    let d = read(&out.path().join("team/mixed.json"));
    let both = &d["panels"][0];
    assert_eq!(both["datasource"]["uid"], "-- Mixed --");
    assert_eq!(both["targets"][0]["datasource"]["type"], "prometheus");
    assert_eq!(both["targets"][0]["expr"], "checkout_queue_depth");
    assert_eq!(both["targets"][1]["query"], "SELECT mean(value) FROM queue");
    // no datasource: the default one, Graphite by the target's shape
    assert_eq!(d["panels"][1]["datasource"]["type"], "prometheus");
    assert_eq!(d["panels"][2]["options"]["content"], "Runbook: see wiki");
}

#[test]
fn porting_a_ported_directory_again_writes_the_same_bytes() {
    let (out, _) = port_corpus();
    let again = tempfile::tempdir().unwrap();
    let batch =
        port_all(&[out.path().to_path_buf()], again.path(), &options(), &mut |_, _| {}).unwrap();
    assert!(batch.failures.is_empty(), "{:?}", batch.failures);
    assert_eq!(batch.count("exact") + batch.count("approximate"), 0, "nothing left to port");
    for f in io::find(&[out.path().to_path_buf()]).unwrap() {
        let a = std::fs::read(&f.path).unwrap();
        let b = std::fs::read(again.path().join(&f.relative)).unwrap();
        assert!(a == b, "{} changed on the second port", f.relative.display());
    }
    // in place: the files are replaced by identical ones and no temporary file is left
    port_all(&[out.path().to_path_buf()], out.path(), &options(), &mut |_, _| {}).unwrap();
    let names: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn bad_dashboards_are_named_and_the_others_still_ported() {
    let out = tempfile::tempdir().unwrap();
    let batch = port_all(&[corpus("bad")], out.path(), &options(), &mut |_, _| {}).unwrap();
    assert_eq!(batch.dashboards.len(), 1, "broken-target.json is ported");
    assert_eq!(batch.failures.len(), 3);
    let msg = |name: &str| {
        batch
            .failures
            .iter()
            .find(|f| f.source.ends_with(name))
            .map(|f| f.error.to_string())
            .unwrap()
    };
    assert!(
        msg("invalid.json").contains("invalid JSON at line 1, column"),
        "{}",
        msg("invalid.json")
    );
    let influx = batch.failures.iter().find(|f| f.source.ends_with("influx-only.json")).unwrap();
    assert!(
        matches!(&influx.error, PortError::OtherDatasource { found, .. } if found == &["influxdb".to_owned()])
    );
    assert!(msg("influx-only.json").contains("\"Influx only\" has no Graphite target"));
    assert!(msg("not-a-dashboard.json").contains("not a Grafana dashboard"));
    // the unparseable target: named by dashboard, panel and refId, with its position
    let d = &batch.dashboards[0];
    let a = &d.targets[0];
    assert_eq!(a.status(), "error");
    assert_eq!(a.place(), "panel \"Orders\" (id 1), refId A");
    assert!(a.error.as_deref().unwrap().contains("at byte 9"), "{:?}", a.error);
    assert_eq!(d.targets[1].status(), "exact");
    let ported = read(&out.path().join("broken-target.json"));
    assert!(ported["panels"][0]["description"]
        .as_str()
        .unwrap()
        .contains("- A: not ported: unbalanced parenthesis"));
    assert_eq!(exit_code(&batch), 1);
    assert!(!out.path().join("invalid.json").exists());
}

fn args(inputs: Vec<PathBuf>, out: &Path) -> PortArgs {
    PortArgs {
        inputs,
        out: out.to_path_buf(),
        datasource_uid: "prom-main".into(),
        graphite_datasource: Vec::new(),
        seconds: false,
        report: Some(out.join("report.json")),
        context: ContextArgs {
            catalog: None,
            flush_interval: 10.0,
            legacy_namespace: false,
            global_prefix: "stats".into(),
            no_prometheus_naming: false,
            mapping: Some(corpus("mapping.yml")),
        },
    }
}

#[test]
fn the_command_exits_2_only_when_nothing_could_be_done() {
    let out = tempfile::tempdir().unwrap();
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_port(
        &args(vec![corpus("bad/invalid.json"), corpus("bad/influx-only.json")], out.path()),
        &mut o,
        &mut e,
    );
    assert_eq!(code, 2, "{}", String::from_utf8_lossy(&o));
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code = run_port(&args(vec![corpus("bad")], out.path()), &mut o, &mut e);
    assert_eq!(code, 1);
    let text = String::from_utf8_lossy(&o);
    assert!(text.contains("error           dashboard \"Broken target\", panel \"Orders\" (id 1), refId A: unbalanced parenthesis"), "{text}");
    assert!(text.contains("FAILED"), "{text}");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let code =
        run_port(&args(vec![corpus("dashboards/team/mixed.json")], out.path()), &mut o, &mut e);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&o));
    let rep = read(&out.path().join("report.json"));
    assert_eq!(rep["dashboards"][0]["targets"][0]["translation"]["status"], "exact");
    let d = read(&out.path().join("mixed.json"));
    assert_eq!(d["panels"][1]["datasource"]["uid"], "prom-main");
    let (mut o, mut e) = (Vec::new(), Vec::new());
    let mut bad = args(vec![corpus("dashboards")], out.path());
    bad.context.mapping = Some(corpus("missing.yml"));
    assert_eq!(run_port(&bad, &mut o, &mut e), 2);
    assert!(String::from_utf8_lossy(&e).contains("missing.yml"));
}

#[test]
fn seconds_switches_timer_panels_from_ms_with_thresholds() {
    let cat = dualmetrics_port::catalog::parse(
        r#"{"version":1,"statsd_prefix":"app","instruments":[
            {"name":"http.duration","kind":"histogram","unit":"s","statsd_type":"ms"}]}"#,
        "inline",
    )
    .unwrap();
    let doc = serde_json::json!({"title": "T", "panels": [{"id": 1, "title": "Latency",
        "datasource": {"type": "graphite", "uid": "g"},
        "fieldConfig": {"defaults": {"unit": "ms", "thresholds": {"steps": [{"value": null}, {"value": 250}]}}, "overrides": []},
        "targets": [{"refId": "A", "target": "stats.timers.app.http.duration.mean"}]}]});
    let mut opts = PortOptions {
        ctx: Context { catalog: Some(cat), ..Context::default() },
        ..PortOptions::default()
    };
    let kept = dashboard::port(&doc, "t", &opts).unwrap().json;
    assert!(kept["panels"][0]["targets"][0]["expr"].as_str().unwrap().ends_with(" * 1000"));
    assert_eq!(kept["panels"][0]["fieldConfig"]["defaults"]["unit"], "ms");
    opts.seconds = true;
    let s = dashboard::port(&doc, "t", &opts).unwrap().json;
    let p = &s["panels"][0];
    assert_eq!(p["fieldConfig"]["defaults"]["unit"], "s");
    assert_eq!(p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"], 0.25);
    assert_eq!(
        p["targets"][0]["expr"],
        "rate(http_duration_seconds_sum[$__rate_interval]) / rate(http_duration_seconds_count[$__rate_interval])"
    );
}
