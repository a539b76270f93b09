//! The policy as a table: each row a standing, a channel, a person, a
//! field and the expected answer with its reason.

use super::*;
use crate::sharing::agreement::{Delivery, Filters, RequestSpec};
use Field as F;
use Reason as R;

const INST: &str = "101001";
const OTHER: &str = "101002";
const TODAY: i32 = 2_461_000;

fn spec(package: Package) -> RequestSpec {
    RequestSpec {
        purpose: "Lessons".into(),
        package,
        delivery: Delivery::Both,
        filters: Filters::default(),
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "6 months".into(),
        dpa_reference: "DPA-1".into(),
    }
}

fn with_delivery(mut s: RequestSpec, d: Delivery) -> RequestSpec {
    s.delivery = d;
    s
}

fn with_actors(mut s: RequestSpec, a: &[Actor]) -> RequestSpec {
    s.filters.actors = a.to_vec();
    s
}

fn with_grades(mut s: RequestSpec, g: &[&str]) -> RequestSpec {
    s.filters.grade_levels = g.iter().map(|x| (*x).to_owned()).collect();
    s
}

/// A service's standing in the table: owned, so rows can build it.
#[derive(Clone)]
struct St {
    approved: Option<RequestSpec>,
    pending: Option<RequestSpec>,
    blocked: bool,
    authority: bool,
}

fn none() -> St {
    St {
        approved: None,
        pending: None,
        blocked: false,
        authority: false,
    }
}

fn approved(s: RequestSpec) -> St {
    St {
        approved: Some(s),
        ..none()
    }
}

fn pupil() -> PersonFacts {
    PersonFacts {
        institution: institution_key(INST),
        actors: ACTOR_PUPIL,
        grade: 5,
        protected: false,
        until: i32::MAX,
    }
}

fn employee() -> PersonFacts {
    PersonFacts {
        actors: ACTOR_EMPLOYEE,
        grade: NO_GRADE,
        ..pupil()
    }
}

fn protected(p: PersonFacts) -> PersonFacts {
    PersonFacts {
        protected: true,
        ..p
    }
}

struct Case {
    name: &'static str,
    st: St,
    channel: Channel,
    person: PersonFacts,
    field: Field,
    allowed: bool,
    reason: Reason,
}

fn case(
    name: &'static str,
    st: St,
    channel: Channel,
    person: PersonFacts,
    field: Field,
    allowed: bool,
    reason: Reason,
) -> Case {
    Case {
        name,
        st,
        channel,
        person,
        field,
        allowed,
        reason,
    }
}

