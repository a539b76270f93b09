//! The sharing policy at login: which fields of the person logging in a
//! service may receive (the claims follow it), whether the service is
//! blocked at the person's institutions, and whether a service that
//! requires a licence is licensed to them. Read from the store on every
//! login, token and userinfo call, so a revocation or block acts at once.

use super::agreement::{self, provider_of};
use super::licence::licensed;
use super::package::{FieldSet, MINIMAL};
use super::policy::{compile, grade_index, institution_key, Channel, PersonFacts, Standing};
use super::record;
use crate::oidc::claims::ClaimsSource;
use crate::store::Store;
use crate::Result;
use time::Date;

/// What a login to a service may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginView {
    /// The fields released of this person: those every one of their
    /// (unblocked) institutions allows (deny by default); none when all
    /// of them block the service.
    pub released: FieldSet,
    /// Institutions (number, name) that block the service.
    pub blocked_at: Vec<(String, String)>,
    /// Institutions (numbers) that do not.
    pub open: Vec<String>,
}

/// Why a login to a service is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Every institution of the person blocks the service (their names).
    Blocked(Vec<String>),
    /// The service needs a licence and the person has none (the names of
    /// the institutions whose admins can grant one).
    NoLicence(Vec<String>),
}

/// The fields the policy releases of `src` to `client_id`, per institution.
pub async fn login_view(
    store: &dyn Store,
    client_id: &str,
    src: &ClaimsSource,
    grade_level: Option<&str>,
    today: Date,
) -> Result<LoginView> {
    let authority = provider_of(store, client_id)
        .await?
        .is_some_and(|p| p.authority);
    let mut released: Option<FieldSet> = None;
    let mut view = LoginView {
        released: MINIMAL,
        blocked_at: vec![],
        open: vec![],
    };
    for inst in &src.institutions {
        let a = agreement::agreement(store, client_id, &inst.number).await?;
        if a.block.is_some() {
            view.blocked_at
                .push((inst.number.clone(), inst.name.clone()));
            continue;
        }
        view.open.push(inst.number.clone());
        let compiled = compile(&Standing::of(&inst.number, &a, authority), Channel::Lookup);
        let facts = PersonFacts {
            institution: institution_key(&inst.number),
            // A contact person is at an institution through a child there;
            // the claims source names that relation `Kontaktperson`.
            actors: record::actor_bits(&inst.roles),
            grade: grade_index(grade_level),
            protected: src.protected,
            // The claims source holds active memberships only.
            until: i32::MAX,
        };
        let here = record::released(&compiled, &facts, today);
        released = Some(match released {
            Some(r) => FieldSet(r.0 & here.0),
            None => here,
        });
    }
    // A person with no institution at all (a contact person, say) gets
    // what the minimal package carries.
    view.released = match released {
        Some(r) => r,
        // Blocked everywhere: nothing.
        None if !view.blocked_at.is_empty() => FieldSet::EMPTY,
        None => MINIMAL,
    };
    Ok(view)
}

/// Checks a login to a service: refused when every institution of the
/// person blocks it, or when it needs a licence the person lacks.
pub async fn admit(
    store: &dyn Store,
    client_id: &str,
    src: &ClaimsSource,
    view: &LoginView,
    today: Date,
) -> Result<Option<Refusal>> {
    if view.blocked() {
        return Ok(Some(Refusal::Blocked(
            view.blocked_at.iter().map(|(_, n)| n.clone()).collect(),
        )));
    }
    let required = store
        .service_link(client_id)
        .await?
        .is_some_and(|l| l.licence_required);
    if !required {
        return Ok(None);
    }
    let licences = store.licences(Some(client_id), None).await?;
    let open: Vec<&str> = view.open.iter().map(String::as_str).collect();
    let groups: Vec<&str> = src.groups.iter().map(|g| g.id.as_str()).collect();
    if licensed(&licences, &open, &src.user_id, &groups, today) {
        return Ok(None);
    }
    Ok(Some(Refusal::NoLicence(
        src.institutions
            .iter()
            .filter(|i| view.open.contains(&i.number))
            .map(|i| i.name.clone())
            .collect(),
    )))
}

impl LoginView {
    /// Every institution of the person blocks the service.
    pub fn blocked(&self) -> bool {
        self.open.is_empty() && !self.blocked_at.is_empty()
    }
}
