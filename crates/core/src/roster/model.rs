//! The roster model, after DOMAIN.md ("What the national service does
//! today"). Enumerations keep the Danish names the source systems use on the
//! wire and in the database; code uses the English variant names.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::Date;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($wire),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// What kind of institution.
    InstitutionKind {
        School = "school",
        DayCare = "day-care",
        UpperSecondary = "upper-secondary",
        Vocational = "vocational",
        Other = "other",
    }
);

wire_enum!(
    /// The actor group a role belongs to; released at every login.
    Actor {
        Employee = "Medarbejder",
        Pupil = "Elev",
        External = "Ekstern",
        ContactPerson = "Kontaktperson",
    }
);

wire_enum!(
    /// A role a person holds at an institution.
    RoleKind {
        Pupil = "Elev",
        Child = "Barn",
        Student = "Studerende",
        Teacher = "Lærer",
        Pedagogue = "Pædagog",
        Substitute = "Vikar",
        Leader = "Leder",
        Management = "Ledelse",
        Consultant = "Konsulent",
        Trainee = "Praktikant",
        External = "Ekstern",
    }
);

impl RoleKind {
    pub fn actor(self) -> Actor {
        use RoleKind::*;
        match self {
            Pupil | Child | Student => Actor::Pupil,
            Teacher | Pedagogue | Substitute | Leader | Management | Consultant => Actor::Employee,
            Trainee | External => Actor::External,
        }
    }
}

wire_enum!(
    GroupKind {
        MainGroup = "Hovedgruppe",
        GradeLevel = "Årgang",
        Line = "Retning",
        Class = "Hold",
        Team = "Team",
        Other = "Andet",
    }
);

wire_enum!(
    Relation {
        Mother = "Mor",
        Father = "Far",
        Other = "Andet",
        Official = "Officielt tilknyttet person",
    }
);

wire_enum!(
    Gender {
        Female = "K",
        Male = "M",
        Other = "X",
    }
);

wire_enum!(
    PhoneKind {
        Home = "home",
        Work = "work",
        Mobile = "mobile",
    }
);

/// A CPR number. Confidential: its `Debug` and `Display` never show it, and
/// it is stored only encrypted, with a keyed hash beside it for look-ups.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cpr(String);

impl Cpr {
    /// Ten digits, with or without the dash after the birth date. Only the
    /// shape is checked: the modulus-11 rule was dropped in 2007.
    pub fn parse(s: &str) -> Option<Cpr> {
        let digits: String = s.chars().filter(|c| *c != '-').collect();
        let shaped = digits.len() == 10
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (s.len() == 10 || (s.len() == 11 && s.as_bytes()[6] == b'-'));
        if !shaped {
            return None;
        }
        let day: u8 = digits[0..2].parse().ok()?;
        let month: u8 = digits[2..4].parse().ok()?;
        ((1..=31).contains(&day) && (1..=12).contains(&month)).then_some(Cpr(digits))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// A number whose birth date does not exist (30 February, 31 April,
    /// 29 February of a common year): one a school made up for a person
    /// without a CPR number, or a test person's. The seventh digit and the
    /// year give the century, as the CPR office assigns them.
    pub fn fictitious(&self) -> bool {
        let d = self.0.as_bytes();
        let num = |i: usize| i32::from(d[i] - b'0') * 10 + i32::from(d[i + 1] - b'0');
        let (day, month, yy) = (num(0), num(2), num(4));
        let century = match d[6] - b'0' {
            0..=3 => 1900,
            4 | 9 if yy <= 36 => 2000,
            4 | 9 => 1900,
            5..=8 if yy <= 57 => 2000,
            5..=8 => 1800,
            _ => 1900,
        };
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok());
        let real = month.is_some_and(|m| {
            u8::try_from(day)
                .ok()
                .is_some_and(|day| Date::from_calendar_date(century + yy, m, day).is_ok())
        });
        !real
    }
}

impl fmt::Debug for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cpr(******-****)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub number: String,
    pub name: String,
    pub kind: InstitutionKind,
    pub municipality_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub kind: PhoneKind,
    pub number: String,
    /// Withheld from everybody but authorities when the person is protected.
    #[serde(default)]
    pub protectable: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A person as the roster knows them, independent of any institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The public user id (like the national `uniid`); also the login name.
    pub user_id: String,
    pub given_name: String,
    pub family_name: String,
    /// For protected persons: the names shown to everybody but authorities.
    pub alias_given_name: Option<String>,
    pub alias_family_name: Option<String>,
    pub cpr: Option<Cpr>,
    pub birth_date: Option<Date>,
    pub gender: Option<Gender>,
    pub email: Option<String>,
    pub phones: Vec<Phone>,
    pub address: Option<Address>,
    /// Name and address protection (navne- og adressebeskyttelse).
    pub protected: bool,
    pub source_system: Option<String>,
    pub local_person_id: Option<String>,
    pub photo_id: Option<String>,
}

/// One role of one person at one institution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub user_id: String,
    pub role: RoleKind,
    pub grade_level: Option<String>,
    pub student_number: Option<String>,
    /// The id of the pupil's main group (class) at the institution.
    pub main_group: Option<String>,
    pub initials: Option<String>,
    pub occupation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The source system's id, unique within the institution.
    pub id: String,
    pub name: String,
    pub kind: GroupKind,
    pub level: Option<String>,
    pub line: Option<String>,
    pub from: Option<Date>,
    pub to: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub group: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRelation {
    pub pupil: String,
    pub contact: String,
    pub relation: Relation,
    pub custody: bool,
    pub access_level: Option<u8>,
}

/// One institution's roster as one import delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionRoster {
    pub institution: Institution,
    pub source_system: Option<String>,
    pub school_year: Option<String>,
    pub persons: Vec<Person>,
    pub roles: Vec<Role>,
    pub groups: Vec<Group>,
    pub memberships: Vec<Membership>,
    pub contacts: Vec<ContactRelation>,
    /// Delta imports only: records the source says have ended.
    pub ended: Ended,
}

/// Keys of records a delta import ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    pub roles: Vec<(String, RoleKind)>,
    pub groups: Vec<String>,
    pub memberships: Vec<Membership>,
    pub contacts: Vec<(String, String)>,
}
