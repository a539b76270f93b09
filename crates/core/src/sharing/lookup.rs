//! The data API's lookups (issue 6): who may call (a [`ProviderClient`]
//! from a client-credentials token, a [`PersonCaller`] from a person's
//! access token) and what a lookup of a person or an institution returns.
//! Every field goes through the one policy (`policy::compile`/`decide`);
//! an institution where the service has no approval (nor the minimal
//! package listed), or blocks it, is treated as if it did not exist.

use super::agreement::{current_approval, provider_of, RequestStatus};
use super::package::{Field, FieldSet, Package};
use super::policy::{
    actor_bit, compile, day, decide, grade_index, institution_key, Channel, PersonFacts, Standing,
    View, ACTOR_CONTACT,
};
use crate::oidc::claims::{subject, ClaimsSource};
use crate::oidc::{roles, Service, TokenKind, TokenRecord, GRANT_CLIENT_CREDENTIALS};
use crate::roster::{Actor, PhoneKind, RoleKind};
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

fn actor_bits(roles: &[String]) -> u8 {
    roles.iter().fold(0, |m, r| match RoleKind::parse(r) {
        Some(k) => m | actor_bit(k.actor()),
        None if r == Actor::ContactPerson.as_str() => m | ACTOR_CONTACT,
        None => m,
    })
}

