//! The adapters against a real HTTP server on 127.0.0.1:0 serving canned bodies in the shapes
//! VictoriaMetrics, Prometheus and graphite-web answer with.
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dualmetrics_compare::{
    Auth, GraphiteAdapter, HttpConfig, PrometheusAdapter, QueryAdapter, QueryError, TimeRange,
};
use support::{serve, Request, Response};

const RANGE: TimeRange = TimeRange { start: 1_700_000_000, end: 1_700_000_020, step: 10 };

fn config(url: &str) -> HttpConfig {
    let mut c = HttpConfig::new(url::Url::parse(url).unwrap());
    c.backoff = Duration::from_millis(5);
    c.timeout = Duration::from_secs(2);
    c
}

#[test]
fn graphite_render_is_asked_with_storage_step_and_parsed() {
    let server = serve(Arc::new(|_req| {
        Response::json(
            r#"[{"target":"stats.counters.smoke.tagged.count;env=prod;region=eu","tags":{"env":"prod","name":"stats.counters.smoke.tagged.count","region":"eu"},"datapoints":[[7.0,1699999995],[null,1700000005],[0.0,1700000015]]}]"#,
        )
    }));
    let a =
        GraphiteAdapter::new(config(&server.url())).unwrap().with_storage_step(Some("1s".into()));
    let series = a.range("seriesByTag('name=stats.counters.smoke.tagged.count')", &RANGE).unwrap();
    assert_eq!(series[0].labels["region"], "eu");
    assert_eq!(series[0].points.len(), 3);
    let req = server.requests.lock().unwrap()[0].clone();
    assert_eq!(req.path, "/render");
    assert_eq!(req.params["format"], "json");
    assert_eq!(req.params["storage_step"], "1s");
    assert_eq!(req.params["from"], "1699999990");
    assert_eq!(req.params["until"], "1700000030");
}

#[test]
fn graphite_instant_takes_the_last_non_null_point() {
    let server = serve(Arc::new(|_| {
        Response::json(
            r#"[{"target":"stats.gauges.q","tags":{"name":"stats.gauges.q"},"datapoints":[[50,100],[42,101],[null,102]]}]"#,
        )
    }));
    let a = GraphiteAdapter::new(config(&server.url())).unwrap();
    assert_eq!(a.instant("stats.gauges.q", 102).unwrap()[0].points, vec![(101, 42.0)]);
}

#[test]
fn prometheus_range_and_instant_use_the_documented_endpoints() {
    let server = serve(Arc::new(|req| {
        if req.path == "/api/v1/query_range" {
            Response::json(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"http_server_requests_total","route":"/a","service_name":"labsvc"},"values":[[1700000000,"5"],[1700000010,"8"]]}]}}"#,
            )
        } else {
            Response::json(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"route":"/a"},"value":[1700000010,"8"]}]}}"#,
            )
        }
    }));
    let a = PrometheusAdapter::new(config(&server.url())).unwrap();
    let r = a.range("http_server_requests_total", &RANGE).unwrap();
    assert_eq!(r[0].points, vec![(1_700_000_000, 5.0), (1_700_000_010, 8.0)]);
    assert!(!r[0].labels.contains_key("__name__"));
    let i = a.instant("sum(x)", 1_700_000_010).unwrap();
    assert_eq!(i[0].points, vec![(1_700_000_010, 8.0)]);
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[0].params["step"], "10s");
    assert_eq!(reqs[1].path, "/api/v1/query");
    assert_eq!(reqs[1].params["time"], "1700000010");
}

