//! The real-backend lab from tests: start, await, query and stop the servers of `scripts/lab/`.
//!
//! `scripts/lab/up.sh` installs (if missing) and starts, on 127.0.0.1 only, the reference StatsD
//! daemon (statsd 0.9.0), VictoriaMetrics 1.112 (Graphite listener, PromQL, Graphite `/render`,
//! OTLP/HTTP ingest), Prometheus 2.53.3 (remote-write receiver) fed OTLP through `vmagent-prom`,
//! and rotel (a gRPC/HTTP OTLP collector exporting to VictoriaMetrics). It writes the ports it
//! used to `$LAB_DIR/lab.env`; [`Lab`] reads that file.
//!
//! - [`Lab::from_env`] attaches to a running lab whose `lab.env` is named by
//!   `DUALMETRICS_LAB_ENV` (what `scripts/test.sh` exports). It never stops that lab.
//! - [`Lab::start`] runs `up.sh` with `LAB_PORTS=auto` in a fresh `LAB_DIR`, so it never collides
//!   with a lab a developer left running; [`Lab::stop`] (or `Drop`) runs `down.sh` for that
//!   directory only.
//! - [`e2e_lab`] is the gate for end-to-end tests: `None` (and a "skipped" line) unless
//!   `DUALMETRICS_E2E=1`; when it is set, a lab that cannot be reached or started panics.
//!
//! Backends make fresh samples searchable only after a short lag, so tests read them back with
//! [`poll_until`] / [`poll_eq`] instead of sleeping.
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use dualmetrics_testkit::lab::{e2e_lab, poll_eq, INGEST_TIMEOUT, POLL_INTERVAL};
//!
//! let Some(lab) = e2e_lab() else { return };
//! let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
//! sock.send_to(b"doc.example.hits:5|c", lab.statsd_addr()).unwrap();
//! let vm = lab.vm();
//! let q = r#"sum(sum_over_time({__name__="stats.counters.doc.example.hits.count"}[10m]))"#;
//! poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(5.0), || vm.query_value(q)).unwrap();
//! ```
//!
//! The query clients use `reqwest::blocking`: call them from synchronous tests (or from
//! `tokio::task::spawn_blocking`), not directly inside an async runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variable naming the `lab.env` of a running lab (written by `scripts/lab/up.sh`).
pub const LAB_ENV_VAR: &str = "DUALMETRICS_LAB_ENV";
/// Environment variable that turns end-to-end tests on (`1`).
pub const E2E_VAR: &str = "DUALMETRICS_E2E";
/// Environment variable that keeps the `LAB_DIR` of a lab started by [`Lab::start`] after it stops.
pub const KEEP_VAR: &str = "DUALMETRICS_LAB_KEEP";
/// A generous bound on how long a sample takes to become searchable (statsd flush + backend lag).
pub const INGEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often [`poll_until`] callers usually re-query a backend.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Lines of script output kept in a [`LabError::Script`].
const OUTPUT_TAIL_LINES: usize = 60;

