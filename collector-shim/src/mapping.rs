//! The mapping stage: dotted StatsD keys that carry dimensions in their path nodes
//! (`checkout.prod.web-1.requests`) become a metric name plus labels before aggregation, as the
//! mapping file ([`dualmetrics_model::mapping`], `statsd_exporter`'s format) says, so that
//! straggler StatsD metrics reach OTLP under the names and labels the ported dashboards query.
//!
//! - **Mapped** lines aggregate under the rule's name; its labels are added to the line's
//!   DogStatsD tags (a mapped label wins over a tag of the same key). A timer (`ms`) keeps its
//!   unit `ms` and its values in milliseconds, so a rule's `buckets` (seconds, as
//!   `statsd_exporter` reads them) are multiplied by 1000; `h`/`d` bounds are used as written.
//!   Without `buckets` the configured `aggregate.buckets` apply. `observer_type: summary` is
//!   accepted but the shim only produces OTLP histograms.
//! - **Dropped** lines (`action: drop`) are counted under the drop reason `mapping_drop`.
//! - **Unmapped** lines pass unchanged.
//! - **Reload.** The file is read every `mapping.poll_interval_ms` (default 1 s, the SDK's
//!   reload interval) by the aggregating thread; when its contents change and parse, the new
//!   rules apply to the next line (`mapping.reloads`). A file that does not parse (or cannot be
//!   read) is logged once and counted once per distinct content (`mapping.reload_errors`); the
//!   last good rules stay. At startup a bad file is an error: the shim does not start.
//! - **Speed.** Results are cached per (type, key) — at most `mapping.cache_size` entries, then
//!   the cache starts over — so a known key costs one hash lookup and no allocation.
use crate::aggregate::Class;
use crate::config::MappingConfig;
use crate::telemetry::Telemetry;
use dualmetrics_model::mapping::{Mapped, MappingError, MappingFile, MetricType};
use dualmetrics_model::statsd_line::StatsdType;
use hashbrown::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to do with one (type, key).
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// No rule matched: aggregate the line as it is.
    Keep,
    /// An `action: drop` rule matched.
    Drop,
    /// A rule mapped it.
    Map {
        /// The metric name.
        name: Box<str>,
        /// The rule's labels (file order), then the key's `;k=v` tags.
        labels: Box<[(Box<str>, Box<str>)]>,
        /// The rule's histogram bounds in the unit the shim keeps (`ms` for timers).
        bounds: Option<Arc<[f64]>>,
    },
}

/// The loaded mapping file, its result cache and its reload state. Owned by the aggregating
/// thread.
#[derive(Debug)]
pub struct Mapper {
    file: MappingFile,
    path: PathBuf,
    /// Contents of the last read (good or bad), to reload only on change.
    last_text: Option<String>,
    poll: Option<Duration>,
    next_poll: Instant,
    cache: [HashMap<Box<str>, Resolved>; 4],
    cache_size: usize,
}

fn slot(ty: StatsdType) -> usize {
    match Class::of(ty) {
        Class::Counter => 0,
        Class::Gauge | Class::Set => 1,
        Class::Timer => 2,
        Class::Histogram => 3,
    }
}

impl Mapper {
    /// Loads `cfg.file` (`None` when no file is configured).
    ///
    /// # Errors
    /// The file cannot be read or is invalid.
    pub fn load(cfg: &MappingConfig) -> Result<Option<Mapper>, MappingError> {
        let Some(path) = cfg.file.clone() else { return Ok(None) };
        let text = std::fs::read_to_string(&path)
            .map_err(|error| MappingError::Io { source_name: path.display().to_string(), error })?;
        let file = MappingFile::parse(&text, &path.display().to_string())?;
        let poll = (cfg.poll_interval_ms > 0).then(|| Duration::from_millis(cfg.poll_interval_ms));
        Ok(Some(Mapper {
            file,
            path,
            last_text: Some(text),
            poll,
            next_poll: Instant::now() + poll.unwrap_or_default(),
            cache: Default::default(),
            cache_size: cfg.cache_size.max(1),
        }))
    }

    /// A mapper over an already parsed file, never reloaded (tests, benches).
    pub fn from_file(file: MappingFile, cache_size: usize) -> Mapper {
        Mapper {
            path: PathBuf::from(file.source()),
            file,
            last_text: None,
            poll: None,
            next_poll: Instant::now(),
            cache: Default::default(),
            cache_size: cache_size.max(1),
        }
    }

    /// The rules in force.
    pub fn file(&self) -> &MappingFile {
        &self.file
    }

    /// When the next reload poll is due (`None`: never).
    pub fn next_poll(&self) -> Option<Instant> {
        self.poll.map(|_| self.next_poll)
    }

    /// What to do with a line of type `ty` named `key`.
    pub fn resolve(&mut self, key: &str, ty: StatsdType) -> &Resolved {
        let i = slot(ty);
        if !self.cache[i].contains_key(key) {
            let r = self.compute(key, ty);
            let total: usize = self.cache.iter().map(HashMap::len).sum();
            if total >= self.cache_size {
                self.cache.iter_mut().for_each(HashMap::clear);
            }
            self.cache[i].insert(key.into(), r);
        }
        &self.cache[i][key]
    }

    fn compute(&self, key: &str, ty: StatsdType) -> Resolved {
        match self.file.map(key, MetricType::of(ty)) {
            Mapped::Unmapped => Resolved::Keep,
            Mapped::Drop { .. } => Resolved::Drop,
            Mapped::Metric(m) => {
                let bounds = match ty {
                    StatsdType::Timer => m.rule.timer_buckets_ms(),
                    _ => m.rule.buckets.clone(),
                };
                Resolved::Map {
                    name: m.name.into(),
                    labels: m.labels.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
                    bounds: bounds.map(Arc::from),
                }
            }
        }
    }

