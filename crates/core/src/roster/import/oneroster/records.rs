//! The bundle's rows as typed records, and the references between files
//! checked: every sourcedId a row names must be in the file it points to.

use super::table::{Row, Status, Table};
use super::{is_ext, list, looks_like_cpr, shown, Manifest, Spec};
use super::{CLASSES, COURSES, DEMOGRAPHICS, ENROLLMENTS, ORGS, ROLES, SESSIONS, USERS};
use crate::roster::import::{Issues, Location, Mode};
use crate::roster::model::*;
use std::collections::{HashMap, HashSet};
use time::Date;

/// What a OneRoster role (roles.csv) becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mapped {
    Role(RoleKind),
    Contact(ContactKind),
}

/// Contact-person roles, in rising precedence: a user with several takes the
/// strongest (a parent who is also listed as guardian is a parent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum ContactKind {
    Relative,
    Guardian,
    Parent,
}

pub(super) const ROLE_VALUES: &[&str] = &[
    "aide",
    "counselor",
    "districtAdministrator",
    "guardian",
    "parent",
    "principal",
    "proctor",
    "relative",
    "siteAdministrator",
    "student",
    "systemAdministrator",
    "teacher",
];

pub(super) fn map_role(role: &str) -> Option<Mapped> {
    use RoleKind::*;
    Some(match role {
        "student" => Mapped::Role(Pupil),
        "teacher" => Mapped::Role(Teacher),
        "aide" => Mapped::Role(Pedagogue),
        // OneRoster 1.1 had one "administrator"; 1.2 splits it by level.
        "principal"
        | "administrator"
        | "siteAdministrator"
        | "districtAdministrator"
        | "systemAdministrator" => Mapped::Role(Leader),
        "proctor" => Mapped::Role(Substitute),
        // A school counsellor is staff who advises, which is what Konsulent is.
        "counselor" => Mapped::Role(Consultant),
        "parent" => Mapped::Contact(ContactKind::Parent),
        "guardian" => Mapped::Contact(ContactKind::Guardian),
        "relative" => Mapped::Contact(ContactKind::Relative),
        other if is_ext(other) => Mapped::Role(External),
        _ => return None,
    })
}

pub(super) struct Org {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) name: String,
    /// `None` for orgs that own schools rather than teach (district, state,
    /// ...): they hold no roster of their own.
    pub(super) kind: Option<InstitutionKind>,
    pub(super) is_district: bool,
    pub(super) identifier: Option<String>,
    pub(super) parent: Option<String>,
}

pub(super) struct User {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) status: Status,
    pub(super) given: String,
    pub(super) family: String,
    pub(super) alias_given: Option<String>,
    pub(super) alias_family: Option<String>,
    pub(super) identifier: Option<String>,
    pub(super) email: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) sms: Option<String>,
    pub(super) cpr: Option<Cpr>,
    pub(super) agents: Vec<String>,
    pub(super) grades: Vec<String>,
    pub(super) primary_org: Option<String>,
}

pub(super) struct RoleRow {
    pub(super) line: u64,
    pub(super) status: Status,
    pub(super) user: String,
    pub(super) org: String,
    pub(super) role: Option<Mapped>,
}

pub(super) struct Class {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) status: Status,
    pub(super) title: String,
    pub(super) kind: GroupKind,
    pub(super) grades: Vec<String>,
    pub(super) course: Option<String>,
    pub(super) school: String,
    pub(super) terms: Vec<String>,
}

pub(super) struct Enrollment {
    pub(super) line: u64,
    pub(super) status: Status,
    pub(super) class: String,
    pub(super) school: String,
    pub(super) user: String,
    pub(super) is_student: bool,
}

pub(super) struct Demographic {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) status: Status,
    pub(super) birth_date: Option<Date>,
    pub(super) gender: Option<Gender>,
}

pub(super) struct Session {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) status: Status,
    pub(super) title: String,
    pub(super) is_school_year: bool,
    pub(super) start: Option<Date>,
    pub(super) end: Option<Date>,
    pub(super) parent: Option<String>,
}

pub(super) struct Course {
    pub(super) line: u64,
    pub(super) id: String,
    pub(super) org: String,
    pub(super) school_year: Option<String>,
}

/// Where sourcedIds of one file point to.
pub(super) struct Index {
    file: &'static str,
    present: bool,
    ids: HashMap<String, usize>,
}