fn cases() -> Vec<Case> {
    use Channel::{Export as E, Lookup as L};
    use Package::*;
    let small = || approved(spec(Small));
    let medium = || approved(spec(Medium));
    let large = || approved(spec(Large));
    let auth = || St {
        authority: true,
        ..approved(spec(Authority))
    };
    let ended = PersonFacts {
        until: TODAY - 1,
        ..pupil()
    };
    let ends_today = PersonFacts {
        until: TODAY,
        ..pupil()
    };
    let elsewhere = PersonFacts {
        institution: institution_key(OTHER),
        ..pupil()
    };
    let grade = |g: u8| PersonFacts {
        grade: g,
        ..pupil()
    };
    let contact = PersonFacts {
        actors: ACTOR_CONTACT,
        grade: NO_GRADE,
        ..pupil()
    };
    let revoked = none(); // a revoked approval is no approval in force
    let raised = St {
        pending: Some(spec(Medium)),
        ..small()
    };
    vec![
        // minimal needs no approval, and is all there is without one
        case(
            "minimal_without_approval_gives_groups",
            none(),
            L,
            pupil(),
            F::GroupIds,
            true,
            R::Minimal,
        ),
        case(
            "minimal_without_approval_gives_institution",
            none(),
            L,
            pupil(),
            F::Institution,
            true,
            R::Minimal,
        ),
        case(
            "minimal_without_approval_gives_actor_groups",
            none(),
            L,
            employee(),
            F::ActorGroups,
            true,
            R::Minimal,
        ),
        case(
            "minimal_without_approval_gives_pseudonym",
            none(),
            L,
            pupil(),
            F::Pseudonym,
            true,
            R::Minimal,
        ),
        case(
            "no_approval_no_name",
            none(),
            L,
            pupil(),
            F::GivenName,
            false,
            R::NotInPackage,
        ),
        case(
            "no_approval_no_user_id",
            none(),
            L,
            pupil(),
            F::UserId,
            false,
            R::NotInPackage,
        ),
        case(
            "no_approval_no_export",
            none(),
            E,
            pupil(),
            F::GroupIds,
            false,
            R::NotApprovedForChannel,
        ),
        case(
            "approved_minimal_is_still_minimal",
            approved(spec(Minimal)),
            L,
            pupil(),
            F::GivenName,
            false,
            R::NotInPackage,
        ),
        // packages nest
        case(
            "small_gives_names",
            small(),
            L,
            pupil(),
            F::GivenName,
            true,
            R::Approved,
        ),
        case(
            "small_gives_grade_level",
            small(),
            L,
            pupil(),
            F::GradeLevel,
            true,
            R::Approved,
        ),
        case(
            "small_gives_minimal_fields_as_approved",
            small(),
            L,
            pupil(),
            F::GroupIds,
            true,
            R::Approved,
        ),
        case(
            "small_no_email",
            small(),
            L,
            pupil(),
            F::Email,
            false,
            R::NotInPackage,
        ),
        case(
            "small_no_cpr",
            small(),
            E,
            employee(),
            F::Cpr,
            false,
            R::NotInPackage,
        ),
        case(
            "medium_gives_email",
            medium(),
            L,
            employee(),
            F::Email,
            true,
            R::Approved,
        ),
        case(
            "medium_gives_cpr_in_export",
            medium(),
            E,
            pupil(),
            F::Cpr,
            true,
            R::Approved,
        ),
        case(
            "medium_no_address",
            medium(),
            E,
            pupil(),
            F::Address,
            false,
            R::NotInPackage,
        ),
        case(
            "large_gives_address",
            large(),
            E,
            pupil(),
            F::Address,
            true,
            R::Approved,
        ),
        case(
            "large_gives_contact_persons",
            large(),
            E,
            pupil(),
            F::ContactPersons,
            true,
            R::Approved,
        ),
        case(
            "large_gives_protected_flag",
            large(),
            E,
            protected(pupil()),
            F::ProtectedFlag,
            true,
            R::Approved,
        ),
        // protected persons: real names, addresses, phones only to authorities
        case(
            "protected_name_withheld_from_large",
            large(),
            E,
            protected(pupil()),
            F::GivenName,
            false,
            R::ProtectedPerson,
        ),
        case(
            "protected_family_name_withheld",
            small(),
            L,
            protected(pupil()),
            F::FamilyName,
            false,
            R::ProtectedPerson,
        ),
        case(
            "protected_alias_goes_instead",
            small(),
            L,
            protected(pupil()),
            F::AliasName,
            true,
            R::Approved,
        ),
        case(
            "protected_address_withheld",
            large(),
            E,
            protected(pupil()),
            F::Address,
            false,
            R::ProtectedPerson,
        ),
        case(
            "protected_mobile_withheld",
            large(),
            E,
            protected(employee()),
            F::MobilePhone,
            false,
            R::ProtectedPerson,
        ),
        case(
            "protected_name_to_authority",
            auth(),
            E,
            protected(pupil()),
            F::GivenName,
            true,
            R::Approved,
        ),
        case(
            "protected_address_to_authority",
            auth(),
            E,
            protected(pupil()),
            F::Address,
            true,
            R::Approved,
        ),
        case(
            "protected_email_with_medium",
            medium(),
            L,
            protected(pupil()),
            F::Email,
            true,
            R::Approved,
        ),
        case(
            "non_authority_never_gets_authority_package",
            approved(spec(Authority)),
            E,
            protected(pupil()),
            F::GivenName,
            false,
            R::ProtectedPerson,
        ),
        case(
            "non_authority_stored_authority_acts_as_large",
            approved(spec(Authority)),
            E,
            pupil(),
            F::Address,
            true,
            R::Approved,
        ),
        // who is visible
        case(
            "pupil_of_other_institution_invisible",
            large(),
            E,
            elsewhere,
            F::GroupIds,
            false,
            R::NotAtInstitution,
        ),
        case(
            "pupil_of_other_institution_invisible_minimal",
            none(),
            L,
            elsewhere,
            F::Institution,
            false,
            R::NotAtInstitution,
        ),
        case(
            "ended_membership_vanishes_after_end",
            large(),
            E,
            ended,
            F::GivenName,
            false,
            R::MembershipEnded,
        ),
        case(
            "ended_membership_vanishes_for_minimal",
            none(),
            L,
            ended,
            F::GroupIds,
            false,
            R::MembershipEnded,
        ),
        case(
            "membership_ending_today_still_visible",
            small(),
            L,
            ends_today,
            F::GivenName,
            true,
            R::Approved,
        ),
        // filters
        case(
            "actor_filter_excludes_employees",
            approved(with_actors(spec(Small), &[Actor::Pupil])),
            E,
            employee(),
            F::GivenName,
            false,
            R::ActorFiltered,
        ),
        case(
            "actor_filter_keeps_pupils",
            approved(with_actors(spec(Small), &[Actor::Pupil])),
            E,
            pupil(),
            F::GivenName,
            true,
            R::Approved,
        ),
        case(
            "actor_filter_excludes_contacts",
            approved(with_actors(spec(Large), &[Actor::Pupil, Actor::Employee])),
            E,
            contact,
            F::GivenName,
            false,
            R::ActorFiltered,
        ),
        case(
            "grade_filter_keeps_listed_grade",
            approved(with_grades(spec(Small), &["5", "6"])),
            E,
            grade(5),
            F::GivenName,
            true,
            R::Approved,
        ),
        case(
            "grade_filter_excludes_other_grade",
            approved(with_grades(spec(Small), &["5", "6"])),
            E,
            grade(7),
            F::GivenName,
            false,
            R::GradeFiltered,
        ),
        case(
            "grade_filter_excludes_pupil_without_grade",
            approved(with_grades(spec(Small), &["0"])),
            E,
            grade(NO_GRADE),
            F::UserId,
            false,
            R::GradeFiltered,
        ),
        case(
            "grade_filter_leaves_employees",
            approved(with_grades(spec(Small), &["5"])),
            E,
            employee(),
            F::GivenName,
            true,
            R::Approved,
        ),
        // changes and revocation
        case(
            "raised_package_awaiting_keeps_old_package",
            raised.clone(),
            L,
            pupil(),
            F::GivenName,
            true,
            R::Approved,
        ),
        case(
            "raised_package_awaiting_withholds_new_fields",
            raised.clone(),
            L,
            pupil(),
            F::Email,
            false,
            R::AwaitingApproval,
        ),
        case(
            "raised_package_awaiting_beyond_pending",
            raised,
            L,
            pupil(),
            F::Address,
            false,
            R::NotInPackage,
        ),
        case(
            "revoked_approval_takes_effect_at_once",
            revoked.clone(),
            L,
            pupil(),
            F::GivenName,
            false,
            R::NotInPackage,
        ),
        case(
            "revoked_approval_stops_export",
            revoked,
            E,
            pupil(),
            F::GroupIds,
            false,
            R::NotApprovedForChannel,
        ),
        case(
            "first_request_pending_gives_minimal",
            St {
                pending: Some(spec(Small)),
                ..none()
            },
            L,
            pupil(),
            F::GivenName,
            false,
            R::AwaitingApproval,
        ),
        // delivery
        case(
            "lookup_only_approval_no_export",
            approved(with_delivery(spec(Medium), Delivery::Lookup)),
            E,
            pupil(),
            F::GroupIds,
            false,
            R::NotApprovedForChannel,
        ),
        case(
            "export_only_approval_minimal_at_login",
            approved(with_delivery(spec(Medium), Delivery::Export)),
            L,
            pupil(),
            F::GroupIds,
            true,
            R::Minimal,
        ),
        case(
            "export_only_approval_no_names_at_login",
            approved(with_delivery(spec(Medium), Delivery::Export)),
            L,
            pupil(),
            F::GivenName,
            false,
            R::NotApprovedForChannel,
        ),
        // blocks
        case(
            "blocked_service_gets_nothing",
            St {
                blocked: true,
                ..large()
            },
            L,
            pupil(),
            F::GroupIds,
            false,
            R::Blocked,
        ),
        case(
            "blocked_service_no_minimal",
            St {
                blocked: true,
                ..none()
            },
            L,
            employee(),
            F::Institution,
            false,
            R::Blocked,
        ),
        case(
            "blocked_service_no_export",
            St {
                blocked: true,
                ..auth()
            },
            E,
            pupil(),
            F::Cpr,
            false,
            R::Blocked,
        ),
    ]
}

