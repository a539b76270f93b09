//! The data API's lookups (issue 6): who may call (a [`ProviderClient`]
//! from a client-credentials token, a [`PersonCaller`] from a person's
//! access token) and what a lookup of a person or an institution returns.
//! Every field goes through the one policy (`policy::compile`/`decide`);
//! an institution where the service has no approval (nor the minimal
//! package listed), or blocks it, is treated as if it did not exist.

use super::agreement::{current_approval, provider_of, RequestStatus};
use super::package::{Field, FieldSet, Package, MINIMAL};
use super::policy::{compile, grade_index, institution_key, Channel, PersonFacts, Standing, View};
use super::record::{self, ContactOut, Personal, RoleOut};
use crate::crypto::DataKeys;
use crate::oidc::claims::ClaimsSource;
use crate::oidc::{roles, Service, TokenKind, TokenRecord, GRANT_CLIENT_CREDENTIALS};
use crate::roster::{Actor, Cpr, RoleKind};
use crate::store::export::ExportPerson;
use crate::store::Store;
use crate::{Error, Result};
use serde::Serialize;
use time::Date;
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

/// The caller a stored token stands for, or 401 when it is not a live
/// access token of an existing service (unknown, expired and revoked
/// tokens are not told apart).
pub async fn caller(store: &dyn Store, token: Option<TokenRecord>, now: i64) -> Result<Caller> {
    let Some(rec) = token.filter(|r| r.kind == TokenKind::Access && r.is_active(now)) else {
        return Err(unauthenticated());
    };
    let Some(service) = store.service(&rec.client_id).await? else {
        return Err(unauthenticated());
    };
    match rec.grant.person_id {
        Some(person_id) => Ok(Caller::Person(PersonCaller {
            service,
            person_id,
            role: rec.grant.role,
        })),
        None if service.allows(GRANT_CLIENT_CREDENTIALS) && !service.public => {
            let authority = provider_of(store, &service.client_id)
                .await?
                .is_some_and(|p| p.authority);
            Ok(Caller::Service(ProviderClient { service, authority }))
        }
        None => Err(unauthenticated()),
    }
}

/// The compiled lookup view of the service at one institution; `None`
/// when nothing may flow there (no approval and no listed minimal
/// package, or a block).
async fn view_at(
    store: &dyn Store,
    client_id: &str,
    institution: &str,
    authority: bool,
) -> Result<Option<View>> {
    if store.block(client_id, institution).await?.is_some() {
        return Ok(None);
    }
    let approval = current_approval(store, client_id, institution).await?;
    let requests = store.requests(Some(client_id), Some(institution)).await?;
    let pending = requests
        .iter()
        .find(|r| r.status == RequestStatus::Pending)
        .map(|r| &r.spec);
    let listed = requests.iter().any(|r| r.status == RequestStatus::Listed);
    if approval.is_none() && !listed {
        return Ok(None);
    }
    let standing = Standing {
        institution,
        approved: approval.as_ref().map(|a| &a.spec),
        pending,
        blocked: false,
        authority,
    };
    Ok(Some(compile(&standing, Channel::Lookup)))
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

/// Reads what the record needs beyond the claims source, at each kept
/// institution, and decrypts the CPR number if (and only if) released.
async fn release(
    store: &dyn Store,
    keys: &DataKeys,
    service: &Service,
    src: ClaimsSource,
    kept: Vec<(String, FieldSet)>,
) -> Result<Released> {
    let released = kept
        .iter()
        .fold(FieldSet::EMPTY, |acc, (_, f)| acc.union(*f));
    let mut at = Vec::with_capacity(kept.len());
    for (number, fields) in kept {
        let row = if fields.minus(MINIMAL) == FieldSet::EMPTY {
            None
        } else {
            match store.export_institution(&number).await? {
                Some(inst) => store.export_person(inst.id, src.person_id).await?,
                None => None,
            }
        };
        at.push(At {
            number,
            fields,
            row,
        });
    }
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
/// all alike.
pub async fn user(
    store: &dyn Store,
    keys: &DataKeys,
    client: &ProviderClient,
    user_id: &str,
    today: Date,
) -> Result<Option<Released>> {
    let Some(account) = store.account(user_id).await? else {
        return Ok(None);
    };
    if account.inactive {
        return Ok(None);
    }
    let Some(src) = store.claims_source(account.person_id).await? else {
        return Ok(None);
    };
    let grade = grade_index(account.grade_level.as_deref());
    let mut kept = vec![];
    for inst in &src.institutions {
        let Some(view) = view_at(store, client.client_id(), &inst.number, client.authority).await?
        else {
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
            kept.push((inst.number.clone(), here));
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    release(store, keys, &client.service, src, kept)
        .await
        .map(Some)
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
    let kept: Vec<(String, FieldSet)> = view
        .open
        .iter()
        .map(|n| (n.clone(), view.released))
        .collect();
    release(store, keys, &caller.service, src, kept)
        .await
        .map(Some)
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
    if view_at(store, client.client_id(), number, client.authority)
        .await?
        .is_none()
    {
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
