//! Reading the CLI's files: CloudTrail trails (files, folders, `.json.gz` as CloudTrail writes
//! them to S3), owners and rules files.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use vigil_core::cloudtrail;
use vigil_core::model::Change;

/// What was read from `--trail`, with every skipped record reported.
#[derive(Debug, Default)]
pub struct Trail {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

/// Read CloudTrail files or folders (recursively: `*.json`, `*.json.gz`).
pub fn read_trail(paths: &[PathBuf]) -> Result<Trail> {
    let mut trail = Trail::default();
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files).with_context(|| format!("reading trail {}", p.display()))?;
    }
    files.sort();
    for file in files {
        let text = read_text(&file)?;
        match cloudtrail::parse_trail(&text) {
            Ok(batch) => {
                trail.changes.extend(batch.changes);
                for s in batch.skipped {
                    trail.warnings.push(format!(
                        "{}: {} skipped: {}",
                        file.display(),
                        if s.location.is_empty() {
                            "record"
                        } else {
                            &s.location
                        },
                        s.reason
                    ));
                }
            }
            Err(e) => trail
                .warnings
                .push(format!("{}: skipped: {e}", file.display())),
        }
    }
    Ok(trail)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            collect(&entry?.path(), out)?;
        }
    } else {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".json")
            || name.ends_with(".json.gz")
            || out.is_empty() && !meta.is_dir() && path.extension().is_none()
        {
            out.push(path.to_path_buf());
        }
    }
    Ok(())
}

/// A file's text, gunzipped when it ends in `.gz`.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .with_context(|| format!("gunzipping {}", path.display()))?;
        Ok(text)
    } else {
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))
    }
}
