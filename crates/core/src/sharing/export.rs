//! The export (issue 6): an institution's approved package for one service,
//! as JSON or as a OneRoster 1.2 CSV zip, produced page by page so memory
//! stays one page whatever the institution's size, every page audited
//! before its bytes leave. What is released is the one [`policy`]'s answer.
//!
//! Use: [`open`] resolves the approval in force for the export channel
//! (anything else is "not found", so nobody learns whether the institution
//! exists or what it decided), then [`Export::next_chunk`] is pulled until
//! it returns `None`. The producer runs at most one page ahead of the
//! consumer: while a page is projected, encoded and audited, the next
//! page's read is already on its way (a reader thread, or the database
//! server); nothing is encoded or audited before it is asked for.

mod oneroster;
mod zipstream;

use super::agreement::{self, Filters};
use super::package::{Field, FieldSet, Package};
use super::policy::{
    actor_bit, compile, grade_index, institution_key, Channel, PersonFacts, Standing, View,
    ACTOR_CONTACT,
};
use super::record::{self, ContactOut, Personal, RoleOut};
use crate::audit::{actions, NewEvent};
use crate::crypto::DataKeys;
use crate::oidc::Service;
use crate::roster::{Actor, Cpr, Group, Institution, RoleKind};
use crate::store::export::{ExportInstitution, ExportPerson};
use crate::store::Store;
use crate::{Clock, Error, Result};
use futures_util::future::{maybe_done, FutureExt, MaybeDone};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Persons per page: one page is what the export holds in memory.
pub const PAGE_SIZE: usize = 2000;

/// The body's format, chosen by the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`: a header object, the persons, the groups.
    Json,
    /// `application/zip`: a OneRoster 1.2 CSV bundle.
    OneRoster,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::OneRoster => "application/zip",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::OneRoster => "oneroster",
        }
    }
}

/// Which import the exported roster comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRef {
    /// The digest (hex) of the document the last full import applied;
    /// none when a delta or another write changed the roster since.
    pub digest: Option<String>,
    /// When an import last changed the institution (RFC 3339).
    pub updated_at: String,
    pub source_system: Option<String>,
    pub school_year: Option<String>,
}

/// What the export says about itself, first in the JSON body (and in the
/// OneRoster manifest): when, for whom, which package, from which import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub format: &'static str,
    /// RFC 3339.
    pub made_at: String,
    pub service: String,
    pub package: Package,
    /// The approval in force: its version and when it was given (Unix s).
    pub approval_version: i64,
    pub approved_at: i64,
    pub institution: Institution,
    pub import: ImportRef,
    pub filters: Filters,
    /// The fields released of an ordinary person.
    pub fields: Vec<&'static str>,
}

/// Counts, for the caller's log and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Persons whose data was sent (once per person, whatever the files).
    pub persons: u64,
    pub bytes: u64,
    pub pages: u64,
    /// Audit events written.
    pub audit_events: u64,
}

enum State {
    Start,
    /// Persons after this id; for OneRoster, in the file `pass` names.
    Persons {
        after: i64,
        pass: usize,
    },
    Tail,
    Done,
}

/// A page's read, started ahead of its turn.
type PageRead =
    Pin<Box<MaybeDone<Pin<Box<dyn Future<Output = Result<Vec<ExportPerson>>> + Send>>>>>;

/// An export in progress. Pull [`Export::next_chunk`] until `None`.
pub struct Export {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: DataKeys,
    header: Header,
    view: View,
    salt: [u8; 32],
    inst: ExportInstitution,
    groups: Vec<Group>,
    format: Format,
    page_size: usize,
    today: Date,
    state: State,
    first_person: bool,
    zip: Option<zipstream::ZipStream>,
    progress: Progress,
    /// The read of the page after `(after, pass)`, started ahead.
    ahead: Option<((i64, usize), PageRead)>,
}

