//! The claims a service receives: as far as the sharing policy releases
//! them for the person's institutions (`person_claims_released`), or by
//! the package registered with the service (`person_claims`). Always: `sub`, the actor
//! groups and the level of assurance, institutions with roles, and groups.
//! From `small` up: names (`profile` scope, or asked for in `claims`); from
//! `medium` up: e-mail (`email` scope, or asked for). `docs/oidc.md` lists
//! every claim with an example per package.

use super::{Package, Service};
use crate::sharing::package::{Field, FieldSet, PROTECTED_ONLY_TO_AUTHORITY};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// What the roster knows of a person that a service may receive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimsSource {
    pub person_id: i64,
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    /// A protected person (name and address protection) is released under
    /// their alias when the roster has one.
    pub protected: bool,
    pub alias: Option<(String, String)>,
    pub email: Option<String>,
    /// Actor groups, without duplicates (`Medarbejder`, `Elev`, `Ekstern`,
    /// `Kontaktperson`).
    pub actors: Vec<String>,
    pub institutions: Vec<InstitutionClaim>,
    pub groups: Vec<GroupClaim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstitutionClaim {
    pub number: String,
    pub name: String,
    /// Active roles there (`Lærer`, `Elev`, …).
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupClaim {
    pub institution: String,
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// Where the claims go: `id_token` or `userinfo` (the two members of the
/// `claims` request parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    IdToken,
    Userinfo,
}

impl Target {
    fn key(self) -> &'static str {
        match self {
            Target::IdToken => "id_token",
            Target::Userinfo => "userinfo",
        }
    }
}

fn asked(claims: Option<&Value>, target: Target, name: &str) -> bool {
    claims
        .and_then(|c| c.get(target.key()))
        .and_then(|t| t.get(name))
        .is_some()
}

fn has_scope(scope: &str, want: &str) -> bool {
    scope.split(' ').any(|s| s == want)
}

/// The person's claims for `service` by the package registered with it
/// (what a service gets where no institution decided; protected persons'
/// real names and addresses only for the authority package).
pub fn person_claims(
    service: &Service,
    src: &ClaimsSource,
    scope: &str,
    claims: Option<&Value>,
    target: Target,
) -> Map<String, Value> {
    let mut released = service.package.fields();
    if src.protected && service.package != Package::Authority {
        released = released.minus(PROTECTED_ONLY_TO_AUTHORITY);
    }
    person_claims_released(service, released, src, scope, claims, target)
}

/// The subject a service sees: the stable user id where the policy
/// releases it, a pairwise pseudonym otherwise. Every endpoint that names
/// the person (ID token, userinfo, introspection) uses this.
pub fn subject(service: &Service, released: FieldSet, user_id: &str) -> String {
    crate::sharing::record::subject(&service.pairwise_salt, released, user_id)
}

/// The person's claims for `service`: identity claims as far as the
/// sharing policy released them (`released`, see
/// `sharing::access::login_view`), then by scope and the `claims`
/// request; protocol claims (`iss`, `aud`, `acr`, …) are the caller's.
pub fn person_claims_released(
    service: &Service,
    released: FieldSet,
    src: &ClaimsSource,
    scope: &str,
    claims: Option<&Value>,
    target: Target,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "sub".into(),
        json!(subject(service, released, &src.user_id)),
    );
    if released.contains(Field::ActorGroups) {
        out.insert("actor_groups".into(), json!(src.actors));
    }
    if released.contains(Field::Institution) {
        out.insert("institutions".into(), json!(src.institutions));
    }
    if released.contains(Field::GroupIds) {
        out.insert("groups".into(), json!(src.groups));
    }
    let want = |scope_name: &str, claim: &str| {
        has_scope(scope, scope_name) || asked(claims, target, claim)
    };
    // Real names where released; a protected person's alias otherwise
    // (never their real name in its place).
    let names = crate::sharing::record::names(
        released,
        (&src.given_name, &src.family_name),
        src.protected,
        src.alias.as_ref().map(|(g, f)| (g.as_str(), f.as_str())),
    );
    if let Some((given, family)) = names {
        if want("profile", "given_name") {
            out.insert("given_name".into(), json!(given));
        }
        if want("profile", "family_name") {
            out.insert("family_name".into(), json!(family));
        }
        if want("profile", "name") {
            out.insert("name".into(), json!(format!("{given} {family}")));
        }
    }
    if released.contains(Field::UserId) && want("profile", "preferred_username") {
        out.insert("preferred_username".into(), json!(src.user_id));
    }
    if released.contains(Field::Email) {
        if let Some(email) = &src.email {
            if want("email", "email") {
                out.insert("email".into(), json!(email));
                // The school's administrative system delivered it; tilgang
                // has not verified it.
                out.insert("email_verified".into(), json!(false));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(package: Package) -> Service {
        Service {
            client_id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            jwks_uri: None,
            jwks: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grants: vec![],
            package,
            min_acr: String::new(),
            public: false,
            id_token_alg: "RS256".into(),
            pairwise_salt: [9; 32],
            created_at: 0,
        }
    }

    fn src() -> ClaimsSource {
        ClaimsSource {
            person_id: 1,
            user_id: "u1".into(),
            given_name: "Karen".into(),
            family_name: "Nielsen".into(),
            email: Some("kn@skole.dk".into()),
            actors: vec!["Medarbejder".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_package_bounds_what_any_scope_releases() {
        let all = "openid profile email";
        let min = person_claims(
            &service(Package::Minimal),
            &src(),
            all,
            None,
            Target::IdToken,
        );
        assert_ne!(min["sub"], "u1");
        assert!(min.get("given_name").is_none() && min.get("email").is_none());
        assert_eq!(min["actor_groups"], json!(["Medarbejder"]));
        let small = person_claims(&service(Package::Small), &src(), all, None, Target::IdToken);
        assert_eq!(small["sub"], "u1");
        assert_eq!(small["name"], "Karen Nielsen");
        assert!(small.get("email").is_none());
        let medium = person_claims(
            &service(Package::Medium),
            &src(),
            all,
            None,
            Target::IdToken,
        );
        assert_eq!(medium["email"], "kn@skole.dk");
        let none = person_claims(
            &service(Package::Medium),
            &src(),
            "openid",
            None,
            Target::IdToken,
        );
        assert!(none.get("name").is_none());
        let asked = json!({"id_token": {"email": {"essential": true}}});
        let one = person_claims(
            &service(Package::Medium),
            &src(),
            "openid",
            Some(&asked),
            Target::IdToken,
        );
        assert_eq!(one["email"], "kn@skole.dk");
        assert!(one.get("name").is_none());
    }
}