impl Index {
    fn new<T>(
        spec: &Spec,
        tables: &HashMap<&str, Table>,
        items: &[T],
        id: impl Fn(&T) -> &str,
    ) -> Index {
        Index {
            file: spec.name,
            present: tables.contains_key(spec.name),
            ids: items
                .iter()
                .enumerate()
                .map(|(i, t)| (id(t).to_owned(), i))
                .collect(),
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<usize> {
        self.ids.get(id).copied()
    }

    /// Reports `id` when it points nowhere; returns its position otherwise.
    fn check(
        &self,
        loc: &Location,
        field: &str,
        what: &str,
        id: &str,
        issues: &mut Issues,
    ) -> Option<usize> {
        let found = self.get(id);
        if found.is_none() {
            let absent = if self.present {
                ""
            } else {
                " (the bundle has no such file)"
            };
            let msg = format!(
                "refers to {what} {}, which is not in {}.csv{absent}",
                shown(id),
                self.file
            );
            issues.error(loc, Some(field), msg);
        }
        found
    }
}

/// Every record of the bundle, typed and cross-checked.
pub(super) struct Bundle<'m> {
    pub(super) manifest: &'m Manifest,
    pub(super) labels: HashMap<&'static str, String>,
    pub(super) orgs: Vec<Org>,
    pub(super) users: Vec<User>,
    pub(super) roles: Vec<RoleRow>,
    pub(super) classes: Vec<Class>,
    pub(super) enrollments: Vec<Enrollment>,
    pub(super) demographics: Vec<Demographic>,
    pub(super) sessions: Vec<Session>,
    pub(super) courses: Vec<Course>,
    pub(super) org_index: Index,
    pub(super) user_index: Index,
    pub(super) class_index: Index,
    pub(super) session_index: Index,
}

impl<'m> Bundle<'m> {
    pub(super) fn read(
        manifest: &'m Manifest,
        tables: &HashMap<&'static str, Table>,
        issues: &mut Issues,
    ) -> Option<Bundle<'m>> {
        let has = |spec: &Spec| tables.contains_key(spec.name);
        if !has(&ORGS) {
            let msg = "orgs.csv is required: the institutions come from it (a delta bundle too must carry the rows of the orgs it touches)";
            issues.error(&manifest.loc("file.orgs"), Some("file.orgs"), msg);
        }
        if has(&USERS) && !has(&ROLES) {
            let msg = "users.csv needs roles.csv: in OneRoster 1.2 a user's roles and schools are in roles.csv";
            issues.error(&manifest.loc("file.roles"), Some("file.roles"), msg);
        }
        if manifest.mode == Mode::Full && !manifest.files.is_empty() {
            for (spec, what) in [
                (&USERS, "person"),
                (&ROLES, "role"),
                (&CLASSES, "group"),
                (&ENROLLMENTS, "membership"),
            ] {
                if !has(spec) {
                    let field = format!("file.{}", spec.name);
                    let msg = format!(
                        "{}.csv is absent from a bulk bundle: a full import ends every {what} these institutions have now",
                        spec.name
                    );
                    issues.warning(&manifest.loc(&field), Some(&field), msg);
                }
            }
        }
        if !has(&ORGS) {
            return None;
        }
        let orgs = read_file(tables, &ORGS, issues, read_orgs);
        let users = read_file(tables, &USERS, issues, read_users);
        let roles = read_file(tables, &ROLES, issues, read_roles);
        let classes = read_file(tables, &CLASSES, issues, read_classes);
        let enrollments = read_file(tables, &ENROLLMENTS, issues, read_enrollments);
        let demographics = read_file(tables, &DEMOGRAPHICS, issues, read_demographics);
        let sessions = read_file(tables, &SESSIONS, issues, read_sessions);
        let courses = read_file(tables, &COURSES, issues, read_courses);

        let b = Bundle {
            manifest,
            labels: tables.iter().map(|(k, t)| (*k, t.file.clone())).collect(),
            org_index: Index::new(&ORGS, tables, &orgs, |o| &o.id),
            user_index: Index::new(&USERS, tables, &users, |u| &u.id),
            class_index: Index::new(&CLASSES, tables, &classes, |c| &c.id),
            session_index: Index::new(&SESSIONS, tables, &sessions, |s| &s.id),
            orgs,
            users,
            roles,
            classes,
            enrollments,
            demographics,
            sessions,
            courses,
        };
        b.check_references(tables, issues);
        Some(b)
    }

    pub(super) fn loc(&self, spec: &Spec, line: u64) -> Location {
        Location::line(
            self.labels.get(spec.name).cloned().unwrap_or_default(),
            line,
        )
    }

