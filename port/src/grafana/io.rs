//! Reading dashboards from files and directories, writing them atomically.
use super::PortError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One dashboard file found under the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The file.
    pub path: PathBuf,
    /// Its path relative to the input it was found under (the file name for a file input):
    /// where it goes under the output directory.
    pub relative: PathBuf,
}

/// Every `*.json` file of `inputs` (files as given, directories recursively, sorted).
///
/// # Errors
/// An input that does not exist or a directory that cannot be read.
pub fn find(inputs: &[PathBuf]) -> Result<Vec<Input>, PortError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| PortError::Io {
            path: input.display().to_string(),
            message: e.to_string(),
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            for path in found {
                let relative = path.strip_prefix(input).unwrap_or(&path).to_path_buf();
                out.push(Input { path, relative });
            }
        } else {
            let relative = PathBuf::from(input.file_name().unwrap_or(input.as_os_str()));
            out.push(Input { path: input.clone(), relative });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PortError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| PortError::Io { path: dir.display().to_string(), message: e.to_string() })?;
    for entry in rd.flatten() {
        let p = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // hidden files, our own temporary files
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads and parses one JSON file.
///
/// # Errors
/// The file cannot be read, or is not JSON (with line and column).
pub fn read_json(path: &Path) -> Result<Value, PortError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PortError::Io { path: path.display().to_string(), message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| PortError::Json {
        path: path.display().to_string(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed, then
/// renamed over `path`. A reader sees the old file or the new one, never half of one.
///
/// # Errors
/// The directory cannot be created or the file written or renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PortError> {
    use std::io::Write;
    let err = |e: std::io::Error| PortError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The JSON text a port writes: pretty, with a final newline (stable, so a second port of the
/// same input writes the same bytes).
pub fn to_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}
