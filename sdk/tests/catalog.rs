//! The catalog lists every instrument with both names, in the JSON the comparator reads.
use dualmetrics::{DualMetrics, Mode};

#[test]
fn catalog_lists_every_instrument_with_both_names_kind_unit_and_tag_keys() {
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Legacy)
        .with_service_name("checkout")
        .with_statsd_prefix("svc")
        .with_statsd_address("127.0.0.1:9")
        .with_otlp_endpoint("http://127.0.0.1:9")
        .build()
        .unwrap();
    let c = metrics.counter("http.requests").with_unit("1").build().unwrap();
    c.add(1, &[("route", "/a"), ("code", "200")]);
    c.add(1, &[("route", "/b")]);
    let _ = metrics.histogram("http/latency").with_unit("s").build().unwrap();
    let _ = metrics.gauge("cpu.temp").build().unwrap();
    let _ = metrics.up_down_counter("inflight").build().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.json");
    metrics.write_catalog(&path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["service"], "checkout");
    assert_eq!(json["statsd_prefix"], "svc");
    assert_eq!(json["global_tags"]["service"], "checkout");
    let by_name = |n: &str| {
        json["instruments"].as_array().unwrap().iter().find(|i| i["name"] == n).unwrap().clone()
    };

    let req = by_name("http.requests");
    assert_eq!(req["kind"], "counter");
    assert_eq!(req["statsd_name"], "svc.http.requests");
    assert_eq!(req["statsd_type"], "c");
    assert_eq!(req["otel_name"], "http.requests");
    assert_eq!(req["tag_keys"], serde_json::json!(["code", "route"]));
    assert_eq!(req["mode"], "legacy");
    assert_eq!(req["temporality"], "cumulative");
    assert_eq!(req["series"], 2);

    let lat = by_name("http/latency");
    assert_eq!(lat["statsd_name"], "svc.http_latency", "sanitised for StatsD");
    assert_eq!(lat["statsd_type"], "ms");
    assert_eq!(lat["unit"], "s");
    assert_eq!(lat["buckets"][1], 0.005);
    assert_eq!(by_name("cpu.temp")["statsd_type"], "g");
    assert_eq!(by_name("inflight")["kind"], "up_down_counter");

    metrics.set_mode(Mode::Dual);
    assert!(metrics.catalog().instruments.iter().all(|i| i.mode == "dual"));
}
