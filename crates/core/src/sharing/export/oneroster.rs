//! The export as a OneRoster 1.2 CSV bundle: the inverse of the import's
//! mapping (docs/oneroster-mapping.md), only the columns the package
//! releases. A zip is written front to back, so the person files are one
//! pass each over the institution's pages (users, roles, enrollments,
//! demographics), each page audited as it goes.

use super::zipstream::ZipStream;
use super::{oneroster_role, Export, Released};
use crate::roster::{GroupKind, InstitutionKind, PhoneKind, Relation, RoleKind};
use crate::sharing::package::{Field, FieldSet};
use crate::{Error, Result};
use std::collections::BTreeSet;

/// The person files, in the order they are written.
pub(super) const PASSES: &[&str] = &["users", "roles", "enrollments", "demographics"];

/// The person files this package fills (demographics only with a birth
/// date or gender).
pub(super) fn passes(fields: FieldSet) -> usize {
    if fields.contains(Field::BirthDate) || fields.contains(Field::Gender) {
        4
    } else {
        3
    }
}

fn csv_line(out: &mut Vec<u8>, cells: &[&str]) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    w.write_record(cells).map_err(Error::store)?;
    w.flush().map_err(|e| Error::io("csv".to_owned(), e))
}

/// Columns of users.csv for the fields released of ordinary persons.
fn user_columns(f: FieldSet) -> Vec<&'static str> {
    let mut c = vec![
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "givenName",
        "familyName",
    ];
    for (field, col) in [
        (Field::LocalPersonId, "identifier"),
        (Field::Email, "email"),
        (Field::HomePhone, "phone"),
        (Field::MobilePhone, "sms"),
        (Field::Cpr, "userIds"),
        (Field::ContactPersons, "agentSourcedIds"),
        (Field::GradeLevel, "grades"),
    ] {
        if f.contains(field) {
            c.push(col);
        }
    }
    c.push("primaryOrgSourcedId");
    if f.contains(Field::ProtectedFlag) {
        // OneRoster has no name protection: the authority package's flag
        // and a protected person's alias travel as the preferred names and
        // an extension column.
        c.extend([
            "preferredGivenName",
            "preferredFamilyName",
            "metadata.tilgang.protected",
        ]);
    }
    c
}

fn enrollment_role(roles: &[crate::roster::Role]) -> Option<&'static str> {
    use RoleKind::*;
    let mut best = None;
    for r in roles {
        let e = match r.role {
            Pupil | Child | Student => "student",
            Leader | Management => "administrator",
            Substitute => "proctor",
            _ => "teacher",
        };
        if best.is_none() || e == "student" {
            best = Some(e);
        }
    }
    best
}

