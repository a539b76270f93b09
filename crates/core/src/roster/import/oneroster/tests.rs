#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::records::*;
use super::*;
use crate::roster::import::Severity;
use crate::roster::model::*;
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use time::macros::date;

// The OneRoster 1.2 headers, written out independently of the specs above so
// a slip in either shows.
const USERS_HEADER: &[&str] = &[
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
];
const ROLES_HEADER: &[&str] = &[
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
];
const ORGS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "name",
    "type",
    "identifier",
    "parentSourcedId",
];
const CLASSES_HEADER: &[&str] = &[
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
];
const ENROLLMENTS_HEADER: &[&str] = &[
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
];
const DEMOGRAPHICS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "birthDate",
    "sex",
];
const SESSIONS_HEADER: &[&str] = &[
    "sourcedId",
    "status",
    "dateLastModified",
    "title",
    "type",
    "startDate",
    "endDate",
    "parentSourcedId",
    "schoolYear",
];
const COURSES_HEADER: &[&str] = &[
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
];

/// A CSV file from a header and rows given as (column, value) pairs; list
/// values (with commas) are quoted.
fn csv(header: &[&str], rows: &[&[(&str, &str)]]) -> String {
    let mut out = header.join(",");
    out.push('\n');
    for row in rows {
        for (col, _) in row.iter() {
            assert!(header.contains(col), "no column {col}");
        }
        let cells: Vec<String> = header
            .iter()
            .map(|h| {
                let v = row.iter().find(|(c, _)| c == h).map_or("", |(_, v)| v);
                if v.contains(',') || v.contains('"') {
                    format!("\"{}\"", v.replace('"', "\"\""))
                } else {
                    v.to_owned()
                }
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

fn manifest(mode: &str, files: &[&str]) -> String {
    let mut out = String::from("propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\n");
    for f in [
        "academicSessions",
        "categories",
        "classes",
        "classResources",
        "courses",
        "courseResources",
        "demographics",
        "enrollments",
        "lineItems",
        "orgs",
        "resources",
        "results",
        "roles",
        "userProfiles",
        "users",
    ] {
        let v = if files.contains(&f) { mode } else { "absent" };
        out.push_str(&format!("file.{f},{v}\n"));
    }
    out.push_str("source.systemName,Elevsystem\nsource.systemCode,ES\n");
    out
}

const ALL: &[&str] = &[
    "orgs",
    "users",
    "roles",
    "classes",
    "enrollments",
    "demographics",
    "academicSessions",
    "courses",
];

/// A small valid bulk bundle: a municipality (district) with two schools,
/// pupils, a teacher at both, a leader, parents, a guardian and a relative.
fn base() -> Vec<(String, String)> {
    let orgs = csv(
        ORGS_HEADER,
        &[
            &[
                ("sourcedId", "k101"),
                ("name", "Københavns Kommune"),
                ("type", "district"),
                ("identifier", "101"),
            ],
            &[
                ("sourcedId", "s1"),
                ("name", "Valby Skole"),
                ("type", "school"),
                ("identifier", "101001"),
                ("parentSourcedId", "k101"),
            ],
            &[
                ("sourcedId", "s2"),
                ("name", "Nørre Fælled Skole"),
                ("type", "school"),
                ("parentSourcedId", "k101"),
            ],
        ],
    );
    let user = |id: &'static str,
                given: &'static str,
                family: &'static str|
     -> Vec<(&'static str, &'static str)> {
        vec![
            ("sourcedId", id),
            ("enabledUser", "true"),
            ("username", id),
            ("givenName", given),
            ("familyName", family),
        ]
    };
    let mut p1 = user("p1", "Anna", "Hansen");
    p1.extend([
        ("userIds", "{LDAP:anna},{CPR:010110-1234}"),
        ("identifier", "E-1001"),
        ("email", "anna@example.dk"),
        ("agentSourcedIds", "m1,rel1"),
        ("grades", "03"),
        ("preferredGivenName", "Ane"),
        ("primaryOrgSourcedId", "s1"),
    ]);
    let mut p2 = user("p2", "Bo", "Jensen");
    p2.extend([("agentSourcedIds", "f1"), ("grades", "03")]);
    let mut t1 = user("t1", "Carl", "Nielsen");
    t1.extend([
        ("identifier", "L-7"),
        ("email", "carl@example.dk"),
        ("phone", "33112233"),
    ]);
    let mut m1 = user("m1", "Mette", "Hansen");
    m1.push(("sms", "+4520304050"));
    let f1 = user("f1", "Frank", "Jensen");
    let mut g1 = user("g1", "Gitte", "Olsen");
    // The guardian lists the pupil, not the other way round.
    g1.push(("agentSourcedIds", "p2"));
    let rel1 = user("rel1", "Rasmus", "Hansen");
    let a1 = user("a1", "Dorte", "Berg");
    let users = csv(USERS_HEADER, &[&p1, &p2, &t1, &m1, &f1, &g1, &rel1, &a1]);
    let role = |id: &'static str, user: &'static str, role: &'static str, org: &'static str| {
        vec![
            ("sourcedId", id),
            ("userSourcedId", user),
            ("roleType", "primary"),
            ("role", role),
            ("orgSourcedId", org),
        ]
    };
    let roles = csv(
        ROLES_HEADER,
        &[
            &role("r1", "p1", "student", "s1"),
            &role("r2", "p2", "student", "s1"),
            &role("r3", "t1", "teacher", "s1"),
            &role("r4", "t1", "teacher", "s2"),
            &role("r5", "m1", "parent", "s1"),
            &role("r6", "f1", "parent", "s1"),
            &role("r7", "g1", "guardian", "s1"),
            &role("r8", "rel1", "relative", "s1"),
            &role("r9", "a1", "principal", "s2"),
        ],
    );
    let classes = csv(
        CLASSES_HEADER,
        &[
            &[
                ("sourcedId", "c1"),
                ("title", "3.A"),
                ("grades", "03"),
                ("courseSourcedId", "crs1"),
                ("classType", "homeroom"),
                ("schoolSourcedId", "s1"),
                ("termSourcedIds", "y2024"),
            ],
            &[
                ("sourcedId", "c2"),
                ("title", "Matematik 3"),
                ("grades", "03"),
                ("courseSourcedId", "crs2"),
                ("classType", "scheduled"),
                ("schoolSourcedId", "s1"),
                ("termSourcedIds", "h1,h2"),
            ],
            &[
                ("sourcedId", "c3"),
                ("title", "5.B"),
                ("grades", "05"),
                ("classType", "homeroom"),
                ("schoolSourcedId", "s2"),
            ],
        ],
    );
    let enrol = |id: &'static str,
                 class: &'static str,
                 school: &'static str,
                 user: &'static str,
                 role: &'static str| {
        vec![
            ("sourcedId", id),
            ("classSourcedId", class),
            ("schoolSourcedId", school),
            ("userSourcedId", user),
            ("role", role),
        ]
    };
    let enrollments = csv(
        ENROLLMENTS_HEADER,
        &[
            &enrol("e1", "c1", "s1", "p1", "student"),
            &enrol("e2", "c1", "s1", "p2", "student"),
            &enrol("e3", "c1", "s1", "t1", "teacher"),
            &enrol("e4", "c2", "s1", "p1", "student"),
            &enrol("e5", "c3", "s2", "t1", "teacher"),
        ],
    );
    let demographics = csv(
        DEMOGRAPHICS_HEADER,
        &[
            &[
                ("sourcedId", "p1"),
                ("birthDate", "2010-01-01"),
                ("sex", "female"),
            ],
            &[("sourcedId", "m1"), ("sex", "female")],
            &[("sourcedId", "f1"), ("sex", "male")],
        ],
    );
    let sessions = csv(
        SESSIONS_HEADER,
        &[
            &[
                ("sourcedId", "y2023"),
                ("title", "2023/24"),
                ("type", "schoolYear"),
                ("startDate", "2023-08-14"),
                ("endDate", "2024-06-28"),
                ("schoolYear", "2024"),
            ],
            &[
                ("sourcedId", "y2024"),
                ("title", "2024/25"),
                ("type", "schoolYear"),
                ("startDate", "2024-08-12"),
                ("endDate", "2025-06-27"),
                ("schoolYear", "2025"),
            ],
            &[
                ("sourcedId", "h1"),
                ("title", "Efterår"),
                ("type", "semester"),
                ("startDate", "2024-08-12"),
                ("endDate", "2024-12-20"),
                ("parentSourcedId", "y2024"),
                ("schoolYear", "2025"),
            ],
            &[
                ("sourcedId", "h2"),
                ("title", "Forår"),
                ("type", "semester"),
                ("startDate", "2025-01-06"),
                ("endDate", "2025-06-27"),
                ("parentSourcedId", "y2024"),
                ("schoolYear", "2025"),
            ],
        ],
    );
    let courses = csv(
        COURSES_HEADER,
        &[
            &[
                ("sourcedId", "crs1"),
                ("title", "Klassen"),
                ("orgSourcedId", "s1"),
                ("schoolYearSourcedId", "y2024"),
            ],
            &[
                ("sourcedId", "crs2"),
                ("title", "Matematik"),
                ("orgSourcedId", "s1"),
            ],
        ],
    );
    vec![
        ("manifest.csv".into(), manifest("bulk", ALL)),
        ("orgs.csv".into(), orgs),
        ("users.csv".into(), users),
        ("roles.csv".into(), roles),
        ("classes.csv".into(), classes),
        ("enrollments.csv".into(), enrollments),
        ("demographics.csv".into(), demographics),
        ("academicSessions.csv".into(), sessions),
        ("courses.csv".into(), courses),
    ]
}

/// The bundle with one file's content replaced.
fn with(mut files: Vec<(String, String)>, name: &str, content: String) -> Vec<(String, String)> {
    match files.iter_mut().find(|(n, _)| n == name) {
        Some(f) => f.1 = content,
        None => files.push((name.to_owned(), content)),
    }
    files
}

fn without(files: Vec<(String, String)>, name: &str) -> Vec<(String, String)> {
    files.into_iter().filter(|(n, _)| n != name).collect()
}

/// A line appended to one file.
fn append(files: Vec<(String, String)>, name: &str, line: &str) -> Vec<(String, String)> {
    let content = files
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, c)| format!("{c}{line}\n"))
        .unwrap();
    with(files, name, content)
}

fn write_dir(files: &[(String, String)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

fn write_zip(files: &[(String, String)]) -> (TempDir, PathBuf) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    (dir, path)
}

fn parse_path(path: &Path) -> (Mode, Vec<Parsed>, Vec<Issue>) {
    let source = Source::open(path).unwrap();
    let mut issues = Issues::default();
    let (mode, parsed) = parse_bundle(&source, &mut issues).unwrap();
    (mode, parsed, issues.0)
}

fn parse(files: &[(String, String)]) -> (Mode, Vec<Parsed>, Vec<Issue>) {
    let dir = write_dir(files);
    parse_path(dir.path())
}

fn errors(issues: &[Issue]) -> Vec<&Issue> {
    issues.iter().filter(|i| i.is_error()).collect()
}

/// The one issue at `file` (by name), `line` and `field`; fails listing
/// all issues when there is none.
fn issue_at<'a>(
    issues: &'a [Issue],
    file: &str,
    line: Option<u64>,
    field: Option<&str>,
) -> &'a Issue {
    issues
        .iter()
        .find(|i| {
            i.location.file.ends_with(file)
                && i.location.line == line
                && i.field.as_deref() == field
        })
        .unwrap_or_else(|| {
            let all: Vec<String> = issues.iter().map(ToString::to_string).collect();
            panic!(
                "no issue at {file}:{line:?} field {field:?}; issues:\n{}",
                all.join("\n")
            )
        })
}