/// Resolves what `client_id` may export of institution `number` now and
/// prepares the export; nothing is read of persons yet and nothing is
/// audited. Every refusal (unknown service or institution, no approval,
/// revoked, blocked, an approval for lookup only) is the same
/// [`Error::NotFound`].
pub async fn open(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    keys: DataKeys,
    client_id: &str,
    number: &str,
    format: Format,
) -> Result<Export> {
    let not_found = || Error::NotFound(format!("institution {number}"));
    let service: Service = store.service(client_id).await?.ok_or_else(not_found)?;
    let inst = store
        .export_institution(number)
        .await?
        .ok_or_else(not_found)?;
    let a = agreement::agreement(&*store, client_id, number).await?;
    let authority = agreement::provider_of(&*store, client_id)
        .await?
        .is_some_and(|p| p.authority);
    let view = compile(&Standing::of(number, &a, authority), Channel::Export);
    let approval = match (&a.approval, view.denied()) {
        (Some(ap), None) => ap,
        _ => return Err(not_found()),
    };
    let groups = store.export_groups(inst.id).await?;
    let now = clock.now();
    let header = Header {
        format: "tilgang-export/1",
        made_at: rfc3339(now),
        service: client_id.to_owned(),
        package: view.package(),
        approval_version: approval.version,
        approved_at: approval.approved_at,
        institution: inst.institution.clone(),
        import: ImportRef {
            digest: inst.import_digest.map(|d| format!("{:016x}", d as u64)),
            updated_at: OffsetDateTime::from_unix_timestamp(inst.updated_at)
                .map(rfc3339)
                .unwrap_or_default(),
            source_system: inst.source_system.clone(),
            school_year: inst.school_year.clone(),
        },
        filters: approval.spec.filters.clone(),
        fields: view.fields().iter().map(Field::as_str).collect(),
    };
    Ok(Export {
        store,
        today: now.date(),
        clock,
        keys,
        header,
        view,
        salt: service.pairwise_salt,
        inst,
        groups,
        format,
        page_size: PAGE_SIZE,
        state: State::Start,
        first_person: true,
        zip: None,
        progress: Progress::default(),
        ahead: None,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// One person as the policy releases them to this service.
pub(crate) struct Released<'a> {
    pub p: &'a ExportPerson,
    pub fields: FieldSet,
    /// The id the service knows the person by: the user id where released,
    /// a pairwise pseudonym otherwise.
    pub id: String,
    /// The names released: real, or a protected person's alias.
    pub names: Option<(&'a str, &'a str)>,
    pub actors: Vec<Actor>,
}

impl Export {
    pub fn header(&self) -> &Header {
        &self.header
    }
    pub fn format(&self) -> Format {
        self.format
    }
    pub fn progress(&self) -> Progress {
        self.progress
    }
    /// Starts reading the page after `after` (polled once, so that the
    /// store has it in hand), to be awaited on the next step.
    fn read_ahead(&mut self, after: i64, pass: usize) {
        let (store, id, n) = (self.store.clone(), self.inst.id, self.page_size);
        let read: Pin<Box<dyn Future<Output = Result<Vec<ExportPerson>>> + Send>> =
            Box::pin(async move { store.export_page(id, after, n).await });
        let mut read = Box::pin(maybe_done(read));
        let _ = read.as_mut().now_or_never();
        self.ahead = Some(((after, pass), read));
    }

    /// Persons per page (tests use small pages).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// The next piece of the body, or `None` at the end. A page's persons
    /// are audited before its bytes are returned; when that fails, the
    /// error comes instead and the export ends.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        let out = self.step().await;
        match &out {
            Ok(Some(b)) => self.progress.bytes += b.len() as u64,
            Ok(None) => {}
            Err(_) => self.state = State::Done,
        }
        out
    }

    async fn step(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Start => {
                    self.state = State::Persons { after: 0, pass: 0 };
                    return Ok(Some(match self.format {
                        Format::Json => self.json_start()?,
                        Format::OneRoster => self.oneroster_start()?,
                    }));
                }
                State::Persons { after, pass } => {
                    let page = match self.ahead.take() {
                        Some((at, mut read)) if at == (after, pass) => {
                            read.as_mut().await;
                            read.as_mut().take_output().unwrap_or_else(|| {
                                Err(Error::Store("an export page was read twice".into()))
                            })?
                        }
                        _ => {
                            self.store
                                .export_page(self.inst.id, after, self.page_size)
                                .await?
                        }
                    };
                    let Some(last) = page.last().map(|p| p.id) else {
                        self.state = match self.format {
                            Format::OneRoster
                                if pass + 1 < oneroster::passes(self.view.fields()) =>
                            {
                                State::Persons {
                                    after: 0,
                                    pass: pass + 1,
                                }
                            }
                            _ => State::Tail,
                        };
                        if let Some(chunk) = self.end_pass(pass)? {
                            return Ok(Some(chunk));
                        }
                        continue;
                    };
                    self.state = State::Persons { after: last, pass };
                    self.read_ahead(last, pass);
                    let released: Vec<Released<'_>> =
                        page.iter().filter_map(|p| self.release(p)).collect();
                    if released.is_empty() {
                        continue;
                    }
                    let body = match self.format {
                        Format::Json => self.json_page(&released)?,
                        Format::OneRoster => self.oneroster_page(pass, &released)?,
                    };
                    let ids: Vec<i64> = released.iter().map(|r| r.p.id).collect();
                    if pass == 0 {
                        self.progress.persons += ids.len() as u64;
                    }
                    self.progress.pages += 1;
                    let file = match self.format {
                        Format::Json => "persons",
                        Format::OneRoster => oneroster::PASSES[pass],
                    };
                    let cpr = matches!(file, "persons" | "users")
                        && released
                            .iter()
                            .any(|r| record::cpr_released(r.fields, r.p.cpr_enc.as_deref()));
                    // Audit first: if it fails, these bytes never leave.
                    self.audit(ids, file, cpr).await?;
                    if body.is_empty() {
                        continue;
                    }
                    return Ok(Some(body));
                }
                State::Tail => {
                    self.state = State::Done;
                    return Ok(Some(match self.format {
                        Format::Json => self.json_tail()?,
                        Format::OneRoster => self.oneroster_tail()?,
                    }));
                }
            }
        }
    }

    /// The one audit path of the export: one event per page, naming the
    /// service, the package, the institution and each person sent.
    async fn audit(&mut self, subjects: Vec<i64>, file: &str, cpr: bool) -> Result<()> {
        let event = NewEvent::new(
            format!("service:{}", self.header.service),
            actions::SHARING_EXPORTED,
        )
        .institution(self.inst.institution.number.clone())
        .subjects(subjects)
        .details(serde_json::json!({
            "service": self.header.service,
            "package": self.header.package,
            "format": self.format.as_str(),
            "file": file,
            "made_at": self.header.made_at,
            "cpr_released": cpr,
        }));
        record(&*self.store, self.clock.now(), event).await?;
        self.progress.audit_events += 1;
        Ok(())
    }

    /// What the policy releases of `p`; `None` when nothing (filtered out
    /// by actor type or grade level, or no longer at the institution).
    fn release<'a>(&self, p: &'a ExportPerson) -> Option<Released<'a>> {
        let mut actors = 0u8;
        let mut grade = None;
        for r in &p.roles {
            actors |= actor_bit(r.role.actor());
            if r.role.actor() == Actor::Pupil && grade.is_none() {
                grade = r.grade_level.as_deref();
            }
        }
        if p.contacts.iter().any(|c| c.contact == p.person.user_id) {
            actors |= ACTOR_CONTACT;
        }
        let facts = PersonFacts {
            institution: institution_key(&self.inst.institution.number),
            actors,
            grade: grade_index(grade),
            protected: p.person.protected,
            // The store pages persons with an active role or relation.
            until: i32::MAX,
        };
        let fields = record::released(&self.view, &facts, self.today);
        if !fields.contains(Field::Pseudonym) {
            return None;
        }
        let person = &p.person;
        let names = record::person_names(person, fields);
        let actor_list = Actor::ALL
            .iter()
            .copied()
            .filter(|a| actors & actor_bit(*a) != 0)
            .collect();
        Some(Released {
            id: self.subject(fields, &person.user_id),
            p,
            fields,
            names,
            actors: actor_list,
        })
    }

    /// How the service knows a person: the user id when the package
    /// releases it, else the service's pairwise pseudonym (as at login).
    pub(crate) fn subject(&self, released: FieldSet, user_id: &str) -> String {
        record::subject(&self.salt, released, user_id)
    }

    /// Memberships still running today (an end date today or earlier is
    /// ended; the import sets it to the day it saw the membership gone).
    pub(crate) fn active_groups<'a>(&self, p: &'a ExportPerson) -> impl Iterator<Item = &'a str> {
        let today = self.today;
        p.memberships
            .iter()
            .filter(move |m| m.ended_on.is_none_or(|d| d > today))
            .map(|m| m.group.as_str())
    }

    fn cpr(&self, r: &Released<'_>) -> Result<Option<Cpr>> {
        record::cpr(&self.keys, r.fields, r.p.cpr_enc.as_deref())
    }

    fn json_start(&mut self) -> Result<Vec<u8>> {
        let mut out = b"{\"header\":".to_vec();
        serde_json::to_writer(&mut out, &self.header).map_err(Error::store)?;
        out.extend_from_slice(b",\n\"persons\":[");
        Ok(out)
    }

    fn json_page(&mut self, page: &[Released<'_>]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(page.len() * 256);
        for r in page {
            if !self.first_person {
                out.push(b',');
            }
            self.first_person = false;
            out.push(b'\n');
            let person = self.person_out(r)?;
            serde_json::to_writer(&mut out, &person).map_err(Error::store)?;
        }
        Ok(out)
    }

    fn person_out<'a>(&self, r: &'a Released<'a>) -> Result<PersonOut<'a>> {
        let f = r.fields;
        let has = |x: Field| f.contains(x);
        Ok(PersonOut {
            id: &r.id,
            user_id: has(Field::UserId).then_some(r.p.person.user_id.as_str()),
            actor_groups: has(Field::ActorGroups)
                .then(|| r.actors.iter().map(|a| a.as_str()).collect()),
            roles: has(Field::InstitutionRoles)
                .then(|| r.p.roles.iter().map(|role| RoleOut::of(role, f)).collect()),
            groups: has(Field::GroupIds).then(|| self.active_groups(r.p).collect()),
            personal: Personal::of(&r.p.person, f, self.cpr(r)?),
            contacts: has(Field::ContactPersons).then(|| {
                r.p.contacts
                    .iter()
                    .map(|c| ContactOut::of(c, &self.salt, f))
                    .collect()
            }),
        })
    }

    fn json_tail(&mut self) -> Result<Vec<u8>> {
        let full = self.view.fields().contains(Field::Groups);
        let groups: Vec<GroupOut<'_>> = self
            .groups
            .iter()
            .map(|g| GroupOut {
                id: &g.id,
                name: full.then_some(g.name.as_str()),
                kind: full.then_some(g.kind.as_str()),
                level: g.level.as_deref().filter(|_| full),
                line: g.line.as_deref().filter(|_| full),
                from: g.from.filter(|_| full).map(|d| d.to_string()),
                to: g.to.filter(|_| full).map(|d| d.to_string()),
            })
            .collect();
        let mut out = b"],\n\"groups\":".to_vec();
        serde_json::to_writer(&mut out, &groups).map_err(Error::store)?;
        out.extend_from_slice(b"}\n");
        Ok(out)
    }

    fn end_pass(&mut self, pass: usize) -> Result<Option<Vec<u8>>> {
        match self.format {
            Format::Json => Ok(None),
            Format::OneRoster => self.oneroster_end_pass(pass),
        }
    }
}

