//! Mapping the checked records onto one [`InstitutionRoster`] per school:
//! roles, groups and memberships where they belong, contact persons with
//! their pupils, and in a delta what tobedeleted rows end.

use super::records::*;
use super::table::Status;
use super::{shown, ENROLLMENTS, ORGS, ROLES, USERS};
use crate::roster::import::{Issues, Location, Parsed};
use crate::roster::model::*;
use std::collections::{HashMap, HashSet};
use time::Date;

/// One institution's roster while it is being assembled.
struct Inst<'b> {
    org: &'b Org,
    roster: InstitutionRoster,
    /// Users who appear in this roster (their roles, or as contact persons).
    members: HashSet<&'b str>,
    roles: HashSet<(String, RoleKind)>,
    memberships: HashSet<(String, String)>,
    contacts: HashSet<(String, String)>,
    ended_roles: HashSet<(String, RoleKind)>,
    ended_memberships: HashSet<(String, String)>,
    ended_contacts: HashSet<(String, String)>,
}

/// A student linked to a contact person through `agentSourcedIds`.
struct Link<'b> {
    pupil: &'b str,
    contact: &'b str,
    /// Some active user row lists the link.
    active: bool,
    /// A tobedeleted user row lists it: the relation ends.
    ended_by: Option<&'b User>,
}