    /// Re-reads the file if a poll is due: applies it when it changed and parses; otherwise
    /// keeps the rules in force. Returns whether new rules were applied.
    pub fn poll(&mut self, now: Instant, tel: &Telemetry) -> bool {
        let Some(every) = self.poll else { return false };
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + every;
        self.reload(tel)
    }

    /// Re-reads the file now (see [`poll`](Self::poll)).
    pub fn reload(&mut self, tel: &Telemetry) -> bool {
        let name = self.path.display().to_string();
        let read = std::fs::read_to_string(&self.path);
        let text = match &read {
            Ok(t) => t.clone(),
            // a missing/unreadable file is one "content" until it changes
            Err(e) => format!("\u{0}unreadable: {e}"),
        };
        if self.last_text.as_deref() == Some(text.as_str()) {
            return false;
        }
        self.last_text = Some(text);
        let parsed = match read {
            Ok(t) => MappingFile::parse(&t, &name),
            Err(error) => Err(MappingError::Io { source_name: name, error }),
        };
        match parsed {
            Ok(file) => {
                tracing::info!(file = %self.path.display(), rules = file.rules().len(), "mapping file reloaded");
                self.file = file;
                self.cache.iter_mut().for_each(HashMap::clear);
                tel.mapping_reload(true);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "mapping file not reloaded; the last good rules stay in force");
                tel.mapping_reload(false);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(path: &std::path::Path) -> MappingConfig {
        MappingConfig { file: Some(path.to_owned()), poll_interval_ms: 1, cache_size: 4 }
    }

    const RULES: &str = "mappings:\n- match: app.*.hits\n  name: hits\n  labels:\n    host: $1\n- match: app.*.latency\n  name: latency\n  buckets: [0.01, 0.1]\n  labels:\n    host: $1\n- match: debug.*\n  action: drop\n";

    #[test]
    fn keys_resolve_to_mapped_names_drops_and_unmapped() {
        let mut m = Mapper::from_file(MappingFile::parse(RULES, "t").unwrap(), 100);
        assert_eq!(
            m.resolve("app.web-1.hits", StatsdType::Counter),
            &Resolved::Map {
                name: "hits".into(),
                labels: vec![("host".into(), "web-1".into())].into(),
                bounds: None
            }
        );
        assert_eq!(m.resolve("debug.x", StatsdType::Gauge), &Resolved::Drop);
        assert_eq!(m.resolve("other", StatsdType::Counter), &Resolved::Keep);
    }

    #[test]
    fn timer_buckets_become_milliseconds_and_histogram_buckets_stay() {
        let mut m = Mapper::from_file(MappingFile::parse(RULES, "t").unwrap(), 100);
        let Resolved::Map { bounds, .. } = m.resolve("app.a.latency", StatsdType::Timer).clone()
        else {
            panic!()
        };
        assert_eq!(bounds.as_deref(), Some(&[10.0, 100.0][..]));
        let Resolved::Map { bounds, .. } =
            m.resolve("app.a.latency", StatsdType::Histogram).clone()
        else {
            panic!()
        };
        assert_eq!(bounds.as_deref(), Some(&[0.01, 0.1][..]));
    }

    #[test]
    fn the_cache_starts_over_when_full_and_still_answers() {
        let mut m = Mapper::from_file(MappingFile::parse(RULES, "t").unwrap(), 2);
        for i in 0..10 {
            let key = format!("app.h{i}.hits");
            assert!(matches!(m.resolve(&key, StatsdType::Counter), Resolved::Map { .. }));
            assert!(m.cache.iter().map(HashMap::len).sum::<usize>() <= 2);
        }
    }

    #[test]
    fn a_changed_file_reloads_and_a_bad_one_keeps_the_last_good_rules_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yml");
        std::fs::write(&path, RULES).unwrap();
        let tel = Telemetry::default();
        let mut m = Mapper::load(&cfg(&path)).unwrap().unwrap();
        assert!(!m.reload(&tel), "unchanged file reloads nothing");

        std::fs::write(&path, "mappings:\n- match: app.*.hits\n  name: hits2\n").unwrap();
        assert!(m.reload(&tel));
        assert!(
            matches!(m.resolve("app.a.hits", StatsdType::Counter), Resolved::Map { name, .. } if &**name == "hits2")
        );

        std::fs::write(&path, "mappings:\n- match: 'a(('\n  match_type: regex\n  name: x\n")
            .unwrap();
        assert!(!m.reload(&tel));
        assert!(!m.reload(&tel), "the same bad content is not counted again");
        assert!(
            matches!(m.resolve("app.a.hits", StatsdType::Counter), Resolved::Map { name, .. } if &**name == "hits2")
        );
        let s = tel.snapshot();
        assert_eq!((s.mapping_reloads, s.mapping_reload_errors), (1, 1));

        std::fs::remove_file(&path).unwrap();
        assert!(!m.reload(&tel));
        assert_eq!(tel.snapshot().mapping_reload_errors, 2);
        std::fs::write(&path, RULES).unwrap();
        assert!(m.reload(&tel));
        assert_eq!(tel.snapshot().mapping_reloads, 2);
    }

    #[test]
    fn a_bad_file_at_startup_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yml");
        std::fs::write(&path, "mappings:\n- match: a.*\n  name: x\n  labels:\n    l: $2\n")
            .unwrap();
        let err = Mapper::load(&cfg(&path)).unwrap_err().to_string();
        assert!(err.contains("bad.yml") && err.contains("mappings[0].labels.l"), "{err}");
        assert!(Mapper::load(&MappingConfig::default()).unwrap().is_none());
    }
}