/// Why a lab could not be attached, started or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// `DUALMETRICS_LAB_ENV` is not set.
    #[error("{LAB_ENV_VAR} is not set (point it at the lab.env written by scripts/lab/up.sh)")]
    NotConfigured,
    /// The `lab.env` file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `lab.env` file is malformed or lacks a key.
    #[error("{path}: {reason}")]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A lab script could not be spawned.
    #[error("cannot run {script}: {source}")]
    Spawn {
        /// The script.
        script: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A lab script exited unsuccessfully; `output` is the tail of what it printed (it names the
    /// failing component and the tail of that component's log).
    #[error("{script} failed ({status}) for LAB_DIR={lab_dir}:\n{output}")]
    Script {
        /// The script.
        script: PathBuf,
        /// The lab directory it worked on.
        lab_dir: PathBuf,
        /// Its exit status.
        status: String,
        /// The last lines of its stdout and stderr.
        output: String,
    },
}

/// A running lab: its ports (from `lab.env`), endpoint accessors and query clients.
///
/// A lab from [`Lab::start`] is owned and stopped by [`Lab::stop`] or on drop; a lab from
/// [`Lab::from_env`] belongs to whoever started it and is left running.
#[derive(Debug)]
pub struct Lab {
    env_file: PathBuf,
    vars: BTreeMap<String, String>,
    dir: PathBuf,
    owned: bool,
    stopped: bool,
}

impl Lab {
    /// Attaches to the running lab whose `lab.env` is named by `DUALMETRICS_LAB_ENV`.
    ///
    /// # Errors
    /// [`LabError::NotConfigured`] if the variable is unset, or the file's read/parse errors.
    pub fn from_env() -> Result<Lab, LabError> {
        match std::env::var_os(LAB_ENV_VAR) {
            Some(p) if !p.is_empty() => Lab::from_env_file(PathBuf::from(p)),
            _ => Err(LabError::NotConfigured),
        }
    }

    /// Attaches to the running lab described by the `lab.env` at `path` (not owned: never stopped
    /// by this value).
    ///
    /// # Errors
    /// When the file cannot be read or lacks `LAB_DIR`.
    pub fn from_env_file(path: impl Into<PathBuf>) -> Result<Lab, LabError> {
        let env_file = path.into();
        let text = std::fs::read_to_string(&env_file)
            .map_err(|source| LabError::Read { path: env_file.clone(), source })?;
        let vars = parse_env_file(&text)
            .map_err(|reason| LabError::EnvFile { path: env_file.clone(), reason })?;
        let dir = match vars.get("LAB_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                return Err(LabError::EnvFile {
                    path: env_file,
                    reason: "no LAB_DIR line (not written by scripts/lab/up.sh?)".into(),
                })
            }
        };
        Ok(Lab { env_file, vars, dir, owned: false, stopped: false })
    }

    /// Starts a lab of its own: `scripts/lab/up.sh` with `LAB_PORTS=auto` (free ports) in a fresh
    /// `LAB_DIR` under the temp directory, installing the software first if it is missing.
    ///
    /// # Errors
    /// [`LabError::Script`] with the script's output (the failing component and its log tail).
    pub fn start() -> Result<Lab, LabError> {
        Lab::start_with(&[])
    }

    /// Like [`Lab::start`], with extra environment for `up.sh` (e.g. `("STATSD_FLUSH_MS", "500")`
    /// or `("LAB_COMPONENTS", "vm statsd")`).
    ///
    /// # Errors
    /// See [`Lab::start`].
    pub fn start_with(env: &[(&str, &str)]) -> Result<Lab, LabError> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("dualmetrics-lab-{}-{nanos}", std::process::id()));
        let script = scripts_dir().join("up.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).env("LAB_DIR", &dir).env("LAB_PORTS", "auto");
        // ports a developer exported for their own lab must not leak into this one
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if PORT_KEYS.contains(&k) {
                    cmd.env_remove(k);
                }
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        run_script(&script, &dir, &mut cmd, true)?;
        eprintln!("[lab] started {} in {:.1?}", dir.display(), started.elapsed());
        let mut lab = Lab::from_env_file(dir.join("lab.env"))?;
        lab.owned = true;
        Ok(lab)
    }

    /// The lab named by `DUALMETRICS_LAB_ENV` if set, else a lab of its own ([`Lab::start`]).
    ///
    /// # Errors
    /// See [`Lab::from_env_file`] and [`Lab::start`].
    pub fn from_env_or_start() -> Result<Lab, LabError> {
        match Lab::from_env() {
            Err(LabError::NotConfigured) => Lab::start(),
            other => other,
        }
    }

    /// Stops a lab started by this value (`scripts/lab/down.sh`, which signals the recorded PIDs
    /// only and fails if one survives) and deletes its directory unless `DUALMETRICS_LAB_KEEP=1`.
    /// Does nothing for an attached lab or when already stopped.
    ///
    /// # Errors
    /// [`LabError::Script`] when `down.sh` reports a surviving process.
    pub fn stop(&mut self) -> Result<(), LabError> {
        if !self.owned || self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let script = scripts_dir().join("down.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).env("LAB_DIR", &self.dir);
        if std::env::var(KEEP_VAR).as_deref() != Ok("1") {
            cmd.arg("--purge");
        }
        run_script(&script, &self.dir, &mut cmd, false)
    }

    /// Whether this value started the lab (and so stops it).
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// The lab's `LAB_DIR` (data, configs, `logs/`, `pids/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `lab.env` this lab was read from.
    pub fn env_file(&self) -> &Path {
        &self.env_file
    }

    /// A raw `lab.env` value, e.g. `var("LAB_VM_HTTP")`.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Whether a component (`vm`, `statsd`, `prometheus`, `vmagent-prom`, `rotel`, `vmagent`) runs.
    pub fn has_component(&self, name: &str) -> bool {
        self.var("LAB_COMPONENTS").is_some_and(|c| c.split_whitespace().any(|n| n == name))
    }

    /// A port from `lab.env`.
    ///
    /// # Errors
    /// When the key is missing (its component is not part of this lab) or not a port number.
    pub fn try_port(&self, key: &str) -> Result<u16, LabError> {
        let v = self.var(key).ok_or_else(|| LabError::EnvFile {
            path: self.env_file.clone(),
            reason: format!("no {key} (is its component in LAB_COMPONENTS?)"),
        })?;
        v.parse().map_err(|_| LabError::EnvFile {
            path: self.env_file.clone(),
            reason: format!("{key}={v} is not a port number"),
        })
    }

    fn port(&self, key: &str) -> u16 {
        self.try_port(key).unwrap_or_else(|e| panic!("{e}"))
    }

    fn addr(&self, key: &str) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port(key)))
    }

    fn url(&self, key: &str) -> String {
        format!("http://127.0.0.1:{}", self.port(key))
    }

    /// The StatsD daemon's UDP address. Panics (like every endpoint accessor) if the component is
    /// not part of this lab.
    pub fn statsd_addr(&self) -> SocketAddr {
        self.addr("LAB_STATSD_UDP")
    }

    /// The StatsD daemon's admin (management) TCP address: `health`, `counters`, `gauges`, ...
    pub fn statsd_mgmt_addr(&self) -> SocketAddr {
        self.addr("LAB_STATSD_MGMT")
    }

    /// The StatsD flush interval (`STATSD_FLUSH_MS`).
    pub fn statsd_flush_interval(&self) -> Duration {
        Duration::from_millis(
            self.var("STATSD_FLUSH_MS").and_then(|v| v.parse().ok()).unwrap_or(1000),
        )
    }

    /// Whether statsd deletes idle stats. `false` (the default) flushes every counter key seen as
    /// `0` on each later flush and resends gauges: sum the per-flush counts, do not read the last.
    pub fn statsd_delete_idle(&self) -> bool {
        self.var("STATSD_DELETE_IDLE") == Some("true")
    }

    /// VictoriaMetrics' HTTP base URL (`/api/v1/query`, `/render`, `/api/v1/export`, ...).
    pub fn vm_url(&self) -> String {
        self.url("LAB_VM_HTTP")
    }

    /// VictoriaMetrics' Graphite plaintext listener (TCP and UDP), which the StatsD daemon feeds.
    pub fn vm_graphite_addr(&self) -> SocketAddr {
        self.addr("LAB_VM_GRAPHITE")
    }

    /// VictoriaMetrics' OTLP/HTTP (protobuf) metrics URL.
    pub fn vm_otlp_url(&self) -> String {
        format!("{}/opentelemetry/v1/metrics", self.vm_url())
    }

    /// Prometheus' HTTP base URL.
    pub fn prometheus_url(&self) -> String {
        self.url("LAB_PROM_HTTP")
    }

    /// vmagent-prom's HTTP base URL (the OTLP front door of Prometheus).
    pub fn vmagent_prom_url(&self) -> String {
        self.url("LAB_VMAGENT_PROM_HTTP")
    }

    /// OTLP/HTTP metrics URL that ends up in Prometheus (vmagent with Prometheus naming, then
    /// remote write): `http.server.requests` becomes `http_server_requests_total`.
    pub fn prometheus_otlp_url(&self) -> String {
        format!("{}/opentelemetry/v1/metrics", self.vmagent_prom_url())
    }

    /// rotel's OTLP gRPC endpoint (`http://127.0.0.1:PORT`), exporting to `ROTEL_TARGET` (VM by
    /// default).
    pub fn rotel_grpc_endpoint(&self) -> String {
        self.url("LAB_ROTEL_GRPC")
    }

    /// rotel's OTLP/HTTP base endpoint (`http://127.0.0.1:PORT`).
    pub fn rotel_http_endpoint(&self) -> String {
        self.url("LAB_ROTEL_HTTP")
    }

    /// rotel's OTLP/HTTP metrics URL (`.../v1/metrics`).
    pub fn rotel_otlp_http_url(&self) -> String {
        format!("{}/v1/metrics", self.rotel_http_endpoint())
    }

    /// PromQL (and `/api/v1/export`) client for VictoriaMetrics.
    pub fn vm(&self) -> PromClient {
        PromClient::new(self.vm_url())
    }

    /// PromQL client for Prometheus.
    pub fn prometheus(&self) -> PromClient {
        PromClient::new(self.prometheus_url())
    }

    /// Graphite render client for VictoriaMetrics' Graphite API.
    pub fn graphite(&self) -> GraphiteClient {
        GraphiteClient::new(self.vm_url())
    }

    /// Component versions recorded by `up.sh` (`statsd`, `prometheus`, `victoria_metrics`, `rotel`,
    /// `node`, ...).
    pub fn versions(&self) -> BTreeMap<String, String> {
        self.vars
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("LAB_VERSION_").map(|n| (n.to_ascii_lowercase(), v.clone()))
            })
            .collect()
    }

    /// One line naming the lab, its ports and the component versions (for test logs).
    pub fn summary(&self) -> String {
        let ports: Vec<String> = PORT_KEYS
            .iter()
            .filter_map(|k| self.var(k).map(|v| format!("{}={v}", &k[4..])))
            .collect();
        let versions: Vec<String> =
            self.versions().iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "lab {} ({}): {}; versions: {}",
            self.dir.display(),
            if self.owned { "started by this test" } else { "attached" },
            ports.join(" "),
            versions.join(", ")
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("[lab] stopping {} failed: {e}", self.dir.display());
        }
    }
}

