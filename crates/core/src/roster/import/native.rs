//! The native import format: one JSON document per institution
//! (`tilgang-roster/1`), or NDJSON with one document per line. The schema is
//! `docs/roster.schema.json`. Fields are read leniently as strings and checked
//! afterwards, so one pass reports every problem, not just the first.

use super::{Issues, Location, Mode, Parsed};
use crate::roster::model::*;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use time::{macros::format_description, Date};

pub const FORMAT: &str = "tilgang-roster/1";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawDocument {
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub institution: Option<RawInstitution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_year: Option<String>,
    #[serde(default)]
    pub persons: Vec<RawPerson>,
    #[serde(default)]
    pub groups: Vec<RawGroup>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<RawContact>,
    /// Delta imports only: what the source says has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<RawEnded>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawInstitution {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawPerson {
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_family_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "cpr_field"
    )]
    pub cpr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<RawPhone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_person_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RawRole>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawPhone {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub protectable: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawRole {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupation: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawGroup {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawContact {
    #[serde(default)]
    pub pupil: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub relation: Option<String>,
    #[serde(default)]
    pub custody: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_level: Option<u8>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawEnded {
    #[serde(default)]
    pub roles: Vec<RawEndedRole>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub memberships: Vec<RawEndedMembership>,
    #[serde(default)]
    pub contacts: Vec<RawEndedContact>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawEndedRole {
    pub user_id: String,
    pub role: String,
}
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawEndedMembership {
    pub group: String,
    pub user_id: String,
}
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RawEndedContact {
    pub pupil: String,
    pub contact: String,
}

/// Marks a CPR field that is not a string, so that serde's type error (which
/// quotes the value) never carries a CPR number into a message.
pub const CPR_NOT_A_STRING: &str = "\u{0}not a string";

fn cpr_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a CPR number as a string")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Some(CPR_NOT_A_STRING.into()))
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Some(CPR_NOT_A_STRING.into()))
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Some(CPR_NOT_A_STRING.into()))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Some(CPR_NOT_A_STRING.into()))
        }
    }
    d.deserialize_option(V)
}

/// Parses one native document. `check_unknown` reports fields tilgang does
/// not know as warnings (used by the validation pass; the import pass skips
/// it for speed).
pub fn parse_document(
    bytes: &[u8],
    loc: &Location,
    mode: Mode,
    check_unknown: bool,
    issues: &mut Issues,
) -> Option<Parsed> {
    let raw: RawDocument = if check_unknown {
        let mut unknown = Vec::new();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed = serde_ignored::deserialize(&mut de, |path| unknown.push(path.to_string()))
            .and_then(|d| de.end().map(|()| d));
        for path in unknown {
            issues.warning(loc, Some(&field_path(&path)), "unknown field, ignored");
        }
        parsed
    } else {
        serde_json::from_slice(bytes)
    }
    .map_err(|e| {
        let at = Location {
            line: Some(loc.line.unwrap_or(0).max(1) + e.line().saturating_sub(1) as u64),
            ..loc.clone()
        };
        issues.error(
            &at,
            None,
            format!("not valid JSON for the native format: {e}"),
        );
    })
    .ok()?;
    validate(raw, loc, mode, issues)
}

/// `persons.?.3.colour` (serde_ignored's path) as `persons[3].colour`.
fn field_path(raw: &str) -> String {
    let mut out = String::new();
    for part in raw.split('.').filter(|p| *p != "?") {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, format_description!("[year]-[month]-[day]")).ok()
}

