//! The data API's lookups (issue 6): who may call (a [`ProviderClient`]
//! from a client-credentials token, a [`PersonCaller`] from a person's
//! access token) and what a lookup of a person or an institution returns.
//! Every field goes through the one policy (`policy::compile`/`decide`);
//! an institution where the service has no approval (nor the minimal
//! package listed), or blocks it, is treated as if it did not exist.

use super::package::{Field, FieldSet, Package, MINIMAL};
use super::policy::{compile, grade_index, institution_key, Channel, PersonFacts, Standing, View};
use super::record::{self, ContactOut, Personal, RoleOut};
use crate::crypto::DataKeys;
use crate::oidc::claims::ClaimsSource;
use crate::oidc::{
    hash_token, roles, sealed, Service, TokenKind, TokenRecord, GRANT_CLIENT_CREDENTIALS,
};
use crate::roster::{Actor, Cpr, RoleKind};
use crate::store::api::{CallerRead, PersonRead, StandingRead};
use crate::store::export::ExportPerson;
use crate::store::Store;
use crate::{Error, Result};
use serde::Serialize;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

/// A provider's service calling with a client-credentials token: the
/// capability every service endpoint needs. Made only by [`caller`].
#[derive(Debug, Clone)]
pub struct ProviderClient {
    service: Service,
    authority: bool,
}

impl ProviderClient {
    pub fn client_id(&self) -> &str {
        &self.service.client_id
    }
}

/// A person's access token, issued to a service at login: `/me` reads that
/// person only, as the service's claims would show them.
#[derive(Debug, Clone)]
pub struct PersonCaller {
    service: Service,
    person_id: i64,
    role: Option<String>,
}

impl PersonCaller {
    pub fn client_id(&self) -> &str {
        &self.service.client_id
    }
}

/// Who a bearer token speaks for.
#[derive(Debug, Clone)]
pub enum Caller {
    Service(ProviderClient),
    Person(PersonCaller),
}

impl Caller {
    pub fn client_id(&self) -> &str {
        match self {
            Caller::Service(c) => c.client_id(),
            Caller::Person(c) => c.client_id(),
        }
    }
}

fn unauthenticated() -> Error {
    Error::Unauthenticated("the access token is missing, unknown, expired or revoked".into())
}

/// The caller a bearer token stands for, or 401 when it is not a live
/// access token of an existing service (unknown, expired and revoked
/// tokens are not told apart). A stored row under the token's hash wins
/// over the sealed token's own claims: it is a login token, or the
/// revocation of a sealed one.
pub async fn caller(
    store: &dyn Store,
    keys: &DataKeys,
    token: Option<&str>,
    now: i64,
) -> Result<Caller> {
    let Some(token) = token else {
        return Err(unauthenticated());
    };
    let opened = sealed::open(keys, token);
    let read = store
        .caller_read(
            &hash_token(token),
            opened.as_ref().map(|r| r.client_id.as_str()),
        )
        .await?;
    caller_of(read, opened, now)
}

fn caller_of(read: CallerRead, opened: Option<TokenRecord>, now: i64) -> Result<Caller> {
    let Some(rec) = read
        .stored
        .or(opened)
        .filter(|r| r.kind == TokenKind::Access && r.is_active(now))
    else {
        return Err(unauthenticated());
    };
    let Some(service) = read.service.filter(|s| s.client_id == rec.client_id) else {
        return Err(unauthenticated());
    };
    match rec.grant.person_id {
        Some(person_id) => Ok(Caller::Person(PersonCaller {
            service,
            person_id,
            role: rec.grant.role,
        })),
        None if service.allows(GRANT_CLIENT_CREDENTIALS) && !service.public => {
            let authority = read.provider.is_some_and(|p| p.authority);
            Ok(Caller::Service(ProviderClient { service, authority }))
        }
        None => Err(unauthenticated()),
    }
}