    /// Every reference between files must resolve. Rows that end something
    /// (tobedeleted) need only their org: what they end is stored already.
    fn check_references(&self, tables: &HashMap<&'static str, Table>, issues: &mut Issues) {
        for o in &self.orgs {
            let loc = self.loc(&ORGS, o.line);
            if let Some(p) = &o.parent {
                if p == &o.id {
                    issues.error(
                        &loc,
                        Some("parentSourcedId"),
                        "an org cannot be its own parent",
                    );
                } else {
                    self.org_index
                        .check(&loc, "parentSourcedId", "org", p, issues);
                }
            }
        }
        for u in self.users.iter().filter(|u| u.status == Status::Active) {
            let loc = self.loc(&USERS, u.line);
            for a in &u.agents {
                if a == &u.id {
                    issues.error(
                        &loc,
                        Some("agentSourcedIds"),
                        "a user cannot be their own agent",
                    );
                } else {
                    self.user_index
                        .check(&loc, "agentSourcedIds", "user", a, issues);
                }
            }
            if let Some(o) = &u.primary_org {
                self.org_index
                    .check(&loc, "primaryOrgSourcedId", "org", o, issues);
            }
        }
        for r in &self.roles {
            let loc = self.loc(&ROLES, r.line);
            self.org_index
                .check(&loc, "orgSourcedId", "org", &r.org, issues);
            if r.status == Status::Active {
                if let Some(i) =
                    self.user_index
                        .check(&loc, "userSourcedId", "user", &r.user, issues)
                {
                    if self.users[i].status == Status::Deleted {
                        let msg = format!(
                            "the role is active, but users.csv marks user {} tobedeleted",
                            shown(&r.user)
                        );
                        issues.error(&loc, Some("userSourcedId"), msg);
                    }
                }
            }
        }
        let courses: Option<HashSet<&str>> = tables
            .contains_key(COURSES.name)
            .then(|| self.courses.iter().map(|c| c.id.as_str()).collect());
        for c in &self.classes {
            let loc = self.loc(&CLASSES, c.line);
            if let Some(i) = self
                .org_index
                .check(&loc, "schoolSourcedId", "org", &c.school, issues)
            {
                if self.orgs[i].kind.is_none() {
                    let msg = format!(
                        "org {} is not a school: classes belong to schools",
                        shown(&c.school)
                    );
                    issues.error(&loc, Some("schoolSourcedId"), msg);
                }
            }
            if c.status == Status::Deleted {
                continue;
            }
            if let (Some(course), Some(courses)) = (&c.course, &courses) {
                if !courses.contains(course.as_str()) {
                    let msg = format!(
                        "refers to course {}, which is not in courses.csv",
                        shown(course)
                    );
                    issues.error(&loc, Some("courseSourcedId"), msg);
                }
            }
            if self.session_index.present {
                for t in &c.terms {
                    self.session_index
                        .check(&loc, "termSourcedIds", "academic session", t, issues);
                }
            }
        }
        for e in &self.enrollments {
            let loc = self.loc(&ENROLLMENTS, e.line);
            let school = self
                .org_index
                .check(&loc, "schoolSourcedId", "org", &e.school, issues);
            if e.status == Status::Deleted {
                continue;
            }
            let class = self
                .class_index
                .check(&loc, "classSourcedId", "class", &e.class, issues);
            self.user_index
                .check(&loc, "userSourcedId", "user", &e.user, issues);
            if let (Some(s), Some(c)) = (school, class) {
                let class_school = &self.classes[c].school;
                if class_school != &self.orgs[s].id {
                    let msg = format!(
                        "class {} belongs to org {}, not {}; the class's school counts",
                        shown(&e.class),
                        shown(class_school),
                        shown(&e.school)
                    );
                    issues.warning(&loc, Some("schoolSourcedId"), msg);
                }
            }
        }
        for d in self
            .demographics
            .iter()
            .filter(|d| d.status == Status::Active)
        {
            let loc = self.loc(&DEMOGRAPHICS, d.line);
            self.user_index
                .check(&loc, "sourcedId", "user", &d.id, issues);
        }
        for s in &self.sessions {
            if let Some(p) = &s.parent {
                let loc = self.loc(&SESSIONS, s.line);
                self.session_index
                    .check(&loc, "parentSourcedId", "academic session", p, issues);
            }
        }
        for c in &self.courses {
            let loc = self.loc(&COURSES, c.line);
            self.org_index
                .check(&loc, "orgSourcedId", "org", &c.org, issues);
            if let (Some(y), true) = (&c.school_year, self.session_index.present) {
                self.session_index.check(
                    &loc,
                    "schoolYearSourcedId",
                    "academic session",
                    y,
                    issues,
                );
            }
        }
    }
}

