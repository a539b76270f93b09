//! Reading roster input: the native JSON format and OneRoster 1.2 CSV
//! bundles, from a file, a directory or a zip. Parsing and validation are
//! pure: they turn bytes into [`InstitutionRoster`]s or into a complete list
//! of [`Issue`]s, each saying where (file, line or record) and which field.

pub mod native;
pub mod oneroster;
pub mod run;
pub mod source;

use crate::roster::InstitutionRoster;
use serde::Serialize;
use std::fmt;

pub use source::{detect_format, Format, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    /// 1-based line, where the input has lines (CSV, NDJSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The record inside a JSON document, e.g. `persons[3] (user_id "a1")`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl Location {
    pub fn file(file: impl Into<String>) -> Self {
        Location {
            file: file.into(),
            line: None,
            record: None,
        }
    }
    pub fn line(file: impl Into<String>, line: u64) -> Self {
        Location {
            file: file.into(),
            line: Some(line),
            record: None,
        }
    }
    pub fn with_record(&self, record: impl Into<String>) -> Self {
        Location {
            record: Some(record.into()),
            ..self.clone()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(record) = &self.record {
            write!(f, " {record}")?;
        }
        Ok(())
    }
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl Issue {
    pub fn error(location: &Location, field: Option<&str>, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            location: location.clone(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
    pub fn warning(location: &Location, field: Option<&str>, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(location, field, message)
        }
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}", self.location)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects issues while validating; the parsed result is usable only when
/// no error was found.
#[derive(Debug, Default)]
pub struct Issues(pub Vec<Issue>);

impl Issues {
    pub fn error(&mut self, loc: &Location, field: Option<&str>, msg: impl Into<String>) {
        self.0.push(Issue::error(loc, field, msg));
    }
    pub fn warning(&mut self, loc: &Location, field: Option<&str>, msg: impl Into<String>) {
        self.0.push(Issue::warning(loc, field, msg));
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Issue::is_error)
    }
}

/// Full imports are snapshots of an institution; deltas apply only what
/// they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Delta,
}

/// One institution's roster read from the input, with where it came from.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub location: Location,
    pub roster: InstitutionRoster,
}