/// A person as the data API returns them: the institutions, roles and
/// groups, and the personal fields of the package released (absent fields
/// were not released or are not held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PersonRecord {
    /// The user id where the package releases it (small and up), else a
    /// pairwise pseudonym: stable for this service, different for others.
    pub id: String,
    /// The largest package all of whose fields were released.
    #[schema(example = "small")]
    pub package: String,
    /// `Medarbejder`, `Elev`, `Ekstern`, `Kontaktperson`.
    pub actor_groups: Vec<String>,
    pub institutions: Vec<InstitutionRef>,
    pub groups: Vec<GroupRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The real name, or a protected person's alias name outside the
    /// authority package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Roles with their details (grade level, student number, main group)
    /// as far as released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<RoleDetail>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<AddressOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneOut>>,
    /// Name and address protection (large and authority packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InstitutionRef {
    #[schema(example = "101001")]
    pub number: String,
    pub name: String,
    /// Active roles there (`Lærer`, `Elev`, …).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupRef {
    pub institution: String,
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoleDetail {
    pub institution: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AddressOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PhoneOut {
    /// `home`, `work` or `mobile`.
    pub kind: String,
    pub number: String,
}

/// A lookup's answer with what its audit event needs.
#[derive(Debug, Clone)]
pub struct Released {
    pub record: PersonRecord,
    /// The internal id of the person sent (for the audit event).
    pub person_id: i64,
    pub package: Package,
}

/// Builds the record from the pieces the policy let through: `at` holds
/// each kept institution with the fields released there; personal fields
/// follow their union.
async fn build(
    store: &dyn Store,
    service: &Service,
    src: &ClaimsSource,
    at: &[(String, FieldSet)],
) -> Result<Released> {
    let released = at.iter().fold(FieldSet::EMPTY, |acc, (_, f)| acc.union(*f));
    let kept = |number: &str| at.iter().find(|(n, _)| n == number).map(|(_, f)| *f);
    let institutions: Vec<InstitutionRef> = src
        .institutions
        .iter()
        .filter_map(|i| {
            let f = kept(&i.number)?;
            f.contains(Field::Institution).then(|| InstitutionRef {
                number: i.number.clone(),
                name: i.name.clone(),
                roles: if f.contains(Field::InstitutionRoles) {
                    i.roles.clone()
                } else {
                    vec![]
                },
            })
        })
        .collect();
    let mut actor_groups: Vec<String> = vec![];
    if released.contains(Field::ActorGroups) {
        for i in src
            .institutions
            .iter()
            .filter(|i| kept(&i.number).is_some())
        {
            for r in &i.roles {
                let a = actor_of(r).to_owned();
                if !actor_groups.contains(&a) {
                    actor_groups.push(a);
                }
            }
        }
    }
    let groups = src
        .groups
        .iter()
        .filter(|g| kept(&g.institution).is_some_and(|f| f.contains(Field::GroupIds)))
        .map(|g| GroupRef {
            institution: g.institution.clone(),
            id: g.id.clone(),
            name: g.name.clone(),
            kind: g.kind.clone(),
        })
        .collect();
    let mut record = PersonRecord {
        id: subject(service, released, &src.user_id),
        package: Package::released_as(released).as_str().to_owned(),
        actor_groups,
        institutions,
        groups,
        user_id: released
            .contains(Field::UserId)
            .then(|| src.user_id.clone()),
        given_name: None,
        family_name: None,
        roles: None,
        email: None,
        birth_date: None,
        gender: None,
        address: None,
        phones: None,
        protected: None,
    };
    // Real names where released; a protected person's alias otherwise,
    // never their real name in its place.
    if released.contains(Field::GivenName) && released.contains(Field::FamilyName) {
        record.given_name = Some(src.given_name.clone());
        record.family_name = Some(src.family_name.clone());
    } else if released.contains(Field::AliasName) && src.protected {
        if let Some((g, f)) = &src.alias {
            record.given_name = Some(g.clone());
            record.family_name = Some(f.clone());
        }
    }
    if released.contains(Field::Email) {
        record.email = src.email.clone();
    }
    if released.contains(Field::Role) {
        let mut details = vec![];
        for r in store.roles_of(src.person_id).await? {
            let Some(f) = kept(&r.institution_number) else {
                continue;
            };
            if r.ended_on.is_some() || !f.contains(Field::Role) {
                continue;
            }
            details.push(RoleDetail {
                institution: r.institution_number,
                role: r.role,
                grade_level: r.grade_level.filter(|_| f.contains(Field::GradeLevel)),
                student_number: r
                    .student_number
                    .filter(|_| f.contains(Field::StudentNumber)),
                main_group: r.main_group.filter(|_| f.contains(Field::MainGroup)),
            });
        }
        record.roles = Some(details);
    }
    let personal = FieldSet::of(&[
        Field::BirthDate,
        Field::Gender,
        Field::Address,
        Field::HomePhone,
        Field::WorkPhone,
        Field::MobilePhone,
    ]);
    if released.0 & personal.0 != 0 {
        if let Some(facts) = store.person_facts(src.person_id).await? {
            if released.contains(Field::BirthDate) {
                record.birth_date = facts.birth_date;
            }
            if released.contains(Field::Gender) {
                record.gender = facts.gender;
            }
            if released.contains(Field::Address) {
                record.address = facts.address.map(|a| AddressOut {
                    street: a.street,
                    postal_code: a.postal_code,
                    city: a.city,
                    country: a.country,
                });
            }
            let phones: Vec<PhoneOut> = facts
                .phones
                .into_iter()
                .filter(|p| {
                    released.contains(match p.kind {
                        PhoneKind::Home => Field::HomePhone,
                        PhoneKind::Work => Field::WorkPhone,
                        PhoneKind::Mobile => Field::MobilePhone,
                    })
                })
                .map(|p| PhoneOut {
                    kind: p.kind.as_str().to_owned(),
                    number: p.number,
                })
                .collect();
            if !phones.is_empty() {
                record.phones = Some(phones);
            }
        }
    }
    if released.contains(Field::ProtectedFlag) {
        record.protected = Some(src.protected);
    }
    Ok(Released {
        record,
        person_id: src.person_id,
        package: Package::released_as(released),
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
    let mut at = vec![];
    for inst in &src.institutions {
        let Some(view) = view_at(store, client.client_id(), &inst.number, client.authority).await?
        else {
            continue;
        };
        let here = released_for(&view, &inst.number, &src, &inst.roles, grade, today);
        if here != FieldSet::EMPTY {
            at.push((inst.number.clone(), here));
        }
    }
    if at.is_empty() {
        return Ok(None);
    }
    build(store, &client.service, &src, &at).await.map(Some)
}

/// `GET /api/v1/me`: the token's person as the service's claims show them
/// (`access::login_view`: the fields every unblocked institution of
/// theirs allows, in the role context of the login). `None` when the
/// person is gone or every institution blocks the service.
pub async fn me(store: &dyn Store, caller: &PersonCaller, today: Date) -> Result<Option<Released>> {
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
    let at: Vec<(String, FieldSet)> = view
        .open
        .iter()
        .map(|n| (n.clone(), view.released))
        .collect();
    build(store, &caller.service, &src, &at).await.map(Some)
}

fn released_for(
    view: &View,
    number: &str,
    src: &ClaimsSource,
    roles: &[String],
    grade: u8,
    today: Date,
) -> FieldSet {
    let facts = PersonFacts {
        institution: institution_key(number),
        actors: actor_bits(roles),
        grade,
        protected: src.protected,
        // The claims source holds active roles and memberships only:
        // ended ones never reach the policy, let alone the response.
        until: i32::MAX,
    };
    let mut here = FieldSet::EMPTY;
    for f in Field::ALL {
        if decide(view, &facts, *f, day(today)).allowed {
            here = here.union(FieldSet::of(&[*f]));
        }
    }
    here
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
