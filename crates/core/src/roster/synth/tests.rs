#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;
use crate::roster::import::{native, Issues, Location, Mode};
use std::collections::HashMap;

fn opts(seed: u64) -> SynthOptions {
    SynthOptions::for_scale(Scale::National, seed)
}

const COUNTED: [&str; 9] = [
    "pupils",
    "employees",
    "contact persons",
    "groups",
    "memberships",
    "persons",
    "protected",
    "employees who are contact persons",
    "persons with several roles",
];

fn counts(r: &InstitutionRoster) -> [usize; 9] {
    let mut roles: HashMap<&str, Vec<Actor>> = HashMap::new();
    for role in &r.roles {
        roles
            .entry(&role.user_id)
            .or_default()
            .push(role.role.actor());
    }
    let contacts: HashSet<&str> = r.contacts.iter().map(|c| c.contact.as_str()).collect();
    let has = |u: &str, a: Actor| roles.get(u).is_some_and(|v| v.contains(&a));
    let staff = |u: &&&str| has(u, Actor::Employee) || has(u, Actor::External);
    [
        roles.keys().filter(|u| has(u, Actor::Pupil)).count(),
        roles.keys().filter(staff).count(),
        contacts.len(),
        r.groups.len(),
        r.memberships.len(),
        r.persons.len(),
        r.persons.iter().filter(|p| p.protected).count(),
        contacts.iter().filter(staff).count(),
        roles.values().filter(|v| v.len() > 1).count(),
    ]
}

fn add(total: &mut [usize; 9], c: [usize; 9]) {
    total.iter_mut().zip(c).for_each(|(t, c)| *t += c);
}

#[test]
fn scales() {
    let n = |s| SynthOptions::for_scale(s, 1).institutions;
    assert_eq!(
        [n(Scale::School), n(Scale::Municipality), n(Scale::National)],
        [1, 25, 1_300]
    );
}

#[test]
fn deterministic_per_seed_and_index() {
    let a = institution(&opts(7), 5);
    assert_eq!(a, institution(&opts(7), 5));
    // Not on how many institutions are generated.
    assert_eq!(
        a,
        institution(
            &SynthOptions {
                institutions: 10,
                seed: 7
            },
            5
        )
    );
    let b = institution(&opts(8), 5);
    assert_ne!(a.persons, b.persons);
    assert_eq!(a.institution, b.institution);
}

#[test]
fn every_kind_validates_without_issues() {
    let school = institution(&SynthOptions::for_scale(Scale::School, 1), 0);
    assert_eq!(school.institution.kind, K::School);
    let o = opts(1);
    let rosters = [
        school,
        institution(&o, 3),
        institution(&o, 12),
        institution(&o, 26),
    ];
    let kinds: Vec<K> = rosters.iter().map(|r| r.institution.kind).collect();
    assert_eq!(kinds, [K::School, K::DayCare, K::UpperSecondary, K::School]);
    for r in rosters {
        let mut issues = Issues::default();
        let loc = Location::file("synth");
        let parsed = native::validate(native::to_raw(&r), &loc, Mode::Full, &mut issues);
        assert!(
            issues.0.is_empty(),
            "{}: {:?}",
            r.institution.name,
            &issues.0[..3.min(issues.0.len())]
        );
        // What the validator read back is what was generated.
        assert_eq!(parsed.unwrap().roster.persons, r.persons);
    }
}

#[test]
fn averages_are_near_national_targets() {
    let (o, n) = (opts(42), 30);
    let mut total = [0; 9];
    (0..n).for_each(|i| add(&mut total, counts(&institution(&o, i))));
    for (k, target) in [540.0, 62.0, 770.0, 46.0, 2_300.0].into_iter().enumerate() {
        let avg = total[k] as f64 / n as f64;
        assert!(
            (avg / target - 1.0).abs() <= 0.25,
            "{}: {avg:.1}, target {target}",
            COUNTED[k]
        );
    }
    let protected = total[6] as f64 / total[5] as f64;
    assert!(
        (0.005..0.02).contains(&protected),
        "protected share {protected}"
    );
    assert!(total[7] > 0 && total[8] > 0, "{total:?}");
}

#[test]
fn user_ids_are_unique_except_shared_consultants() {
    let o = opts(3);
    let mut seen: HashMap<String, Person> = HashMap::new();
    let mut shared = 0;
    for i in 0..50 {
        let r = institution(&o, i);
        for p in r.persons {
            let (letters, digits) = p.user_id.split_at(4);
            assert!(
                letters.bytes().all(|b| b.is_ascii_lowercase()),
                "{}",
                p.user_id
            );
            assert!(digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()));
            match seen.get(&p.user_id) {
                None => drop(seen.insert(p.user_id.clone(), p)),
                Some(before) => {
                    assert_eq!(before, &p, "a shared person is the same person everywhere");
                    let mut roles = r.roles.iter().filter(|x| x.user_id == p.user_id);
                    assert!(roles.all(|x| x.role == RoleKind::Consultant));
                    shared += 1;
                }
            }
        }
    }
    assert!(shared > 0);
}

#[test]
fn cprs_are_well_formed_unique_and_impossible() {
    let o = opts(11);
    let mut seen: HashMap<String, String> = HashMap::new();
    for p in (0..50).flat_map(|i| institution(&o, i).persons) {
        let cpr = p.cpr.as_ref().unwrap().expose().to_owned();
        assert!(Cpr::parse(&cpr).is_some());
        let n = |at: usize| cpr[at..at + 2].parse::<u8>().unwrap();
        let month = time::Month::try_from(n(2)).unwrap();
        for century in [1900, 2000] {
            let real = Date::from_calendar_date(century + i32::from(n(4)), month, n(0));
            assert!(real.is_err(), "{cpr} is a real date");
        }
        assert_eq!(
            p.birth_date.unwrap().year() % 100,
            i32::from(n(4)),
            "the birth year"
        );
        let other = seen.insert(cpr, p.user_id.clone());
        assert!(
            other.is_none_or(|o| o == p.user_id),
            "two persons share a CPR number"
        );
    }
}

/// `cargo test --release -p tilgang-core synth::tests::national -- --ignored --nocapture`
#[test]
#[ignore]
fn national() {
    let o = opts(1);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let run = |f: &(dyn Fn(InstitutionRoster) + Sync)| {
        std::thread::scope(|s| {
            for t in 0..threads {
                let o = &o;
                s.spawn(move || {
                    (t..o.institutions)
                        .step_by(threads)
                        .for_each(|i| f(institution(o, i)))
                });
            }
        })
    };
    let started = std::time::Instant::now();
    run(&drop);
    let took = started.elapsed();
    let total = std::sync::Mutex::new(([0; 9], HashMap::new()));
    run(&|r| {
        let c = counts(&r);
        let mut guard = total.lock().unwrap();
        add(&mut guard.0, c);
        for p in r.persons {
            let other = guard
                .1
                .insert(p.cpr.unwrap().expose().to_owned(), p.user_id.clone());
            assert!(
                other.is_none_or(|o| o == p.user_id),
                "two persons share a CPR number"
            );
        }
    });
    let (total, _) = total.into_inner().unwrap();
    let summary: Vec<String> = COUNTED
        .iter()
        .zip(total)
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    eprintln!(
        "{} institutions, {threads} threads, {took:?}; {}",
        o.institutions,
        summary.join(", ")
    );
}
