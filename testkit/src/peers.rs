//! Both pipelines' receivers for one test: a StatsD receiver on UDP and an OTLP/gRPC receiver,
//! each on its own port 0, so tests run in parallel without sharing a socket.
//!
//! ```no_run
//! let peers = dualmetrics_testkit::Peers::start();
//! // point the SDK at peers.statsd_address() and peers.otlp_endpoint(), emit, flush, then:
//! assert_eq!(peers.statsd_total("orders"), 3.0);
//! ```
use crate::{parse_line, OtlpGrpcReceiver, StatsdReceiver};

/// A StatsD receiver and an OTLP/gRPC receiver.
pub struct Peers {
    /// The legacy side: every datagram, split into lines.
    pub statsd: StatsdReceiver,
    /// The OTLP side: every export request.
    pub otlp: OtlpGrpcReceiver,
}

impl Peers {
    /// Binds both receivers on 127.0.0.1, port 0.
    pub fn start() -> Self {
        Peers { statsd: StatsdReceiver::bind_udp(), otlp: OtlpGrpcReceiver::start() }
    }

    /// `host:port` of the StatsD receiver.
    pub fn statsd_address(&self) -> String {
        self.statsd.local_addr().to_string()
    }

    /// `http://host:port` of the OTLP receiver.
    pub fn otlp_endpoint(&self) -> String {
        self.otlp.endpoint()
    }

    /// The sum of the StatsD values received so far for the metric `name`.
    pub fn statsd_total(&self, name: &str) -> f64 {
        self.statsd
            .lines()
            .iter()
            .map(|l| parse_line(l))
            .filter(|p| p.name == name)
            .map(|p| p.value_f64())
            .sum()
    }
}
