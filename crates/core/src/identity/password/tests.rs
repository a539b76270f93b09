#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use time::macros::datetime;

/// Small parameters keep the hashing tests fast; one test uses the defaults.
const FAST: HashParams = HashParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

fn employee<'a>(login: &'a str, names: &'a [&'a str]) -> PasswordContext<'a> {
    PasswordContext {
        actor: Actor::Employee,
        grade_level: None,
        login,
        names,
    }
}

fn pupil<'a>(grade: Option<u8>, login: &'a str, names: &'a [&'a str]) -> PasswordContext<'a> {
    PasswordContext {
        actor: Actor::Pupil,
        grade_level: grade,
        login,
        names,
    }
}

fn codes(result: Result<(), Vec<PolicyProblem>>) -> Vec<&'static str> {
    match result {
        Ok(()) => Vec::new(),
        Err(problems) => problems.iter().map(PolicyProblem::code).collect(),
    }
}

// ---------------------------------------------------------------- hashing

#[test]
fn hash_and_verify_round_trip() {
    let phc = hash_password("korrekt hest batteri", &FAST).unwrap();
    assert!(verify_password("korrekt hest batteri", &phc).unwrap());
}

#[test]
fn wrong_password_does_not_verify() {
    let phc = hash_password("korrekt hest batteri", &FAST).unwrap();
    for wrong in ["korrekt hest batteri ", "Korrekt hest batteri", "", "x"] {
        assert!(!verify_password(wrong, &phc).unwrap(), "{wrong:?}");
    }
}

#[test]
fn unicode_passwords_round_trip() {
    let phc = hash_password("rødgrød med fløde 🍓", &FAST).unwrap();
    assert!(verify_password("rødgrød med fløde 🍓", &phc).unwrap());
    assert!(!verify_password("rodgrod med flode 🍓", &phc).unwrap());
}

#[test]
fn hash_is_an_argon2id_phc_string_carrying_its_parameters() {
    let phc = hash_password("pw", &FAST).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
}

#[test]
fn each_hash_has_its_own_salt() {
    let a = hash_password("same", &FAST).unwrap();
    let b = hash_password("same", &FAST).unwrap();
    assert_ne!(a, b);
}

#[test]
fn default_parameters_hash_and_verify() {
    let params = HashParams::default();
    assert_eq!((params.m_kib, params.t, params.p), (19456, 2, 1));
    let phc = hash_password("en lang og god adgangssætning", &params).unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(verify_password("en lang og god adgangssætning", &phc).unwrap());
    assert!(!needs_rehash(&phc, &params));
}

#[test]
fn verify_uses_the_parameters_stored_in_the_hash() {
    let old = HashParams {
        m_kib: 32,
        t: 1,
        p: 1,
    };
    let phc = hash_password("pw", &old).unwrap();
    // The configuration has moved on since; the old hash still verifies.
    assert!(verify_password("pw", &phc).unwrap());
}

#[test]
fn needs_rehash_when_configured_parameters_are_raised() {
    let phc = hash_password("pw", &FAST).unwrap();
    let cases = [
        (FAST, false),
        (HashParams { m_kib: 128, ..FAST }, true),
        (HashParams { t: 2, ..FAST }, true),
        (HashParams { p: 2, ..FAST }, true),
        // A stored hash stronger than the configuration is kept.
        (HashParams { m_kib: 32, ..FAST }, false),
    ];
    for (configured, expected) in cases {
        assert_eq!(needs_rehash(&phc, &configured), expected, "{configured:?}");
    }
}

#[test]
fn needs_rehash_for_other_algorithms_and_unreadable_hashes() {
    let argon2i = Argon2::new(
        Algorithm::Argon2i,
        Version::V0x13,
        Params::new(64, 1, 1, None).unwrap(),
    );
    let salt = SaltString::generate(&mut OsRng);
    let phc = argon2i.hash_password(b"pw", &salt).unwrap().to_string();
    assert!(verify_password("pw", &phc).unwrap());
    assert!(needs_rehash(&phc, &FAST));

    for garbage in ["", "plain", "$2b$12$abcdefghijklmnopqrstuv"] {
        assert!(needs_rehash(garbage, &FAST), "{garbage:?}");
    }
}