/// Checks a raw document and turns it into the typed model, reporting every
/// problem with its record and field.
pub fn validate(
    raw: RawDocument,
    loc: &Location,
    mode: Mode,
    issues: &mut Issues,
) -> Option<Parsed> {
    let before = issues.0.len();
    match raw.format.as_deref() {
        Some(FORMAT) => {}
        Some(other) => issues.error(
            loc,
            Some("format"),
            format!("format {other:?} is not supported; this tilgang reads {FORMAT:?}"),
        ),
        None => issues.error(loc, Some("format"), format!("missing; expected {FORMAT:?}")),
    }
    let institution = validate_institution(raw.institution.unwrap_or_default(), loc, issues);
    let mut v = Validator {
        loc,
        issues,
        persons: HashMap::new(),
        groups: HashSet::new(),
        pupils: HashSet::new(),
    };

    let mut persons = Vec::with_capacity(raw.persons.len());
    let mut roles = Vec::new();
    for (i, p) in raw.persons.into_iter().enumerate() {
        if let Some((person, person_roles)) = v.person(i, p) {
            persons.push(person);
            roles.extend(person_roles);
        }
    }
    let mut groups = Vec::with_capacity(raw.groups.len());
    let mut memberships = Vec::new();
    let raw_groups: Vec<_> = raw.groups.into_iter().enumerate().collect();
    for (i, g) in &raw_groups {
        if let Some(id) = &g.id {
            if !v.groups.insert(id.clone()) {
                v.err(
                    &format!("groups[{i}] (id {id:?})"),
                    "id",
                    "duplicate group id",
                );
            }
        }
    }
    for (i, g) in raw_groups {
        if let Some((group, members)) = v.group(i, g) {
            memberships.extend(members);
            groups.push(group);
        }
    }
    for (i, r) in roles.iter().enumerate() {
        if let Some(main) = &r.main_group {
            if !v.groups.contains(main) {
                let rec = format!("persons (user_id {:?}) roles[{i}]", r.user_id);
                v.err(
                    &rec,
                    "main_group",
                    format!("refers to group {main:?}, which is not in this document"),
                );
            }
        }
    }
    let mut contacts = Vec::with_capacity(raw.contacts.len());
    let mut seen_contacts = HashSet::new();
    for (i, c) in raw.contacts.into_iter().enumerate() {
        if let Some(c) = v.contact(i, c, &mut seen_contacts) {
            contacts.push(c);
        }
    }
    let ended = match raw.ended {
        Some(e) if mode == Mode::Delta => v.ended(e),
        Some(_) => {
            v.err(
                "ended",
                "ended",
                "only a delta import may end records; a full import ends what it leaves out",
            );
            Ended::default()
        }
        None => Ended::default(),
    };
    let failed = issues.0[before..].iter().any(|i| i.is_error());
    if failed {
        return None;
    }
    Some(Parsed {
        location: loc.clone(),
        roster: InstitutionRoster {
            institution: institution?,
            source_system: raw.source_system,
            school_year: raw.school_year,
            persons,
            roles,
            groups,
            memberships,
            contacts,
            ended,
        },
    })
}

fn validate_institution(
    raw: RawInstitution,
    loc: &Location,
    issues: &mut Issues,
) -> Option<Institution> {
    let loc = loc.with_record("institution");
    let number = required(raw.number, &loc, "number", issues);
    if let Some(n) = &number {
        if !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            issues.error(
                &loc,
                Some("number"),
                "may hold only letters, digits and '-'",
            );
        }
    }
    let name = required(raw.name, &loc, "name", issues);
    let kind = parse_enum(
        raw.kind.as_deref(),
        InstitutionKind::parse,
        InstitutionKind::expected,
        &loc,
        "type",
        issues,
        true,
    );
    Some(Institution {
        number: number?,
        name: name?,
        kind: kind??,
        municipality_code: nonempty(raw.municipality_code),
    })
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn required(v: Option<String>, loc: &Location, field: &str, issues: &mut Issues) -> Option<String> {
    match nonempty(v) {
        Some(v) => Some(v),
        None => {
            issues.error(loc, Some(field), "required, but missing or empty");
            None
        }
    }
}

/// `Some(None)` when absent and optional; `None` when invalid.
fn parse_enum<T>(
    v: Option<&str>,
    parse: fn(&str) -> Option<T>,
    expected: fn() -> String,
    loc: &Location,
    field: &str,
    issues: &mut Issues,
    required: bool,
) -> Option<Option<T>> {
    match v.filter(|s| !s.is_empty()) {
        None if required => {
            issues.error(loc, Some(field), format!("required; one of {}", expected()));
            None
        }
        None => Some(None),
        Some(s) => match parse(s) {
            Some(t) => Some(Some(t)),
            None => {
                issues.error(
                    loc,
                    Some(field),
                    format!("{s:?} is not one of {}", expected()),
                );
                None
            }
        },
    }
}

struct Validator<'a> {
    loc: &'a Location,
    issues: &'a mut Issues,
    /// user id → index in the document, for references.
    persons: HashMap<String, usize>,
    groups: HashSet<String>,
    /// Persons holding a pupil role here, even when their record is invalid
    /// (so one error does not cascade into others).
    pupils: HashSet<String>,
}