/// [`caller`] and [`user`] in one read (`ApiStore::caller_person_read`)
/// when the token is a sealed client-credentials token, as a service's
/// token is; otherwise one after the other. The person is looked up only
/// for a service caller; the caller decides (401, 403, rate limit) before
/// the answer about the person is used.
pub async fn caller_and_user(
    store: &dyn Store,
    keys: &DataKeys,
    token: Option<&str>,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<(Caller, Option<Released>)> {
    let (unix, today) = (now.unix_timestamp(), now.date());
    let opened = token.and_then(|t| sealed::open(keys, t));
    let (Some(token), Some(sealed_client)) = (token, opened.as_ref().map(|r| r.client_id.clone()))
    else {
        let caller = caller(store, keys, token, unix).await?;
        let released = match &caller {
            Caller::Service(client) => user(store, keys, client, user_id, today).await?,
            Caller::Person(_) => None,
        };
        return Ok((caller, released));
    };
    let (read, person) = store
        .caller_person_read(&hash_token(token), &sealed_client, user_id)
        .await?;
    let caller = caller_of(read, opened, unix)?;
    let released = match &caller {
        Caller::Service(client) => user_of(keys, client, person, today)?,
        Caller::Person(_) => None,
    };
    Ok((caller, released))
}

/// The compiled lookup view of the service at one institution; `None`
/// when nothing may flow there (no approval and no listed minimal
/// package, or a block).
fn view_of(s: &StandingRead, authority: bool) -> Option<View> {
    if s.blocked || (s.approval.is_none() && !s.listed) {
        return None;
    }
    let standing = Standing {
        institution: &s.number,
        approved: s.approval.as_ref().map(|a| &a.spec),
        pending: s.pending.as_ref(),
        blocked: false,
        authority,
    };
    Some(compile(&standing, Channel::Lookup))
}

fn actor_of(role: &str) -> &'static str {
    if role == Actor::ContactPerson.as_str() {
        return Actor::ContactPerson.as_str();
    }
    RoleKind::parse(role).map_or(Actor::External.as_str(), |r| r.actor().as_str())
}

/// A person as the data API returns them: the institutions, roles and
/// groups, and the personal fields of the package released (absent fields
/// were not released or are not held).
// Each field is mapped as in the export (`record`). No `Debug`: it may
// carry a CPR number.
#[derive(Serialize, ToSchema)]
pub struct PersonRecord<'a> {
    /// The user id where the package releases it (small and up), else a
    /// pairwise pseudonym: stable for this service, different for others.
    pub id: String,
    /// The largest package all of whose fields were released.
    #[schema(example = "small")]
    pub package: &'static str,
    /// `Medarbejder`, `Elev`, `Ekstern`, `Kontaktperson`.
    pub actor_groups: Vec<&'static str>,
    pub institutions: Vec<InstitutionRef<'a>>,
    pub groups: Vec<GroupRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<&'a str>,
    #[serde(flatten)]
    pub personal: Personal<'a>,
    /// Roles with their details (grade level, student number, main group,
    /// initials, occupation) as far as released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleDetail<'a>>>,
    /// Contact relations (large package): a pupil's contact persons, a
    /// contact person's pupils.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<ContactRef<'a>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstitutionRef<'a> {
    #[schema(example = "101001")]
    pub number: &'a str,
    pub name: &'a str,
    /// Active roles there (`Lærer`, `Elev`, …).
    pub roles: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupRef<'a> {
    pub institution: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
}

/// A role at one institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoleDetail<'a> {
    pub institution: &'a str,
    #[serde(flatten)]
    pub role: RoleOut<'a>,
}

/// A contact relation at one institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactRef<'a> {
    pub institution: &'a str,
    #[serde(flatten)]
    pub contact: ContactOut,
}

/// What the person holds at one institution the policy let through.
#[derive(Debug, Clone)]
struct At {
    number: String,
    fields: FieldSet,
    /// Roles and contact relations there and the person's row; read only
    /// when more than the minimal package is released.
    row: Option<ExportPerson>,
}

/// A lookup's answer with what its audit event needs; [`Released::record`]
/// is the body.
pub struct Released {
    src: ClaimsSource,
    at: Vec<At>,
    salt: [u8; 32],
    released: FieldSet,
    cpr: Option<Cpr>,
    /// The internal id of the person sent (for the audit event).
    pub person_id: i64,
    pub package: Package,
}

impl Released {
    /// Whether the record carries a CPR number (the audit event says so).
    pub fn cpr_released(&self) -> bool {
        self.cpr.is_some()
    }