fn ok(files: &[(String, String)]) -> (Mode, Vec<Parsed>, Vec<Issue>) {
    let (mode, parsed, issues) = parse(files);
    let errs: Vec<String> = errors(&issues).iter().map(ToString::to_string).collect();
    assert!(errs.is_empty(), "unexpected errors:\n{}", errs.join("\n"));
    (mode, parsed, issues)
}

fn person(user_id: &str, given: &str, family: &str) -> Person {
    Person {
        user_id: user_id.into(),
        given_name: given.into(),
        family_name: family.into(),
        alias_given_name: None,
        alias_family_name: None,
        cpr: None,
        birth_date: None,
        gender: None,
        email: None,
        phones: vec![],
        address: None,
        protected: false,
        source_system: None,
        local_person_id: None,
        photo_id: None,
    }
}

fn role(user_id: &str, role: RoleKind) -> Role {
    Role {
        user_id: user_id.into(),
        role,
        grade_level: None,
        student_number: None,
        main_group: None,
        initials: None,
        occupation: None,
    }
}

fn member(group: &str, user_id: &str) -> Membership {
    Membership {
        group: group.into(),
        user_id: user_id.into(),
    }
}

fn contact(pupil: &str, contact: &str, relation: Relation, custody: bool) -> ContactRelation {
    ContactRelation {
        pupil: pupil.into(),
        contact: contact.into(),
        relation,
        custody,
        access_level: None,
    }
}

