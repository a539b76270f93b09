//! The provider portal's rules: who is a provider user (the [`ProviderUser`]
//! capability), registering a service for the provider, asking institutions
//! for data, and where each of the provider's services stands. A provider
//! user reaches only their own provider's services; anything else is "not
//! found", never "forbidden".

use super::actions;
use super::agreement::{self, Addressee, Approval, HistoryEntry, Provider, RequestSpec};
use super::agreement::{RequestStatus, ServiceLink};
use super::package::Package;
use crate::audit::NewEvent;
use crate::identity::session::ACR_ONE_FACTOR;
use crate::oidc::{self, Service};
use crate::store::portal::NewProviderUser;
use crate::store::Store;
use crate::{Clock, Error, Result};
use rand::Rng;
use serde_json::json;

/// A signed-in person who acts for a provider. Made only by
/// [`provider_user`], so holding one proves the link.
#[derive(Debug, Clone)]
pub struct ProviderUser {
    person_id: i64,
    provider: Provider,
}

impl ProviderUser {
    pub fn provider(&self) -> &Provider {
        &self.provider
    }
    /// The holder as an audit actor (`person:<id>`).
    pub fn actor_ref(&self) -> String {
        format!("person:{}", self.person_id)
    }
}

/// The capability of a signed-in person, when they are a provider user.
pub async fn provider_user(store: &dyn Store, person_id: i64) -> Result<Option<ProviderUser>> {
    let Some(id) = store.provider_of_person(person_id).await? else {
        return Ok(None);
    };
    Ok(store
        .providers()
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .map(|provider| ProviderUser {
            person_id,
            provider,
        }))
}

/// An operator makes a login for a provider: a person the roster never
/// delivers, user id `udb-` and eight random characters. Returns the user
/// id; the caller issues the activation code.
pub async fn add_user(
    store: &dyn Store,
    clock: &dyn Clock,
    operator: &str,
    provider_id: i64,
    name: &str,
    email: &str,
) -> Result<String> {
    let name = name.trim();
    let email = email.trim();
    if name.is_empty() {
        return Err(Error::invalid("SHARING_FIELD_REQUIRED", "name is required"));
    }
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "PORTAL_EMAIL_INVALID",
            "the e-mail address must look like name@example.dk",
        ));
    }
    let (given, family) = match name.rsplit_once(' ') {
        Some((g, f)) => (g.trim(), f.trim()),
        None => (name, ""),
    };
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    let user = NewProviderUser {
        provider_id,
        user_id: format!("udb-{suffix}"),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        email: email.to_owned(),
    };
    // The e-mail address is personal data: the event names the person by id.
    let ev = NewEvent::new(operator, actions::SHARING_PROVIDER_USER_ADDED)
        .details(json!({"provider": provider_id, "user_id": user.user_id}));
    store.add_provider_user(&user, clock.now(), ev).await?;
    Ok(user.user_id)
}

/// The provider's services, ordered by client id.
pub async fn services(store: &dyn Store, who: &ProviderUser) -> Result<Vec<Service>> {
    let mut out = Vec::new();
    for id in store.provider_services(who.provider.id).await? {
        if let Some(s) = store.service(&id).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// One of the provider's own services; any other is not found.
pub async fn service(store: &dyn Store, who: &ProviderUser, client_id: &str) -> Result<Service> {
    let linked = store
        .service_link(client_id)
        .await?
        .is_some_and(|l| l.provider_id == Some(who.provider.id));
    match store.service(client_id).await? {
        Some(s) if linked => Ok(s),
        _ => Err(Error::NotFound(format!("service {client_id}"))),
    }
}

/// What a provider registers.
#[derive(Debug, Clone, Default)]
pub struct NewService {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// `authorization_code`, `refresh_token`, `client_credentials`.
    pub grants: Vec<String>,
    pub public: bool,
}

/// A redirect URI is compared exactly; a fragment is never allowed
/// (RFC 6749 §3.1.2).
pub fn valid_uri(u: &str) -> bool {
    match u.split_once(':') {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !u.chars().any(char::is_whitespace)
                && !u.contains('#')
        }
        None => false,
    }
}

/// Everything wrong with a service registration, per form field.
pub fn service_problems(s: &NewService) -> Vec<agreement::Problem> {
    let mut out = Vec::new();
    let mut add = |field: &str, code: &'static str, message: &str| {
        out.push(agreement::Problem {
            field: field.to_owned(),
            code,
            message: message.to_owned(),
        })
    };
    if s.name.trim().is_empty() {
        add("name", "SHARING_FIELD_REQUIRED", "name is required");
    }
    if s.grants.is_empty() || s.grants.iter().any(|g| !oidc::GRANTS.contains(&g.as_str())) {
        add(
            "grants",
            "PORTAL_GRANTS_INVALID",
            "choose at least one grant",
        );
    }
    if s.grants.iter().any(|g| g == oidc::GRANT_CODE) && s.redirect_uris.is_empty() {
        add(
            "redirect_uris",
            "SHARING_FIELD_REQUIRED",
            "the code flow needs at least one redirect URI",
        );
    }
    if s.redirect_uris.iter().any(|u| !valid_uri(u)) {
        add(
            "redirect_uris",
            "PORTAL_URI_INVALID",
            "every redirect URI must be absolute, without a fragment",
        );
    }
    if s.post_logout_redirect_uris.iter().any(|u| !valid_uri(u)) {
        add(
            "post_logout_redirect_uris",
            "PORTAL_URI_INVALID",
            "every post-logout URI must be absolute, without a fragment",
        );
    }
    if s.public && s.grants.iter().any(|g| g == oidc::GRANT_CLIENT_CREDENTIALS) {
        add(
            "grants",
            "PORTAL_GRANTS_INVALID",
            "a public client cannot use client credentials",
        );
    }
    out
}

