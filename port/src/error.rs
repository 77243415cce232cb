//! The errors of this crate: reading a Graphite target ([`ParseError`]), translating it
//! ([`TranslateError`]), porting a dashboard ([`PortError`]) and reading alerts ([`AlertError`]).
//!
//! The first two carry the byte position in the target and print it with a caret line, so a person
//! finds the spot at once:
//!
//! ```text
//! unbalanced parenthesis: `(` at byte 9 is never closed
//!   sumSeries(a.b
//!            ^
//! ```
use serde::Serialize;
use thiserror::Error;

/// Renders `target` and a caret under byte `pos` (two spaces of indent, like rustc).
pub fn caret_line(target: &str, pos: usize) -> String {
    let pos = pos.min(target.len());
    // count characters, not bytes, up to the position so the caret lines up on UTF-8 input
    let col = target.get(..pos).map_or(pos, |s| s.chars().count());
    format!("  {target}\n  {}^", " ".repeat(col))
}

/// Why a Graphite target could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} (at byte {pos})\n{}", caret_line(target, *pos))]
pub struct ParseError {
    /// Byte offset of the offending character in `target`.
    pub pos: usize,
    /// What is wrong, e.g. "unbalanced parenthesis: `(` at byte 9 is never closed".
    pub message: String,
    /// The whole target that was read.
    pub target: String,
}

/// Why a target could not be translated at all. A target that parses and uses only known
/// functions always translates (possibly to [`crate::Status::Untranslatable`]); these errors
/// are for input that is wrong, not for Graphite features PromQL lacks.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TranslateError {
    /// The target is not valid Graphite.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A function name Graphite does not know (a typo, or a plugin function).
    #[error("unknown Graphite function `{name}` (at byte {pos})\n{}", caret_line(target, *pos))]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// Byte offset of the name.
        pos: usize,
        /// The whole target.
        target: String,
    },
    /// A known function called with arguments it cannot take.
    #[error("{function}: {message} (at byte {pos})\n{}", caret_line(target, *pos))]
    BadArgument {
        /// The function.
        function: String,
        /// What is wrong with the argument.
        message: String,
        /// Byte offset of the argument (or of the call).
        pos: usize,
        /// The whole target.
        target: String,
    },
    /// `#A` names a target that the [`crate::Context`] does not have (or that refers back
    /// to itself).
    #[error("{message} `#{name}` (at byte {pos})\n{}", caret_line(target, *pos))]
    Reference {
        /// The referenced refId.
        name: String,
        /// "unknown reference" or "circular reference".
        message: String,
        /// Byte offset of the `#`.
        pos: usize,
        /// The whole target.
        target: String,
    },
    /// A generated expression that `promql-parser` rejects. This is a bug of the translator,
    /// never of the input; the tests run every output through the parser to catch it.
    #[error("internal error: generated PromQL does not parse ({message}): {promql}")]
    InvalidPromql {
        /// The generated expression.
        promql: String,
        /// The parser's message.
        message: String,
    },
}

/// Why a context file (mapping or catalog) could not be loaded.
#[derive(Debug, Error)]
pub enum ContextError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The mapping file is not valid (its error names the file, the rule, the key and value).
    #[error("{0}")]
    Mapping(#[from] dualmetrics_model::mapping::MappingError),
    /// The file was read but is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with a position where the underlying parser gives one.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_at_the_byte_position() {
        assert_eq!(caret_line("ab(c", 2), "  ab(c\n    ^");
        assert_eq!(caret_line("ab", 9), "  ab\n    ^");
    }

    #[test]
    fn parse_error_prints_message_position_and_caret() {
        let e = ParseError { pos: 1, message: "bad".into(), target: "a(".into() };
        assert_eq!(e.to_string(), "bad (at byte 1)\n  a(\n   ^");
    }
}

/// Why a dashboard (not a single target) could not be ported.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PortError {
    /// A file or directory could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The system's message.
        message: String,
    },
    /// The file is not JSON.
    #[error("{path}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// JSON, but no dashboard (no `panels`, `rows` or `title`).
    #[error("{file}: not a Grafana dashboard (no panels, rows or title)")]
    NotADashboard {
        /// The file.
        file: String,
    },
    /// Every panel uses another datasource type.
    #[error("{file}: dashboard {dashboard:?} has no Graphite target; its panels use {}", found.join(", "))]
    OtherDatasource {
        /// Dashboard title.
        dashboard: String,
        /// The file.
        file: String,
        /// The datasource types found.
        found: Vec<String>,
    },
}

/// Why alerts could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertError {
    /// The YAML does not read.
    #[error("{file}: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// The parser's message (with the position).
        message: String,
    },
    /// An alert that cannot be meant.
    #[error("{file}: alert {alert}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The alert (and for panel alerts the dashboard and panel).
        alert: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file, or a dashboard that is not JSON.
    #[error("{0}")]
    Port(#[from] PortError),
}
