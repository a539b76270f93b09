//! OneRoster 1.2 CSV bundles: a directory or zip holding `manifest.csv` and
//! one CSV file per entity, as student information systems export them. The
//! files refer to each other, so a bundle is read and checked as a whole and
//! mapped onto one [`InstitutionRoster`] per school; any error withholds all
//! of them. `docs/oneroster-mapping.md` is the mapping in prose.

mod mapping;
mod records;
mod table;

use super::source::Source;
use super::{Issue, Issues, Location, Mode, Parsed};
use crate::roster::model::Cpr;
use records::Bundle;
use std::collections::{HashMap, HashSet};
use table::Table;

const MANIFEST: &str = "manifest.csv";
const MANIFEST_VERSION: &str = "1.0";
const ONEROSTER_VERSION: &str = "1.2";

/// One CSV file of the bundle, as OneRoster 1.2 defines it.
struct Spec {
    /// The `file.<name>` key in the manifest; the member is `<name>.csv`.
    name: &'static str,
    /// Every column the file may have. Others are reported, except
    /// extension columns (`metadata.*`), which the standard allows.
    columns: &'static [&'static str],
    /// Columns every row must fill.
    required: &'static [&'static str],
}

const MANIFEST_SPEC: Spec = Spec {
    name: "manifest",
    columns: &["propertyName", "value"],
    required: &["propertyName", "value"],
};

const ORGS: Spec = Spec {
    name: "orgs",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "name",
        "type",
        "identifier",
        "parentSourcedId",
    ],
    required: &["sourcedId", "name", "type"],
};

const USERS: Spec = Spec {
    name: "users",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
        "userMasterIdentifier",
        "resourceSourcedIds",
        "preferredGivenName",
        "preferredMiddleName",
        "preferredFamilyName",
        "primaryOrgSourcedId",
        "pronouns",
        // Not the CSV binding's name, but some exporters take it from the
        // REST model; it carries nothing tilgang reads, so accept it quietly.
        "primaryOrg",
    ],
    required: &["sourcedId", "enabledUser", "givenName", "familyName"],
};

const ROLES: Spec = Spec {
    name: "roles",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "userSourcedId",
        "roleType",
        "role",
        "beginDate",
        "endDate",
        "orgSourcedId",
        "userProfileSourcedId",
    ],
    required: &[
        "sourcedId",
        "userSourcedId",
        "roleType",
        "role",
        "orgSourcedId",
    ],
};

// The standard requires courseSourcedId and termSourcedIds too; Danish
// administrative systems often have neither, and tilgang needs neither, so
// they are checked only when filled.
const CLASSES: Spec = Spec {
    name: "classes",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ],
    required: &["sourcedId", "title", "classType", "schoolSourcedId"],
};

const ENROLLMENTS: Spec = Spec {
    name: "enrollments",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ],
    required: &[
        "sourcedId",
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
    ],
};

const DEMOGRAPHICS: Spec = Spec {
    name: "demographics",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "birthDate",
        "sex",
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ],
    required: &["sourcedId"],
};

const SESSIONS: Spec = Spec {
    name: "academicSessions",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ],
    required: &[
        "sourcedId",
        "title",
        "type",
        "startDate",
        "endDate",
        "schoolYear",
    ],
};

const COURSES: Spec = Spec {
    name: "courses",
    columns: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ],
    required: &["sourcedId", "title", "orgSourcedId"],
};

/// The files tilgang reads, in the order they are read.
const IMPORTED: [&Spec; 8] = [
    &ORGS,
    &USERS,
    &ROLES,
    &CLASSES,
    &ENROLLMENTS,
    &DEMOGRAPHICS,
    &SESSIONS,
    &COURSES,
];

/// Files OneRoster 1.2 defines that carry nothing for a roster (gradebook,
/// resources, application credentials).
const NOT_IMPORTED: &[&str] = &[
    "categories",
    "classResources",
    "courseResources",
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "lineItems",
    "resources",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "results",
    "scoreScales",
    "userProfiles",
    "userResources",
];

