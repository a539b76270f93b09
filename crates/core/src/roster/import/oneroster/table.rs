//! Reading one CSV file of a bundle into rows, with the checks every file
//! shares: the header against the file's columns, row lengths, required
//! cells, status and dateLastModified, unique sourcedIds.

use super::{is_ext, shown, Spec};
use crate::roster::import::native::parse_date;
use crate::roster::import::{Issues, Location, Mode};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

pub(super) struct Row {
    pub(super) line: u64,
    pub(super) values: Vec<String>,
}

pub(super) struct Table {
    pub(super) spec: &'static Spec,
    /// The file's label in issues.
    pub(super) file: String,
    /// The mode the manifest declares for this file. Checks use it, not the
    /// bundle's, so a mixed bundle still gets every other problem reported.
    pub(super) mode: Mode,
    pub(super) columns: HashMap<String, usize>,
    pub(super) rows: Vec<Row>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Active,
    Deleted,
}

impl Table {
    pub(super) fn read(
        spec: &'static Spec,
        file: String,
        mode: Mode,
        bytes: &[u8],
        issues: &mut Issues,
    ) -> Table {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut table = Table {
            spec,
            file,
            mode,
            columns: HashMap::new(),
            rows: Vec::new(),
        };
        // Row lengths are checked here rather than by the csv crate, so a
        // short row is one issue and the rows after it are still read.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut width = None;
        for (i, record) in reader.records().enumerate() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let loc = match e.position() {
                        Some(p) => Location::line(&table.file, p.line()),
                        None => Location::file(&table.file),
                    };
                    let msg = match e.kind() {
                        csv::ErrorKind::Utf8 { err, .. } => format!(
                            "malformed CSV: field {} is not valid UTF-8; save the file as UTF-8",
                            err.field() + 1
                        ),
                        _ => format!("malformed CSV: {e}"),
                    };
                    issues.error(&loc, None, msg);
                    if i == 0 {
                        // Without a header no row can be read.
                        return table;
                    }
                    continue;
                }
            };
            let line = record.position().map_or(i as u64 + 1, |p| p.line());
            let Some(width) = width else {
                table.header(&record, line, issues);
                width = Some(record.len());
                continue;
            };
            if record.len() != width {
                issues.error(
                    &Location::line(&table.file, line),
                    None,
                    format!(
                        "malformed CSV: the row has {} fields, the header {width}",
                        record.len()
                    ),
                );
                continue;
            }
            let values = record.iter().map(|v| v.trim().to_owned()).collect();
            table.rows.push(Row { line, values });
        }
        if width.is_none() {
            issues.error(
                &Location::file(&table.file),
                None,
                "empty: the first line must name the columns",
            );
        }
        table
    }

    fn header(&mut self, record: &csv::StringRecord, line: u64, issues: &mut Issues) {
        let loc = Location::line(&self.file, line);
        for (i, name) in record.iter().enumerate() {
            let name = name.trim();
            if self.columns.insert(name.to_owned(), i).is_some() {
                issues.error(&loc, Some(name), "column named twice");
            } else if !self.spec.columns.contains(&name) && !name.starts_with("metadata.") {
                issues.warning(
                    &loc,
                    Some(name),
                    format!(
                        "not a OneRoster 1.2 column of {}.csv; ignored",
                        self.spec.name
                    ),
                );
            }
        }
        let status =
            (self.mode == Mode::Delta && self.spec.columns.contains(&"status")).then_some("status");
        for col in self.spec.required.iter().copied().chain(status) {
            if !self.columns.contains_key(col) {
                issues.error(&loc, Some(col), "required column missing");
            }
        }
    }

    /// A cell's value; `None` when the column is absent or the cell empty.
    pub(super) fn get<'r>(&self, row: &'r Row, col: &str) -> Option<&'r str> {
        let i = *self.columns.get(col)?;
        row.values
            .get(i)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(super) fn text(&self, row: &Row, col: &str) -> String {
        self.get(row, col).unwrap_or_default().to_owned()
    }

    pub(super) fn loc(&self, row: &Row) -> Location {
        Location::line(&self.file, row.line)
    }

    /// The rows that name a sourcedId, each with its status, after the
    /// checks every file shares: required cells, status, dateLastModified
    /// and unique sourcedIds. A duplicate's later rows are dropped.
    pub(super) fn records(&self, issues: &mut Issues) -> Vec<(&Row, String, Status)> {
        let mut out = Vec::with_capacity(self.rows.len());
        let mut seen: HashMap<&str, u64> = HashMap::with_capacity(self.rows.len());
        for row in &self.rows {
            let loc = self.loc(row);
            for col in self.spec.required {
                if self.columns.contains_key(*col) && self.get(row, col).is_none() {
                    issues.error(&loc, Some(col), "required, but empty");
                }
            }
            let status = self.status(row, &loc, issues);
            if let Some(v) = self.get(row, "dateLastModified") {
                let ok = OffsetDateTime::parse(v, &Rfc3339).is_ok() || parse_date(v).is_some();
                if !ok {
                    issues.error(
                        &loc,
                        Some("dateLastModified"),
                        format!(
                            "{} is not a date-time; write e.g. 2024-08-01T12:00:00Z",
                            shown(v)
                        ),
                    );
                }
            }
            let Some(id) = self.get(row, "sourcedId") else {
                continue;
            };
            match seen.entry(id) {
                Entry::Occupied(first) => {
                    let msg = format!(
                        "duplicate sourcedId {}, first on line {}",
                        shown(id),
                        first.get()
                    );
                    issues.error(&loc, Some("sourcedId"), msg);
                }
                Entry::Vacant(slot) => {
                    slot.insert(row.line);
                    out.push((row, id.to_owned(), status));
                }
            }
        }
        out
    }

    fn status(&self, row: &Row, loc: &Location, issues: &mut Issues) -> Status {
        match (self.get(row, "status"), self.mode) {
            (None | Some("active"), Mode::Full) => Status::Active,
            (Some("active"), Mode::Delta) => Status::Active,
            (Some("tobedeleted"), Mode::Delta) => Status::Deleted,
            (None, Mode::Delta) => {
                issues.error(
                    loc,
                    Some("status"),
                    "required in a delta file: active or tobedeleted",
                );
                Status::Active
            }
            (Some("tobedeleted"), Mode::Full) => {
                issues.error(
                    loc,
                    Some("status"),
                    "tobedeleted belongs in a delta file; a bulk file lists what exists, so leave the row out",
                );
                Status::Active
            }
            (Some(other), _) => {
                issues.error(
                    loc,
                    Some("status"),
                    format!(
                        "{} is not a status; write active or tobedeleted",
                        shown(other)
                    ),
                );
                Status::Active
            }
        }
    }

    pub(super) fn date(&self, row: &Row, col: &str, issues: &mut Issues) -> Option<Date> {
        let v = self.get(row, col)?;
        let d = parse_date(v);
        if d.is_none() {
            issues.error(
                &self.loc(row),
                Some(col),
                format!("{} is not a date; write YYYY-MM-DD", shown(v)),
            );
        }
        d
    }

    /// Checks an enumerated cell against its OneRoster values (and `ext:`).
    pub(super) fn check_enum(&self, row: &Row, col: &str, allowed: &[&str], issues: &mut Issues) {
        if let Some(v) = self.get(row, col) {
            if !allowed.contains(&v) && !is_ext(v) {
                let msg = format!(
                    "{} is not one of {} (or an ext: value)",
                    shown(v),
                    allowed.join(", ")
                );
                issues.error(&self.loc(row), Some(col), msg);
            }
        }
    }
}