fn expected_s1() -> InstitutionRoster {
    let teacher = Person {
        local_person_id: Some("L-7".into()),
        email: Some("carl@example.dk".into()),
        phones: vec![Phone {
            kind: PhoneKind::Home,
            number: "33112233".into(),
            protectable: false,
        }],
        ..person("t1", "Carl", "Nielsen")
    };
    InstitutionRoster {
        institution: Institution {
            number: "101001".into(),
            name: "Valby Skole".into(),
            kind: InstitutionKind::School,
            municipality_code: Some("101".into()),
        },
        source_system: Some("Elevsystem".into()),
        school_year: Some("2024/25".into()),
        persons: vec![
            Person {
                alias_given_name: Some("Ane".into()),
                cpr: Cpr::parse("010110-1234"),
                birth_date: Some(date!(2010 - 01 - 01)),
                gender: Some(Gender::Female),
                email: Some("anna@example.dk".into()),
                local_person_id: Some("E-1001".into()),
                ..person("p1", "Anna", "Hansen")
            },
            person("p2", "Bo", "Jensen"),
            teacher,
            Person {
                gender: Some(Gender::Female),
                phones: vec![Phone {
                    kind: PhoneKind::Mobile,
                    number: "+4520304050".into(),
                    protectable: false,
                }],
                ..person("m1", "Mette", "Hansen")
            },
            Person {
                gender: Some(Gender::Male),
                ..person("f1", "Frank", "Jensen")
            },
            person("g1", "Gitte", "Olsen"),
            person("rel1", "Rasmus", "Hansen"),
        ],
        roles: vec![
            Role {
                grade_level: Some("03".into()),
                main_group: Some("c1".into()),
                ..role("p1", RoleKind::Pupil)
            },
            Role {
                grade_level: Some("03".into()),
                main_group: Some("c1".into()),
                ..role("p2", RoleKind::Pupil)
            },
            role("t1", RoleKind::Teacher),
        ],
        groups: vec![
            Group {
                id: "c1".into(),
                name: "3.A".into(),
                kind: GroupKind::MainGroup,
                level: Some("03".into()),
                line: None,
                from: Some(date!(2024 - 08 - 12)),
                to: Some(date!(2025 - 06 - 27)),
            },
            Group {
                id: "c2".into(),
                name: "Matematik 3".into(),
                kind: GroupKind::Class,
                level: Some("03".into()),
                line: None,
                from: Some(date!(2024 - 08 - 12)),
                to: Some(date!(2025 - 06 - 27)),
            },
        ],
        memberships: vec![
            member("c1", "p1"),
            member("c1", "p2"),
            member("c1", "t1"),
            member("c2", "p1"),
        ],
        contacts: vec![
            contact("p1", "m1", Relation::Mother, true),
            contact("p1", "rel1", Relation::Other, false),
            contact("p2", "f1", Relation::Father, true),
            contact("p2", "g1", Relation::Official, true),
        ],
        ended: Ended::default(),
    }
}