#[test]
fn malformed_stored_hash_is_an_error_not_a_mismatch() {
    for garbage in ["", "plain", "$argon2id$v=19$m=64,t=1,p=1$"] {
        let err = verify_password("pw", garbage).unwrap_err();
        assert_eq!(err.code(), "CRYPTO_KEY", "{garbage:?}");
    }
}

#[test]
fn overlong_password_is_neither_hashed_nor_verified() {
    let long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    assert!(hash_password(&long, &FAST).is_err());
    let phc = hash_password("pw", &FAST).unwrap();
    assert!(!verify_password(&long, &phc).unwrap());
}

#[test]
fn invalid_parameters_are_config_errors() {
    for bad in [
        HashParams { m_kib: 1, ..FAST },
        HashParams { t: 0, ..FAST },
        HashParams { p: 0, ..FAST },
    ] {
        assert_eq!(
            bad.validate().unwrap_err().code(),
            "CONFIG_INVALID",
            "{bad:?}"
        );
        assert_eq!(
            hash_password("pw", &bad).unwrap_err().code(),
            "CONFIG_INVALID"
        );
    }
    assert!(HashParams::default().validate().is_ok());
}

// -------------------------------------------------------------- blocklist

#[test]
fn blocklist_has_at_least_100000_entries_and_the_classics() {
    assert!(blocklist_len() >= 100_000, "{}", blocklist_len());
    for pw in [
        "password", "123456", "qwerty", "iloveyou", "sommer", "kodeord",
    ] {
        assert!(is_blocklisted(pw), "{pw}");
    }
}

#[test]
fn blocklist_is_case_insensitive() {
    for pw in ["PASSWORD", "Password", "QwErTy", "IloveYou"] {
        assert!(is_blocklisted(pw), "{pw}");
    }
    assert!(!is_blocklisted("glas-vindue-fjeldørred"));
}

#[test]
fn blocklist_file_is_sorted_lowercase_and_unique() {
    let lines: Vec<&str> = BLOCKLIST_DATA.lines().collect();
    assert_eq!(lines.len(), blocklist_len());
    for pair in lines.windows(2) {
        assert!(pair[0] < pair[1], "{:?} before {:?}", pair[0], pair[1]);
    }
    for line in &lines {
        assert!(!line.is_empty());
        assert_eq!(*line, line.to_lowercase(), "{line:?}");
        assert_eq!(*line, line.trim(), "{line:?}");
    }
}

// ----------------------------------------------------------------- policy

#[test]
fn minimum_length_depends_on_the_actor() {
    let policy = Policy {
        young_pupil_max_grade: Some(2),
        ..Policy::default()
    };
    let ctx = |actor, grade| PasswordContext {
        actor,
        grade_level: grade,
        login: "xy",
        names: &[],
    };
    let cases = [
        (Actor::Employee, None, 12),
        (Actor::External, None, 12),
        (Actor::ContactPerson, None, 12),
        (Actor::Pupil, None, 8),
        (Actor::Pupil, Some(5), 8),
        (Actor::Pupil, Some(3), 8),
        (Actor::Pupil, Some(2), 4),
        (Actor::Pupil, Some(0), 4),
        // The grade-level exception is for pupils only.
        (Actor::Employee, Some(0), 12),
    ];
    for (actor, grade, min) in cases {
        assert_eq!(
            policy.min_len(&ctx(actor, grade)),
            min,
            "{actor:?} {grade:?}"
        );
    }
    // Off by default.
    assert_eq!(Policy::default().min_len(&ctx(Actor::Pupil, Some(0))), 8);
}

