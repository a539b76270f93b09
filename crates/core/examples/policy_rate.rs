//! Field decisions per second of the sharing policy for an export-sized
//! batch (default 10,000 persons × 20 fields), on one core, for
//! `bench/policy.sh`. Each batch compiles the service's standing once (as
//! an export does) and asks `decide` for every person and field. Prints
//! the rate, then how many decisions released a field (a check that the
//! work was not optimised away).
//!
//!     cargo run --release -p tilgang-core --example policy_rate -- [PERSONS] [SECONDS]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};
use tilgang_core::roster::Actor;
use tilgang_core::sharing::agreement::{Delivery, Filters, RequestSpec};
use tilgang_core::sharing::policy::{
    compile, decide, institution_key, Channel, PersonFacts, Standing, ACTOR_CONTACT,
    ACTOR_EMPLOYEE, ACTOR_PUPIL, NO_GRADE,
};
use tilgang_core::sharing::{Field, Package};

const FIELDS: [Field; 20] = [
    Field::Institution,
    Field::UserId,
    Field::GivenName,
    Field::FamilyName,
    Field::AliasName,
    Field::Role,
    Field::StudentNumber,
    Field::GradeLevel,
    Field::Location,
    Field::MainGroup,
    Field::Groups,
    Field::Initials,
    Field::Cpr,
    Field::Email,
    Field::BirthDate,
    Field::Gender,
    Field::Address,
    Field::MobilePhone,
    Field::ProtectedFlag,
    Field::ContactPersons,
];

fn main() {
    let mut args = std::env::args().skip(1);
    let persons: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let today = 2_461_000;
    let here = institution_key("101001");
    let elsewhere = institution_key("101002");
    // A school-shaped batch: mostly pupils over grades 0-9, some staff and
    // contact persons, a few protected, ended or at another institution.
    let batch: Vec<PersonFacts> = (0..persons)
        .map(|i| {
            let actors = match i % 10 {
                0 => ACTOR_EMPLOYEE,
                1 => ACTOR_CONTACT,
                _ => ACTOR_PUPIL,
            };
            PersonFacts {
                institution: if i % 97 == 0 { elsewhere } else { here },
                actors,
                grade: if actors == ACTOR_PUPIL {
                    (i % 10) as u8
                } else {
                    NO_GRADE
                },
                protected: i % 50 == 0,
                until: if i % 31 == 0 { today - 5 } else { i32::MAX },
            }
        })
        .collect();
    let spec = RequestSpec {
        purpose: "bench".into(),
        package: Package::Large,
        delivery: Delivery::Both,
        filters: Filters {
            actors: vec![Actor::Pupil, Actor::Employee],
            grade_levels: (0..8).map(|g| g.to_string()).collect(),
        },
        sub_processors: vec![],
        locations: vec!["DK".into()],
        retention: "6 months".into(),
        dpa_reference: "DPA".into(),
    };
    let standing = Standing {
        institution: "101001",
        approved: Some(&spec),
        pending: None,
        blocked: false,
        authority: false,
    };
    let run = |standing: &Standing<'_>| -> u64 {
        let view = compile(black_box(standing), Channel::Export);
        // The field list is opaque to the optimiser, as an export's
        // configured list would be.
        let fields: &[Field] = black_box(&FIELDS[..]);
        let mut allowed = 0u64;
        for p in black_box(&batch) {
            for &f in fields {
                allowed += u64::from(decide(&view, p, f, today).allowed);
            }
        }
        allowed
    };
    // Warm up, then measure whole batches for the time asked.
    let mut released = run(&standing);
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut batches = 0u64;
    while Instant::now() < until {
        released = black_box(run(&standing));
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let decisions = batches as f64 * (persons * FIELDS.len()) as f64;
    println!("{:.0}", decisions / secs);
    println!("{released}");
}