fn expected_s2() -> InstitutionRoster {
    InstitutionRoster {
        institution: Institution {
            number: "s2".into(),
            name: "Nørre Fælled Skole".into(),
            kind: InstitutionKind::School,
            municipality_code: Some("101".into()),
        },
        source_system: Some("Elevsystem".into()),
        // No class or course of s2 names a school year: the bundle's latest.
        school_year: Some("2024/25".into()),
        persons: vec![
            Person {
                local_person_id: Some("L-7".into()),
                email: Some("carl@example.dk".into()),
                phones: vec![Phone {
                    kind: PhoneKind::Home,
                    number: "33112233".into(),
                    protectable: false,
                }],
                ..person("t1", "Carl", "Nielsen")
            },
            person("a1", "Dorte", "Berg"),
        ],
        roles: vec![role("t1", RoleKind::Teacher), role("a1", RoleKind::Leader)],
        groups: vec![Group {
            id: "c3".into(),
            name: "5.B".into(),
            kind: GroupKind::MainGroup,
            level: Some("05".into()),
            line: None,
            from: None,
            to: None,
        }],
        memberships: vec![member("c3", "t1")],
        contacts: vec![],
        ended: Ended::default(),
    }
}

#[test]
fn bulk_bundle_in_a_directory_maps_to_one_roster_per_school() {
    let (mode, parsed, issues) = ok(&base());
    assert_eq!(mode, Mode::Full);
    assert!(issues.is_empty(), "{issues:#?}");
    assert_eq!(parsed.len(), 2, "the district is no institution");
    assert_eq!(parsed[0].roster, expected_s1());
    assert_eq!(parsed[1].roster, expected_s2());
    assert!(parsed[0].location.file.ends_with("orgs.csv"));
    assert_eq!(parsed[0].location.line, Some(3));
}

#[test]
fn bulk_bundle_in_a_zip_reads_like_the_directory() {
    let (_dir, path) = write_zip(&base());
    let (mode, parsed, issues) = parse_path(&path);
    assert!(issues.is_empty(), "{issues:#?}");
    assert_eq!(mode, Mode::Full);
    let rosters: Vec<_> = parsed.into_iter().map(|p| p.roster).collect();
    assert_eq!(rosters, vec![expected_s1(), expected_s2()]);
}

#[test]
fn issues_in_a_zip_name_the_member() {
    let files = with(base(), "classes.csv", "sourcedId,title\nc1,3.A\n".into());
    let (_dir, path) = write_zip(&files);
    let (_, parsed, issues) = parse_path(&path);
    assert!(parsed.is_empty());
    let e = issue_at(
        &issues,
        "bundle.zip!classes.csv",
        Some(1),
        Some("classType"),
    );
    assert!(e.is_error());
}

#[test]
fn older_oneroster_version_is_refused_naming_it() {
    let files = with(
        base(),
        "manifest.csv",
        manifest("bulk", ALL).replace("oneroster.version,1.2", "oneroster.version,1.1"),
    );
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "manifest.csv", Some(3), Some("oneroster.version"));
    assert!(e.is_error());
    assert!(
        e.message.contains("OneRoster 1.1") && e.message.contains("1.2"),
        "{}",
        e.message
    );
    // Nothing else is read: the 1.1 columns would only bury the point.
    assert_eq!(errors(&issues).len(), 1, "{issues:#?}");
}

