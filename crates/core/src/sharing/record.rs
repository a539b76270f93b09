//! One person's record as a service receives it: which fields the one
//! policy releases ([`released`]) and what value each released field
//! carries. The export (JSON and OneRoster) and the lookups (`/users/{id}`,
//! `/me`) share it, so a field means the same wherever it leaves.

use super::package::{Field, FieldSet};
use super::policy::{actor_bit, day, decide, PersonFacts, View, ACTOR_CONTACT};
use crate::crypto::DataKeys;
use crate::oidc::pairwise_subject;
use crate::roster::{
    Actor, Address, ContactRelation, Cpr, Person, Phone, PhoneKind, Role, RoleKind,
};
use crate::Result;
use serde::{Serialize, Serializer};
use time::Date;
use utoipa::ToSchema;

/// The fields `view` releases of the person `facts` describes today: the
/// one policy asked for every field.
pub fn released(view: &View, facts: &PersonFacts, today: Date) -> FieldSet {
    let today = day(today);
    Field::ALL
        .iter()
        .filter(|f| decide(view, facts, **f, today).allowed)
        .fold(FieldSet::EMPTY, |acc, f| acc.union(FieldSet::of(&[*f])))
}

/// The actor bits of role names as the claims source spells them
/// (`Lærer`, `Elev`, …; a contact relation is `Kontaktperson`).
pub fn actor_bits<S: AsRef<str>>(roles: &[S]) -> u8 {
    roles
        .iter()
        .fold(0, |m, r| match RoleKind::parse(r.as_ref()) {
            Some(k) => m | actor_bit(k.actor()),
            None if r.as_ref() == Actor::ContactPerson.as_str() => m | ACTOR_CONTACT,
            None => m,
        })
}

/// How a service knows a person: the user id where it is released, else
/// the service's pairwise pseudonym (as at login).
pub fn subject(salt: &[u8; 32], released: FieldSet, user_id: &str) -> String {
    if released.contains(Field::UserId) {
        user_id.to_owned()
    } else {
        pairwise_subject(salt, user_id)
    }
}

/// The names released: the real ones, or a protected person's alias;
/// never the real name in the alias's place.
pub fn names<'a>(
    f: FieldSet,
    real: (&'a str, &'a str),
    protected: bool,
    alias: Option<(&'a str, &'a str)>,
) -> Option<(&'a str, &'a str)> {
    if f.contains(Field::GivenName) && f.contains(Field::FamilyName) {
        Some(real)
    } else if f.contains(Field::AliasName) && protected {
        alias
    } else {
        None
    }
}

/// The names of a roster person as released.
pub fn person_names(p: &Person, f: FieldSet) -> Option<(&str, &str)> {
    let alias = match (&p.alias_given_name, &p.alias_family_name) {
        (Some(g), Some(fam)) => Some((g.as_str(), fam.as_str())),
        _ => None,
    };
    names(
        f,
        (p.given_name.as_str(), p.family_name.as_str()),
        p.protected,
        alias,
    )
}

/// The CPR number, decrypted only when the policy released the field.
/// The caller must say in its audit event that it went out.
pub fn cpr(keys: &DataKeys, f: FieldSet, encrypted: Option<&[u8]>) -> Result<Option<Cpr>> {
    if !f.contains(Field::Cpr) {
        return Ok(None);
    }
    encrypted.map(|b| keys.decrypt_cpr(b)).transpose()
}

/// Whether a person's CPR number goes out: released and held. Every
/// audit event of a release says so in its details (`cpr_released`).
pub fn cpr_released(f: FieldSet, encrypted: Option<&[u8]>) -> bool {
    f.contains(Field::Cpr) && encrypted.is_some()
}

fn phone_field(kind: PhoneKind) -> Field {
    match kind {
        PhoneKind::Home => Field::HomePhone,
        PhoneKind::Work => Field::WorkPhone,
        PhoneKind::Mobile => Field::MobilePhone,
    }
}

/// The released phones of a person.
pub fn phones(p: &Person, f: FieldSet) -> impl Iterator<Item = &Phone> {
    p.phones
        .iter()
        .filter(move |ph| f.contains(phone_field(ph.kind)))
}