/// One file's records; none when the bundle does not have the file.
fn read_file<T>(
    tables: &HashMap<&'static str, Table>,
    spec: &Spec,
    issues: &mut Issues,
    read: fn(&Table, &mut Issues) -> Vec<T>,
) -> Vec<T> {
    tables
        .get(spec.name)
        .map(|t| read(t, issues))
        .unwrap_or_default()
}

fn read_orgs(t: &Table, issues: &mut Issues) -> Vec<Org> {
    const TYPES: &[&str] = &[
        "department",
        "district",
        "local",
        "national",
        "school",
        "state",
    ];
    let mut out = Vec::new();
    for (row, id, status) in t.records(issues) {
        t.check_enum(row, "type", TYPES, issues);
        if status == Status::Deleted {
            // Institutions outlive their rosters (audit, agreements), so an
            // import never deletes one; the org still anchors what ends.
            issues.warning(
                &t.loc(row),
                Some("status"),
                "tilgang does not delete institutions by import; the rows that end its roles, groups and memberships still apply",
            );
        }
        let raw = t.text(row, "type");
        let kind = match raw.as_str() {
            "school" => Some(InstitutionKind::School),
            "district" | "local" | "state" | "national" => None,
            _ => Some(InstitutionKind::Other),
        };
        out.push(Org {
            line: row.line,
            name: t.text(row, "name"),
            kind,
            is_district: raw == "district",
            identifier: t.get(row, "identifier").map(str::to_owned),
            parent: t.get(row, "parentSourcedId").map(str::to_owned),
            id,
        });
    }
    out
}

fn read_users(t: &Table, issues: &mut Issues) -> Vec<User> {
    let mut out = Vec::new();
    for (row, id, status) in t.records(issues) {
        let loc = t.loc(row);
        if let Some(v) = t.get(row, "enabledUser") {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                issues.error(
                    &loc,
                    Some("enabledUser"),
                    format!("{} is not true or false", shown(v)),
                );
            }
        }
        let email = t.get(row, "email").map(str::to_owned);
        if let Some(e) = &email {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                issues.error(
                    &loc,
                    Some("email"),
                    format!("{} is not an e-mail address", shown(e)),
                );
            }
        }
        let mut identifier = t.get(row, "identifier").map(str::to_owned);
        if identifier.as_deref().is_some_and(looks_like_cpr) {
            // local_person_id goes to providers from the medium package on,
            // without CPR's protection; a CPR number belongs in userIds.
            issues.warning(
                &loc,
                Some("identifier"),
                "looks like a CPR number, so it is not kept as the local person id; give a CPR number in userIds as {CPR:...}",
            );
            identifier = None;
        }
        out.push(User {
            line: row.line,
            status,
            given: t.text(row, "givenName"),
            family: t.text(row, "familyName"),
            alias_given: t.get(row, "preferredGivenName").map(str::to_owned),
            alias_family: t.get(row, "preferredFamilyName").map(str::to_owned),
            identifier,
            email,
            phone: t.get(row, "phone").map(str::to_owned),
            sms: t.get(row, "sms").map(str::to_owned),
            cpr: user_cpr(t, row, issues),
            agents: list(t.get(row, "agentSourcedIds")),
            grades: list(t.get(row, "grades")),
            primary_org: t
                .get(row, "primaryOrgSourcedId")
                .or_else(|| t.get(row, "primaryOrg"))
                .map(str::to_owned),
            id,
        });
    }
    out
}

/// The CPR number among a user's `userIds` (`{type:id}` entries), if one is
/// typed CPR. Entries are never echoed: any of them may be a CPR number.
fn user_cpr(t: &Table, row: &Row, issues: &mut Issues) -> Option<Cpr> {
    let mut cpr = None;
    for (i, entry) in list(t.get(row, "userIds")).iter().enumerate() {
        let Some((kind, id)) = entry
            .strip_prefix('{')
            .and_then(|e| e.strip_suffix('}'))
            .and_then(|e| e.split_once(':'))
        else {
            let msg = format!("entry {} is not of the form {{type:id}}; ignored", i + 1);
            issues.warning(&t.loc(row), Some("userIds"), msg);
            continue;
        };
        if !kind.trim().eq_ignore_ascii_case("cpr") {
            continue;
        }
        match Cpr::parse(id.trim()) {
            Some(c) if cpr.is_none() => cpr = Some(c),
            Some(_) => issues.error(&t.loc(row), Some("userIds"), "more than one CPR entry"),
            None => issues.error(
                &t.loc(row),
                Some("userIds"),
                format!(
                    "entry {} is typed CPR but is not a CPR number (ten digits, DDMMYY-SSSS)",
                    i + 1
                ),
            ),
        }
    }
    cpr
}

