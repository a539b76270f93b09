//! Applying one institution's import: diff every entity against the store
//! inside one transaction, write only what changed, end (never delete) what a
//! full import leaves out, and seal the audit events into the chain in the
//! same transaction. Dialects supply the primitives ([`ImportTx`]); the
//! sequence and its rules live here once.

use crate::audit::actions;
use crate::audit::{chain, NewEvent};
use crate::crypto::DataKeys;
use crate::roster::diff::{diff, Digest, KeyedPlan};
use crate::roster::import::{Mode, Parsed};
use crate::roster::{ContactRelation, Group, InstitutionRoster, Person, Role, RoleKind};
use crate::sharing::policy::{actor_bit, grade_index, ACTOR_CONTACT, NO_GRADE};
use crate::store::changes::{ChangeKind, ChangeOp, NewChange};
use crate::store::{ContactRow, EndTable, ImportTx, InstitutionRow, PersonRow};
use crate::Result;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeSet, HashMap, HashSet};
use time::OffsetDateTime;

/// A CPR number's ciphertext and look-up hash.
type SealedCpr = (Vec<u8>, i64);

/// An institution's roster with everything computed that needs no database:
/// digests, CPR ciphertexts and look-up hashes. Built off the writer's path.
#[derive(Debug)]
pub struct Prepared {
    pub parsed: Parsed,
    /// XXH3 of the document's bytes, when it came as one (native input).
    pub content_digest: Option<i64>,
    institution_digest: i64,
    persons: Vec<(i64, Option<SealedCpr>)>,
    roles: Vec<i64>,
    groups: Vec<i64>,
    contacts: Vec<i64>,
}

pub fn person_digest(p: &Person, cpr_hash: Option<i64>) -> i64 {
    let mut d = Digest::new();
    d.str(&p.user_id)
        .str(&p.given_name)
        .str(&p.family_name)
        .opt(p.alias_given_name.as_deref())
        .opt(p.alias_family_name.as_deref())
        .bytes(&cpr_hash.map(i64::to_be_bytes).unwrap_or_default())
        .opt(p.birth_date.map(|d| d.to_string()).as_deref())
        .opt(p.gender.map(|g| g.as_str()))
        .opt(p.email.as_deref());
    for ph in &p.phones {
        d.str(ph.kind.as_str()).str(&ph.number).flag(ph.protectable);
    }
    d.str("|");
    if let Some(a) = &p.address {
        d.opt(a.street.as_deref())
            .opt(a.postal_code.as_deref())
            .opt(a.city.as_deref())
            .opt(a.municipality_code.as_deref())
            .opt(a.country.as_deref());
    }
    d.flag(p.protected)
        .opt(p.source_system.as_deref())
        .opt(p.local_person_id.as_deref())
        .opt(p.photo_id.as_deref())
        .finish()
}

fn role_digest(r: &Role) -> i64 {
    Digest::new()
        .str(r.role.as_str())
        .opt(r.grade_level.as_deref())
        .opt(r.student_number.as_deref())
        .opt(r.main_group.as_deref())
        .opt(r.initials.as_deref())
        .opt(r.occupation.as_deref())
        .finish()
}

fn group_digest(g: &Group) -> i64 {
    Digest::new()
        .str(&g.id)
        .str(&g.name)
        .str(g.kind.as_str())
        .opt(g.level.as_deref())
        .opt(g.line.as_deref())
        .opt(g.from.map(|d| d.to_string()).as_deref())
        .opt(g.to.map(|d| d.to_string()).as_deref())
        .finish()
}

fn contact_digest(c: &ContactRelation) -> i64 {
    Digest::new()
        .str(c.relation.as_str())
        .flag(c.custody)
        .opt(c.access_level.map(|l| l.to_string()).as_deref())
        .finish()
}

fn institution_digest(r: &InstitutionRoster) -> i64 {
    let i = &r.institution;
    Digest::new()
        .str(&i.number)
        .str(&i.name)
        .str(i.kind.as_str())
        .opt(i.municipality_code.as_deref())
        .opt(r.source_system.as_deref())
        .opt(r.school_year.as_deref())
        .finish()
}

