//! Several roles: a person who is, say, a teacher at one school and a
//! parent at another acts towards a service in one role context at a time
//! (an actor group at an institution). The context comes from the
//! service's request when it names one, or is the only one that applies,
//! or is chosen once by the person and remembered per service. The chosen
//! context narrows the claims source before the package decides the
//! claims (`claims::person_claims`).

use super::claims::ClaimsSource;
use crate::roster::model::{Actor, RoleKind};
use serde_json::Value;

/// One role context: an actor group at an institution, with the roles
/// there that belong to that group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleContext {
    pub institution: String,
    pub institution_name: String,
    pub actor: String,
    pub roles: Vec<String>,
}

impl RoleContext {
    /// The stable key a choice is remembered under: `INSTITUTION/ACTOR`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.institution, self.actor)
    }
}

/// The actor group of a role as the claims name it (`Kontaktperson` for a
/// contact relation); an unknown role counts as external, the group that
/// releases least.
fn actor_of(role: &str) -> &'static str {
    if role == Actor::ContactPerson.as_str() {
        return Actor::ContactPerson.as_str();
    }
    RoleKind::parse(role).map_or(Actor::External.as_str(), |r| r.actor().as_str())
}

/// The person's role contexts, in institution order.
pub fn contexts(src: &ClaimsSource) -> Vec<RoleContext> {
    let mut out: Vec<RoleContext> = Vec::new();
    for inst in &src.institutions {
        for role in &inst.roles {
            let actor = actor_of(role);
            match out
                .iter_mut()
                .find(|c| c.institution == inst.number && c.actor == actor)
            {
                Some(c) => c.roles.push(role.clone()),
                None => out.push(RoleContext {
                    institution: inst.number.clone(),
                    institution_name: inst.name.clone(),
                    actor: actor.to_owned(),
                    roles: vec![role.clone()],
                }),
            }
        }
    }
    out
}

/// The claims source as seen in one context: that institution only, the
/// roles of that actor group there, and (except for a contact person, who
/// is no member of the school's groups) the groups there. A key that no
/// longer matches a context (the role has ended) releases no institution,
/// group or actor group at all.
pub fn narrow(src: &ClaimsSource, key: &str) -> ClaimsSource {
    let mut out = src.clone();
    let chosen = contexts(src).into_iter().find(|c| c.key() == key);
    out.actors = chosen.iter().map(|c| c.actor.clone()).collect();
    out.institutions.retain_mut(|i| match &chosen {
        Some(c) if c.institution == i.number => {
            i.roles.retain(|r| actor_of(r) == c.actor);
            true
        }
        _ => false,
    });
    out.groups.retain(|g| {
        chosen.as_ref().is_some_and(|c| {
            c.institution == g.institution && c.actor != Actor::ContactPerson.as_str()
        })
    });
    out
}

/// What a selector names: a context key (`INSTITUTION/ACTOR`), an
/// institution number, or an actor group.
fn matches(c: &RoleContext, selector: &str) -> bool {
    selector == c.key() || selector == c.institution || selector == c.actor
}

fn is_selector(s: &str) -> bool {
    let (inst, actor) = match s.split_once('/') {
        Some((i, a)) => (i, Some(a)),
        None => (s, None),
    };
    let is_actor = |a: &str| Actor::parse(a).is_some();
    match actor {
        Some(a) => !inst.is_empty() && inst.bytes().all(|b| b.is_ascii_digit()) && is_actor(a),
        None => (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) || is_actor(s),
    }
}

/// `login_hint` as `USER@SELECTOR`: the part the login page may fill in.
pub fn login_part(hint: &str) -> &str {
    match hint.rsplit_once('@') {
        Some((user, sel)) if is_selector(sel) => user,
        _ => hint,
    }
}