impl Validator<'_> {
    fn err(&mut self, record: &str, field: &str, msg: impl Into<String>) {
        self.issues
            .error(&self.loc.with_record(record), Some(field), msg);
    }

    fn date(&mut self, rec: &Location, field: &str, v: Option<String>) -> Option<Option<Date>> {
        match nonempty(v) {
            None => Some(None),
            Some(s) => match parse_date(&s) {
                Some(d) => Some(Some(d)),
                None => {
                    self.issues.error(
                        rec,
                        Some(field),
                        format!("{s:?} is not a date; write YYYY-MM-DD"),
                    );
                    None
                }
            },
        }
    }

    fn person(&mut self, i: usize, p: RawPerson) -> Option<(Person, Vec<Role>)> {
        let id_label = p
            .user_id
            .as_deref()
            .map(|u| format!(" (user_id {u:?})"))
            .unwrap_or_default();
        let rec = self.loc.with_record(format!("persons[{i}]{id_label}"));
        let user_id = required(p.user_id, &rec, "user_id", self.issues);
        if let Some(u) = &user_id {
            if self.persons.insert(u.clone(), i).is_some() {
                self.issues
                    .error(&rec, Some("user_id"), "duplicate user_id in this document");
            }
        }
        let given_name = required(p.given_name, &rec, "given_name", self.issues);
        let family_name = required(p.family_name, &rec, "family_name", self.issues);
        let cpr = match nonempty(p.cpr) {
            None => Some(None),
            // Never echo the value: it is confidential.
            Some(s) if s == CPR_NOT_A_STRING => {
                self.issues.error(
                    &rec,
                    Some("cpr"),
                    "must be a string of ten digits (DDMMYY-SSSS), not a number",
                );
                None
            }
            Some(s) => match Cpr::parse(&s) {
                Some(c) => Some(Some(c)),
                None => {
                    self.issues.error(
                        &rec,
                        Some("cpr"),
                        "not a CPR number (ten digits, DDMMYY-SSSS)",
                    );
                    None
                }
            },
        };
        let birth_date = self.date(&rec, "birth_date", p.birth_date);
        let gender = parse_enum(
            p.gender.as_deref(),
            Gender::parse,
            Gender::expected,
            &rec,
            "gender",
            self.issues,
            false,
        );
        let email = nonempty(p.email);
        if let Some(e) = &email {
            if !e.contains('@') || e.contains(char::is_whitespace) {
                self.issues.error(
                    &rec,
                    Some("email"),
                    format!("{e:?} is not an e-mail address"),
                );
            }
        }
        let mut phones = Vec::with_capacity(p.phones.len());
        for (j, ph) in p.phones.into_iter().enumerate() {
            let field = format!("phones[{j}].kind");
            let kind = parse_enum(
                ph.kind.as_deref(),
                PhoneKind::parse,
                PhoneKind::expected,
                &rec,
                &field,
                self.issues,
                true,
            );
            let number = required(ph.number, &rec, &format!("phones[{j}].number"), self.issues);
            if let (Some(Some(kind)), Some(number)) = (kind, number) {
                phones.push(Phone {
                    kind,
                    number,
                    protectable: ph.protectable,
                });
            }
        }
        let mut roles = Vec::with_capacity(p.roles.len());
        let mut seen = HashSet::new();
        for (j, r) in p.roles.into_iter().enumerate() {
            let field = format!("roles[{j}].role");
            let Some(Some(role)) = parse_enum(
                r.role.as_deref(),
                RoleKind::parse,
                RoleKind::expected,
                &rec,
                &field,
                self.issues,
                true,
            ) else {
                continue;
            };
            if !seen.insert(role) {
                self.issues
                    .error(&rec, Some(&field), format!("role {role} is listed twice"));
            }
            if let (Actor::Pupil, Some(u)) = (role.actor(), &user_id) {
                self.pupils.insert(u.clone());
            }
            roles.push(Role {
                user_id: user_id.clone().unwrap_or_default(),
                role,
                grade_level: nonempty(r.grade_level),
                student_number: nonempty(r.student_number),
                main_group: nonempty(r.main_group),
                initials: nonempty(r.initials),
                occupation: nonempty(r.occupation),
            });
        }
        let person = Person {
            user_id: user_id?,
            given_name: given_name?,
            family_name: family_name?,
            alias_given_name: nonempty(p.alias_given_name),
            alias_family_name: nonempty(p.alias_family_name),
            cpr: cpr?,
            birth_date: birth_date?,
            gender: gender?,
            email,
            phones,
            address: p.address,
            protected: p.protected,
            source_system: nonempty(p.source_system),
            local_person_id: nonempty(p.local_person_id),
            photo_id: nonempty(p.photo_id),
        };
        Some((person, roles))
    }

    fn group(&mut self, i: usize, g: RawGroup) -> Option<(Group, Vec<Membership>)> {
        let id_label =
            g.id.as_deref()
                .map(|u| format!(" (id {u:?})"))
                .unwrap_or_default();
        let rec = self.loc.with_record(format!("groups[{i}]{id_label}"));
        let id = required(g.id, &rec, "id", self.issues);
        let name = required(g.name, &rec, "name", self.issues);
        let kind = parse_enum(
            g.kind.as_deref(),
            GroupKind::parse,
            GroupKind::expected,
            &rec,
            "type",
            self.issues,
            true,
        );
        let from = self.date(&rec, "from", g.from);
        let to = self.date(&rec, "to", g.to);
        if let (Some(Some(f)), Some(Some(t))) = (from, to) {
            if t < f {
                self.issues
                    .error(&rec, Some("to"), format!("{t} is before from ({f})"));
            }
        }
        let mut members = Vec::with_capacity(g.members.len());
        let mut seen = HashSet::with_capacity(g.members.len());
        for (j, m) in g.members.into_iter().enumerate() {
            let field = format!("members[{j}]");
            if !self.persons.contains_key(&m) {
                self.issues.error(
                    &rec,
                    Some(&field),
                    format!("refers to person {m:?}, who is not in this document"),
                );
            } else if !seen.insert(m.clone()) {
                self.issues
                    .error(&rec, Some(&field), format!("person {m:?} is listed twice"));
            } else if let Some(id) = &id {
                members.push(Membership {
                    group: id.clone(),
                    user_id: m,
                });
            }
        }
        let group = Group {
            id: id?,
            name: name?,
            kind: kind??,
            level: nonempty(g.level),
            line: nonempty(g.line),
            from: from?,
            to: to?,
        };
        Some((group, members))
    }

    fn contact(
        &mut self,
        i: usize,
        c: RawContact,
        seen: &mut HashSet<(String, String)>,
    ) -> Option<ContactRelation> {
        let rec = self.loc.with_record(format!("contacts[{i}]"));
        let pupil = required(c.pupil, &rec, "pupil", self.issues);
        let contact = required(c.contact, &rec, "contact", self.issues);
        if let Some(p) = &pupil {
            if !self.persons.contains_key(p) {
                self.issues.error(
                    &rec,
                    Some("pupil"),
                    format!("refers to person {p:?}, who is not in this document"),
                );
            } else if !self.pupils.contains(p) {
                self.issues.error(
                    &rec,
                    Some("pupil"),
                    format!("person {p:?} holds no pupil role here"),
                );
            }
        }
        if let Some(k) = &contact {
            if !self.persons.contains_key(k) {
                self.issues.error(
                    &rec,
                    Some("contact"),
                    format!("refers to person {k:?}, who is not in this document"),
                );
            }
        }
        if let (Some(p), Some(k)) = (&pupil, &contact) {
            if p == k {
                self.issues.error(
                    &rec,
                    Some("contact"),
                    "a pupil cannot be their own contact person",
                );
            } else if !seen.insert((p.clone(), k.clone())) {
                self.issues.error(
                    &rec,
                    Some("contact"),
                    "this pupil and contact person are listed twice",
                );
            }
        }
        let relation = parse_enum(
            c.relation.as_deref(),
            Relation::parse,
            Relation::expected,
            &rec,
            "relation",
            self.issues,
            true,
        );
        Some(ContactRelation {
            pupil: pupil?,
            contact: contact?,
            relation: relation??,
            custody: c.custody,
            access_level: c.access_level,
        })
    }

    fn ended(&mut self, e: RawEnded) -> Ended {
        let mut out = Ended::default();
        for (i, r) in e.roles.into_iter().enumerate() {
            match RoleKind::parse(&r.role) {
                Some(role) => out.roles.push((r.user_id, role)),
                None => self.err(
                    &format!("ended.roles[{i}]"),
                    "role",
                    format!("{:?} is not one of {}", r.role, RoleKind::expected()),
                ),
            }
        }
        out.groups = e.groups;
        out.memberships = e
            .memberships
            .into_iter()
            .map(|m| Membership {
                group: m.group,
                user_id: m.user_id,
            })
            .collect();
        out.contacts = e
            .contacts
            .into_iter()
            .map(|c| (c.pupil, c.contact))
            .collect();
        out
    }
}

