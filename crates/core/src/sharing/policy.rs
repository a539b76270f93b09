//! The one policy: may service S receive field F of person P at
//! institution I now, and why or why not. Everything that releases data
//! (OIDC claims, exports, pages) asks [`decide`].
//!
//! Two steps, for speed: [`compile`] turns a service's standing at one
//! institution (approval in force, pending change, block, provider,
//! channel) into a small [`View`] once; [`decide`] then answers per person
//! and field with a handful of integer tests, so an export of 10,000
//! persons × 20 fields costs a few hundred microseconds. A view is built
//! from the store on every login and export, never cached across them, so
//! a revocation or a block takes effect at once.

use super::agreement::{Agreement, RequestSpec};
use super::package::{Field, FieldSet, Package, MINIMAL, PROTECTED_ONLY_TO_AUTHORITY};
use crate::roster::Actor;
use time::Date;

/// How the data leaves: at login (claims, instant lookup) or in an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Lookup,
    Export,
}

/// Why a field is released or withheld.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reason {
    /// Released: the minimal package, which needs no approval.
    Minimal,
    /// Released: within the package the institution approved.
    Approved,
    /// The institution blocked the service.
    Blocked,
    /// An export without an approval that covers export (the minimal
    /// package is for lookup at login only).
    NotApprovedForChannel,
    /// The person has no active membership at the institution.
    NotAtInstitution,
    /// The person's membership there ended before today.
    MembershipEnded,
    /// The approval's actor-type filter excludes the person.
    ActorFiltered,
    /// The approval's grade-level filter excludes the pupil.
    GradeFiltered,
    /// The field is outside the approved package (or outside the minimal
    /// package when nothing is approved).
    NotInPackage,
    /// Outside the package in force; a pending request asks for it and
    /// waits for the institution's decision.
    AwaitingApproval,
    /// A protected person's real name, address and phones go only to a
    /// public authority.
    ProtectedPerson,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Minimal => "minimal_package",
            Reason::Approved => "approved",
            Reason::Blocked => "blocked",
            Reason::NotApprovedForChannel => "not_approved_for_channel",
            Reason::NotAtInstitution => "not_at_institution",
            Reason::MembershipEnded => "membership_ended",
            Reason::ActorFiltered => "actor_filtered",
            Reason::GradeFiltered => "grade_filtered",
            Reason::NotInPackage => "not_in_package",
            Reason::AwaitingApproval => "awaiting_approval",
            Reason::ProtectedPerson => "protected_person",
        }
    }
}

/// The answer: released or not, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
}

impl Decision {
    const fn allow(reason: Reason) -> Decision {
        Decision {
            allowed: true,
            reason,
        }
    }
    const fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
        }
    }
}

pub const ACTOR_EMPLOYEE: u8 = 1;
pub const ACTOR_PUPIL: u8 = 2;
pub const ACTOR_EXTERNAL: u8 = 4;
pub const ACTOR_CONTACT: u8 = 8;
const ALL_ACTORS: u8 = 0x0f;
/// The grade bucket of a pupil with no (or a non-numeric) grade level.
pub const NO_GRADE: u8 = 63;
const ALL_GRADES: u64 = u64::MAX;

pub fn actor_bit(a: Actor) -> u8 {
    match a {
        Actor::Employee => ACTOR_EMPLOYEE,
        Actor::Pupil => ACTOR_PUPIL,
        Actor::External => ACTOR_EXTERNAL,
        Actor::ContactPerson => ACTOR_CONTACT,
    }
}

/// A grade level as a bit index: "0" to "62" as themselves, anything else
/// (none, or a non-numeric level) as [`NO_GRADE`].
pub fn grade_index(level: Option<&str>) -> u8 {
    level
        .and_then(|l| l.trim().parse::<u8>().ok())
        .filter(|g| *g < NO_GRADE)
        .unwrap_or(NO_GRADE)
}

/// An institution number as a compact key: six-digit numbers as
/// themselves, anything else hashed into the upper half.
pub fn institution_key(number: &str) -> u32 {
    match number.parse::<u32>() {
        Ok(n) if n < 0x8000_0000 && number.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            // FNV-1a: stable across runs and platforms.
            let mut h: u32 = 0x811c_9dc5;
            for b in number.bytes() {
                h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
            }
            h | 0x8000_0000
        }
    }
}

/// A date as a day number, for [`PersonFacts::until`].
pub fn day(d: Date) -> i32 {
    d.to_julian_day()
}

/// What the policy needs of one person at one institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonFacts {
    /// [`institution_key`] of the institution the membership is at.
    pub institution: u32,
    /// Actor bits ([`ACTOR_PUPIL`], …) of the person's roles there.
    pub actors: u8,
    /// [`grade_index`] of a pupil's grade level.
    pub grade: u8,
    /// Name and address protection.
    pub protected: bool,
    /// The last day ([`day`]) of the membership; `i32::MAX` when open.
    pub until: i32,
}

/// A service's standing at one institution, as the store has it now.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    pub institution: &'a str,
    /// The approval in force, if any.
    pub approved: Option<&'a RequestSpec>,
    /// A request waiting for a decision.
    pub pending: Option<&'a RequestSpec>,
    pub blocked: bool,
    /// The provider is marked as a public authority.
    pub authority: bool,
}