pub fn prepare(parsed: Parsed, keys: &DataKeys, content_digest: Option<i64>) -> Prepared {
    let r = &parsed.roster;
    let persons = r
        .persons
        .iter()
        .map(|p| {
            let cpr = p
                .cpr
                .as_ref()
                .map(|c| (keys.encrypt_cpr(c), keys.cpr_lookup_hash(c)));
            (person_digest(p, cpr.as_ref().map(|c| c.1)), cpr)
        })
        .collect();
    Prepared {
        institution_digest: institution_digest(r),
        persons,
        roles: r.roles.iter().map(role_digest).collect(),
        groups: r.groups.iter().map(group_digest).collect(),
        contacts: r.contacts.iter().map(contact_digest).collect(),
        content_digest,
        parsed,
    }
}

/// Counts of one kind of record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub created: usize,
    pub updated: usize,
    pub ended: usize,
    pub unchanged: usize,
}

impl Tally {
    fn of(plan: &KeyedPlan) -> Tally {
        Tally {
            created: plan.insert.len(),
            updated: plan.update.len() + plan.reopen.len(),
            ended: plan.end.len(),
            unchanged: plan.unchanged,
        }
    }
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.ended > 0
    }
    pub fn add(&mut self, o: &Tally) {
        self.created += o.created;
        self.updated += o.updated;
        self.ended += o.ended;
        self.unchanged += o.unchanged;
    }
}

/// What one import did, per entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub institutions: Tally,
    pub persons: Tally,
    pub inactivated: usize,
    pub reactivated: usize,
    pub roles: Tally,
    pub groups: Tally,
    pub memberships: Tally,
    pub contacts: Tally,
}

impl Summary {
    /// Every record of the roster counted as unchanged.
    pub fn unchanged(r: &InstitutionRoster) -> Summary {
        let t = |n: usize| Tally {
            unchanged: n,
            ..Tally::default()
        };
        Summary {
            institutions: t(1),
            persons: t(r.persons.len()),
            roles: t(r.roles.len()),
            groups: t(r.groups.len()),
            memberships: t(r.memberships.len()),
            contacts: t(r.contacts.len()),
            ..Summary::default()
        }
    }

    pub fn changed(&self) -> bool {
        [
            &self.institutions,
            &self.persons,
            &self.roles,
            &self.groups,
            &self.memberships,
            &self.contacts,
        ]
        .iter()
        .any(|t| t.changed())
            || self.inactivated + self.reactivated > 0
    }
    pub fn add(&mut self, o: &Summary) {
        self.institutions.add(&o.institutions);
        self.persons.add(&o.persons);
        self.inactivated += o.inactivated;
        self.reactivated += o.reactivated;
        self.roles.add(&o.roles);
        self.groups.add(&o.groups);
        self.memberships.add(&o.memberships);
        self.contacts.add(&o.contacts);
    }
}

#[derive(Debug, Clone)]
pub struct Context {
    pub actor: String,
    pub now: OffsetDateTime,
    pub mode: Mode,
    pub dry_run: bool,
}

/// Ids of stored ended rows that the delta names.
fn named<K: Eq + std::hash::Hash>(
    stored: &HashMap<K, crate::store::Existing>,
    keys: impl Iterator<Item = Option<K>>,
) -> Vec<i64> {
    keys.flatten()
        .filter_map(|k| stored.get(&k))
        .filter(|e| !e.ended)
        .map(|e| e.id)
        .collect()
}

/// The changes-feed rows of one institution's import, gathered while the
/// diff is applied and written in bulk with the audit events.
struct Feed<'a> {
    institution: &'a str,
    /// No service can follow an institution before its first import (a
    /// request names an existing institution, and a feed starts at its
    /// approval, after an export), so that import writes no rows: on a
    /// national first import they would be millions nobody can read.
    off: bool,
    /// Actor bits and grade bucket per person, from this roster.
    facts: HashMap<i64, (u8, u8)>,
    rows: Vec<NewChange>,
}