/// The lab for an end-to-end test, or `None` when `DUALMETRICS_E2E` is not `1` (after printing
/// `skipped: set DUALMETRICS_E2E=1`). Attaches to `DUALMETRICS_LAB_ENV` when set, else starts a
/// lab of its own.
///
/// # Panics
/// When e2e tests were requested and the lab cannot be attached or started: a lab failure is a
/// test failure, never a skip.
pub fn e2e_lab() -> Option<Lab> {
    if !e2e_requested() {
        println!("skipped: set {E2E_VAR}=1");
        return None;
    }
    match Lab::from_env_or_start() {
        Ok(lab) => {
            eprintln!("[lab] {}", lab.summary());
            Some(lab)
        }
        Err(e) => panic!("{E2E_VAR}=1 but the lab is not usable: {e}"),
    }
}

/// Whether `DUALMETRICS_E2E=1`.
pub fn e2e_requested() -> bool {
    std::env::var(E2E_VAR).as_deref() == Ok("1")
}

/// `scripts/lab` of this workspace.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("scripts").join("lab")
}

/// Every port variable `up.sh` knows.
const PORT_KEYS: &[&str] = &[
    "LAB_VM_HTTP",
    "LAB_VM_GRAPHITE",
    "LAB_STATSD_UDP",
    "LAB_STATSD_MGMT",
    "LAB_PROM_HTTP",
    "LAB_VMAGENT_HTTP",
    "LAB_VMAGENT_PROM_HTTP",
    "LAB_ROTEL_GRPC",
    "LAB_ROTEL_HTTP",
];