#[test]
fn unsupported_manifest_version_and_missing_manifest_are_errors() {
    let files = with(
        base(),
        "manifest.csv",
        manifest("bulk", ALL).replace("manifest.version,1.0", "manifest.version,2.0"),
    );
    let (_, _, issues) = parse(&files);
    assert!(issue_at(&issues, "manifest.csv", Some(2), Some("manifest.version")).is_error());

    let (_, parsed, issues) = parse(&without(base(), "manifest.csv"));
    assert!(parsed.is_empty());
    assert!(issue_at(&issues, "manifest.csv", None, None).is_error());
}

#[test]
fn manifest_mixing_bulk_and_delta_is_an_error() {
    let m = manifest("bulk", ALL).replace("file.enrollments,bulk", "file.enrollments,delta");
    let (_, parsed, issues) = parse(&with(base(), "manifest.csv", m));
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "manifest.csv", None, None);
    assert!(
        e.is_error() && e.message.contains("mixes bulk"),
        "{}",
        e.message
    );
    // Its other problems are still looked for, each file in its own mode:
    // the enrollments lack a status, which a delta file must give.
    assert!(issue_at(&issues, "enrollments.csv", Some(2), Some("status")).is_error());
}

#[test]
fn manifest_file_value_must_be_bulk_delta_or_absent() {
    let m = manifest("bulk", ALL).replace("file.courses,bulk", "file.courses,full");
    let (_, _, issues) = parse(&with(base(), "manifest.csv", m));
    let e = issue_at(&issues, "manifest.csv", Some(8), Some("file.courses"));
    assert!(
        e.is_error() && e.message.contains("\"full\""),
        "{}",
        e.message
    );
}

#[test]
fn declared_file_that_is_missing_is_an_error() {
    let (_, _, issues) = parse(&without(base(), "courses.csv"));
    let e = issue_at(&issues, "courses.csv", None, None);
    assert!(
        e.is_error() && e.message.contains("declares file.courses bulk"),
        "{}",
        e.message
    );
}

#[test]
fn malformed_csv_rows_are_errors_with_their_lines() {
    let files = append(base(), "roles.csv", "r10,,,p1,primary");
    let files = append(files, "roles.csv", "r11,,,p2,secondary,student,,,s2,");
    // Invalid UTF-8 on line 3 of orgs.csv (the s1 row).
    let dir = write_dir(&files);
    let orgs = std::fs::read(dir.path().join("orgs.csv")).unwrap();
    let mut bad = Vec::new();
    for (i, line) in orgs.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            bad.push(b'\n');
        }
        bad.extend_from_slice(line);
        if i == 2 {
            bad.extend_from_slice(b"\xff");
        }
    }
    std::fs::write(dir.path().join("orgs.csv"), bad).unwrap();
    let (_, parsed, issues) = parse_path(dir.path());
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "roles.csv", Some(11), None);
    assert!(
        e.is_error() && e.message.contains("malformed CSV"),
        "{}",
        e.message
    );
    let e = issue_at(&issues, "orgs.csv", Some(3), None);
    assert!(e.is_error() && e.message.contains("UTF-8"), "{}", e.message);
    // The row after the short one is read, and is fine.
    assert!(!issues
        .iter()
        .any(|i| i.location.line == Some(12) && i.location.file.ends_with("roles.csv")));
}

#[test]
fn missing_required_column_is_an_error_on_the_header() {
    let users = csv(
        &["sourcedId", "enabledUser", "givenName"],
        &[&[
            ("sourcedId", "p1"),
            ("enabledUser", "true"),
            ("givenName", "Anna"),
        ]],
    );
    let (_, parsed, issues) = parse(&with(base(), "users.csv", users));
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "users.csv", Some(1), Some("familyName"));
    assert!(
        e.is_error() && e.message.contains("required column"),
        "{}",
        e.message
    );
}

#[test]
fn empty_required_cell_is_an_error_on_its_row() {
    let files = append(base(), "orgs.csv", "s3,,,,school,300,");
    let (_, _, issues) = parse(&files);
    assert!(issue_at(&issues, "orgs.csv", Some(5), Some("name")).is_error());
}

#[test]
fn unknown_column_is_a_warning_and_extension_columns_are_silent() {
    let mut files = base();
    for (name, content) in files.iter_mut() {
        if name == "orgs.csv" {
            *content = content
                .lines()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        format!("{l},colour,metadata.dk.kommunenavn\n")
                    } else {
                        format!("{l},blue,København\n")
                    }
                })
                .collect();
        }
    }
    let (_, parsed, issues) = ok(&files);
    assert_eq!(parsed.len(), 2);
    let w = issue_at(&issues, "orgs.csv", Some(1), Some("colour"));
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(issues.len(), 1, "{issues:#?}");
}