/// Writes an export's audit event. The one place, so the group-commit
/// writer can take over without touching the export.
pub async fn record(store: &dyn Store, at: OffsetDateTime, event: NewEvent) -> Result<()> {
    store.append_audit(at, vec![event]).await
}

/// Pulls the whole export into `w` (the CLI and the benchmark).
pub async fn write_all(export: &mut Export, w: &mut dyn std::io::Write) -> Result<Progress> {
    while let Some(chunk) = export.next_chunk().await? {
        w.write_all(&chunk)
            .map_err(|e| Error::io("export output".to_owned(), e))?;
    }
    Ok(export.progress())
}

#[derive(Serialize)]
struct PersonOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor_groups: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<RoleOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<&'a str>>,
    #[serde(flatten)]
    personal: Personal<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<ContactOut>>,
}

#[derive(Serialize)]
struct GroupOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
}

/// The OneRoster role name of a tilgang role (the inverse of the import's
/// mapping, docs/oneroster-mapping.md).
pub(crate) fn oneroster_role(r: RoleKind) -> &'static str {
    use RoleKind::*;
    match r {
        Pupil | Child | Student => "student",
        Teacher => "teacher",
        Pedagogue => "aide",
        Leader | Management => "principal",
        Substitute => "proctor",
        Consultant => "counselor",
        Trainee => "ext:Praktikant",
        External => "ext:Ekstern",
    }
}