impl Bundle<'_> {
    pub(super) fn rosters(&self, issues: &mut Issues) -> Vec<Parsed> {
        let mut insts: Vec<Inst> = Vec::new();
        let mut inst_of: HashMap<&str, usize> = HashMap::new();
        let mut numbers: HashMap<String, u64> = HashMap::new();
        for org in &self.orgs {
            let Some(kind) = org.kind else { continue };
            let loc = self.loc(&ORGS, org.line);
            let (number, field) = match &org.identifier {
                Some(n) => (n.clone(), "identifier"),
                None => (org.id.clone(), "sourcedId"),
            };
            if !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                let msg = format!(
                    "{} is the institution number, which may hold only letters, digits and '-'",
                    shown(&number)
                );
                issues.error(&loc, Some(field), msg);
            }
            if let Some(first) = numbers.insert(number.clone(), org.line) {
                let msg = format!(
                    "institution number {} is also the org's on line {first}",
                    shown(&number)
                );
                issues.error(&loc, Some(field), msg);
            }
            inst_of.insert(&org.id, insts.len());
            insts.push(Inst {
                org,
                roster: InstitutionRoster {
                    institution: Institution {
                        number,
                        name: org.name.clone(),
                        kind,
                        municipality_code: self.municipality(org),
                    },
                    source_system: self.manifest.source_system.clone(),
                    school_year: None,
                    persons: Vec::new(),
                    roles: Vec::new(),
                    groups: Vec::new(),
                    memberships: Vec::new(),
                    contacts: Vec::new(),
                    ended: Ended::default(),
                },
                members: HashSet::new(),
                roles: HashSet::new(),
                memberships: HashSet::new(),
                contacts: HashSet::new(),
                ended_roles: HashSet::new(),
                ended_memberships: HashSet::new(),
                ended_contacts: HashSet::new(),
            });
        }
        let demographics: HashMap<&str, &Demographic> = self
            .demographics
            .iter()
            .filter(|d| d.status == Status::Active)
            .map(|d| (d.id.as_str(), d))
            .collect();

        self.map_roles(&mut insts, &inst_of, issues);
        self.map_groups(&mut insts, &inst_of, issues);
        self.map_contacts(&mut insts, &inst_of, &demographics, issues);

        // Users who hold no role anywhere would silently vanish otherwise.
        let with_roles: HashSet<&str> = self.roles.iter().map(|r| r.user.as_str()).collect();
        for u in self.users.iter().filter(|u| u.status == Status::Active) {
            if !with_roles.contains(u.id.as_str()) {
                let msg =
                    "has no row in roles.csv, so it belongs to no institution and is not imported";
                issues.warning(&self.loc(&USERS, u.line), Some("sourcedId"), msg);
            }
        }

        let orgs_label = self.labels.get(ORGS.name).cloned().unwrap_or_default();
        insts
            .into_iter()
            .map(|mut inst| {
                inst.roster.school_year = self.school_year(inst.org);
                for u in &self.users {
                    if u.status == Status::Active && inst.members.contains(u.id.as_str()) {
                        inst.roster
                            .persons
                            .push(self.person(u, demographics.get(u.id.as_str()).copied()));
                    }
                }
                // A pupil's main group is their class, when there is exactly one.
                let homerooms = self.homerooms(inst.org);
                for r in inst
                    .roster
                    .roles
                    .iter_mut()
                    .filter(|r| r.role.actor() == Actor::Pupil)
                {
                    if let [only] = homerooms
                        .get(r.user_id.as_str())
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                    {
                        r.main_group = Some((*only).to_owned());
                    }
                }
                Parsed {
                    location: Location::line(&orgs_label, inst.org.line)
                        .with_record(format!("org {}", shown(&inst.org.id))),
                    roster: inst.roster,
                }
            })
            .collect()
    }

    /// The identifier of the nearest district above `org`: in Denmark, the
    /// municipality that owns the school.
    fn municipality(&self, org: &Org) -> Option<String> {
        let mut at = org.parent.as_deref();
        // Bounded by the number of orgs, so a cycle cannot loop forever.
        for _ in 0..self.orgs.len() {
            let parent = &self.orgs[self.org_index.get(at?)?];
            if parent.is_district {
                return parent.identifier.clone();
            }
            at = parent.parent.as_deref();
        }
        None
    }

    fn person(&self, u: &User, demo: Option<&Demographic>) -> Person {
        let mut phones = Vec::new();
        if let Some(n) = &u.phone {
            phones.push(Phone {
                kind: PhoneKind::Home,
                number: n.clone(),
                protectable: false,
            });
        }
        if let Some(n) = &u.sms {
            phones.push(Phone {
                kind: PhoneKind::Mobile,
                number: n.clone(),
                protectable: false,
            });
        }
        Person {
            user_id: u.id.clone(),
            given_name: u.given.clone(),
            family_name: u.family.clone(),
            alias_given_name: u.alias_given.clone(),
            alias_family_name: u.alias_family.clone(),
            cpr: u.cpr.clone(),
            birth_date: demo.and_then(|d| d.birth_date),
            gender: demo.and_then(|d| d.gender),
            email: u.email.clone(),
            phones,
            address: None,
            protected: false,
            source_system: None,
            local_person_id: u.identifier.clone(),
            photo_id: None,
        }
    }

    fn map_roles<'b>(
        &'b self,
        insts: &mut [Inst<'b>],
        inst_of: &HashMap<&str, usize>,
        issues: &mut Issues,
    ) {
        let mut ended = Vec::new();
        for r in &self.roles {
            let Some(Mapped::Role(kind)) = r.role else {
                continue;
            };
            let Some(&i) = inst_of.get(r.org.as_str()) else {
                if let Some(o) = self.org_index.get(&r.org) {
                    let msg = format!(
                        "org {} is not a school, and tilgang keeps roles at institutions only; not imported",
                        shown(&self.orgs[o].id)
                    );
                    issues.warning(&self.loc(&ROLES, r.line), Some("orgSourcedId"), msg);
                }
                continue;
            };
            let inst = &mut insts[i];
            if r.status == Status::Deleted {
                ended.push((i, r.user.clone(), kind));
                continue;
            }
            // Two OneRoster roles can map to one (principal and
            // siteAdministrator are both Leder): keep the first.
            if !inst.roles.insert((r.user.clone(), kind)) {
                continue;
            }
            let Some(u) = self.user_index.get(&r.user).map(|u| &self.users[u]) else {
                continue;
            };
            inst.members.insert(&u.id);
            let grade_level = if kind.actor() == Actor::Pupil {
                self.grade(u, issues)
            } else {
                None
            };
            inst.roster.roles.push(Role {
                user_id: r.user.clone(),
                role: kind,
                grade_level,
                student_number: None,
                main_group: None,
                initials: None,
                occupation: None,
            });
        }
        // A role ends only if no active row still gives it.
        for (i, user, kind) in ended {
            let inst = &mut insts[i];
            let key = (user, kind);
            if !inst.roles.contains(&key) && inst.ended_roles.insert(key.clone()) {
                inst.roster.ended.roles.push(key);
            }
        }
    }

    /// A pupil's grade level: OneRoster gives a list, tilgang keeps one.
    fn grade(&self, u: &User, issues: &mut Issues) -> Option<String> {
        let first = u.grades.first()?;
        if u.grades.len() > 1 {
            let msg = format!(
                "lists {} grades; the pupil role takes the first, {}",
                u.grades.len(),
                shown(first)
            );
            issues.warning(&self.loc(&USERS, u.line), Some("grades"), msg);
        }
        Some(first.clone())
    }

    fn map_groups<'b>(
        &'b self,
        insts: &mut [Inst<'b>],
        inst_of: &HashMap<&str, usize>,
        issues: &mut Issues,
    ) {
        for c in &self.classes {
            let Some(&i) = inst_of.get(c.school.as_str()) else {
                continue;
            };
            let inst = &mut insts[i];
            if c.status == Status::Deleted {
                inst.roster.ended.groups.push(c.id.clone());
                continue;
            }
            let (from, to) = self.term_span(c);
            inst.roster.groups.push(Group {
                id: c.id.clone(),
                name: c.title.clone(),
                kind: c.kind,
                // A class across grades (aldersintegreret) keeps them all.
                level: (!c.grades.is_empty()).then(|| c.grades.join(",")),
                line: None,
                from,
                to,
            });
        }
        for e in &self.enrollments {
            let class = self.class_index.get(&e.class).map(|c| &self.classes[c]);
            // The class decides the school; a row that ends a membership of
            // a class not in this bundle falls back on its own school.
            let school = class.map_or(e.school.as_str(), |c| c.school.as_str());
            let Some(&i) = inst_of.get(school) else {
                continue;
            };
            let inst = &mut insts[i];
            let key = (e.class.clone(), e.user.clone());
            if e.status == Status::Deleted {
                if inst.ended_memberships.insert(key) {
                    inst.roster.ended.memberships.push(Membership {
                        group: e.class.clone(),
                        user_id: e.user.clone(),
                    });
                }
                continue;
            }
            if class.is_some_and(|c| c.status == Status::Deleted) {
                let msg = format!(
                    "the enrollment is active, but classes.csv marks class {} tobedeleted",
                    shown(&e.class)
                );
                issues.error(&self.loc(&ENROLLMENTS, e.line), Some("classSourcedId"), msg);
                continue;
            }
            if self.user_index.get(&e.user).is_none() || class.is_none() {
                continue; // reported as a dangling reference
            }
            // Until contacts are mapped, members are exactly the role holders.
            if !inst.members.contains(e.user.as_str()) {
                let msg = format!(
                    "user {} holds no role at the class's school {} in roles.csv",
                    shown(&e.user),
                    shown(&inst.org.id)
                );
                issues.error(&self.loc(&ENROLLMENTS, e.line), Some("userSourcedId"), msg);
                continue;
            }
            if inst.memberships.insert(key) {
                inst.roster.memberships.push(Membership {
                    group: e.class.clone(),
                    user_id: e.user.clone(),
                });
            }
        }
    }

    /// Active homeroom classes each student is enrolled in at `org`.
    fn homerooms(&self, org: &Org) -> HashMap<&str, Vec<&str>> {
        let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
        for e in self
            .enrollments
            .iter()
            .filter(|e| e.status == Status::Active && e.is_student)
        {
            let Some(c) = self.class_index.get(&e.class).map(|c| &self.classes[c]) else {
                continue;
            };
            if c.school == org.id && c.kind == GroupKind::MainGroup && c.status == Status::Active {
                let v = out.entry(e.user.as_str()).or_default();
                if !v.contains(&c.id.as_str()) {
                    v.push(&c.id);
                }
            }
        }
        out
    }

    /// A class runs from the start of its first term to the end of its last.
    fn term_span(&self, c: &Class) -> (Option<Date>, Option<Date>) {
        let terms: Vec<&Session> = c
            .terms
            .iter()
            .filter_map(|t| self.session_index.get(t))
            .map(|i| &self.sessions[i])
            .collect();
        (
            terms.iter().filter_map(|s| s.start).min(),
            terms.iter().filter_map(|s| s.end).max(),
        )
    }

    /// The school year's title: of the schoolYear sessions this school's
    /// classes and courses use, else of all in the bundle, the one starting
    /// last (a bundle carries the running year, maybe the next one too; no
    /// clock is consulted, so the result depends on the bundle alone).
    fn school_year(&self, org: &Org) -> Option<String> {
        let years = |s: &&Session| s.is_school_year && s.status == Status::Active;
        let mut used: Vec<&Session> = Vec::new();
        let mut add = |id: &str| {
            let mut at = Some(id);
            for _ in 0..self.sessions.len() {
                let Some(s) = at
                    .and_then(|id| self.session_index.get(id))
                    .map(|i| &self.sessions[i])
                else {
                    break;
                };
                if years(&s) {
                    used.push(s);
                    break;
                }
                at = s.parent.as_deref();
            }
        };
        for c in self
            .classes
            .iter()
            .filter(|c| c.school == org.id && c.status == Status::Active)
        {
            c.terms.iter().for_each(|t| add(t));
        }
        for c in self.courses.iter().filter(|c| c.org == org.id) {
            if let Some(y) = &c.school_year {
                add(y);
            }
        }
        if used.is_empty() {
            used = self.sessions.iter().filter(years).collect();
        }
        used.into_iter()
            .max_by_key(|s| (s.start, s.line))
            .map(|s| s.title.clone())
    }

    /// Contact persons: users.agentSourcedIds links a student and a user
    /// whose roles.csv role is parent, guardian or relative, listed on
    /// either side. The relation is kept at every institution where the
    /// student is a pupil; the contact person comes along to each.
    fn map_contacts<'b>(
        &'b self,
        insts: &mut [Inst<'b>],
        inst_of: &HashMap<&str, usize>,
        demographics: &HashMap<&str, &Demographic>,
        issues: &mut Issues,
    ) {
        // Pupil institutions and contact roles, from active rows and from all.
        let mut pupil_at: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut pupil_any: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut contact_kind: HashMap<&str, ContactKind> = HashMap::new();
        let mut contact_any: HashSet<&str> = HashSet::new();
        let mut contact_orgs: HashSet<(&str, &str)> = HashSet::new();
        for r in &self.roles {
            let active = r.status == Status::Active;
            match r.role {
                Some(Mapped::Role(k)) if k.actor() == Actor::Pupil => {
                    if let Some(&i) = inst_of.get(r.org.as_str()) {
                        for (map, on) in [(&mut pupil_any, true), (&mut pupil_at, active)] {
                            let v = map.entry(r.user.as_str()).or_default();
                            if on && !v.contains(&i) {
                                v.push(i);
                            }
                        }
                    }
                }
                Some(Mapped::Contact(k)) => {
                    contact_any.insert(&r.user);
                    if active {
                        contact_orgs.insert((&r.user, &r.org));
                        let best = contact_kind.entry(&r.user).or_insert(k);
                        *best = (*best).max(k);
                    }
                }
                _ => {}
            }
        }

        let mut links: Vec<Link> = Vec::new();
        let mut link_at: HashMap<(&str, &str), usize> = HashMap::new();
        for u in &self.users {
            for a in &u.agents {
                let Some(agent) = self.user_index.get(a).map(|i| &self.users[i]) else {
                    continue;
                };
                let (pupil, contact) = if pupil_any.contains_key(u.id.as_str())
                    && contact_any.contains(a.as_str())
                {
                    (u.id.as_str(), agent.id.as_str())
                } else if contact_any.contains(u.id.as_str()) && pupil_any.contains_key(a.as_str())
                {
                    (agent.id.as_str(), u.id.as_str())
                } else {
                    if u.status == Status::Active && a != &u.id {
                        let msg = format!(
                            "agent {}: tilgang links a student to a parent, guardian or relative (roles.csv), and this pair is neither; not imported",
                            shown(a)
                        );
                        issues.warning(&self.loc(&USERS, u.line), Some("agentSourcedIds"), msg);
                    }
                    continue;
                };
                let n = *link_at.entry((pupil, contact)).or_insert_with(|| {
                    links.push(Link {
                        pupil,
                        contact,
                        active: false,
                        ended_by: None,
                    });
                    links.len() - 1
                });
                let link = &mut links[n];
                match u.status {
                    Status::Active => link.active = true,
                    Status::Deleted => link.ended_by = link.ended_by.or(Some(u)),
                }
            }
        }

        let active_user = |id: &str| {
            self.user_index
                .get(id)
                .is_some_and(|i| self.users[i].status == Status::Active)
        };
        for link in links.iter().filter(|l| l.active && l.ended_by.is_none()) {
            let Some(&kind) = contact_kind.get(link.contact) else {
                continue;
            };
            if !active_user(link.pupil) || !active_user(link.contact) {
                continue;
            }
            let (relation, custody) = match kind {
                ContactKind::Parent => {
                    match demographics.get(link.contact).and_then(|d| d.gender) {
                        Some(Gender::Female) => (Relation::Mother, true),
                        Some(Gender::Male) => (Relation::Father, true),
                        _ => (Relation::Other, true),
                    }
                }
                ContactKind::Guardian => (Relation::Official, true),
                ContactKind::Relative => (Relation::Other, false),
            };
            for &i in pupil_at.get(link.pupil).into_iter().flatten() {
                let inst = &mut insts[i];
                if inst
                    .contacts
                    .insert((link.pupil.to_owned(), link.contact.to_owned()))
                {
                    inst.members.insert(link.contact);
                    inst.roster.contacts.push(ContactRelation {
                        pupil: link.pupil.to_owned(),
                        contact: link.contact.to_owned(),
                        relation,
                        custody,
                        access_level: None,
                    });
                }
            }
        }

        let end = |insts: &mut [Inst], i: usize, link: &Link| {
            let key = (link.pupil.to_owned(), link.contact.to_owned());
            let inst = &mut insts[i];
            if !inst.contacts.contains(&key) && inst.ended_contacts.insert(key.clone()) {
                inst.roster.ended.contacts.push(key);
            }
        };
        // A tobedeleted user row ends the relations it lists, wherever the
        // student is a pupil according to this bundle.
        for link in &links {
            let Some(u) = link.ended_by else { continue };
            let at = pupil_any
                .get(link.pupil)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if at.is_empty() {
                let msg = format!(
                    "cannot tell where the relation between {} and {} ends: include the student's roles.csv rows",
                    shown(link.pupil),
                    shown(link.contact)
                );
                issues.warning(&self.loc(&USERS, u.line), Some("status"), msg);
            }
            for &i in at {
                end(insts, i, link);
            }
        }
        // A contact role that ends at a school ends the contact person's
        // relations there, unless another contact role there remains.
        for r in self.roles.iter().filter(|r| r.status == Status::Deleted) {
            let Some(Mapped::Contact(_)) = r.role else {
                continue;
            };
            let Some(&i) = inst_of.get(r.org.as_str()) else {
                continue;
            };
            if contact_orgs.contains(&(r.user.as_str(), r.org.as_str())) {
                continue;
            }
            let mine: Vec<&Link> = links.iter().filter(|l| l.contact == r.user).collect();
            if mine.is_empty() {
                let msg = format!(
                    "cannot tell which students' relations to {} end: no users.csv row in this bundle links them (agentSourcedIds)",
                    shown(&r.user)
                );
                issues.warning(&self.loc(&ROLES, r.line), Some("userSourcedId"), msg);
            }
            for link in mine {
                end(insts, i, link);
            }
        }
    }
}