fn run_script(
    script: &Path,
    lab_dir: &Path,
    cmd: &mut Command,
    echo: bool,
) -> Result<(), LabError> {
    let out = cmd.output().map_err(|source| LabError::Spawn { script: script.into(), source })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        if echo {
            eprint!("{text}");
        }
        return Ok(());
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join("\n");
    Err(LabError::Script {
        script: script.into(),
        lab_dir: lab_dir.into(),
        status: out.status.to_string(),
        output: tail,
    })
}

/// Parses `KEY=VALUE` lines (comments, blank lines and surrounding quotes allowed).
fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut vars = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) =
            line.split_once('=').ok_or_else(|| format!("line {}: no '=' in {line:?}", i + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        vars.insert(k.trim().to_string(), v.to_string());
    }
    Ok(vars)
}

mod query;
pub use query::*;

// ---------------------------------------------------------------------------------- polling

/// A polled condition that was not met in time.
#[derive(Debug, thiserror::Error)]
#[error("condition not met within {timeout:?} ({attempts} attempts); last observation: {last}")]
pub struct PollError {
    /// The timeout given.
    pub timeout: Duration,
    /// How many times the closure ran.
    pub attempts: u32,
    /// What the last attempt observed.
    pub last: String,
}

/// What a [`poll_until`] closure returns: `Some`/`Ok` stops polling with the value,
/// `None`/`Err` is recorded as the last observation and polling goes on.
pub trait Attempt {
    /// The value polling yields.
    type Output;
    /// `Ok(value)` to stop, `Err(observation)` to try again.
    fn into_attempt(self) -> Result<Self::Output, String>;
}