/// The OneRoster role of a contact person, from their strongest relation
/// (the import's table read backwards); `parent` when the package does not
/// carry the relations.
fn contact_role(r: &Released<'_>) -> &'static str {
    if !r.fields.contains(Field::ContactPersons) {
        return "parent";
    }
    let mine =
        r.p.contacts
            .iter()
            .filter(|c| c.contact == r.p.person.user_id);
    let mut best = "relative";
    for c in mine {
        // Custody decides first: the import gives `guardian` custody, so
        // an official without it goes as a relative.
        let role = match (c.relation, c.custody) {
            (_, false) => "relative",
            (Relation::Official, true) => "guardian",
            (_, true) => "parent",
        };
        if role == "parent" || (role == "guardian" && best == "relative") {
            best = role;
        }
    }
    best
}

/// A school year "2026/2027" as its first and last day.
fn school_year_dates(title: &str) -> Option<(String, String, String)> {
    let (a, b) = title.split_once('/')?;
    let (a, b): (i32, i32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    Some((format!("{a}-08-01"), format!("{b}-07-31"), b.to_string()))
}

impl Export {
    pub(super) fn oneroster_start(&mut self) -> Result<Vec<u8>> {
        let h = self.header.clone();
        let fields = self.view.fields();
        let number = h.institution.number.clone();
        let now = h.made_at.clone();
        let mut z = ZipStream::new(self.clock.now());
        let npasses = passes(fields);
        let mut terms: BTreeSet<(String, String)> = BTreeSet::new();
        let full = fields.contains(Field::Groups);
        if full {
            for g in &self.groups {
                if let (Some(f), Some(t)) = (g.from, g.to) {
                    terms.insert((f.to_string(), t.to_string()));
                }
            }
        }
        let year = h
            .import
            .school_year
            .as_deref()
            .and_then(|y| school_year_dates(y).map(|d| (y.to_owned(), d)));
        let sessions = year.is_some() || !terms.is_empty();

        let mut b = Vec::new();
        csv_line(&mut b, &["propertyName", "value"])?;
        let file = |n: &str, on: bool| {
            [
                format!("file.{n}"),
                if on { "bulk" } else { "absent" }.to_owned(),
            ]
        };
        let mut props = vec![
            ["manifest.version".to_owned(), "1.0".to_owned()],
            ["oneroster.version".to_owned(), "1.2".to_owned()],
            file("academicSessions", sessions),
            file("classes", true),
            file("courses", false),
            file("demographics", npasses == 4),
            file("enrollments", true),
            file("orgs", true),
            file("roles", true),
            file("users", true),
        ];
        props.push([
            "source.systemName".to_owned(),
            h.import
                .source_system
                .clone()
                .unwrap_or_else(|| "tilgang".to_owned()),
        ]);
        props.push(["source.systemCode".to_owned(), "tilgang".to_owned()]);
        for [k, v] in &props {
            csv_line(&mut b, &[k, v])?;
        }
        z.start("manifest.csv")?;
        z.write(&b)?;

        // The export's header, as the JSON body has it first.
        z.start("tilgang-export.json")?;
        z.write(&serde_json::to_vec_pretty(&h).map_err(Error::store)?)?;

        b.clear();
        csv_line(
            &mut b,
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "name",
                "type",
                "identifier",
                "parentSourcedId",
            ],
        )?;
        let parent = h
            .institution
            .municipality_code
            .as_ref()
            .map(|code| format!("municipality-{code}"));
        if let (Some(p), Some(code)) = (&parent, &h.institution.municipality_code) {
            csv_line(
                &mut b,
                &[
                    p,
                    "active",
                    &now,
                    &format!("Kommune {code}"),
                    "district",
                    code,
                    "",
                ],
            )?;
        }
        let kind = match h.institution.kind {
            InstitutionKind::School => "school".to_owned(),
            k => format!("ext:{}", k.as_str()),
        };
        csv_line(
            &mut b,
            &[
                &number,
                "active",
                &now,
                &h.institution.name,
                &kind,
                &number,
                parent.as_deref().unwrap_or(""),
            ],
        )?;
        z.start("orgs.csv")?;
        z.write(&b)?;

        if sessions {
            b.clear();
            csv_line(
                &mut b,
                &[
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
            )?;
            if let Some((title, (start, end, y))) = &year {
                csv_line(
                    &mut b,
                    &[
                        "schoolyear",
                        "active",
                        &now,
                        title,
                        "schoolYear",
                        start,
                        end,
                        "",
                        y,
                    ],
                )?;
            }
            for (f, t) in &terms {
                let y = year
                    .as_ref()
                    .map(|(_, d)| d.2.clone())
                    .unwrap_or_else(|| t[..4].to_owned());
                csv_line(
                    &mut b,
                    &[
                        &format!("term-{f}-{t}"),
                        "active",
                        &now,
                        &format!("{f} – {t}"),
                        "term",
                        f,
                        t,
                        if year.is_some() { "schoolyear" } else { "" },
                        &y,
                    ],
                )?;
            }
            z.start("academicSessions.csv")?;
            z.write(&b)?;
        }

        b.clear();
        csv_line(
            &mut b,
            &[
                "sourcedId",
                "status",
                "dateLastModified",
                "title",
                "grades",
                "classType",
                "schoolSourcedId",
                "termSourcedIds",
            ],
        )?;
        for g in &self.groups {
            let kind = match g.kind {
                GroupKind::MainGroup => "homeroom".to_owned(),
                GroupKind::Class => "scheduled".to_owned(),
                k => format!("ext:{}", k.as_str()),
            };
            let term = match (full, g.from, g.to) {
                (true, Some(f), Some(t)) => format!("term-{f}-{t}"),
                _ => String::new(),
            };
            let title = if full { g.name.as_str() } else { g.id.as_str() };
            let level = g.level.as_deref().filter(|_| full).unwrap_or("");
            csv_line(
                &mut b,
                &[&g.id, "active", &now, title, level, &kind, &number, &term],
            )?;
        }
        z.start("classes.csv")?;
        z.write(&b)?;

        self.zip = Some(z);
        self.oneroster_begin(0)?;
        Ok(self.zip_take())
    }

    fn zip_take(&mut self) -> Vec<u8> {
        self.zip.as_mut().map(ZipStream::take).unwrap_or_default()
    }

    fn zip(&mut self) -> Result<&mut ZipStream> {
        self.zip
            .as_mut()
            .ok_or_else(|| Error::Store("OneRoster export: zip not started".into()))
    }

    /// Starts the file of `pass` with its header row.
    fn oneroster_begin(&mut self, pass: usize) -> Result<()> {
        let fields = self.view.fields();
        let mut b = Vec::new();
        match PASSES[pass] {
            "users" => csv_line(&mut b, &user_columns(fields))?,
            "roles" => csv_line(
                &mut b,
                &[
                    "sourcedId",
                    "status",
                    "dateLastModified",
                    "userSourcedId",
                    "roleType",
                    "role",
                    "orgSourcedId",
                ],
            )?,
            "enrollments" => csv_line(
                &mut b,
                &[
                    "sourcedId",
                    "status",
                    "dateLastModified",
                    "classSourcedId",
                    "schoolSourcedId",
                    "userSourcedId",
                    "role",
                ],
            )?,
            _ => {
                let mut cols = vec!["sourcedId", "status", "dateLastModified"];
                if fields.contains(Field::BirthDate) {
                    cols.push("birthDate");
                }
                if fields.contains(Field::Gender) {
                    cols.push("sex");
                }
                csv_line(&mut b, &cols)?
            }
        }
        let z = self.zip()?;
        z.start(&format!("{}.csv", PASSES[pass]))?;
        z.write(&b)
    }

    pub(super) fn oneroster_end_pass(&mut self, pass: usize) -> Result<Option<Vec<u8>>> {
        if pass + 1 < passes(self.view.fields()) {
            self.oneroster_begin(pass + 1)?;
        }
        Ok(Some(self.zip_take()))
    }

    pub(super) fn oneroster_tail(&mut self) -> Result<Vec<u8>> {
        self.zip()?.finish()?;
        Ok(self.zip_take())
    }

    pub(super) fn oneroster_page(&mut self, pass: usize, page: &[Released<'_>]) -> Result<Vec<u8>> {
        let cols = user_columns(self.view.fields());
        let now = self.header.made_at.clone();
        let number = self.header.institution.number.clone();
        let mut b = Vec::with_capacity(page.len() * 160);
        for r in page {
            let f = r.fields;
            let p = &r.p.person;
            match PASSES[pass] {
                "users" => {
                    let phone = |k: PhoneKind| {
                        p.phones
                            .iter()
                            .find(|ph| ph.kind == k)
                            .map(|ph| ph.number.clone())
                            .unwrap_or_default()
                    };
                    let cpr = self
                        .cpr(r)?
                        .map(|c| format!("{{CPR:{}}}", c.expose()))
                        .unwrap_or_default();
                    let agents: Vec<String> =
                        r.p.contacts
                            .iter()
                            .filter(|c| c.pupil == p.user_id)
                            .map(|c| self.subject(f, &c.contact))
                            .collect();
                    let grade =
                        r.p.roles
                            .iter()
                            .find(|x| x.role.actor() == crate::roster::Actor::Pupil)
                            .and_then(|x| x.grade_level.clone())
                            .unwrap_or_default();
                    let (given, family) = r.names.unwrap_or(("", ""));
                    let (alias_g, alias_f) =
                        match (p.protected, &p.alias_given_name, &p.alias_family_name) {
                            (true, Some(g), Some(fam)) if f.contains(Field::AliasName) => {
                                (g.as_str(), fam.as_str())
                            }
                            _ => ("", ""),
                        };
                    let cells: Vec<String> = cols
                        .iter()
                        .map(|c| match *c {
                            "sourcedId" => r.id.clone(),
                            "status" => "active".into(),
                            "dateLastModified" => now.clone(),
                            "enabledUser" => "true".into(),
                            "givenName" => given.into(),
                            "familyName" => family.into(),
                            "identifier" if f.contains(Field::LocalPersonId) => {
                                p.local_person_id.clone().unwrap_or_default()
                            }
                            "email" if f.contains(Field::Email) => {
                                p.email.clone().unwrap_or_default()
                            }
                            "phone" if f.contains(Field::HomePhone) => phone(PhoneKind::Home),
                            "sms" if f.contains(Field::MobilePhone) => phone(PhoneKind::Mobile),
                            "userIds" => cpr.clone(),
                            "agentSourcedIds" if f.contains(Field::ContactPersons) => {
                                agents.join(",")
                            }
                            "grades" if f.contains(Field::GradeLevel) => grade.clone(),
                            "primaryOrgSourcedId" => number.clone(),
                            "preferredGivenName" => alias_g.into(),
                            "preferredFamilyName" => alias_f.into(),
                            "metadata.tilgang.protected" if f.contains(Field::ProtectedFlag) => {
                                p.protected.to_string()
                            }
                            _ => String::new(),
                        })
                        .collect();
                    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
                    csv_line(&mut b, &refs)?;
                }
                "roles" => {
                    let mut primary = true;
                    let mut seen = Vec::new();
                    for role in r.p.roles.iter().map(|x| oneroster_role(x.role)) {
                        if seen.contains(&role) {
                            continue;
                        }
                        seen.push(role);
                        let kind = if primary { "primary" } else { "secondary" };
                        primary = false;
                        csv_line(
                            &mut b,
                            &[
                                &format!("{}:{role}", r.id),
                                "active",
                                &now,
                                &r.id,
                                kind,
                                role,
                                &number,
                            ],
                        )?;
                    }
                    if r.p.contacts.iter().any(|c| c.contact == p.user_id) {
                        let role = contact_role(r);
                        let kind = if primary { "primary" } else { "secondary" };
                        csv_line(
                            &mut b,
                            &[
                                &format!("{}:{role}", r.id),
                                "active",
                                &now,
                                &r.id,
                                kind,
                                role,
                                &number,
                            ],
                        )?;
                    }
                }
                "enrollments" => {
                    let Some(role) = enrollment_role(&r.p.roles) else {
                        continue;
                    };
                    if !f.contains(Field::GroupIds) {
                        continue;
                    }
                    for g in self.active_groups(r.p) {
                        csv_line(
                            &mut b,
                            &[
                                &format!("{g}:{}", r.id),
                                "active",
                                &now,
                                g,
                                &number,
                                &r.id,
                                role,
                            ],
                        )?;
                    }
                }
                _ => {
                    let birth = p
                        .birth_date
                        .filter(|_| f.contains(Field::BirthDate))
                        .map(|d| d.to_string());
                    let sex = p
                        .gender
                        .filter(|_| f.contains(Field::Gender))
                        .map(|g| match g {
                            crate::roster::Gender::Female => "female",
                            crate::roster::Gender::Male => "male",
                            crate::roster::Gender::Other => "other",
                        });
                    if birth.is_none() && sex.is_none() {
                        continue;
                    }
                    let mut cells = vec![r.id.clone(), "active".into(), now.clone()];
                    if self.view.fields().contains(Field::BirthDate) {
                        cells.push(birth.unwrap_or_default());
                    }
                    if self.view.fields().contains(Field::Gender) {
                        cells.push(sex.unwrap_or("unspecified").to_owned());
                    }
                    let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
                    csv_line(&mut b, &refs)?;
                }
            }
        }
        let z = self.zip()?;
        z.write(&b)?;
        Ok(z.take())
    }
}