/// The selectors a request carries: the `@SELECTOR` of `login_hint`,
/// `acr_values` entries `urn:tilgang:role:SELECTOR`, and the `value` or
/// `values` asked for the `institutions` and `actor_groups` claims.
pub fn selectors(
    login_hint: Option<&str>,
    acr_values: Option<&str>,
    claims: Option<&Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((_, sel)) = login_hint.and_then(|h| h.rsplit_once('@')) {
        if is_selector(sel) {
            out.push(sel.to_owned());
        }
    }
    for v in acr_values.unwrap_or_default().split(' ') {
        if let Some(sel) = v.strip_prefix(ROLE_ACR_PREFIX) {
            if is_selector(sel) {
                out.push(sel.to_owned());
            }
        }
    }
    for target in ["id_token", "userinfo"] {
        for claim in ["institutions", "actor_groups"] {
            let Some(asked) = claims
                .and_then(|c| c.get(target))
                .and_then(|t| t.get(claim))
            else {
                continue;
            };
            let values = asked.get("value").into_iter().chain(
                asked
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
            // Several values of one claim: any of them (one selector that
            // several contexts can match is left for the person).
            let any: Vec<&str> = values.filter_map(Value::as_str).collect();
            if any.len() == 1 && is_selector(any[0]) {
                out.push(any[0].to_owned());
            }
        }
    }
    out
}

/// The `acr_values` prefix that names a role context.
pub const ROLE_ACR_PREFIX: &str = "urn:tilgang:role:";

/// The contexts every selector matches; all of them when there is no
/// selector.
pub fn select<'a>(contexts: &'a [RoleContext], selectors: &[String]) -> Vec<&'a RoleContext> {
    contexts
        .iter()
        .filter(|c| selectors.iter().all(|s| matches(c, s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::claims::{GroupClaim, InstitutionClaim};
    use serde_json::json;

    fn teacher_and_parent() -> ClaimsSource {
        ClaimsSource {
            person_id: 1,
            user_id: "u1".into(),
            actors: vec!["Medarbejder".into(), "Kontaktperson".into()],
            institutions: vec![
                InstitutionClaim {
                    number: "101001".into(),
                    name: "Skole A".into(),
                    roles: vec!["Lærer".into(), "Leder".into(), "Kontaktperson".into()],
                },
                InstitutionClaim {
                    number: "202002".into(),
                    name: "Skole B".into(),
                    roles: vec!["Kontaktperson".into()],
                },
            ],
            groups: vec![GroupClaim {
                institution: "101001".into(),
                id: "1A".into(),
                name: "1.A".into(),
                kind: "Hovedgruppe".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn contexts_are_actor_groups_per_institution() {
        let keys: Vec<String> = contexts(&teacher_and_parent())
            .iter()
            .map(RoleContext::key)
            .collect();
        assert_eq!(
            keys,
            [
                "101001/Medarbejder",
                "101001/Kontaktperson",
                "202002/Kontaktperson"
            ]
        );
    }

    #[test]
    fn a_context_narrows_institutions_roles_groups_and_actor_groups() {
        let src = teacher_and_parent();
        let staff = narrow(&src, "101001/Medarbejder");
        assert_eq!(staff.actors, ["Medarbejder"]);
        assert_eq!(staff.institutions.len(), 1);
        assert_eq!(staff.institutions[0].roles, ["Lærer", "Leder"]);
        assert_eq!(staff.groups.len(), 1);
        let parent = narrow(&src, "101001/Kontaktperson");
        assert_eq!(parent.institutions[0].roles, ["Kontaktperson"]);
        assert!(parent.groups.is_empty());
        let gone = narrow(&src, "999999/Elev");
        assert!(gone.actors.is_empty() && gone.institutions.is_empty() && gone.groups.is_empty());
    }

    #[test]
    fn the_request_can_name_the_context() {
        let all = contexts(&teacher_and_parent());
        let by_hint = selectors(Some("u1@202002"), None, None);
        assert_eq!(select(&all, &by_hint).len(), 1);
        assert_eq!(login_part("u1@202002"), "u1");
        assert_eq!(login_part("kn@skole.dk"), "kn@skole.dk");
        let by_acr = selectors(
            None,
            Some("urn:tilgang:loa:1 urn:tilgang:role:101001/Medarbejder"),
            None,
        );
        assert_eq!(select(&all, &by_acr)[0].key(), "101001/Medarbejder");
        let claims = json!({"id_token": {"actor_groups": {"value": "Kontaktperson"}, "institutions": {"values": ["202002"]}}});
        let by_claims = selectors(None, None, Some(&claims));
        assert_eq!(select(&all, &by_claims)[0].key(), "202002/Kontaktperson");
        // A selector several contexts match leaves the choice open.
        let open = selectors(
            None,
            None,
            Some(&json!({"id_token": {"actor_groups": {"value": "Kontaktperson"}}})),
        );
        assert_eq!(select(&all, &open).len(), 2);
        assert!(selectors(Some("u1"), Some("urn:tilgang:loa:2"), None).is_empty());
    }
}