fn read_roles(t: &Table, issues: &mut Issues) -> Vec<RoleRow> {
    let mut out = Vec::new();
    for (row, _, status) in t.records(issues) {
        t.check_enum(row, "roleType", &["primary", "secondary"], issues);
        t.check_enum(row, "role", ROLE_VALUES, issues);
        t.date(row, "beginDate", issues);
        t.date(row, "endDate", issues);
        out.push(RoleRow {
            line: row.line,
            status,
            user: t.text(row, "userSourcedId"),
            org: t.text(row, "orgSourcedId"),
            role: t.get(row, "role").and_then(map_role),
        });
    }
    out
}

fn read_classes(t: &Table, issues: &mut Issues) -> Vec<Class> {
    let mut out = Vec::new();
    for (row, id, status) in t.records(issues) {
        t.check_enum(row, "classType", &["homeroom", "scheduled"], issues);
        let kind = match t.get(row, "classType") {
            Some("homeroom") => GroupKind::MainGroup,
            Some("scheduled") => GroupKind::Class,
            _ => GroupKind::Other,
        };
        out.push(Class {
            line: row.line,
            status,
            title: t.text(row, "title"),
            kind,
            grades: list(t.get(row, "grades")),
            course: t.get(row, "courseSourcedId").map(str::to_owned),
            school: t.text(row, "schoolSourcedId"),
            terms: list(t.get(row, "termSourcedIds")),
            id,
        });
    }
    out
}

fn read_enrollments(t: &Table, issues: &mut Issues) -> Vec<Enrollment> {
    let mut out = Vec::new();
    for (row, _, status) in t.records(issues) {
        t.check_enum(
            row,
            "role",
            &["administrator", "proctor", "student", "teacher"],
            issues,
        );
        if let Some(v) = t.get(row, "primary") {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                issues.error(
                    &t.loc(row),
                    Some("primary"),
                    format!("{} is not true or false", shown(v)),
                );
            }
        }
        t.date(row, "beginDate", issues);
        t.date(row, "endDate", issues);
        out.push(Enrollment {
            line: row.line,
            status,
            class: t.text(row, "classSourcedId"),
            school: t.text(row, "schoolSourcedId"),
            user: t.text(row, "userSourcedId"),
            is_student: t.get(row, "role") == Some("student"),
        });
    }
    out
}

fn read_demographics(t: &Table, issues: &mut Issues) -> Vec<Demographic> {
    let mut out = Vec::new();
    for (row, id, status) in t.records(issues) {
        t.check_enum(
            row,
            "sex",
            &["female", "male", "other", "unspecified"],
            issues,
        );
        let gender = match t.get(row, "sex") {
            Some("female") => Some(Gender::Female),
            Some("male") => Some(Gender::Male),
            Some("other") => Some(Gender::Other),
            _ => None,
        };
        out.push(Demographic {
            line: row.line,
            status,
            birth_date: t.date(row, "birthDate", issues),
            gender,
            id,
        });
    }
    out
}

fn read_sessions(t: &Table, issues: &mut Issues) -> Vec<Session> {
    let mut out = Vec::new();
    for (row, id, status) in t.records(issues) {
        t.check_enum(
            row,
            "type",
            &["gradingPeriod", "schoolYear", "semester", "term"],
            issues,
        );
        if let Some(y) = t.get(row, "schoolYear") {
            if y.len() != 4 || !y.bytes().all(|b| b.is_ascii_digit()) {
                issues.error(
                    &t.loc(row),
                    Some("schoolYear"),
                    format!("{} is not a year (YYYY)", shown(y)),
                );
            }
        }
        let start = t.date(row, "startDate", issues);
        let end = t.date(row, "endDate", issues);
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                issues.error(
                    &t.loc(row),
                    Some("endDate"),
                    format!("{e} is before startDate ({s})"),
                );
            }
        }
        out.push(Session {
            line: row.line,
            status,
            title: t.text(row, "title"),
            is_school_year: t.get(row, "type") == Some("schoolYear"),
            start,
            end,
            parent: t.get(row, "parentSourcedId").map(str::to_owned),
            id,
        });
    }
    out
}

fn read_courses(t: &Table, issues: &mut Issues) -> Vec<Course> {
    let mut out = Vec::new();
    for (row, id, _) in t.records(issues) {
        out.push(Course {
            line: row.line,
            org: t.text(row, "orgSourcedId"),
            school_year: t.get(row, "schoolYearSourcedId").map(str::to_owned),
            id,
        });
    }
    out
}
