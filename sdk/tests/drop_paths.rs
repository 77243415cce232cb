//! Telemetry completeness on the SDK side: every reason of `dualmetrics.sdk.points.dropped` (the
//! README's self-telemetry table) is lost once through its real path — real UDP and Unix
//! sockets, real OTLP receivers — and exactly that reason's counter moves.
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use cadence::MetricSink as _;
use dualmetrics::{DualMetrics, DualMetricsBuilder, Mode, TelemetrySnapshot};
use dualmetrics_testkit::{OtlpGrpcReceiver, StatsdReceiver};
use tonic::Code;

/// `(backend, reason)` of every drop the SDK counts.
const REASONS: [(&str, &str); 9] = [
    ("facade", "invalid_value"),
    ("facade", "invalid_tags"),
    ("facade", "after_shutdown"),
    ("facade", "adapter"),
    ("statsd", "socket_error"),
    ("statsd", "queue_full"),
    ("statsd", "oversize"),
    ("otlp", "export_failure"),
    ("otlp", "export_timeout"),
];

/// The counter behind each reason, as the self-metrics compute it.
fn counted(t: &TelemetrySnapshot, reason: &str) -> u64 {
    match reason {
        "invalid_value" => t.dropped_invalid_value,
        "invalid_tags" => t.dropped_invalid_tags,
        "after_shutdown" => t.dropped_after_shutdown,
        "adapter" => t.dropped_by_adapter,
        "socket_error" => t.statsd.lines_dropped_socket,
        "queue_full" => t.statsd.lines_dropped_queue_full,
        "oversize" => t.statsd.lines_dropped_oversize,
        "export_failure" => t.otlp.points_failed - t.otlp.points_timed_out,
        "export_timeout" => t.otlp.points_timed_out,
        other => panic!("no counter for {other}"),
    }
}

fn base(statsd: &str, otlp: &str, mode: Mode) -> DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(mode)
        .with_service_name("drops")
        .with_statsd_address(statsd)
        .with_otlp_endpoint(otlp)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_setting("self_metrics", "false")
}

/// A UDP port nothing listens on (bound, then released).
fn closed_udp_port() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

/// Loses data for `reason` through its path; returns the telemetry afterwards.
fn lose(reason: &str) -> TelemetrySnapshot {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let (saddr, oaddr) = (statsd.local_addr().to_string(), otlp.endpoint());
    match reason {
        "invalid_value" => {
            let m = base(&saddr, &oaddr, Mode::Dual).build().unwrap();
            m.histogram("d.latency").build().unwrap().record(f64::NAN, &[]);
            m.telemetry()
        }
        "invalid_tags" => {
            let m = base(&saddr, &oaddr, Mode::Dual).build().unwrap();
            m.counter("d.hits").build().unwrap().add(1, &[("9starts-with-a-digit", "v")]);
            m.telemetry()
        }
        "after_shutdown" => {
            let m = base(&saddr, &oaddr, Mode::Dual).build().unwrap();
            let hits = m.counter("d.hits").build().unwrap();
            m.shutdown(Duration::from_secs(5)).unwrap();
            hits.add(1, &[]);
            m.telemetry()
        }
        "adapter" => {
            let m = std::sync::Arc::new(base(&saddr, &oaddr, Mode::Dual).build().unwrap());
            let sink = dualmetrics::cadence_sink::DualSink::new(std::sync::Arc::clone(&m));
            let _ = sink.emit("users.seen:alice|s"); // a set has no OpenTelemetry counterpart
            m.telemetry()
        }
        "socket_error" => {
            let m = base(&closed_udp_port(), &oaddr, Mode::Legacy).build().unwrap();
            m.counter("d.hits").build().unwrap().add(1, &[]);
            let _ = m.flush();
            m.telemetry()
        }
        "queue_full" => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("statsd.sock");
            let _stalled = UnixDatagram::bind(&path).unwrap(); // never reads
            let m = base(&format!("unix://{}", path.display()), &oaddr, Mode::Legacy)
                .with_statsd_max_packet_bytes(64)
                .build()
                .unwrap();
            let hits = m.counter("d.hits").build().unwrap();
            for i in 0..64 {
                hits.add(1, &[("k", i.to_string().as_str())]);
            }
            let _ = m.flush();
            m.telemetry()
        }
        "oversize" => {
            let m = base(&saddr, &oaddr, Mode::Legacy)
                .with_statsd_max_packet_bytes(512)
                .build()
                .unwrap();
            let long = "x".repeat(600);
            m.counter("d.hits").build().unwrap().add(1, &[("long", long.as_str())]);
            let _ = m.flush();
            m.telemetry()
        }
        "export_failure" => {
            let refusing = OtlpGrpcReceiver::builder().with_status(Code::Unavailable).start();
            let m = base(&saddr, &refusing.endpoint(), Mode::Otlp).build().unwrap();
            m.counter("d.hits").build().unwrap().add(1, &[]);
            let _ = m.flush();
            m.telemetry()
        }
        "export_timeout" => {
            let slow = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(3)).start();
            let m = base(&saddr, &slow.endpoint(), Mode::Otlp)
                .with_otlp_timeout(Duration::from_millis(300))
                .build()
                .unwrap();
            m.counter("d.hits").build().unwrap().add(1, &[]);
            let _ = m.flush();
            m.telemetry()
        }
        other => panic!("drop reason {other:?} has no path in this test: add one"),
    }
}

#[test]
fn every_sdk_drop_reason_is_counted_by_the_path_that_drops_that_way() {
    for (backend, reason) in REASONS {
        let t = lose(reason);
        assert!(counted(&t, reason) > 0, "{backend}/{reason}: nothing counted: {t:#?}");
        for (_, other) in REASONS.iter().filter(|(_, r)| *r != reason) {
            assert_eq!(counted(&t, other), 0, "{backend}/{reason} also counted as {other}: {t:#?}");
        }
    }
}
