//! Where a configuration comes from: the TOML document (a file or inline text), the
//! environment variables and the builder's calls. [`Sources`] keeps all three so that a reload
//! resolves them again. Nothing else in the SDK reads the environment, and only the file watch
//! (`reload.rs`) reads the file besides, to see whether its bytes changed.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Config, Layer};
use crate::error::{BuildError, ConfigError, Source};
use crate::rules::{Rule, SourcedRule};

/// The configuration document: a file read at each resolution, or text given in code.
#[derive(Clone)]
pub(crate) enum ConfigDoc {
    Path(PathBuf),
    Inline { name: String, text: String },
}

/// Everything a configuration is resolved from, kept so that a reload resolves it again: the
/// file is re-read, the process environment re-read (unless fixed with `with_env_vars`), and the
/// builder calls re-applied on top.
#[derive(Clone, Default)]
pub(crate) struct Sources {
    /// The document; `None`: the file `DUALMETRICS_CONFIG` names, if any.
    pub doc: Option<ConfigDoc>,
    /// A fixed variable set; `None`: the process environment, read at each resolution.
    pub vars: Option<BTreeMap<String, String>>,
    /// The `[env.<name>]` section; `None`: `DUALMETRICS_ENV`.
    pub env_name: Option<String>,
    /// The builder's settings, above every other layer.
    pub code: Layer,
    /// Invalid builder settings, reported at resolution.
    pub code_errors: Vec<ConfigError>,
    /// The builder's rules, matched before the file's.
    pub code_rules: Vec<Rule>,
}

impl Sources {
    /// The configuration file, when it is a file on disk (what a watch polls).
    pub(crate) fn file(&self) -> Option<PathBuf> {
        match &self.doc {
            Some(ConfigDoc::Path(p)) => Some(p.clone()),
            Some(ConfigDoc::Inline { .. }) => None,
            None => {
                self.vars().get("DUALMETRICS_CONFIG").filter(|p| !p.is_empty()).map(PathBuf::from)
            }
        }
    }

    fn vars(&self) -> BTreeMap<String, String> {
        match &self.vars {
            Some(v) => v.clone(),
            None => std::env::vars().collect(),
        }
    }

    /// Resolves the configuration: file, environment, code.
    pub(crate) fn resolve(&self) -> Result<Config, BuildError> {
        let vars = self.vars();
        if let Some(e) = self.code_errors.first() {
            return Err(e.clone().into());
        }
        let env_name = self
            .env_name
            .clone()
            .or_else(|| vars.get("DUALMETRICS_ENV").cloned())
            .filter(|s| !s.is_empty());
        let mut merged = BTreeMap::new();
        // Match order: code rules, then [env.<name>] rules, then [default] rules.
        let mut rules: Vec<SourcedRule> = self
            .code_rules
            .iter()
            .enumerate()
            .map(|(index, rule)| SourcedRule { rule: rule.clone(), index, source: Source::Code })
            .collect();
        let mut default_rules = Vec::new();
        let doc = match &self.doc {
            Some(ConfigDoc::Path(p)) => Some(read_doc(p)?),
            Some(ConfigDoc::Inline { name, text }) => Some((name.clone(), text.clone())),
            None => match vars.get("DUALMETRICS_CONFIG") {
                Some(p) if !p.is_empty() => Some(read_doc(&PathBuf::from(p))?),
                _ => None,
            },
        };
        if let Some((path, text)) = doc {
            let file_err = |reason: String| BuildError::File { path: path.clone(), reason };
            let table: toml::Table =
                text.parse().map_err(|e: toml::de::Error| file_err(e.to_string()))?;
            let section_rules = |t: &toml::Table, section: &str| match t.get("rules") {
                None => Ok(Vec::new()),
                Some(v) => crate::rules::from_toml(
                    v,
                    &Source::File { path: path.clone(), section: section.to_owned() },
                ),
            };
            for (section, value) in &table {
                match (section.as_str(), value) {
                    ("default", toml::Value::Table(t)) => {
                        Layer::from_toml_section(t, &path, "default")?.merge_into(&mut merged);
                        default_rules = section_rules(t, "default")?;
                    }
                    ("env", toml::Value::Table(_)) => {}
                    _ => {
                        return Err(file_err(format!(
                            "unknown section [{section}]: expected [default] or [env.<name>]"
                        )))
                    }
                }
            }
            if let Some(name) = &env_name {
                let envs = table.get("env").and_then(|e| e.as_table());
                match envs.and_then(|e| e.get(name)) {
                    Some(toml::Value::Table(t)) => {
                        let section = format!("env.{name}");
                        Layer::from_toml_section(t, &path, &section)?.merge_into(&mut merged);
                        rules.extend(section_rules(t, &section)?);
                    }
                    Some(_) => return Err(file_err(format!("[env.{name}] must be a table"))),
                    None => {
                        return Err(file_err(format!(
                            "no [env.{name}] section for environment {name:?} (selected by DUALMETRICS_ENV or with_environment_name)"
                        )))
                    }
                }
            }
        }
        rules.extend(default_rules);
        super::layer_from_env(&vars)?.merge_into(&mut merged);
        self.code.merge_into(&mut merged);
        Ok(super::resolve(&merged, env_name.as_deref(), rules)?)
    }
}

fn read_doc(path: &std::path::Path) -> Result<(String, String), BuildError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| BuildError::File { path: shown.clone(), reason: e.to_string() })?;
    Ok((shown, text))
}