#[test]
fn prometheus_bad_data_is_a_rejection_with_the_backend_message() {
    let server = serve(Arc::new(|_| {
        Response::status(
            400,
            "application/json",
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \")\""}"#,
        )
    }));
    let a = PrometheusAdapter::new(config(&server.url())).unwrap();
    let err = a.range("sum(x))", &RANGE).unwrap_err();
    match &err {
        QueryError::Rejected { error_type, message, url } => {
            assert_eq!(error_type, "bad_data");
            assert!(message.contains("parse error"));
            assert!(url.contains("/api/v1/query_range"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.count("/api/v1/query_range"), 1, "4xx is not retried");
}

#[test]
fn html_502_is_retried_then_reported_with_its_title() {
    let server = serve(Arc::new(|_| {
        Response::status(
            502,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        )
    }));
    let a = PrometheusAdapter::new(config(&server.url())).unwrap();
    let err = a.range("up", &RANGE).unwrap_err();
    assert!(
        matches!(&err, QueryError::Http { status: 502, message, .. } if message == "502 Bad Gateway"),
        "{err:?}"
    );
    assert_eq!(server.count("/api/v1/query_range"), 3, "1 attempt + 2 retries");
}

#[test]
fn transient_503_then_success_recovers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = serve(Arc::new(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Response::status(503, "text/plain", "busy")
        } else {
            Response::json(r#"[]"#)
        }
    }));
    let a = GraphiteAdapter::new(config(&server.url())).unwrap();
    assert!(a.range("x", &RANGE).unwrap().is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn non_json_success_body_is_reported() {
    let server = serve(Arc::new(|_| Response::status(200, "text/plain", "hello, not json")));
    let g = GraphiteAdapter::new(config(&server.url())).unwrap().range("x", &RANGE).unwrap_err();
    assert!(
        matches!(&g, QueryError::NotJson { message, .. } if message.contains("hello, not json")),
        "{g:?}"
    );
    let p = PrometheusAdapter::new(config(&server.url())).unwrap().range("x", &RANGE).unwrap_err();
    assert!(matches!(p, QueryError::NotJson { .. }));
}

#[test]
fn unreachable_backend_is_reported_after_retries() {
    let a = PrometheusAdapter::new(config(&support::closed_port())).unwrap();
    let err = a.range("up", &RANGE).unwrap_err();
    assert!(matches!(err, QueryError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"));
}

#[test]
fn bearer_token_goes_in_the_header_never_in_the_url() {
    let server = serve(Arc::new(|_| Response::status(500, "text/plain", "boom")));
    let mut c = config(&server.url());
    c.auth = Auth::Bearer("s3cret-token".into());
    c.retries = 0;
    let err = PrometheusAdapter::new(c).unwrap().range("up", &RANGE).unwrap_err();
    assert!(!err.to_string().contains("s3cret"));
    let req = server.requests.lock().unwrap()[0].clone();
    assert_eq!(req.headers["authorization"], "Bearer s3cret-token");
}

#[test]
fn user_info_in_the_url_becomes_basic_auth_and_is_hidden() {
    let server = serve(Arc::new(|_| Response::status(500, "text/plain", "boom")));
    let url = format!("http://alice:pa55word@{}", server.addr);
    let mut c = config(&url);
    c.retries = 0;
    let a = GraphiteAdapter::new(c).unwrap();
    assert!(!a.describe().contains("pa55word"));
    let err = a.range("x", &RANGE).unwrap_err();
    assert!(!err.to_string().contains("pa55word"), "{err}");
    let req = server.requests.lock().unwrap()[0].clone();
    assert!(req.headers["authorization"].starts_with("Basic "));
}

#[test]
fn custom_headers_and_a_path_prefix_reach_the_backend_and_values_are_not_printed() {
    let server = serve(Arc::new(|_req: &Request| {
        Response::json(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
    }));
    let mut cfg = config(&format!("{}/select/0/prometheus", server.url()));
    cfg.headers.0.push(("X-Scope-OrgID".to_owned(), "tenant-7".to_owned()));
    assert!(!format!("{cfg:?}").contains("tenant-7"), "header values stay out of Debug");
    let a = PrometheusAdapter::new(cfg).unwrap();
    a.range("up", &TimeRange { start: 100, end: 200, step: 10 }).unwrap();
    let reqs = server.requests.lock().unwrap();
    assert_eq!(reqs[0].path, "/select/0/prometheus/api/v1/query_range");
    assert_eq!(reqs[0].headers["x-scope-orgid"], "tenant-7");
}