/// Reads a OneRoster bundle (directory or zip with manifest.csv). Returns the
/// mode the manifest declares (bulk -> Mode::Full, delta -> Mode::Delta;
/// a mix -> error issue) and one Parsed per institution (org of type school/
/// district-less). All problems go to `issues`, each with file (use
/// source.label(member)), 1-based line, and field (column name).
pub fn parse_bundle(source: &Source, issues: &mut Issues) -> crate::Result<(Mode, Vec<Parsed>)> {
    let start = issues.0.len();
    let Some(bytes) = source.read_member(MANIFEST)? else {
        issues.error(
            &Location::file(source.label(MANIFEST)),
            None,
            "missing: a OneRoster bundle is a directory or zip with manifest.csv at its top",
        );
        return Ok((Mode::Full, Vec::new()));
    };
    let members = source.members()?;
    let Some(manifest) = Manifest::read(source, &bytes, &members, issues) else {
        return Ok((Mode::Full, Vec::new()));
    };
    let mut tables: HashMap<&'static str, Table> = HashMap::new();
    for spec in IMPORTED {
        let Some(&mode) = manifest.files.get(spec.name) else {
            continue;
        };
        let member = format!("{}.csv", spec.name);
        let label = source.label(&member);
        match source.read_member(&member)? {
            Some(bytes) => {
                tables.insert(spec.name, Table::read(spec, label, mode, &bytes, issues));
            }
            None => issues.error(
                &Location::file(label),
                None,
                format!(
                    "missing, but manifest.csv declares file.{} {}",
                    spec.name,
                    mode_word(mode)
                ),
            ),
        }
    }
    let rosters = Bundle::read(&manifest, &tables, issues).map(|b| b.rosters(issues));
    // The files refer to each other, so one error anywhere taints them all.
    if issues.0[start..].iter().any(Issue::is_error) {
        return Ok((manifest.mode, Vec::new()));
    }
    Ok((manifest.mode, rosters.unwrap_or_default()))
}

fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "bulk",
        Mode::Delta => "delta",
    }
}

/// Quotes a value for a message, unless it might be a CPR number: those are
/// confidential, and exporters put them in unexpected columns, so no value
/// that looks like one is ever echoed, whatever its column.
fn shown(v: &str) -> String {
    if looks_like_cpr(v) {
        "the value (not shown: it looks like a CPR number)".to_owned()
    } else {
        format!("{v:?}")
    }
}

fn looks_like_cpr(v: &str) -> bool {
    v.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .any(|run| {
            let digits: String = run.chars().filter(char::is_ascii_digit).collect();
            digits.len() == 10 && Cpr::parse(&digits).is_some()
        })
}