impl Feed<'_> {
    fn push(
        &mut self,
        kind: ChangeKind,
        op: ChangeOp,
        record: Option<&str>,
        person: Option<i64>,
    ) -> Option<&mut NewChange> {
        if self.off {
            return None;
        }
        let (actors, grade) = person
            .and_then(|p| self.facts.get(&p).copied())
            .unwrap_or((0, NO_GRADE));
        self.rows.push(NewChange {
            institution: self.institution.to_owned(),
            kind,
            op,
            record: record.map(str::to_owned),
            person_id: person,
            user_id: None,
            pupil_id: None,
            pupil_user_id: None,
            actors,
            grade,
        });
        self.rows.last_mut()
    }
    fn role(&mut self, op: ChangeOp, person: i64, role: RoleKind, grade: Option<&str>) {
        if let Some(row) = self.push(ChangeKind::Role, op, Some(role.as_str()), Some(person)) {
            row.actors = actor_bit(role.actor());
            row.grade = grade_index(grade);
        }
    }
    fn contact(&mut self, op: ChangeOp, (pupil, contact): (i64, i64)) {
        if let Some(row) = self.push(ChangeKind::Contact, op, None, Some(contact)) {
            row.pupil_id = Some(pupil);
            row.actors = ACTOR_CONTACT;
        }
    }
}

/// Changed content of a record that had ended brings it back: for the
/// provider it is created again.
fn op_of(ended: bool) -> ChangeOp {
    if ended {
        ChangeOp::Created
    } else {
        ChangeOp::Updated
    }
}