#[test]
fn the_policy_table() {
    let table = cases();
    assert!(table.len() >= 40, "{} cases", table.len());
    let mut failed = Vec::new();
    for c in &table {
        let st = Standing {
            institution: INST,
            approved: c.st.approved.as_ref(),
            pending: c.st.pending.as_ref(),
            blocked: c.st.blocked,
            authority: c.st.authority,
        };
        let got = decide(&compile(&st, c.channel), &c.person, c.field, TODAY);
        let want = Decision {
            allowed: c.allowed,
            reason: c.reason,
        };
        if got != want {
            failed.push(format!("{}: got {got:?}, want {want:?}", c.name));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn a_view_reports_its_package() {
    let s = spec(Package::Authority);
    let st = Standing {
        institution: INST,
        approved: Some(&s),
        pending: None,
        blocked: false,
        authority: false,
    };
    assert_eq!(compile(&st, Channel::Lookup).package(), Package::Large);
    let st = Standing {
        authority: true,
        ..st
    };
    assert_eq!(compile(&st, Channel::Lookup).package(), Package::Authority);
    assert_eq!(institution_key("101001"), 101001);
    assert!(institution_key("x-1") >= 0x8000_0000);
    assert_eq!(grade_index(Some(" 3 ")), 3);
    assert_eq!(grade_index(Some("0.a")), NO_GRADE);
}
