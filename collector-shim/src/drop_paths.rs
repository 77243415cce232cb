//! Telemetry completeness: every reason in [`DROP_REASONS`] has a path here that loses data that
//! way through the real stage, and the test proves that path increments exactly that reason.
//! A new reason without a path fails the test (the README's drop table lists the same reasons).
use crate::aggregate::Aggregator;
use crate::config::{AggregateConfig, ExportConfig, MappingConfig};
use crate::ingest::Ctx;
use crate::otlp_in::DeltaToCumulative;
use crate::pipeline::{process_packet, process_packet_mapped, queue_export};
use crate::telemetry::{Telemetry, DROP_REASONS};
use dualmetrics_model::statsd_parse::Parser;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, ExponentialHistogram, ExponentialHistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Duration;

const DELTA: i32 = 1;

fn request(data: metric::Data) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric { name: "m".into(), data: Some(data), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn delta_sum() -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: vec![NumberDataPoint {
            time_unix_nano: 2,
            start_time_unix_nano: 1,
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        }],
        aggregation_temporality: DELTA,
        is_monotonic: true,
    })
}

/// An ingest context whose queue nobody drains (keep the receiver: the aggregator end stays
/// open).
fn ctx(
    tel: &Arc<Telemetry>,
    max_packet: usize,
    max_queued_bytes: usize,
) -> (Ctx, std::sync::mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = sync_channel(16);
    let ctx = Ctx {
        tx,
        tee: None,
        tel: Arc::clone(tel),
        stop: Arc::default(),
        max_packet,
        max_line: 1024,
        tcp_idle: None,
        queued_bytes: Arc::default(),
        max_queued_bytes,
    };
    (ctx, rx)
}

/// Loses data for `reason` through the stage that drops it that way.
fn lose(reason: &str, tel: &Arc<Telemetry>) {
    let parser = Parser::default();
    match reason {
        "queue_full" => {
            let (c, _queue) = ctx(tel, 1024, 100);
            assert!(c.datagram(&[b'a'; 80], crate::telemetry::Transport::Udp));
            assert!(c.datagram(&[b'b'; 80], crate::telemetry::Transport::Udp));
        }
        "oversized_packet" => {
            let (c, _queue) = ctx(tel, 10, 1 << 20);
            assert!(c.datagram(b"a.much.longer.key:1|c", crate::telemetry::Transport::Udp));
        }
        "series_limit" => {
            let cfg = AggregateConfig { max_series: 1, ..Default::default() };
            let mut agg = Aggregator::new(cfg, 0);
            process_packet(b"a:1|c\nb:1|c", &parser, &mut agg, tel);
        }
        "set_limit" => {
            let cfg = AggregateConfig { max_set_size: 1, ..Default::default() };
            let mut agg = Aggregator::new(cfg, 0);
            process_packet(b"u:alice|s\nu:bob|s", &parser, &mut agg, tel);
        }
        "export_failed" => {
            // no endpoint: every request is counted as failed
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tx.try_send(request(delta_sum())).unwrap();
            drop(tx);
            rt.block_on(crate::export::run(rx, None, ExportConfig::default(), Arc::clone(tel)));
        }
        "export_queue_full" => {
            let (tx, _rx) = tokio::sync::mpsc::channel(1);
            queue_export(&tx, request(delta_sum()), false, tel);
            queue_export(&tx, request(delta_sum()), false, tel);
        }
        "otlp_in_series_limit" => {
            let mut state = DeltaToCumulative::new(0, Duration::from_secs(60));
            state.accept(request(delta_sum()), tel);
        }
        "otlp_in_unsupported" => {
            let mut state = DeltaToCumulative::new(10, Duration::from_secs(60));
            let exp = metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint::default()],
                aggregation_temporality: DELTA,
            });
            state.accept(request(exp), tel);
        }
        "mapping_drop" => {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("m.yml");
            std::fs::write(&file, "mappings:\n- match: debug.*\n  action: drop\n").unwrap();
            let cfg = MappingConfig { file: Some(file), ..Default::default() };
            let mut mapper = crate::mapping::Mapper::load(&cfg).unwrap().unwrap();
            let mut agg = Aggregator::new(AggregateConfig::default(), 0);
            process_packet_mapped(b"debug.x:1|c", &parser, &mut agg, Some(&mut mapper), tel);
        }
        "shutdown_deadline" => {
            // what the pipeline does when the deadline passes with exports still queued
            tel.export_queued(3);
            tel.drop_pending_exports();
        }
        other => panic!("drop reason {other:?} has no path in this test: add one"),
    }
}

#[test]
fn every_drop_reason_is_counted_by_the_path_that_drops_that_way() {
    for reason in DROP_REASONS {
        let tel = Arc::new(Telemetry::default());
        lose(reason, &tel);
        let s = tel.snapshot();
        assert!(s.dropped(reason) > 0, "{reason}: nothing counted: {:?}", s.drops);
        let others: u64 = s.drops.iter().filter(|(k, _)| *k != reason).map(|(_, v)| v).sum();
        assert_eq!(others, 0, "{reason} counted elsewhere too: {:?}", s.drops);
    }
}