pub async fn apply(tx: &mut dyn ImportTx, p: &Prepared, ctx: &Context) -> Result<Summary> {
    let r = &p.parsed.roster;
    let now = ctx.now;
    let today = now.date();
    let full = ctx.mode == Mode::Full;
    let mut summary = Summary::default();
    let number = r.institution.number.as_str();

    // The institution.
    let inst_row = InstitutionRow {
        number,
        name: &r.institution.name,
        kind: r.institution.kind,
        municipality_code: r.institution.municipality_code.as_deref(),
        source_system: r.source_system.as_deref(),
        school_year: r.school_year.as_deref(),
        digest: p.institution_digest,
    };
    let stored_institution = tx.institution(number).await?;
    let stored_import = match &stored_institution {
        Some(e) => tx.import_digest(e.id).await?,
        None => None,
    };
    if full && p.content_digest.is_some() && stored_import == p.content_digest {
        // The very document the last full import applied, and nothing has
        // written to this roster since: every record is unchanged.
        return Ok(Summary::unchanged(r));
    }
    let first_import = stored_institution.is_none();
    let inst_id = match stored_institution {
        None => {
            summary.institutions.created = 1;
            tx.insert_institution(&inst_row, now).await?
        }
        Some(e) if e.digest != p.institution_digest => {
            summary.institutions.updated = 1;
            tx.update_institution(e.id, &inst_row, now).await?;
            e.id
        }
        Some(e) => {
            summary.institutions.unchanged = 1;
            e.id
        }
    };

    // Persons: global, keyed by user id; never ended by an import.
    let uids: Vec<&str> = r.persons.iter().map(|x| x.user_id.as_str()).collect();
    let stored = tx.persons(&uids).await?;
    let was_inactive: HashSet<i64> = stored
        .iter()
        .filter(|(_, e)| e.ended)
        .map(|(_, e)| e.id)
        .collect();
    let keys: Vec<(&str, i64)> = r
        .persons
        .iter()
        .zip(&p.persons)
        .map(|(x, (d, _))| (x.user_id.as_str(), *d))
        .collect();
    let mut plan = diff(
        stored.iter().map(|(u, e)| (u.as_str(), *e)).collect(),
        &keys,
        false,
    );
    plan.unchanged += plan.reopen.len();
    plan.reopen.clear();
    let row = |i: usize| PersonRow {
        person: &r.persons[i],
        cpr_enc: p.persons[i].1.as_ref().map(|c| c.0.clone()),
        cpr_hash: p.persons[i].1.as_ref().map(|c| c.1),
        digest: p.persons[i].0,
    };
    if !plan.insert.is_empty() {
        let rows: Vec<_> = plan.insert.iter().map(|&i| row(i)).collect();
        let ids = tx.insert_persons(&rows, now).await?;
        for (&i, id) in plan.insert.iter().zip(ids) {
            plan.ids[i] = Some(id);
        }
    }
    if !plan.update.is_empty() {
        let rows: Vec<_> = plan.update.iter().map(|&(i, id)| (id, row(i))).collect();
        tx.update_persons(&rows, now).await?;
    }
    summary.persons = Tally::of(&plan);
    let mut person_ids: HashMap<&str, i64> = uids
        .iter()
        .zip(&plan.ids)
        .filter_map(|(u, id)| id.map(|id| (*u, id)))
        .collect();
    // A delta may end records of persons it does not deliver.
    let e = &r.ended;
    let mut others: Vec<&str> = e
        .roles
        .iter()
        .map(|x| x.0.as_str())
        .chain(e.memberships.iter().map(|m| m.user_id.as_str()))
        .chain(e.contacts.iter().flat_map(|c| [c.0.as_str(), c.1.as_str()]))
        .filter(|u| !person_ids.contains_key(u))
        .collect();
    others.sort_unstable();
    others.dedup();
    if !others.is_empty() {
        for (u, e) in tx.persons(&others).await? {
            if let Some(u) = others.iter().find(|o| **o == u) {
                person_ids.insert(u, e.id);
            }
        }
    }
    let created: Vec<i64> = plan.insert.iter().filter_map(|&i| plan.ids[i]).collect();
    let updated: Vec<i64> = plan.update.iter().map(|&(_, id)| id).collect();
    let pid = |u: &str| person_ids.get(u).copied();
    let mut feed = Feed {
        institution: number,
        off: first_import,
        facts: HashMap::new(),
        rows: Vec::new(),
    };
    for x in r.roles.iter().filter(|_| !first_import) {
        if let Some(id) = pid(&x.user_id) {
            let f = feed.facts.entry(id).or_insert((0, NO_GRADE));
            f.0 |= actor_bit(x.role.actor());
            if x.role.actor() == crate::roster::Actor::Pupil {
                f.1 = grade_index(x.grade_level.as_deref());
            }
        }
    }
    for c in r.contacts.iter().filter(|_| !first_import) {
        if let Some(id) = pid(&c.contact) {
            feed.facts.entry(id).or_insert((0, NO_GRADE)).0 |= ACTOR_CONTACT;
        }
    }
    for &id in &created {
        feed.push(ChangeKind::Person, ChangeOp::Created, None, Some(id));
    }
    for &id in &updated {
        feed.push(ChangeKind::Person, ChangeOp::Updated, None, Some(id));
    }

    // Groups, keyed by the source's id within the institution.
    let stored: HashMap<String, _> = tx.groups(inst_id).await?.into_iter().collect();
    let keys: Vec<(String, i64)> = r
        .groups
        .iter()
        .zip(&p.groups)
        .map(|(g, d)| (g.id.clone(), *d))
        .collect();
    let mut gplan = diff(
        stored.iter().map(|(k, e)| (k.clone(), *e)).collect(),
        &keys,
        full,
    );
    if !full {
        gplan.end = named(&stored, r.ended.groups.iter().map(|g| Some(g.clone())));
    }
    if !gplan.insert.is_empty() {
        let rows: Vec<_> = gplan
            .insert
            .iter()
            .map(|&i| (&r.groups[i], p.groups[i]))
            .collect();
        let ids = tx.insert_groups(inst_id, &rows, now).await?;
        for (&i, id) in gplan.insert.iter().zip(ids) {
            gplan.ids[i] = Some(id);
        }
    }
    if !gplan.update.is_empty() {
        let rows: Vec<_> = gplan
            .update
            .iter()
            .map(|&(i, id)| (id, &r.groups[i], p.groups[i]))
            .collect();
        tx.update_groups(&rows, now).await?;
    }
    tx.reopen_rows(EndTable::Groups, &gplan.reopen).await?;
    tx.end_rows(EndTable::Groups, &gplan.end, today).await?;
    summary.groups = Tally::of(&gplan);
    let mut group_ids: HashMap<&str, i64> = r
        .groups
        .iter()
        .zip(&gplan.ids)
        .filter_map(|(g, id)| id.map(|id| (g.id.as_str(), id)))
        .collect();
    for (k, e) in &stored {
        group_ids.entry(k.as_str()).or_insert(e.id);
    }
    let group_key: HashMap<i64, &str> = group_ids.iter().map(|(k, id)| (*id, *k)).collect();
    for &i in &gplan.insert {
        feed.push(
            ChangeKind::Group,
            ChangeOp::Created,
            Some(&r.groups[i].id),
            None,
        );
    }
    for &(i, _) in &gplan.update {
        let g = &r.groups[i];
        let op = op_of(stored.get(&g.id).is_some_and(|e| e.ended));
        feed.push(ChangeKind::Group, op, Some(&g.id), None);
    }
    for (ids, op) in [
        (&gplan.reopen, ChangeOp::Created),
        (&gplan.end, ChangeOp::Ended),
    ] {
        for id in ids {
            if let Some(k) = group_key.get(id) {
                feed.push(ChangeKind::Group, op, Some(k), None);
            }
        }
    }

    // Roles, keyed by (person, role).
    let stored: HashMap<(i64, RoleKind), _> = tx.roles(inst_id).await?.into_iter().collect();
    let role_keys: Vec<((i64, RoleKind), i64)> = r
        .roles
        .iter()
        .zip(&p.roles)
        .map(|(x, d)| ((pid(&x.user_id).unwrap_or(-1), x.role), *d))
        .collect();
    let mut rplan = diff(
        stored.iter().map(|(k, e)| (*k, *e)).collect(),
        &role_keys,
        full,
    );
    if !full {
        rplan.end = named(
            &stored,
            r.ended
                .roles
                .iter()
                .map(|(u, role)| pid(u).map(|id| (id, *role))),
        );
    }
    let rows: Vec<_> = rplan
        .insert
        .iter()
        .map(|&i| (role_keys[i].0 .0, &r.roles[i], p.roles[i]))
        .collect();
    tx.insert_roles(inst_id, &rows, now).await?;
    let rows: Vec<_> = rplan
        .update
        .iter()
        .map(|&(i, id)| (id, &r.roles[i], p.roles[i]))
        .collect();
    tx.update_roles(&rows, now).await?;
    tx.reopen_rows(EndTable::Roles, &rplan.reopen).await?;
    tx.end_rows(EndTable::Roles, &rplan.end, today).await?;
    summary.roles = Tally::of(&rplan);
    let role_owner: HashMap<i64, (i64, RoleKind)> =
        stored.iter().map(|(k, e)| (e.id, *k)).collect();
    for &i in &rplan.insert {
        let x = &r.roles[i];
        feed.role(
            ChangeOp::Created,
            role_keys[i].0 .0,
            x.role,
            x.grade_level.as_deref(),
        );
    }
    for &(i, _) in &rplan.update {
        let x = &r.roles[i];
        let op = op_of(stored.get(&role_keys[i].0).is_some_and(|e| e.ended));
        feed.role(op, role_keys[i].0 .0, x.role, x.grade_level.as_deref());
    }
    for (ids, op) in [
        (&rplan.reopen, ChangeOp::Created),
        (&rplan.end, ChangeOp::Ended),
    ] {
        for id in ids {
            if let Some((person, role)) = role_owner.get(id) {
                let grade = feed.facts.get(person).map(|f| f.1);
                feed.role(op, *person, *role, None);
                if let (Some(g), Some(last)) = (grade, feed.rows.last_mut()) {
                    last.grade = g;
                }
            }
        }
    }

    // Memberships, keyed by (group, person).
    let stored: HashMap<(i64, i64), _> = tx.memberships(inst_id).await?.into_iter().collect();
    let keys: Vec<((i64, i64), i64)> = r
        .memberships
        .iter()
        .map(|m| {
            (
                (
                    group_ids.get(m.group.as_str()).copied().unwrap_or(-1),
                    pid(&m.user_id).unwrap_or(-1),
                ),
                0,
            )
        })
        .collect();
    let mut mplan = diff(stored.iter().map(|(k, e)| (*k, *e)).collect(), &keys, full);
    if !full {
        mplan.end = named(
            &stored,
            r.ended
                .memberships
                .iter()
                .map(|m| Some((*group_ids.get(m.group.as_str())?, pid(&m.user_id)?))),
        );
    }
    let rows: Vec<(i64, i64)> = mplan.insert.iter().map(|&i| keys[i].0).collect();
    tx.insert_memberships(&rows, now).await?;
    tx.reopen_rows(EndTable::Memberships, &mplan.reopen).await?;
    tx.end_rows(EndTable::Memberships, &mplan.end, today)
        .await?;
    summary.memberships = Tally::of(&mplan);
    let member_owner: HashMap<i64, (i64, i64)> = stored.iter().map(|(k, e)| (e.id, *k)).collect();
    let inserted = mplan.insert.iter().map(|&i| (keys[i].0, ChangeOp::Created));
    let others = [
        (&mplan.reopen, ChangeOp::Created),
        (&mplan.end, ChangeOp::Ended),
    ]
    .into_iter()
    .flat_map(|(ids, op)| {
        ids.iter()
            .filter_map(|id| member_owner.get(id))
            .map(move |k| (*k, op))
    });
    let changed: Vec<_> = inserted.chain(others).collect();
    for ((group, person), op) in changed {
        let record = group_key.get(&group).copied();
        feed.push(ChangeKind::Membership, op, record, Some(person));
    }

    // Contact-person relations, keyed by (pupil, contact).
    let stored: HashMap<(i64, i64), _> = tx.contacts(inst_id).await?.into_iter().collect();
    let keys: Vec<((i64, i64), i64)> = r
        .contacts
        .iter()
        .zip(&p.contacts)
        .map(|(c, d)| {
            (
                (pid(&c.pupil).unwrap_or(-1), pid(&c.contact).unwrap_or(-1)),
                *d,
            )
        })
        .collect();
    let mut cplan = diff(stored.iter().map(|(k, e)| (*k, *e)).collect(), &keys, full);
    if !full {
        cplan.end = named(
            &stored,
            r.ended
                .contacts
                .iter()
                .map(|(a, b)| Some((pid(a)?, pid(b)?))),
        );
    }
    let contact_row = |i: usize| {
        let c = &r.contacts[i];
        ContactRow {
            pupil: keys[i].0 .0,
            contact: keys[i].0 .1,
            relation: c.relation,
            custody: c.custody,
            access_level: c.access_level,
            digest: p.contacts[i],
        }
    };
    let rows: Vec<_> = cplan.insert.iter().map(|&i| contact_row(i)).collect();
    tx.insert_contacts(inst_id, &rows, now).await?;
    let rows: Vec<_> = cplan
        .update
        .iter()
        .map(|&(i, id)| (id, contact_row(i)))
        .collect();
    tx.update_contacts(&rows, now).await?;
    tx.reopen_rows(EndTable::Contacts, &cplan.reopen).await?;
    tx.end_rows(EndTable::Contacts, &cplan.end, today).await?;
    summary.contacts = Tally::of(&cplan);
    let contact_owner: HashMap<i64, (i64, i64)> = stored.iter().map(|(k, e)| (e.id, *k)).collect();
    for &i in &cplan.insert {
        feed.contact(ChangeOp::Created, keys[i].0);
    }
    for &(i, _) in &cplan.update {
        let op = op_of(stored.get(&keys[i].0).is_some_and(|e| e.ended));
        feed.contact(op, keys[i].0);
    }
    for (ids, op) in [
        (&cplan.reopen, ChangeOp::Created),
        (&cplan.end, ChangeOp::Ended),
    ] {
        for id in ids {
            if let Some(k) = contact_owner.get(id) {
                feed.contact(op, *k);
            }
        }
    }

    // A person ended everywhere becomes inactive; one delivered again with
    // a role or relation comes back.
    let mut touched: BTreeSet<i64> = BTreeSet::new();
    touched.extend(
        rplan
            .end
            .iter()
            .filter_map(|id| role_owner.get(id).map(|k| k.0)),
    );
    for id in &cplan.end {
        if let Some((a, b)) = contact_owner.get(id) {
            touched.insert(*a);
            touched.insert(*b);
        }
    }
    let inactivated = if touched.is_empty() {
        Vec::new()
    } else {
        let candidates: Vec<i64> = touched
            .into_iter()
            .filter(|id| !was_inactive.contains(id))
            .collect();
        let unlinked = tx.unlinked_persons(&candidates).await?;
        tx.set_inactive(&unlinked, Some(today)).await?;
        unlinked
    };
    let linked: HashSet<i64> = r
        .roles
        .iter()
        .map(|x| x.user_id.as_str())
        .chain(
            r.contacts
                .iter()
                .flat_map(|c| [c.pupil.as_str(), c.contact.as_str()]),
        )
        .filter_map(pid)
        .collect();
    let mut reactivated: Vec<i64> = was_inactive.intersection(&linked).copied().collect();
    reactivated.sort_unstable();
    tx.set_inactive(&reactivated, None).await?;
    summary.inactivated = inactivated.len();
    summary.reactivated = reactivated.len();
    for &id in &inactivated {
        feed.push(ChangeKind::Person, ChangeOp::Ended, None, Some(id));
    }
    for &id in &reactivated {
        feed.push(ChangeKind::Person, ChangeOp::Created, None, Some(id));
    }

    let import_digest = if full { p.content_digest } else { None };
    if stored_import != import_digest {
        tx.set_import_digest(inst_id, import_digest).await?;
    }

    if summary.changed() {
        let events = audit_events(
            ctx,
            p,
            &summary,
            Changes {
                created,
                updated,
                inactivated,
                reactivated,
                roles_granted: rplan
                    .insert
                    .iter()
                    .map(|&i| (role_keys[i].0 .0, r.roles[i].role))
                    .collect(),
                roles_ended: rplan
                    .end
                    .iter()
                    .filter_map(|id| role_owner.get(id))
                    .map(|(p, k)| (*p, *k))
                    .collect(),
            },
        );
        let head = tx.audit_head().await?;
        let (sealed, _) = chain::seal(head, now, events);
        tx.insert_audit(&sealed).await?;
        // After the audit head: the lock order every changes writer keeps.
        if !feed.rows.is_empty() {
            tx.insert_changes(&feed.rows, now).await?;
        }
    }
    Ok(summary)
}