    /// The person as the service may see them.
    pub fn record(&self) -> PersonRecord<'_> {
        let src = &self.src;
        let released = self.released;
        let kept = |number: &str| self.at.iter().find(|a| a.number == number);
        let institutions = src
            .institutions
            .iter()
            .filter_map(|i| {
                let f = kept(&i.number)?.fields;
                f.contains(Field::Institution).then(|| InstitutionRef {
                    number: &i.number,
                    name: &i.name,
                    roles: if f.contains(Field::InstitutionRoles) {
                        &i.roles
                    } else {
                        &[]
                    },
                })
            })
            .collect();
        let mut actor_groups: Vec<&'static str> = vec![];
        if released.contains(Field::ActorGroups) {
            for i in src
                .institutions
                .iter()
                .filter(|i| kept(&i.number).is_some())
            {
                for r in &i.roles {
                    let a = actor_of(r);
                    if !actor_groups.contains(&a) {
                        actor_groups.push(a);
                    }
                }
            }
        }
        let groups = src
            .groups
            .iter()
            .filter(|g| kept(&g.institution).is_some_and(|a| a.fields.contains(Field::GroupIds)))
            .map(|g| GroupRef {
                institution: &g.institution,
                id: &g.id,
                name: &g.name,
                kind: &g.kind,
            })
            .collect();
        // The roles of the claims source's context (`/me` may be narrowed
        // to one role), with the details the institution releases.
        let in_context = |number: &str, role: &str| {
            src.institutions
                .iter()
                .any(|i| i.number == number && i.roles.iter().any(|r| r == role))
        };
        let rows = || {
            self.at
                .iter()
                .filter_map(|a| a.row.as_ref().map(|row| (a, row)))
        };
        let roles = released.contains(Field::Role).then(|| {
            rows()
                .filter(|(a, _)| a.fields.contains(Field::Role))
                .flat_map(|(a, row)| {
                    row.roles
                        .iter()
                        .filter(|r| in_context(&a.number, r.role.as_str()))
                        .map(|r| RoleDetail {
                            institution: &a.number,
                            role: RoleOut::of(r, a.fields),
                        })
                })
                .collect()
        });
        let contacts = released.contains(Field::ContactPersons).then(|| {
            rows()
                .filter(|(a, _)| a.fields.contains(Field::ContactPersons))
                .flat_map(|(a, row)| {
                    row.contacts.iter().map(|c| ContactRef {
                        institution: &a.number,
                        contact: ContactOut::of(c, &self.salt, a.fields),
                    })
                })
                .collect()
        });
        let personal = match rows().next() {
            Some((_, row)) => Personal::of(&row.person, released, self.cpr.clone()),
            None => Personal::none(),
        };
        PersonRecord {
            id: record::subject(&self.salt, released, &src.user_id),
            package: self.package.as_str(),
            actor_groups,
            institutions,
            groups,
            user_id: released
                .contains(Field::UserId)
                .then_some(src.user_id.as_str()),
            personal,
            roles,
            contacts,
        }
    }
}

/// Builds the answer from what was read at each kept institution, and
/// decrypts the CPR number if (and only if) released.
fn release(
    keys: &DataKeys,
    service: &Service,
    src: ClaimsSource,
    kept: Vec<(String, FieldSet, Option<ExportPerson>)>,
) -> Result<Released> {
    let released = kept
        .iter()
        .fold(FieldSet::EMPTY, |acc, (_, f, _)| acc.union(*f));
    // Roles, contacts and the person's row go out only beyond the
    // minimal package.
    let at: Vec<At> = kept
        .into_iter()
        .map(|(number, fields, row)| At {
            number,
            fields,
            row: row.filter(|_| fields.minus(MINIMAL) != FieldSet::EMPTY),
        })
        .collect();
    let encrypted = at
        .iter()
        .find_map(|a| a.row.as_ref())
        .and_then(|r| r.cpr_enc.as_deref());
    let cpr = record::cpr(keys, released, encrypted)?;
    Ok(Released {
        person_id: src.person_id,
        package: Package::released_as(released),
        src,
        at,
        salt: service.pairwise_salt,
        released,
        cpr,
    })
}

/// `GET /api/v1/users/{id}`: the person with this user id as the service
/// may see them, through the institutions where it is approved (each
/// institution's view decides what it releases; personal fields follow
/// their union). `None` when the person is unknown, inactive, or at no
/// such institution, or filtered out at all of them: the caller answers
/// all alike. Everything is read in one go (`ApiStore::person_read`).
pub async fn user(
    store: &dyn Store,
    keys: &DataKeys,
    client: &ProviderClient,
    user_id: &str,
    today: Date,
) -> Result<Option<Released>> {
    let read = store.person_read(client.client_id(), user_id).await?;
    user_of(keys, client, read, today)
}