#[test]
fn bad_dates_are_errors_with_line_and_field() {
    let demographics = csv(
        DEMOGRAPHICS_HEADER,
        &[&[("sourcedId", "p1"), ("birthDate", "01-01-2010")]],
    );
    let files = with(base(), "demographics.csv", demographics);
    let files = append(
        files,
        "roles.csv",
        "r10,,2024-13-45,p2,secondary,student,2024-8-1,,s2,",
    );
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "demographics.csv", Some(2), Some("birthDate"));
    assert!(
        e.is_error() && e.message.contains("\"01-01-2010\"") && e.message.contains("YYYY-MM-DD"),
        "{}",
        e.message
    );
    assert!(issue_at(&issues, "roles.csv", Some(11), Some("beginDate")).is_error());
    assert!(issue_at(&issues, "roles.csv", Some(11), Some("dateLastModified")).is_error());
}

#[test]
fn duplicate_sourced_id_is_an_error_naming_the_first_line() {
    let files = append(
        base(),
        "classes.csv",
        "c1,,,3.B,03,crs1,,homeroom,,s1,y2024,,,",
    );
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "classes.csv", Some(5), Some("sourcedId"));
    assert!(
        e.is_error() && e.message.contains("first on line 2"),
        "{}",
        e.message
    );
}

#[test]
fn dangling_references_are_errors_all_reported_at_once() {
    let files = append(base(), "roles.csv", "r10,,,nobody,primary,student,,,s1,");
    let files = append(files, "roles.csv", "r11,,,p2,primary,student,,,nowhere,");
    let files = append(files, "enrollments.csv", "e6,,,c9,s1,p1,student,,,");
    let files = append(files, "enrollments.csv", "e7,,,c1,s1,ghost,student,,,");
    let files = append(
        files,
        "classes.csv",
        "c4,,,4.A,04,crs9,,homeroom,,s1,y2099,,,",
    );
    let users = files
        .iter()
        .find(|(n, _)| n == "users.csv")
        .unwrap()
        .1
        .replace("m1,rel1", "m1,rel1,x9");
    let files = with(files, "users.csv", users);
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    for (file, line, field) in [
        ("roles.csv", 11, "userSourcedId"),
        ("roles.csv", 12, "orgSourcedId"),
        ("enrollments.csv", 7, "classSourcedId"),
        ("enrollments.csv", 8, "userSourcedId"),
        ("classes.csv", 5, "courseSourcedId"),
        ("classes.csv", 5, "termSourcedIds"),
        ("users.csv", 2, "agentSourcedIds"),
    ] {
        let e = issue_at(&issues, file, Some(line), Some(field));
        assert!(e.is_error() && e.message.contains("which is not in"), "{e}");
    }
}

#[test]
fn enrollment_of_a_user_without_a_role_at_the_school_is_an_error() {
    // a1 leads s2 but is enrolled in a class of s1.
    let files = append(base(), "enrollments.csv", "e6,,,c1,s1,a1,teacher,,,");
    let (_, _, issues) = parse(&files);
    let e = issue_at(&issues, "enrollments.csv", Some(7), Some("userSourcedId"));
    assert!(
        e.is_error() && e.message.contains("holds no role"),
        "{}",
        e.message
    );
}

#[test]
fn users_without_roles_csv_is_an_error() {
    let m = manifest("bulk", ALL).replace("file.roles,bulk", "file.roles,absent");
    let files = without(with(base(), "manifest.csv", m), "roles.csv");
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "manifest.csv", Some(16), Some("file.roles"));
    assert!(
        e.is_error() && e.message.contains("roles.csv"),
        "{}",
        e.message
    );
}

#[test]
fn tobedeleted_in_a_bulk_file_is_an_error() {
    let files = append(
        base(),
        "enrollments.csv",
        "e6,tobedeleted,,c2,s1,p2,student,,,",
    );
    let (_, parsed, issues) = parse(&files);
    assert!(parsed.is_empty());
    let e = issue_at(&issues, "enrollments.csv", Some(7), Some("status"));
    assert!(e.is_error() && e.message.contains("delta"), "{}", e.message);
}

#[test]
fn unknown_enumeration_values_are_errors_and_ext_values_are_accepted() {
    let files = append(base(), "roles.csv", "r10,,,p2,primary,Student,,,s1,");
    let files = append(files, "roles.csv", "r11,,,a1,primary,ext:pedel,,,s2,");
    let (_, _, issues) = parse(&files);
    let e = issue_at(&issues, "roles.csv", Some(11), Some("role"));
    assert!(
        e.is_error() && e.message.contains("\"Student\""),
        "{}",
        e.message
    );
    assert_eq!(errors(&issues).len(), 1, "{issues:#?}");
}