impl<T> Attempt for Option<T> {
    type Output = T;
    fn into_attempt(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_string())
    }
}

impl<T, E: fmt::Display> Attempt for Result<T, E> {
    type Output = T;
    fn into_attempt(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Runs `f` every `interval` until it returns `Some`/`Ok` or `timeout` has passed (at least once,
/// and once more at the deadline). Use it instead of sleeping for ingestion lag.
///
/// Return `Err(description)` from `f` to have the last observation in the [`PollError`].
///
/// # Errors
/// [`PollError`] with the attempt count and the last observation.
pub fn poll_until<A: Attempt>(
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> A,
) -> Result<A::Output, PollError> {
    let deadline = Instant::now() + timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match f().into_attempt() {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(PollError { timeout, attempts, last });
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

/// Polls `f` until it returns `Ok(expected)`; the error reports the last value (or query error)
/// seen next to the expected one.
///
/// # Errors
/// [`PollError`] as for [`poll_until`].
pub fn poll_eq<T: PartialEq + fmt::Debug, E: fmt::Display>(
    timeout: Duration,
    interval: Duration,
    expected: T,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, PollError> {
    poll_until(timeout, interval, || match f() {
        Ok(v) if v == expected => Ok(v),
        Ok(v) => Err(format!("got {v:?}, expected {expected:?}")),
        Err(e) => Err(format!("error: {e} (expected {expected:?})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_parse_with_quotes_and_comments() {
        let vars = parse_env_file(
            "# comment\nLAB_DIR=/tmp/x\nLAB_COMPONENTS=\"vm statsd\"\n\nexport LAB_VM_HTTP='8428'\n",
        )
        .unwrap();
        assert_eq!(vars["LAB_DIR"], "/tmp/x");
        assert_eq!(vars["LAB_COMPONENTS"], "vm statsd");
        assert_eq!(vars["LAB_VM_HTTP"], "8428");
    }

    #[test]
    fn env_file_line_without_equals_is_an_error() {
        assert!(parse_env_file("LAB_DIR").unwrap_err().contains("line 1"));
    }

    #[test]
    fn lab_env_file_gives_endpoints_and_versions() {
        let dir = std::env::temp_dir().join(format!("dm-labenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("lab.env");
        std::fs::write(
            &f,
            "LAB_DIR=/tmp/l\nLAB_COMPONENTS=\"vm statsd rotel\"\nLAB_VM_HTTP=1\nLAB_STATSD_UDP=2\n\
             LAB_ROTEL_GRPC=3\nLAB_ROTEL_HTTP=4\nSTATSD_FLUSH_MS=500\nLAB_VERSION_STATSD=0.9.0\n",
        )
        .unwrap();
        let lab = Lab::from_env_file(&f).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!lab.is_owned());
        assert_eq!(lab.vm_url(), "http://127.0.0.1:1");
        assert_eq!(lab.vm_otlp_url(), "http://127.0.0.1:1/opentelemetry/v1/metrics");
        assert_eq!(lab.statsd_addr().to_string(), "127.0.0.1:2");
        assert_eq!(lab.rotel_grpc_endpoint(), "http://127.0.0.1:3");
        assert_eq!(lab.rotel_otlp_http_url(), "http://127.0.0.1:4/v1/metrics");
        assert_eq!(lab.statsd_flush_interval(), Duration::from_millis(500));
        assert!(lab.has_component("rotel") && !lab.has_component("prometheus"));
        assert_eq!(lab.versions()["statsd"], "0.9.0");
        assert!(lab.try_port("LAB_PROM_HTTP").unwrap_err().to_string().contains("LAB_PROM_HTTP"));
    }

    #[test]
    fn poll_until_returns_the_first_value() {
        let mut n = 0;
        let v = poll_until(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn poll_eq_timeout_reports_the_last_observation() {
        let e =
            poll_eq(Duration::from_millis(30), Duration::from_millis(5), 2, || Ok::<_, String>(1))
                .unwrap_err();
        assert!(e.attempts >= 2);
        assert_eq!(e.last, "got 1, expected 2");
        assert!(e.to_string().contains("last observation: got 1, expected 2"));
    }
}
