//! Where import input comes from: one file, a directory or a zip. A
//! directory or zip with `manifest.csv` is a OneRoster bundle; anything else
//! holds native documents (`.json` one each, `.ndjson`/`.jsonl` one a line).

use crate::{Error, Result};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Native,
    OneRoster,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "native" => Some(Format::Native),
            "oneroster" => Some(Format::OneRoster),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Dir(PathBuf),
    Zip(PathBuf),
}

impl Source {
    pub fn open(path: &Path) -> Result<Source> {
        let meta = fs::metadata(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        if meta.is_dir() {
            return Ok(Source::Dir(path.to_owned()));
        }
        let mut magic = [0u8; 4];
        let mut f = fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let n = f
            .read(&mut magic)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        if n == 4 && magic == *b"PK\x03\x04" {
            Ok(Source::Zip(path.to_owned()))
        } else {
            Ok(Source::File(path.to_owned()))
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Source::File(p) | Source::Dir(p) | Source::Zip(p) => p,
        }
    }

    /// The names of the files inside, sorted (for a single file: its name).
    /// A directory's subdirectories are not read.
    pub fn members(&self) -> Result<Vec<String>> {
        let ctx = || self.path().display().to_string();
        let mut names = match self {
            Source::File(p) => vec![p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()],
            Source::Dir(p) => {
                let mut v = Vec::new();
                for entry in fs::read_dir(p).map_err(|e| Error::io(ctx(), e))? {
                    let entry = entry.map_err(|e| Error::io(ctx(), e))?;
                    if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                        v.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                v
            }
            Source::Zip(p) => {
                let f = fs::File::open(p).map_err(|e| Error::io(ctx(), e))?;
                let zip = zip::ZipArchive::new(f).map_err(|e| Error::io(ctx(), e))?;
                zip.file_names()
                    .filter(|n| !n.ends_with('/'))
                    .map(str::to_owned)
                    .collect()
            }
        };
        names.sort();
        Ok(names)
    }

    /// Reads one member by name; `None` when it is not there.
    pub fn read_member(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let ctx = || format!("{}: {name}", self.path().display());
        match self {
            Source::File(p) => {
                if self.members()?.first().map(String::as_str) != Some(name) {
                    return Ok(None);
                }
                fs::read(p).map(Some).map_err(|e| Error::io(ctx(), e))
            }
            Source::Dir(p) => {
                let path = p.join(name);
                if !path.is_file() {
                    return Ok(None);
                }
                fs::read(&path).map(Some).map_err(|e| Error::io(ctx(), e))
            }
            Source::Zip(p) => {
                let f = fs::File::open(p).map_err(|e| Error::io(ctx(), e))?;
                let mut zip = zip::ZipArchive::new(f).map_err(|e| Error::io(ctx(), e))?;
                let mut entry = match zip.by_name(name) {
                    Ok(e) => e,
                    Err(zip::result::ZipError::FileNotFound) => return Ok(None),
                    Err(e) => return Err(Error::io(ctx(), e)),
                };
                let mut buf = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::io(ctx(), e))?;
                Ok(Some(buf))
            }
        }
    }

    /// The label a member gets in error messages.
    pub fn label(&self, member: &str) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Dir(p) => p.join(member).display().to_string(),
            Source::Zip(p) => format!("{}!{member}", p.display()),
        }
    }
}

/// Is a member one that holds native documents?
pub fn is_native_member(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".json") || lower.ends_with(".ndjson") || lower.ends_with(".jsonl")
}

/// Detects the format from the content: a bundle with `manifest.csv` is
/// OneRoster; JSON is native.
pub fn detect_format(source: &Source) -> Result<Format> {
    let members = source.members()?;
    if members.iter().any(|m| m == "manifest.csv") {
        return Ok(Format::OneRoster);
    }
    match source {
        Source::File(_) => {
            let bytes = source.read_member(&members[0])?.unwrap_or_default();
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first == Some(&b'{') {
                Ok(Format::Native)
            } else {
                Err(Error::ImportUnsupported(format!(
                    "{}: neither a native JSON document nor a OneRoster bundle (a directory or zip with manifest.csv)",
                    source.path().display()
                )))
            }
        }
        _ if members.iter().any(|m| is_native_member(m)) => Ok(Format::Native),
        _ => Err(Error::ImportUnsupported(format!(
            "{}: holds no .json/.ndjson files and no OneRoster manifest.csv",
            source.path().display()
        ))),
    }
}