/// Turns a typed roster back into a native document (for `tilgang export`
/// and the generator).
pub fn to_raw(r: &InstitutionRoster) -> RawDocument {
    let fmt_date = |d: &Option<Date>| d.map(|d| d.to_string());
    let mut roles_by_person: HashMap<&str, Vec<RawRole>> = HashMap::new();
    for r in &r.roles {
        roles_by_person
            .entry(&r.user_id)
            .or_default()
            .push(RawRole {
                role: Some(r.role.as_str().to_owned()),
                grade_level: r.grade_level.clone(),
                student_number: r.student_number.clone(),
                main_group: r.main_group.clone(),
                initials: r.initials.clone(),
                occupation: r.occupation.clone(),
            });
    }
    let mut members: HashMap<&str, Vec<String>> = HashMap::new();
    for m in &r.memberships {
        members.entry(&m.group).or_default().push(m.user_id.clone());
    }
    RawDocument {
        format: Some(FORMAT.to_owned()),
        institution: Some(RawInstitution {
            number: Some(r.institution.number.clone()),
            name: Some(r.institution.name.clone()),
            kind: Some(r.institution.kind.as_str().to_owned()),
            municipality_code: r.institution.municipality_code.clone(),
        }),
        source_system: r.source_system.clone(),
        school_year: r.school_year.clone(),
        persons: r
            .persons
            .iter()
            .map(|p| RawPerson {
                user_id: Some(p.user_id.clone()),
                given_name: Some(p.given_name.clone()),
                family_name: Some(p.family_name.clone()),
                alias_given_name: p.alias_given_name.clone(),
                alias_family_name: p.alias_family_name.clone(),
                cpr: p.cpr.as_ref().map(|c| c.expose().to_owned()),
                birth_date: fmt_date(&p.birth_date),
                gender: p.gender.map(|g| g.as_str().to_owned()),
                email: p.email.clone(),
                phones: p
                    .phones
                    .iter()
                    .map(|ph| RawPhone {
                        kind: Some(ph.kind.as_str().to_owned()),
                        number: Some(ph.number.clone()),
                        protectable: ph.protectable,
                    })
                    .collect(),
                address: p.address.clone(),
                protected: p.protected,
                source_system: p.source_system.clone(),
                local_person_id: p.local_person_id.clone(),
                photo_id: p.photo_id.clone(),
                roles: roles_by_person
                    .remove(p.user_id.as_str())
                    .unwrap_or_default(),
            })
            .collect(),
        groups: r
            .groups
            .iter()
            .map(|g| RawGroup {
                id: Some(g.id.clone()),
                name: Some(g.name.clone()),
                kind: Some(g.kind.as_str().to_owned()),
                level: g.level.clone(),
                line: g.line.clone(),
                from: fmt_date(&g.from),
                to: fmt_date(&g.to),
                members: members.remove(g.id.as_str()).unwrap_or_default(),
            })
            .collect(),
        contacts: r
            .contacts
            .iter()
            .map(|c| RawContact {
                pupil: Some(c.pupil.clone()),
                contact: Some(c.contact.clone()),
                relation: Some(c.relation.as_str().to_owned()),
                custody: c.custody,
                access_level: c.access_level,
            })
            .collect(),
        ended: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn issues_of(doc: &str) -> Vec<String> {
        let mut issues = Issues::default();
        parse_document(
            doc.as_bytes(),
            &Location::file("x.json"),
            Mode::Full,
            true,
            &mut issues,
        );
        issues.0.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn a_cpr_number_is_never_echoed_whatever_its_type() {
        for cpr in ["3002201234", "\"12345\"", "\"3002201234x\""] {
            let doc = format!(
                r#"{{"format":"tilgang-roster/1","institution":{{"number":"1","name":"S","type":"school"}},
                "persons":[{{"user_id":"a","given_name":"A","family_name":"B","cpr":{cpr}}}],"groups":[]}}"#
            );
            let issues = issues_of(&doc);
            assert_eq!(issues.len(), 1, "{issues:?}");
            assert!(issues[0].contains("field cpr"), "{issues:?}");
            assert!(
                !issues[0].contains("12345") && !issues[0].contains("3002"),
                "{issues:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_warnings() {
        let issues = issues_of(
            r#"{"format":"tilgang-roster/1","institution":{"number":"1","name":"S","type":"school","colour":"red"},"persons":[],"groups":[]}"#,
        );
        assert_eq!(
            issues,
            vec!["warning: x.json, field institution.colour: unknown field, ignored".to_string()]
        );
    }
}