#[test]
fn delta_bundle_turns_tobedeleted_rows_into_ended_entries() {
    let m = manifest(
        "delta",
        &["orgs", "users", "roles", "classes", "enrollments"],
    );
    let orgs = csv(
        ORGS_HEADER,
        &[&[
            ("sourcedId", "s1"),
            ("status", "active"),
            ("name", "Valby Skole"),
            ("type", "school"),
            ("identifier", "101001"),
        ]],
    );
    let user = |id: &'static str, status: &'static str, agents: &'static str| {
        vec![
            ("sourcedId", id),
            ("status", status),
            ("enabledUser", "true"),
            ("givenName", "X"),
            ("familyName", "Y"),
            ("agentSourcedIds", agents),
        ]
    };
    // p1 moves to another class and loses a parent; p3 is new; the old
    // parent m1 leaves the bundle's world; p9 left the school.
    let users = csv(
        USERS_HEADER,
        &[
            &user("p1", "active", "f1"),
            &user("p3", "active", ""),
            &user("f1", "active", ""),
            &user("m1", "tobedeleted", "p1"),
        ],
    );
    let role = |id: &'static str, status: &'static str, user: &'static str, role: &'static str| {
        vec![
            ("sourcedId", id),
            ("status", status),
            ("userSourcedId", user),
            ("roleType", "primary"),
            ("role", role),
            ("orgSourcedId", "s1"),
        ]
    };
    let roles = csv(
        ROLES_HEADER,
        &[
            &role("r1", "active", "p1", "student"),
            &role("r3", "active", "p3", "student"),
            &role("r6", "active", "f1", "parent"),
            &role("r5", "tobedeleted", "m1", "parent"),
            &role("r9", "tobedeleted", "p9", "student"),
        ],
    );
    let classes = csv(
        CLASSES_HEADER,
        &[
            &[
                ("sourcedId", "c5"),
                ("status", "active"),
                ("title", "3.B"),
                ("classType", "homeroom"),
                ("schoolSourcedId", "s1"),
            ],
            &[
                ("sourcedId", "c2"),
                ("status", "tobedeleted"),
                ("title", "Matematik 3"),
                ("classType", "scheduled"),
                ("schoolSourcedId", "s1"),
            ],
        ],
    );
    let enrol =
        |id: &'static str, status: &'static str, class: &'static str, user: &'static str| {
            vec![
                ("sourcedId", id),
                ("status", status),
                ("classSourcedId", class),
                ("schoolSourcedId", "s1"),
                ("userSourcedId", user),
                ("role", "student"),
            ]
        };
    let enrollments = csv(
        ENROLLMENTS_HEADER,
        &[
            &enrol("e1", "tobedeleted", "c1", "p1"),
            &enrol("e8", "active", "c5", "p1"),
            &enrol("e9", "active", "c5", "p3"),
        ],
    );
    let files: Vec<(String, String)> = vec![
        ("manifest.csv".into(), m),
        ("orgs.csv".into(), orgs),
        ("users.csv".into(), users),
        ("roles.csv".into(), roles),
        ("classes.csv".into(), classes),
        ("enrollments.csv".into(), enrollments),
    ];
    let (mode, parsed, issues) = ok(&files);
    assert_eq!(mode, Mode::Delta);
    assert!(issues.is_empty(), "{issues:#?}");
    let [p] = parsed.as_slice() else {
        panic!("{parsed:#?}")
    };
    let r = &p.roster;
    let ids: Vec<&str> = r.persons.iter().map(|p| p.user_id.as_str()).collect();
    assert_eq!(ids, ["p1", "p3", "f1"]);
    assert_eq!(
        r.roles
            .iter()
            .map(|r| (r.user_id.as_str(), r.main_group.as_deref()))
            .collect::<Vec<_>>(),
        [("p1", Some("c5")), ("p3", Some("c5"))]
    );
    assert_eq!(
        r.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["c5"]
    );
    assert_eq!(r.memberships, [member("c5", "p1"), member("c5", "p3")]);
    assert_eq!(r.contacts, [contact("p1", "f1", Relation::Other, true)]);
    assert_eq!(
        r.ended,
        Ended {
            roles: vec![("p9".into(), RoleKind::Pupil)],
            groups: vec!["c2".into()],
            memberships: vec![member("c1", "p1")],
            contacts: vec![("p1".into(), "m1".into())],
        }
    );
}

#[test]
fn delta_file_requires_a_status() {
    let m = manifest("delta", &["orgs"]);
    let orgs = csv(
        ORGS_HEADER,
        &[&[
            ("sourcedId", "s1"),
            ("name", "Valby Skole"),
            ("type", "school"),
        ]],
    );
    let (_, parsed, issues) = parse(&[("manifest.csv".into(), m), ("orgs.csv".into(), orgs)]);
    assert!(parsed.is_empty());
    assert!(issue_at(&issues, "orgs.csv", Some(2), Some("status")).is_error());
}