impl<'a> Standing<'a> {
    pub fn of(institution: &'a str, a: &'a Agreement, authority: bool) -> Standing<'a> {
        Standing {
            institution,
            approved: a.approval.as_ref().map(|x| &x.spec),
            pending: a.pending.as_ref().map(|x| &x.spec),
            blocked: a.block.is_some(),
            authority,
        }
    }
}

/// A compiled standing: everything [`decide`] needs, in a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    institution: u32,
    /// Fields released of an ordinary person.
    fields: u64,
    /// Fields released of a protected person.
    protected_fields: u64,
    /// Fields a pending request asks for beyond `fields`.
    pending: u64,
    actors: u8,
    grades: u64,
    /// Set when nothing at all is released (blocked, no export approval).
    deny_all: Option<Reason>,
    /// Why a field in `fields` is released.
    basis: Reason,
    /// Why a field outside a package that would otherwise have it is
    /// withheld (the channel is not approved).
    outside: Reason,
    package: Package,
}

impl View {
    /// The package in force for this channel (what claims are built from).
    pub fn package(&self) -> Package {
        self.package
    }
    /// Nothing at all flows (blocked, or an export without approval).
    pub fn denied(&self) -> Option<Reason> {
        self.deny_all
    }
    /// Every field released of an ordinary person.
    pub fn fields(&self) -> FieldSet {
        FieldSet(self.fields)
    }
}

/// The package an approval gives this provider: a provider that is no
/// authority never gets the authority package, whatever was stored.
fn effective(p: Package, authority: bool) -> Package {
    if p == Package::Authority && !authority {
        Package::Large
    } else {
        p
    }
}

fn filter_masks(spec: &RequestSpec) -> (u8, u64) {
    let actors = if spec.filters.actors.is_empty() {
        ALL_ACTORS
    } else {
        spec.filters
            .actors
            .iter()
            .fold(0u8, |m, a| m | actor_bit(*a))
    };
    let grades = if spec.filters.grade_levels.is_empty() {
        ALL_GRADES
    } else {
        spec.filters
            .grade_levels
            .iter()
            .fold(0u64, |m, g| m | 1u64 << grade_index(Some(g)))
    };
    (actors, grades)
}

/// Compiles a standing for one channel.
pub fn compile(s: &Standing<'_>, channel: Channel) -> View {
    let institution = institution_key(s.institution);
    let mut v = View {
        institution,
        fields: 0,
        protected_fields: 0,
        pending: 0,
        actors: ALL_ACTORS,
        grades: ALL_GRADES,
        deny_all: None,
        basis: Reason::Minimal,
        outside: Reason::NotInPackage,
        package: Package::Minimal,
    };
    if s.blocked {
        v.deny_all = Some(Reason::Blocked);
        return v;
    }
    let covers = |spec: &RequestSpec| match channel {
        Channel::Lookup => spec.delivery.lookup(),
        Channel::Export => spec.delivery.export(),
    };
    match s.approved {
        Some(spec) if covers(spec) => {
            let p = effective(spec.package, s.authority);
            let fields = p.fields();
            v.fields = fields.0;
            v.protected_fields = if p == Package::Authority {
                fields.0
            } else {
                fields.minus(PROTECTED_ONLY_TO_AUTHORITY).0
            };
            (v.actors, v.grades) = filter_masks(spec);
            v.basis = if p == Package::Minimal {
                Reason::Minimal
            } else {
                Reason::Approved
            };
            v.package = p;
        }
        approved => {
            if channel == Channel::Export {
                v.deny_all = Some(Reason::NotApprovedForChannel);
                return v;
            }
            v.fields = MINIMAL.0;
            v.protected_fields = MINIMAL.0;
            if approved.is_some() {
                v.outside = Reason::NotApprovedForChannel;
            }
        }
    }
    if let Some(p) = s.pending.filter(|p| covers(p)) {
        v.pending = effective(p.package, s.authority).fields().0 & !v.fields;
    }
    v
}

/// May the service receive `field` of `person` today? The one answer.
#[inline]
pub fn decide(view: &View, person: &PersonFacts, field: Field, today: i32) -> Decision {
    if let Some(r) = view.deny_all {
        return Decision::deny(r);
    }
    if person.institution != view.institution {
        return Decision::deny(Reason::NotAtInstitution);
    }
    if person.until < today {
        return Decision::deny(Reason::MembershipEnded);
    }
    let through = person.actors & view.actors;
    if through == 0 {
        return Decision::deny(Reason::ActorFiltered);
    }
    if through == ACTOR_PUPIL && view.grades & (1u64 << (person.grade & 63)) == 0 {
        return Decision::deny(Reason::GradeFiltered);
    }
    let bit = field.bit();
    let mask = if person.protected {
        view.protected_fields
    } else {
        view.fields
    };
    if mask & bit != 0 {
        Decision::allow(view.basis)
    } else if view.fields & bit != 0 {
        Decision::deny(Reason::ProtectedPerson)
    } else if view.pending & bit != 0 {
        Decision::deny(Reason::AwaitingApproval)
    } else {
        Decision::deny(view.outside)
    }
}

/// [`compile`] and [`decide`] in one call, for a single question.
pub fn may_receive(
    standing: &Standing<'_>,
    channel: Channel,
    person: &PersonFacts,
    field: Field,
    today: Date,
) -> Decision {
    decide(&compile(standing, channel), person, field, day(today))
}

#[cfg(test)]
mod tests;