/// A OneRoster list cell: values separated by commas inside one field.
fn list(v: Option<&str>) -> Vec<String> {
    v.map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Extension values (`ext:...`) are allowed in every OneRoster enumeration.
fn is_ext(v: &str) -> bool {
    v.starts_with("ext:")
}

// ---------------------------------------------------------------------------
// The manifest

struct Manifest {
    /// Mode of each imported file the manifest declares bulk or delta.
    files: HashMap<&'static str, Mode>,
    mode: Mode,
    source_system: Option<String>,
    file: String,
    /// Line of each property, for issues about it.
    lines: HashMap<String, u64>,
}

impl Manifest {
    /// `None` when the bundle is not one tilgang can read at all (wrong
    /// version): reading its files would only bury that under noise.
    fn read(
        source: &Source,
        bytes: &[u8],
        members: &[String],
        issues: &mut Issues,
    ) -> Option<Manifest> {
        let table = Table::read(
            &MANIFEST_SPEC,
            source.label(MANIFEST),
            Mode::Full,
            bytes,
            issues,
        );
        let mut props: HashMap<String, (String, u64)> = HashMap::new();
        for row in &table.rows {
            let loc = table.loc(row);
            let Some(name) = table.get(row, "propertyName") else {
                issues.error(&loc, Some("propertyName"), "required, but empty");
                continue;
            };
            let value = table.text(row, "value");
            if let Some((_, first)) = props.get(name) {
                issues.error(
                    &loc,
                    Some(name),
                    format!("property given twice, first on line {first}"),
                );
                continue;
            }
            props.insert(name.to_owned(), (value, row.line));
        }
        let mut m = Manifest {
            files: HashMap::new(),
            mode: Mode::Full,
            source_system: None,
            file: table.file.clone(),
            lines: props
                .iter()
                .map(|(k, (_, line))| (k.clone(), *line))
                .collect(),
        };

        // `&`, not `&&`: both versions are checked, so both are reported.
        let readable = m.check_version(&props, "manifest.version", MANIFEST_VERSION, issues)
            & m.check_version(&props, "oneroster.version", ONEROSTER_VERSION, issues);
        if !readable {
            return None;
        }

        let mut declared: HashSet<String> = HashSet::new();
        let mut names: Vec<&String> = props.keys().collect();
        names.sort_by_key(|n| m.lines.get(*n));
        for name in names {
            let (value, line) = &props[name];
            let loc = Location::line(&m.file, *line);
            if let Some(file) = name.strip_prefix("file.") {
                let mode = match value.as_str() {
                    "bulk" => Some(Mode::Full),
                    "delta" => Some(Mode::Delta),
                    "absent" => None,
                    other => {
                        issues.error(
                            &loc,
                            Some(name),
                            format!("{} is not one of bulk, delta, absent", shown(other)),
                        );
                        None
                    }
                };
                let Some(mode) = mode else { continue };
                declared.insert(format!("{file}.csv"));
                match IMPORTED.iter().find(|s| s.name == file) {
                    Some(spec) => {
                        m.files.insert(spec.name, mode);
                    }
                    None if NOT_IMPORTED.contains(&file) => issues.warning(
                        &loc,
                        Some(name),
                        format!("{file}.csv is not roster data; tilgang ignores it"),
                    ),
                    None => issues.warning(
                        &loc,
                        Some(name),
                        format!("{file}.csv is not a OneRoster 1.2 file; ignored"),
                    ),
                }
            } else if name == "source.systemName" {
                m.source_system = Some(value.clone()).filter(|v| !v.is_empty());
            } else if !matches!(
                name.as_str(),
                "manifest.version" | "oneroster.version" | "source.systemCode"
            ) {
                issues.warning(
                    &loc,
                    Some(name),
                    "not a OneRoster 1.2 manifest property; ignored",
                );
            }
        }
        for member in members {
            if member != MANIFEST && member.ends_with(".csv") && !declared.contains(member) {
                issues.warning(
                    &Location::file(source.label(member)),
                    None,
                    "manifest.csv does not declare this file bulk or delta; ignored",
                );
            }
        }
        m.check_modes(issues);
        Some(m)
    }

    fn check_version(
        &self,
        props: &HashMap<String, (String, u64)>,
        name: &str,
        want: &str,
        issues: &mut Issues,
    ) -> bool {
        let Some((value, line)) = props.get(name) else {
            issues.error(
                &Location::file(&self.file),
                Some(name),
                format!("missing; a OneRoster {ONEROSTER_VERSION} bundle has {name} {want}"),
            );
            return false;
        };
        if value == want {
            return true;
        }
        let loc = Location::line(&self.file, *line);
        let msg = match (name, value.as_str()) {
            ("oneroster.version", "1.0" | "1.1") => format!(
                "this bundle is OneRoster {value}; tilgang reads OneRoster {ONEROSTER_VERSION} only: export the roster as OneRoster {ONEROSTER_VERSION} CSV"
            ),
            _ => format!("{} is not supported; tilgang reads {name} {want}", shown(value)),
        };
        issues.error(&loc, Some(name), msg);
        false
    }

    /// tilgang applies an import as one full snapshot or one delta, so the
    /// files it reads must agree (OneRoster itself lets them differ).
    fn check_modes(&mut self, issues: &mut Issues) {
        let of = |mode: Mode| {
            let mut v: Vec<&str> = self
                .files
                .iter()
                .filter(|(_, m)| **m == mode)
                .map(|(f, _)| *f)
                .collect();
            v.sort_unstable();
            v
        };
        let (bulk, delta) = (of(Mode::Full), of(Mode::Delta));
        let loc = Location::file(&self.file);
        // Declaring nothing is reported as orgs.csv missing.
        match (bulk.is_empty(), delta.is_empty()) {
            (_, true) => self.mode = Mode::Full,
            (true, false) => self.mode = Mode::Delta,
            (false, false) => issues.error(
                &loc,
                None,
                format!(
                    "mixes bulk ({}) and delta ({}); tilgang imports a bundle as one full or one delta import, so declare every file the same",
                    bulk.join(", "),
                    delta.join(", ")
                ),
            ),
        }
    }

    fn loc(&self, property: &str) -> Location {
        match self.lines.get(property) {
            Some(line) => Location::line(&self.file, *line),
            None => Location::file(&self.file),
        }
    }
}

#[cfg(test)]
mod tests;