struct Changes {
    created: Vec<i64>,
    updated: Vec<i64>,
    inactivated: Vec<i64>,
    reactivated: Vec<i64>,
    roles_granted: Vec<(i64, RoleKind)>,
    roles_ended: Vec<(i64, RoleKind)>,
}

fn audit_events(ctx: &Context, p: &Prepared, s: &Summary, c: Changes) -> Vec<NewEvent> {
    let number = &p.parsed.roster.institution.number;
    let ev = |action: &str| NewEvent::new(ctx.actor.clone(), action).institution(number.clone());
    let reason = match ctx.mode {
        Mode::Full => "not in the full import",
        Mode::Delta => "ended by a delta import",
    };
    let mut out = vec![ev(actions::ROSTER_IMPORT_INSTITUTION).details(json!({
        "mode": ctx.mode,
        "source": p.parsed.location.to_string(),
        "summary": s,
    }))];
    for (action, ids) in [
        (actions::PERSON_CREATED, c.created),
        (actions::PERSON_UPDATED, c.updated),
        (actions::PERSON_INACTIVATED, c.inactivated),
        (actions::PERSON_REACTIVATED, c.reactivated),
    ] {
        if !ids.is_empty() {
            out.push(ev(action).subjects(ids));
        }
    }
    for (action, roles, why) in [
        (actions::ROLE_GRANTED, c.roles_granted, None),
        (actions::ROLE_ENDED, c.roles_ended, Some(reason)),
    ] {
        if roles.is_empty() {
            continue;
        }
        let subjects: Vec<i64> = roles.iter().map(|r| r.0).collect();
        let names: Vec<&str> = roles.iter().map(|r| r.1.as_str()).collect();
        let mut details = json!({ "roles": names });
        if let Some(why) = why {
            details["reason"] = json!(why);
        }
        out.push(ev(action).subjects(subjects).details(details));
    }
    out
}
