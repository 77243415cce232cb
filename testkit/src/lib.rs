//! Real in-process receivers for dualmetrics tests: whatever crosses a socket is tested over a
//! real socket, never a mock.
//!
//! Every receiver binds an ephemeral port (or a socket path) *before* its constructor returns,
//! so a test never sleeps waiting for readiness: bind, hand the address to the code under
//! test, then wait for what should arrive with a timeout.
//!
//! # StatsD
//! [`StatsdReceiver::bind_udp`] (UDP on `127.0.0.1:0`) or [`StatsdReceiver::bind_unix`] (Unix
//! datagram). A background thread splits datagrams on `\n` and counts datagrams and bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use dualmetrics_testkit::{parse_line, StatsdReceiver};
//!
//! let statsd = StatsdReceiver::bind_udp();
//! // configure the SDK with statsd.local_addr(), emit ...
//! let lines = statsd.wait_for_lines(1, Duration::from_secs(5));
//! let line = parse_line(&lines[0]);
//! assert_eq!(line.ty, "c");
//! assert_eq!(line.tag("env"), Some("test"));
//!
//! // "nothing (more) was sent": no datagram for 200 ms.
//! assert_eq!(statsd.quiet(Duration::from_millis(200)).len(), 1);
//!
//! // "the StatsD daemon is gone": the socket is closed, senders get errors or drops.
//! statsd.stop();
//! ```
//!
//! # OTLP
//! [`OtlpGrpcReceiver`] (tonic `MetricsService`) and [`OtlpHttpReceiver`] (`POST /v1/metrics`,
//! protobuf) run on their own tokio runtime, so they work from sync `#[test]`s and from inside
//! `#[tokio::test]`. They store every accepted request with its headers; [`points`] flattens
//! requests into [`Point`]s, and [`latest`] / [`sum_of_values`] find values in them.
//!
//! ```no_run
//! use std::time::Duration;
//! use dualmetrics_testkit::{latest, OtlpGrpcReceiver, PointKind, PointValue};
//!
//! let otlp = OtlpGrpcReceiver::start();
//! // export to otlp.endpoint() ("http://127.0.0.1:PORT") ...
//! let points = otlp.wait_for(Duration::from_secs(10), |p| {
//!     latest(p, "http.requests", &[("route", "/a")]).is_some()
//! });
//! let p = latest(&points, "http.requests", &[("route", "/a")]).unwrap();
//! assert_eq!(p.kind, PointKind::Sum { monotonic: true });
//! assert_eq!(p.value, PointValue::Int(3));
//! assert_eq!(p.resource["service.name"], "checkout");
//! ```
//!
//! Faults: `OtlpGrpcReceiver::builder().with_delay(d)` (slow server),
//! `.with_status(tonic::Code::Unavailable)` (refuses everything), and at run time
//! [`OtlpReceiver::set_failing`], [`OtlpReceiver::set_delay`], [`OtlpReceiver::stop`].
//!
//! # Allocations
//! [`alloc::CountingAllocator`] is a counting `#[global_allocator]` for a dedicated test binary;
//! [`alloc::count_allocs`] counts the current thread's allocations inside a closure.
//!
//! ```no_run
//! use dualmetrics_testkit::alloc::{count_allocs, CountingAllocator};
//!
//! #[global_allocator]
//! static ALLOC: CountingAllocator = CountingAllocator;
//!
//! assert_eq!(count_allocs(|| 1 + 1), 0);
//! ```
//!
//! # Features
//! - `lab` (default): [`lab`], the real-backend lab of `scripts/lab/` and its query clients. Its
//!   Prometheus client is the comparator's (`dualmetrics_compare::query::prometheus_api`), so
//!   the feature pulls in `dualmetrics-compare`; the workspace turns default features off (the
//!   SDK's tests use the receivers only) and the crates that use the lab turn it on.
//!
//! # Missing
//! - The OTLP receivers accept neither gzip nor JSON bodies (the HTTP one answers 415).
//! - No TCP StatsD receiver.

#![warn(missing_docs)]

pub mod alloc;
#[cfg(feature = "lab")]
pub mod lab;
pub mod otlp;
pub mod peers;
pub mod statsd;
pub mod tls;

pub use otlp::{
    latest, points, sum_of_values, ExportMetricsServiceRequest, OtlpGrpcReceiver, OtlpHttpReceiver,
    OtlpReceiver, OtlpReceiverBuilder, Point, PointKind, PointValue, ReceivedRequest, ServerTls,
    Temporality,
};
pub use peers::Peers;
pub use statsd::{parse_line, ParsedLine, StatsdReceiver};
pub use tls::{PkiFiles, TestPki};