#[test]
fn too_short_passwords_are_refused_with_the_minimum() {
    let policy = Policy::default();
    let cases: &[(&str, PasswordContext<'_>, bool)] = &[
        ("vinter-sti-9", employee("xy", &[]), false),
        ("vinter-sti", employee("xy", &[]), true),
        ("", employee("xy", &[]), true),
        ("blå-kat-77", pupil(Some(4), "xy", &[]), false),
        ("blå-k7", pupil(Some(4), "xy", &[]), true),
    ];
    for (pw, ctx, short) in cases {
        let result = policy.check(pw, ctx);
        assert_eq!(
            codes(result.clone()).contains(&"PASSWORD_TOO_SHORT"),
            *short,
            "{pw:?}: {result:?}"
        );
        if *short {
            let problem = result.unwrap_err().remove(0);
            assert_eq!(problem.message_key(), "password.too_short");
            assert_eq!(
                problem.params(),
                vec![("min", policy.min_len(ctx).to_string())]
            );
        }
    }
}

#[test]
fn length_counts_characters_not_bytes() {
    let policy = Policy::default();
    // Eleven characters in more than twelve bytes, then twelve.
    let pw = "æøåæøå-kvæg";
    assert_eq!(pw.chars().count(), 11);
    assert!(codes(policy.check(pw, &employee("xy", &[]))).contains(&"PASSWORD_TOO_SHORT"));
    let pw = "æøåæøå-kvægx";
    assert!(!codes(policy.check(pw, &employee("xy", &[]))).contains(&"PASSWORD_TOO_SHORT"));
}

#[test]
fn long_passwords_are_allowed_up_to_max_len() {
    let policy = Policy::default();
    let words = "lampe skov cykel tårn ";
    let long: String = words.repeat(10).chars().take(128).collect();
    assert_eq!(long.chars().count(), 128);
    assert_eq!(policy.check(&long, &employee("xy", &[])), Ok(()));
    let sixty_four: String = long.chars().take(64).collect();
    assert_eq!(policy.check(&sixty_four, &employee("xy", &[])), Ok(()));

    let too_long: String = words.repeat(10).chars().take(129).collect();
    let problems = policy.check(&too_long, &employee("xy", &[])).unwrap_err();
    assert_eq!(problems, vec![PolicyProblem::TooLong { max: 128 }]);
    assert_eq!(problems[0].params(), vec![("max", "128".to_string())]);
}

#[test]
fn blocklisted_passwords_are_refused() {
    let policy = Policy::default();
    let cases = [
        ("password", true),
        ("Password1234", true),
        ("qwertyuiop123", true),
        ("1234567890", true),
        ("Password1234!x-fjord", false),
    ];
    for (pw, listed) in cases {
        let ctx = pupil(None, "xy", &[]);
        assert_eq!(
            codes(policy.check(pw, &ctx)).contains(&"PASSWORD_BLOCKLISTED"),
            listed,
            "{pw}"
        );
    }
}

#[test]
fn passwords_containing_the_login_or_a_name_are_refused() {
    let policy = Policy::default();
    let names: &[&str] = &["Hans-Christian", "Ærø Jensen", "Bo"];
    let cases = [
        ("abcd1234", "vindue-abcd1234-tag", "PASSWORD_CONTAINS_LOGIN"),
        ("abcd1234", "VINDUE-ABCD1234-TAG", "PASSWORD_CONTAINS_LOGIN"),
        (
            "anne@skole.dk",
            "vindue-anne-tag-lys",
            "PASSWORD_CONTAINS_LOGIN",
        ),
        ("abcd1234", "glas-christian-fjeld", "PASSWORD_CONTAINS_NAME"),
        ("abcd1234", "glas-HANS-fjeld-regn", "PASSWORD_CONTAINS_NAME"),
        ("abcd1234", "jensens-glas-fjeld", "PASSWORD_CONTAINS_NAME"),
        ("abcd1234", "glas-ærø-fjeld-regn", "PASSWORD_CONTAINS_NAME"),
    ];
    for (login, pw, code) in cases {
        let problems = codes(policy.check(pw, &employee(login, names)));
        assert!(problems.contains(&code), "{pw}: {problems:?}");
    }

    // Names and logins shorter than three characters are not looked for.
    let clean = [
        ("bo", "glas-bo-fjeld-regn-sne"),
        ("xy", "boble-xylofon-fjeld-regn"),
    ];
    for (login, pw) in clean {
        let problems = codes(policy.check(pw, &employee(login, names)));
        assert!(
            !problems.contains(&"PASSWORD_CONTAINS_NAME")
                && !problems.contains(&"PASSWORD_CONTAINS_LOGIN"),
            "{pw}: {problems:?}"
        );
    }
}

#[test]
fn weak_passwords_are_refused_with_feedback() {
    let policy = Policy::default();
    // Long enough and not on the list, but easy to guess.
    for pw in [
        "aaaaaaaaaaaaaaaa",
        "qwertzuiopasdfgh",
        "jensjensjensjens",
        "1111222233334444",
    ] {
        let problems = policy.check(pw, &employee("xy", &[])).unwrap_err();
        let weak = problems
            .iter()
            .find(|p| p.code() == "PASSWORD_TOO_WEAK")
            .unwrap_or_else(|| panic!("{pw}: {problems:?}"));
        let PolicyProblem::TooWeak {
            score, required, ..
        } = weak
        else {
            unreachable!()
        };
        assert!(score < required);
        assert_eq!(*required, 3);
        assert!(!weak.hints().is_empty(), "{pw}: no feedback");
        for hint in weak.hints() {
            assert!(PolicyProblem::MESSAGE_KEYS.contains(&hint), "{hint}");
        }
    }
}

#[test]
fn pupils_need_a_lower_strength_score_than_adults() {
    let policy = Policy::default();
    // Scores 2: good enough for a pupil, not for an adult.
    let pw = "mikkelmikkel99";
    let estimate = zxcvbn::zxcvbn(pw, &[]);
    assert_eq!(u8::from(estimate.score()), 2, "test premise");
    assert_eq!(policy.check(pw, &pupil(Some(5), "xy", &[])), Ok(()));
    let adult = PasswordContext {
        actor: Actor::ContactPerson,
        ..pupil(None, "xy", &[])
    };
    assert!(codes(policy.check(pw, &adult)).contains(&"PASSWORD_TOO_WEAK"));
}

#[test]
fn young_pupils_use_the_short_minimum_and_skip_the_estimate() {
    let policy = Policy {
        young_pupil_max_grade: Some(1),
        ..Policy::default()
    };
    let young = pupil(Some(0), "xy", &["Ida"]);
    let cases = [
        ("kat9", Ok(())),
        ("zq9", Err(vec!["PASSWORD_TOO_SHORT"])),
        ("1234", Err(vec!["PASSWORD_BLOCKLISTED"])),
        ("ida7", Err(vec!["PASSWORD_CONTAINS_NAME"])),
    ];
    for (pw, expected) in cases {
        let got = policy
            .check(pw, &young)
            .map_err(|ps| ps.iter().map(PolicyProblem::code).collect::<Vec<_>>());
        assert_eq!(got, expected, "{pw}");
    }
    // An older pupil gets the normal rules.
    let older = pupil(Some(2), "xy", &[]);
    assert!(codes(policy.check("kat9", &older)).contains(&"PASSWORD_TOO_SHORT"));
}

#[test]
fn good_passphrases_are_accepted() {
    let policy = Policy::default();
    let names: &[&str] = &["Mette", "Frederiksen"];
    for pw in [
        "korrekt hest batteri hæfteklamme",
        "violet-canoe-marble-thunder",
        "Sneglen kravler over havemuren",
        "7 blå elefanter i Aarhus!",
    ] {
        assert_eq!(
            policy.check(pw, &employee("mefr0001", names)),
            Ok(()),
            "{pw}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let policy = Policy::default();
    let problems = codes(policy.check("hans", &employee("hans", &["Hans"])));
    assert_eq!(
        problems,
        vec![
            "PASSWORD_TOO_SHORT",
            "PASSWORD_BLOCKLISTED",
            "PASSWORD_CONTAINS_LOGIN",
            "PASSWORD_CONTAINS_NAME"
        ]
    );
}

#[test]
fn problem_codes_and_message_keys_are_stable_and_distinct() {
    let problems = [
        PolicyProblem::TooShort { min: 12 },
        PolicyProblem::TooLong { max: 128 },
        PolicyProblem::Blocklisted,
        PolicyProblem::ContainsLogin,
        PolicyProblem::ContainsName,
        PolicyProblem::TooWeak {
            score: 1,
            required: 3,
            warning: None,
            suggestions: Vec::new(),
        },
    ];
    let codes: Vec<_> = problems.iter().map(PolicyProblem::code).collect();
    assert_eq!(
        codes,
        [
            "PASSWORD_TOO_SHORT",
            "PASSWORD_TOO_LONG",
            "PASSWORD_BLOCKLISTED",
            "PASSWORD_CONTAINS_LOGIN",
            "PASSWORD_CONTAINS_NAME",
            "PASSWORD_TOO_WEAK"
        ]
    );
    for p in &problems {
        assert!(PolicyProblem::MESSAGE_KEYS.contains(&p.message_key()));
    }
    let mut keys = PolicyProblem::MESSAGE_KEYS.to_vec();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), PolicyProblem::MESSAGE_KEYS.len());
}

#[test]
fn no_rotation_by_default_and_after_the_interval_when_configured() {
    let set = datetime!(2026-01-01 08:00 UTC);
    let later = datetime!(2027-06-01 08:00 UTC);
    assert!(!Policy::default().is_expired(set, later));

    let policy = Policy {
        rotation_days: Some(90),
        ..Policy::default()
    };
    assert!(!policy.is_expired(set, datetime!(2026-03-31 07:59 UTC)));
    assert!(policy.is_expired(set, datetime!(2026-04-01 08:00 UTC)));
}

#[test]
fn policy_validation_catches_bad_configuration() {
    assert!(Policy::default().validate().is_ok());
    let bad = [
        Policy {
            max_len: 63,
            ..Policy::default()
        },
        Policy {
            min_len_employee: 0,
            ..Policy::default()
        },
        Policy {
            min_len_pupil: 200,
            ..Policy::default()
        },
        Policy {
            young_pupil_min_len: 9,
            ..Policy::default()
        },
        Policy {
            min_score_adult: 5,
            ..Policy::default()
        },
        Policy {
            rotation_days: Some(0),
            ..Policy::default()
        },
    ];
    for policy in bad {
        assert_eq!(
            policy.validate().unwrap_err().code(),
            "CONFIG_INVALID",
            "{policy:?}"
        );
    }
}

#[test]
fn policy_and_params_deserialize_with_defaults_and_refuse_unknown_keys() {
    let policy: Policy =
        serde_json::from_str(r#"{"young_pupil_max_grade": 2, "rotation_days": 180}"#).unwrap();
    assert_eq!(policy.young_pupil_max_grade, Some(2));
    assert_eq!(policy.rotation_days, Some(180));
    assert_eq!(policy.min_len_employee, 12);
    assert!(serde_json::from_str::<Policy>(r#"{"min_lenght": 3}"#).is_err());

    let params: HashParams = serde_json::from_str(r#"{"m_kib": 65536}"#).unwrap();
    assert_eq!(
        params,
        HashParams {
            m_kib: 65536,
            ..HashParams::default()
        }
    );
    assert!(serde_json::from_str::<HashParams>(r#"{"memory": 1}"#).is_err());
}