fn user_of(
    keys: &DataKeys,
    client: &ProviderClient,
    read: Option<PersonRead>,
    today: Date,
) -> Result<Option<Released>> {
    let Some(read) = read.filter(|r| !r.account.inactive) else {
        return Ok(None);
    };
    let src = read.claims;
    let grade = grade_index(read.account.grade_level.as_deref());
    let mut kept = vec![];
    for (inst, standing) in src.institutions.iter().zip(read.at) {
        let Some(view) = view_of(&standing, client.authority) else {
            continue;
        };
        let facts = PersonFacts {
            institution: institution_key(&inst.number),
            actors: record::actor_bits(&inst.roles),
            grade,
            protected: src.protected,
            // The claims source holds active roles and memberships only:
            // ended ones never reach the policy, let alone the response.
            until: i32::MAX,
        };
        let here = record::released(&view, &facts, today);
        if here != FieldSet::EMPTY {
            kept.push((standing.number, here, standing.row));
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    release(keys, &client.service, src, kept).map(Some)
}

/// `GET /api/v1/me`: the token's person as the service's claims show them
/// (`access::login_view`: the fields every unblocked institution of
/// theirs allows, in the role context of the login). `None` when the
/// person is gone or every institution blocks the service.
pub async fn me(
    store: &dyn Store,
    keys: &DataKeys,
    caller: &PersonCaller,
    today: Date,
) -> Result<Option<Released>> {
    let Some(src) = store.claims_source(caller.person_id).await? else {
        return Ok(None);
    };
    let src = match &caller.role {
        Some(role) => roles::narrow(&src, role),
        None => src,
    };
    let grade = store
        .account(&src.user_id)
        .await?
        .and_then(|a| a.grade_level);
    let view =
        super::access::login_view(store, caller.client_id(), &src, grade.as_deref(), today).await?;
    if view.blocked() {
        return Ok(None);
    }
    let mut kept = Vec::with_capacity(view.open.len());
    for number in &view.open {
        let row = match store.export_institution(number).await? {
            Some(inst) => store.export_person(inst.id, src.person_id).await?,
            None => None,
        };
        kept.push((number.clone(), view.released, row));
    }
    release(keys, &caller.service, src, kept).map(Some)
}

/// An institution as the data API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstitutionRecord {
    #[schema(example = "101001")]
    pub number: String,
    pub name: String,
    /// `school`, `daycare`, …
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub school_year: Option<String>,
    /// The active groups.
    pub groups: Vec<GroupOut>,
    /// Municipality, institution, levels (årgange) and their groups.
    pub hierarchy: Hierarchy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupOut {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Hierarchy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<String>,
    pub institution: String,
    /// Groups by level; groups without a level under `null`.
    pub levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Level {
    pub level: Option<String>,
    /// Group ids.
    pub groups: Vec<String>,
}

/// `GET /api/v1/institutions/{number}`: `None` for an unknown institution
/// and for one where the service has no approval (or is blocked), alike.
/// Holds no personal data.
pub async fn institution(
    store: &dyn Store,
    client: &ProviderClient,
    number: &str,
) -> Result<Option<InstitutionRecord>> {
    let standing = store.standing_read(client.client_id(), number).await?;
    if view_of(&standing, client.authority).is_none() {
        return Ok(None);
    }
    let Some((roster, _)) = store.institution_roster(number).await? else {
        return Ok(None);
    };
    let groups: Vec<GroupOut> = roster
        .groups
        .iter()
        .map(|g| GroupOut {
            id: g.id.clone(),
            name: g.name.clone(),
            kind: g.kind.as_str().to_owned(),
            level: g.level.clone(),
            line: g.line.clone(),
        })
        .collect();
    let mut levels: Vec<Level> = vec![];
    for g in &groups {
        match levels.iter_mut().find(|l| l.level == g.level) {
            Some(l) => l.groups.push(g.id.clone()),
            None => levels.push(Level {
                level: g.level.clone(),
                groups: vec![g.id.clone()],
            }),
        }
    }
    let inst = roster.institution;
    Ok(Some(InstitutionRecord {
        hierarchy: Hierarchy {
            municipality_code: inst.municipality_code.clone(),
            institution: inst.number.clone(),
            levels,
        },
        number: inst.number,
        name: inst.name,
        kind: inst.kind.as_str().to_owned(),
        municipality_code: inst.municipality_code,
        school_year: roster.school_year,
        groups,
    }))
}