#[test]
fn cpr_like_values_are_never_echoed() {
    let demographics = csv(
        DEMOGRAPHICS_HEADER,
        &[&[("sourcedId", "p1"), ("birthDate", "010110-1234")]],
    );
    let files = with(base(), "demographics.csv", demographics);
    let users = files
        .iter()
        .find(|(n, _)| n == "users.csv")
        .unwrap()
        .1
        .replace("{CPR:010110-1234}", "{CPR:0101101234x}");
    let files = append(
        with(files, "users.csv", users),
        "roles.csv",
        "r10,,,0101101234,primary,student,,,s1,",
    );
    let (_, _, issues) = parse(&files);
    assert!(issue_at(&issues, "demographics.csv", Some(2), Some("birthDate")).is_error());
    assert!(issue_at(&issues, "users.csv", Some(2), Some("userIds")).is_error());
    assert!(issue_at(&issues, "roles.csv", Some(11), Some("userSourcedId")).is_error());
    for i in &issues {
        let text = i.to_string();
        assert!(
            !text.contains("0101101234") && !text.contains("010110-1234"),
            "echoed: {text}"
        );
    }
}

#[test]
fn identifier_that_looks_like_a_cpr_number_is_not_kept() {
    let users = base()
        .iter()
        .find(|(n, _)| n == "users.csv")
        .unwrap()
        .1
        .replace("E-1001", "0101101234");
    let (_, parsed, issues) = ok(&with(base(), "users.csv", users));
    let w = issue_at(&issues, "users.csv", Some(2), Some("identifier"));
    assert_eq!(w.severity, Severity::Warning);
    assert!(!w.message.contains("0101101234"));
    assert_eq!(parsed[0].roster.persons[0].local_person_id, None);
}

#[test]
fn roles_at_a_district_are_not_imported_and_say_so() {
    let files = append(
        base(),
        "roles.csv",
        "r10,,,a1,secondary,districtAdministrator,,,k101,",
    );
    let (_, parsed, issues) = ok(&files);
    let w = issue_at(&issues, "roles.csv", Some(11), Some("orgSourcedId"));
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(parsed[1].roster.roles, expected_s2().roles);
}

#[test]
fn user_without_any_role_is_reported_and_left_out() {
    let files = append(
        base(),
        "users.csv",
        &format!(
            "z1,,,true,z1,,Zia,Zed{}",
            ",".repeat(USERS_HEADER.len() - 8)
        ),
    );
    let (_, parsed, issues) = ok(&files);
    let w = issue_at(&issues, "users.csv", Some(10), Some("sourcedId"));
    assert_eq!(w.severity, Severity::Warning);
    assert!(parsed
        .iter()
        .all(|p| p.roster.persons.iter().all(|x| x.user_id != "z1")));
}

#[test]
fn oneroster_roles_map_onto_danish_roles() {
    use RoleKind::*;
    for (or, want) in [
        ("student", Mapped::Role(Pupil)),
        ("teacher", Mapped::Role(Teacher)),
        ("aide", Mapped::Role(Pedagogue)),
        ("principal", Mapped::Role(Leader)),
        ("siteAdministrator", Mapped::Role(Leader)),
        ("proctor", Mapped::Role(Substitute)),
        ("counselor", Mapped::Role(Consultant)),
        ("ext:pedel", Mapped::Role(External)),
        ("parent", Mapped::Contact(ContactKind::Parent)),
        ("guardian", Mapped::Contact(ContactKind::Guardian)),
        ("relative", Mapped::Contact(ContactKind::Relative)),
    ] {
        assert_eq!(map_role(or), Some(want), "{or}");
    }
    assert_eq!(map_role("Student"), None);
    for r in ROLE_VALUES {
        assert!(map_role(r).is_some(), "{r}");
    }
}

#[test]
fn specs_match_the_oneroster_headers() {
    assert_eq!(&USERS.columns[..USERS_HEADER.len()], USERS_HEADER);
    assert_eq!(ROLES.columns, ROLES_HEADER);
    assert_eq!(ORGS.columns, ORGS_HEADER);
    assert_eq!(CLASSES.columns, CLASSES_HEADER);
    assert_eq!(ENROLLMENTS.columns, ENROLLMENTS_HEADER);
    assert_eq!(
        &DEMOGRAPHICS.columns[..DEMOGRAPHICS_HEADER.len()],
        DEMOGRAPHICS_HEADER
    );
    assert_eq!(SESSIONS.columns, SESSIONS_HEADER);
    assert_eq!(COURSES.columns, COURSES_HEADER);
}

#[test]
fn byte_order_mark_and_crlf_line_ends_are_read() {
    let files: Vec<(String, String)> = base()
        .into_iter()
        .map(|(name, content)| (name, format!("\u{feff}{}", content.replace('\n', "\r\n"))))
        .collect();
    let (_, parsed, issues) = ok(&files);
    assert!(issues.is_empty(), "{issues:#?}");
    assert_eq!(parsed[0].roster, expected_s1());
}
