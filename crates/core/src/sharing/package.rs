//! The data packages (DOMAIN.md, "Data packages"): nested subsets of the
//! roster a service may receive, and the fields each adds, as bitsets so
//! the policy's per-field check is one AND.

use serde::{Deserialize, Serialize};

/// The data package a service was approved for, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Package {
    Minimal,
    Small,
    Medium,
    Large,
    Authority,
}

impl Package {
    pub const ALL: &'static [Package] = &[
        Package::Minimal,
        Package::Small,
        Package::Medium,
        Package::Large,
        Package::Authority,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Package::Minimal => "minimal",
            Package::Small => "small",
            Package::Medium => "medium",
            Package::Large => "large",
            Package::Authority => "authority",
        }
    }
    pub fn parse(s: &str) -> Option<Package> {
        Package::ALL.iter().copied().find(|p| p.as_str() == s)
    }
    /// Every field of this package and the packages below it.
    pub const fn fields(self) -> FieldSet {
        match self {
            Package::Minimal => MINIMAL,
            Package::Small => SMALL,
            Package::Medium => MEDIUM,
            Package::Large => LARGE,
            Package::Authority => AUTHORITY,
        }
    }
    /// How to describe what a person's data was released as: the largest
    /// package all of whose fields were released (a protected person's
    /// names and address come as aliases or not at all, so those fields
    /// are left out of the comparison). Authority is reported as large.
    pub fn released_as(released: FieldSet) -> Package {
        [Package::Large, Package::Medium, Package::Small]
            .into_iter()
            .find(|p| {
                p.fields()
                    .minus(PROTECTED_ONLY_TO_AUTHORITY)
                    .minus(released)
                    == FieldSet::EMPTY
            })
            .unwrap_or(Package::Minimal)
    }
}

macro_rules! fields {
    ($($(#[$m:meta])* $variant:ident = $wire:literal),+ $(,)?) => {
        /// One field a service may receive of a person or an institution.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[repr(u8)]
        pub enum Field { $($(#[$m])* #[serde(rename = $wire)] $variant),+ }

        impl Field {
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(Field::$variant => $wire),+ }
            }
            pub fn parse(s: &str) -> Option<Field> {
                match s { $($wire => Some(Field::$variant),)+ _ => None }
            }
        }
    };
}

fields!(
    // minimal: the institution, groups and roles, no identity
    Institution = "institution",
    ActorGroups = "actor_groups",
    InstitutionRoles = "institution_roles",
    GroupIds = "group_ids",
    Pseudonym = "pseudonym",
    // small
    GivenName = "given_name",
    FamilyName = "family_name",
    UserId = "user_id",
    Role = "role",
    StudentNumber = "student_number",
    GradeLevel = "grade_level",
    Location = "location",
    MainGroup = "main_group",
    Groups = "groups",
    Initials = "initials",
    Occupation = "occupation",
    /// The name a protected person is released under (the alias when the
    /// roster has one).
    AliasName = "alias_name",
    // medium
    Cpr = "cpr",
    Email = "email",
    BirthDate = "birth_date",
    Gender = "gender",
    PhotoId = "photo_id",
    LocalPersonId = "local_person_id",
    // large
    Address = "address",
    HomePhone = "home_phone",
    WorkPhone = "work_phone",
    MobilePhone = "mobile_phone",
    ProtectedFlag = "protected",
    ContactPersons = "contact_persons",
);

impl Field {
    pub const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

/// A set of fields, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FieldSet(pub u64);

impl FieldSet {
    pub const EMPTY: FieldSet = FieldSet(0);
    pub const fn of(fields: &[Field]) -> FieldSet {
        let mut bits = 0u64;
        let mut i = 0;
        while i < fields.len() {
            bits |= fields[i].bit();
            i += 1;
        }
        FieldSet(bits)
    }
    pub const fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }
    pub const fn minus(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & !other.0)
    }
    #[inline]
    pub const fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL
            .iter()
            .copied()
            .filter(move |f| self.contains(*f))
    }
}

use Field::*;

pub const MINIMAL: FieldSet = FieldSet::of(&[
    Institution,
    ActorGroups,
    InstitutionRoles,
    GroupIds,
    Pseudonym,
]);
pub const SMALL: FieldSet = MINIMAL.union(FieldSet::of(&[
    GivenName,
    FamilyName,
    UserId,
    Role,
    StudentNumber,
    GradeLevel,
    Location,
    MainGroup,
    Groups,
    Initials,
    Occupation,
    AliasName,
]));
pub const MEDIUM: FieldSet = SMALL.union(FieldSet::of(&[
    Cpr,
    Email,
    BirthDate,
    Gender,
    PhotoId,
    LocalPersonId,
]));
pub const LARGE: FieldSet = MEDIUM.union(FieldSet::of(&[
    Address,
    HomePhone,
    WorkPhone,
    MobilePhone,
    ProtectedFlag,
    ContactPersons,
]));
/// The authority package adds nothing new for ordinary persons; it is the
/// only one that carries protected persons' real names, address and phones.
pub const AUTHORITY: FieldSet = LARGE;

/// What a protected person's record withholds from a receiver that is no
/// authority: the real name (the alias goes instead), address and phones.
pub const PROTECTED_ONLY_TO_AUTHORITY: FieldSet = FieldSet::of(&[
    GivenName,
    FamilyName,
    Address,
    HomePhone,
    WorkPhone,
    MobilePhone,
]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_fields_are_described_as_the_largest_package_they_cover() {
        assert_eq!(Package::released_as(FieldSet::EMPTY), Package::Minimal);
        assert_eq!(Package::released_as(MINIMAL), Package::Minimal);
        assert_eq!(Package::released_as(SMALL), Package::Small);
        assert_eq!(Package::released_as(MEDIUM), Package::Medium);
        assert_eq!(Package::released_as(LARGE), Package::Large);
        // A protected person's real names never go out below authority;
        // the package is still the one approved.
        assert_eq!(
            Package::released_as(SMALL.minus(PROTECTED_ONLY_TO_AUTHORITY)),
            Package::Small
        );
        // One medium field missing: small.
        assert_eq!(
            Package::released_as(MEDIUM.minus(FieldSet::of(&[Field::Email]))),
            Package::Small
        );
    }

    #[test]
    fn packages_nest_and_fields_fit_one_word() {
        assert!(Field::ALL.len() <= 64);
        for w in Package::ALL.windows(2) {
            let (a, b) = (w[0].fields(), w[1].fields());
            assert_eq!(a.0 & b.0, a.0, "{:?} within {:?}", w[0], w[1]);
        }
        for f in Field::ALL {
            assert_eq!(Field::parse(f.as_str()), Some(*f));
        }
    }
}