/// Registers a service for the provider and links it: the client id is
/// made from the name; the secret (confidential clients) is returned to be
/// shown once and only its hash is kept. The service is registered for
/// the large package (the authority package for an authority): what it
/// receives is what the institutions approve.
pub async fn register_service(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &ProviderUser,
    s: &NewService,
) -> Result<(Service, Option<String>)> {
    if let Some(p) = service_problems(s).into_iter().next() {
        return Err(Error::invalid(p.code, p.message));
    }
    let slug: String = s
        .name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(40).collect();
    let mut rng = rand::rngs::OsRng;
    let client_id = format!(
        "{}-{:06x}",
        if slug.is_empty() {
            "service"
        } else {
            slug.as_str()
        },
        rng.gen_range(0..0x100_0000u32)
    );
    let secret = (!s.public).then(oidc::random_token);
    let at = clock.now();
    let service = Service {
        client_id: client_id.clone(),
        name: s.name.trim().chars().take(200).collect(),
        secret_hash: secret.as_deref().map(oidc::hash_token),
        jwks_uri: None,
        jwks: None,
        redirect_uris: s.redirect_uris.clone(),
        post_logout_redirect_uris: s.post_logout_redirect_uris.clone(),
        grants: s.grants.clone(),
        package: if who.provider.authority {
            Package::Authority
        } else {
            Package::Large
        },
        min_acr: ACR_ONE_FACTOR.to_owned(),
        public: s.public,
        id_token_alg: "RS256".to_owned(),
        pairwise_salt: oidc::random_salt(),
        created_at: at.unix_timestamp(),
    };
    let ev = NewEvent::new(who.actor_ref(), actions::OIDC_SERVICE_ADDED).details(json!({
        "client_id": client_id, "package": service.package.as_str(), "grants": service.grants,
        "provider": who.provider.id,
    }));
    store.add_service(&service, at, ev).await?;
    let link = ServiceLink {
        client_id,
        provider_id: Some(who.provider.id),
        licence_required: false,
    };
    agreement::link_service(store, clock, &who.actor_ref(), &link).await?;
    Ok((service, secret))
}

/// Asks institutions for data for one of the provider's services (through
/// [`agreement::request`], which validates and audits).
pub async fn request(
    store: &dyn Store,
    clock: &dyn Clock,
    who: &ProviderUser,
    client_id: &str,
    spec: &RequestSpec,
    to: &Addressee,
) -> Result<Vec<(String, i64)>> {
    service(store, who, client_id).await?;
    agreement::request(store, clock, &who.actor_ref(), client_id, spec, to).await
}

/// Where a service stands at one institution, as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Pending,
    Approved { version: i64 },
    Rejected { reason: String },
    Revoked { reason: String },
    Blocked,
    Listed,
}

/// Every institution the service asked, holds an approval at or is
/// blocked at, by number, with what holds there now (several at once: an
/// approval in force and a raised request pending, say).
pub async fn standing(
    store: &dyn Store,
    who: &ProviderUser,
    client_id: &str,
) -> Result<Vec<(String, Vec<State>)>> {
    service(store, who, client_id).await?;
    let requests = store.requests(Some(client_id), None).await?;
    let mut numbers: Vec<String> = requests.iter().map(|r| r.institution.clone()).collect();
    numbers.extend(
        store
            .blocks(None)
            .await?
            .into_iter()
            .filter(|b| b.client_id == client_id)
            .map(|b| b.institution),
    );
    numbers.sort();
    numbers.dedup();
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        let a = agreement::agreement(store, client_id, &n).await?;
        let mut states = Vec::new();
        if a.block.is_some() {
            states.push(State::Blocked);
        }
        if let Some(x) = &a.approval {
            states.push(State::Approved { version: x.version });
        } else if let Some(last) = store.approvals(client_id, &n).await?.last() {
            // Ended without a successor: revoked.
            if last.end_reason.as_deref() != Some("superseded") {
                states.push(State::Revoked {
                    reason: last.end_reason.clone().unwrap_or_default(),
                });
            }
        }
        if a.pending.is_some() {
            states.push(State::Pending);
        }
        // The newest decided request (requests come newest first).
        let here = requests.iter().filter(|r| r.institution == n);
        match here
            .clone()
            .find(|r| r.status != RequestStatus::Superseded)
            .map(|r| (r.status, r.reason.clone()))
        {
            Some((RequestStatus::Rejected, reason)) => states.push(State::Rejected {
                reason: reason.unwrap_or_default(),
            }),
            Some((RequestStatus::Listed, _)) if a.approval.is_none() => states.push(State::Listed),
            _ => {}
        }
        out.push((n, states));
    }
    Ok(out)
}

/// The full history of one of the provider's services at an institution,
/// oldest first, with every approval version: what the admin sees.
pub async fn history(
    store: &dyn Store,
    who: &ProviderUser,
    client_id: &str,
    institution: &str,
) -> Result<(Vec<HistoryEntry>, Vec<Approval>)> {
    service(store, who, client_id).await?;
    Ok((
        store.history(client_id, institution).await?,
        store.approvals(client_id, institution).await?,
    ))
}