/// A person's own fields as released (absent: not released or not held).
// No `Debug`: the CPR number must never reach a log.
#[derive(Serialize, ToSchema)]
pub struct Personal<'a> {
    /// The real name, or a protected person's alias outside the authority
    /// package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<&'a str>,
    /// Ten digits (medium package and up).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_cpr")]
    #[schema(value_type = Option<String>, example = "3002201234")]
    pub cpr: Option<Cpr>,
    /// `cpr` (a number of the CPR register) or `fictitious` (its birth date
    /// does not exist: made up by the school for a person without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpr_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// `YYYY-MM-DD`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// `K`, `M` or `X`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_id: Option<&'a str>,
    /// The person's id in the institution's administrative system.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_person_id: Option<&'a str>,
    /// With the municipality code (kommunekode) where held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<&'a Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneOut<'a>>>,
    /// Name and address protection (large and authority packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<bool>,
}

fn expose_cpr<S: Serializer>(cpr: &Option<Cpr>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match cpr {
        Some(c) => s.serialize_str(c.expose()),
        None => s.serialize_none(),
    }
}

impl<'a> Personal<'a> {
    /// `p`'s fields as `f` releases them; `cpr` from [`cpr`].
    pub fn of(p: &'a Person, f: FieldSet, cpr: Option<Cpr>) -> Personal<'a> {
        let has = |x: Field| f.contains(x);
        let names = person_names(p, f);
        let phones: Vec<PhoneOut<'a>> = phones(p, f).map(PhoneOut::of).collect();
        Personal {
            given_name: names.map(|n| n.0),
            family_name: names.map(|n| n.1),
            cpr_type: cpr
                .as_ref()
                .map(|c| if c.fictitious() { "fictitious" } else { "cpr" }),
            cpr,
            email: p.email.as_deref().filter(|_| has(Field::Email)),
            birth_date: p
                .birth_date
                .filter(|_| has(Field::BirthDate))
                .map(|d| d.to_string()),
            gender: p.gender.filter(|_| has(Field::Gender)).map(|g| g.as_str()),
            photo_id: p.photo_id.as_deref().filter(|_| has(Field::PhotoId)),
            local_person_id: p
                .local_person_id
                .as_deref()
                .filter(|_| has(Field::LocalPersonId)),
            address: p.address.as_ref().filter(|_| has(Field::Address)),
            phones: (!phones.is_empty()).then_some(phones),
            protected: has(Field::ProtectedFlag).then_some(p.protected),
        }
    }

    /// Nothing of the person's own (a minimal release).
    pub fn none() -> Personal<'a> {
        Personal {
            given_name: None,
            family_name: None,
            cpr: None,
            cpr_type: None,
            email: None,
            birth_date: None,
            gender: None,
            photo_id: None,
            local_person_id: None,
            address: None,
            phones: None,
            protected: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PhoneOut<'a> {
    /// `home`, `work` or `mobile`.
    pub kind: &'static str,
    pub number: &'a str,
    /// Withheld from all but authorities when the person is protected.
    pub protectable: bool,
}

impl<'a> PhoneOut<'a> {
    fn of(p: &'a Phone) -> PhoneOut<'a> {
        PhoneOut {
            kind: p.kind.as_str(),
            number: &p.number,
            protectable: p.protectable,
        }
    }
}

/// A role with its details as far as released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoleOut<'a> {
    /// `Lærer`, `Elev`, …
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grade_level: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_number: Option<&'a str>,
    /// The id of the pupil's main group (class).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_group: Option<&'a str>,
    /// An employee's initials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initials: Option<&'a str>,
    /// An employee's occupation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occupation: Option<&'a str>,
}

impl<'a> RoleOut<'a> {
    pub fn of(r: &'a Role, f: FieldSet) -> RoleOut<'a> {
        let has = |x: Field| f.contains(x);
        RoleOut {
            role: r.role.as_str(),
            grade_level: r.grade_level.as_deref().filter(|_| has(Field::GradeLevel)),
            student_number: r
                .student_number
                .as_deref()
                .filter(|_| has(Field::StudentNumber)),
            main_group: r.main_group.as_deref().filter(|_| has(Field::MainGroup)),
            initials: r.initials.as_deref().filter(|_| has(Field::Initials)),
            occupation: r.occupation.as_deref().filter(|_| has(Field::Occupation)),
        }
    }
}

/// A contact relation (large package): the pupil and the contact person as
/// the service knows them (user id, or pairwise pseudonym).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactOut {
    pub pupil: String,
    pub contact: String,
    /// `Mor`, `Far`, `Andet`, `Officielt tilknyttet person`.
    pub relation: &'static str,
    pub custody: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_level: Option<u8>,
}

impl ContactOut {
    pub fn of(c: &ContactRelation, salt: &[u8; 32], f: FieldSet) -> ContactOut {
        ContactOut {
            pupil: subject(salt, f, &c.pupil),
            contact: subject(salt, f, &c.contact),
            relation: c.relation.as_str(),
            custody: c.custody,
            access_level: c.access_level,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sharing::package::{LARGE, MEDIUM, SMALL};

    fn person() -> Person {
        Person {
            user_id: "u1".into(),
            given_name: "Bo".into(),
            family_name: "Hansen".into(),
            alias_given_name: Some("Anders".into()),
            alias_family_name: Some("And".into()),
            cpr: None,
            birth_date: None,
            gender: None,
            email: Some("bo@skole.example".into()),
            phones: vec![Phone {
                kind: PhoneKind::Home,
                number: "+4511111111".into(),
                protectable: true,
            }],
            address: Some(Address {
                street: Some("Vej 1".into()),
                municipality_code: Some("751".into()),
                ..Address::default()
            }),
            protected: false,
            source_system: None,
            local_person_id: Some("L-9".into()),
            photo_id: Some("ph-1".into()),
        }
    }

    #[test]
    fn cpr_numbers_with_a_date_that_does_not_exist_are_fictitious() {
        let kind = |s: &str| Cpr::parse(s).unwrap().fictitious();
        assert!(!kind("0102031234"), "1 February 1903");
        assert!(kind("3002201234"), "30 February");
        assert!(kind("2902011234"), "29 February 1901");
        assert!(!kind("2902004234"), "29 February 2000 (seventh digit 4)");
        assert!(kind("3104101234"), "31 April");
    }

    #[test]
    fn each_package_maps_only_its_own_fields() {
        let p = person();
        let json = |f: FieldSet| serde_json::to_value(Personal::of(&p, f, None)).unwrap();
        let small = json(SMALL);
        assert_eq!(small["given_name"], "Bo");
        for absent in ["email", "photo_id", "local_person_id", "address", "phones"] {
            assert!(small.get(absent).is_none(), "small has no {absent}");
        }
        let medium = json(MEDIUM);
        assert_eq!(medium["photo_id"], "ph-1");
        assert_eq!(medium["local_person_id"], "L-9");
        assert!(medium.get("address").is_none());
        let large = json(LARGE);
        assert_eq!(large["address"]["municipality_code"], "751");
        assert_eq!(large["phones"][0]["protectable"], true);
        assert_eq!(large["protected"], false);
    }

    #[test]
    fn a_protected_person_gets_the_alias_or_no_name_never_the_real_one() {
        let mut p = person();
        p.protected = true;
        let f = SMALL.minus(super::super::package::PROTECTED_ONLY_TO_AUTHORITY);
        assert_eq!(person_names(&p, f), Some(("Anders", "And")));
        p.alias_given_name = None;
        assert_eq!(person_names(&p, f), None);
        assert_eq!(person_names(&p, SMALL), Some(("Bo", "Hansen")));
    }

    #[test]
    fn the_cpr_number_is_decrypted_only_when_released() {
        let keys = DataKeys::from_master(&[3; 32]);
        let c = Cpr::parse("3002201234").unwrap();
        let enc = keys.encrypt_cpr(&c);
        assert!(cpr(&keys, SMALL, Some(&enc)).unwrap().is_none());
        assert_eq!(cpr(&keys, MEDIUM, Some(&enc)).unwrap(), Some(c.clone()));
        let p = person();
        let v = serde_json::to_value(Personal::of(&p, MEDIUM, Some(c))).unwrap();
        assert_eq!(v["cpr"], "3002201234");
        assert_eq!(v["cpr_type"], "fictitious");
    }
}
