//! The binary as an operator meets it: help texts, import errors and exit
//! codes, audit verification, and a kill in the middle of an import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn tilgang(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tilgang"));
    c.current_dir(dir)
        .args(args)
        .env_remove("TILGANG_TEST_POSTGRES_URL")
        .env(
            "TILGANG_DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        )
        .env("TILGANG_MASTER_KEY_PATH", dir.join("t.key"));
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    tilgang(dir, args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_command_explains_itself_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let top = run(dir.path(), &["--help"]);
    assert!(top.status.success());
    assert!(text(&top).contains("Examples:"));
    for cmd in [
        vec!["serve"],
        vec!["demo"],
        vec!["import"],
        vec!["export"],
        vec!["gen"],
        vec!["migrate"],
        vec!["audit", "verify"],
        vec!["audit", "checkpoint", "make"],
        vec!["audit", "prune"],
        vec!["audit", "checkpoint", "export"],
        vec!["audit", "search"],
        vec!["healthcheck"],
        vec!["security-reports"],
        vec!["config", "check"],
        vec!["user", "activation-code"],
        vec!["user", "set-password"],
        vec!["user", "unlock"],
        vec!["user", "reset-factors"],
        vec!["user", "grant-right"],
        vec!["user", "revoke-right"],
        vec!["jobs", "list"],
        vec!["jobs", "run"],
        vec!["anonymize"],
        vec!["person", "export"],
        vec!["person", "erase"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let o = run(dir.path(), &args);
        assert!(o.status.success(), "{cmd:?}");
        assert!(
            text(&o).contains("Example"),
            "{cmd:?} has no example:\n{}",
            text(&o)
        );
    }
}

#[test]
fn an_unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tilgang.toml"),
        "databse_url = \"sqlite://x.db\"\n",
    )
    .unwrap();
    let o = run(dir.path(), &["config", "check"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("databse_url"), "{}", text(&o));
}

#[test]
fn a_rejected_import_says_where_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"format":"tilgang-roster/1","institution":{"number":"101001","name":"Skole","type":"skole"},
        "persons":[{"user_id":"a1","given_name":"Alma","family_name":"Jensen","cpr":"12345","roles":[{"role":"Elev"}]}],
        "groups":[{"id":"1A","name":"1.A","type":"Hovedgruppe","members":["a1","zz"]}]}"#;
    std::fs::write(dir.path().join("bad.json"), doc).unwrap();
    let o = run(dir.path(), &["import", "bad.json"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("bad.json") && out.contains("field type") && out.contains("\"skole\""),
        "{out}"
    );
    assert!(
        out.contains("field cpr") && !out.contains("12345"),
        "the CPR value is never echoed: {out}"
    );
    assert!(
        out.contains("members[1]") && out.contains("\"zz\""),
        "{out}"
    );
    assert!(out.contains("Nothing was written"), "{out}");
    let verify = run(dir.path(), &["audit", "verify"]);
    assert!(text(&verify).contains("0 event(s)"), "{}", text(&verify));
}

#[test]
fn gen_import_export_and_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(dir.path(), &["gen", "--out", "roster", "--scale", "school"])
            .status
            .success()
    );
    let first = run(dir.path(), &["import", "roster", "--json"]);
    assert!(first.status.success(), "{}", text(&first));
    let second = run(dir.path(), &["import", "roster", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["summary"]["persons"]["created"], 0);
    assert_eq!(report["summary"]["persons"]["updated"], 0);
    let number = std::fs::read_dir(dir.path().join("roster"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let number = number
        .to_string_lossy()
        .trim_end_matches(".json")
        .to_owned();
    let export = run(
        dir.path(),
        &["export", "--institution", &number, "--out", "export.json"],
    );
    assert!(export.status.success(), "{}", text(&export));
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("export.json")).unwrap()).unwrap();
    assert!(exported["persons"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("cpr").is_none()));
    let verify = run(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    assert!(text(&verify).contains("intact"));

    // The export and the imports are in the audit log, and the operator's
    // search finds them (and is itself audited).
    let found = run(
        dir.path(),
        &[
            "audit",
            "search",
            "--action",
            "roster.export",
            "--limit",
            "5",
        ],
    );
    assert!(found.status.success(), "{}", text(&found));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&found.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{}", text(&found));
    assert_eq!(events[0]["action"], "roster.export");
    assert_eq!(events[0]["institution"], number.as_str());
    let imports = run(
        dir.path(),
        &[
            "audit",
            "search",
            "--action",
            "roster.import",
            "--limit",
            "1",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&imports.stdout).lines().count(), 1);
    assert!(
        text(&imports).contains("more with --after"),
        "{}",
        text(&imports)
    );
    let searches = run(dir.path(), &["audit", "search", "--action", "audit.search"]);
    assert_eq!(
        String::from_utf8_lossy(&searches.stdout).lines().count(),
        3,
        "{}",
        text(&searches)
    );
    let bad = run(dir.path(), &["audit", "search", "--action", "no.such"]);
    assert!(!bad.status.success());
}

/// Family names per institution in the database, via `export`.
fn changed_names(dir: &Path, number: &str) -> usize {
    let o = run(dir, &["export", "--institution", number]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).matches("-Ny\"").count()
}

#[test]
fn a_killed_import_leaves_no_institution_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = |out: &str, pct: &str| {
        let o = run(
            d,
            &[
                "gen",
                "--out",
                out,
                "--scale",
                "municipality",
                "--institutions",
                "12",
                "--changed-percent",
                pct,
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    gen("before", "0");
    gen("after", "50");
    assert!(run(d, &["import", "before"]).status.success());

    let mut child = tilgang(d, &["import", "after"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let finished = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    if finished {
        eprintln!("note: the import finished before the kill; the invariants still hold");
    }

    let verify = run(d, &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    for entry in std::fs::read_dir(d.join("after")).unwrap() {
        let path = entry.unwrap().path();
        let number = path.file_stem().unwrap().to_string_lossy().into_owned();
        let wanted = std::fs::read_to_string(&path)
            .unwrap()
            .matches("-Ny\"")
            .count();
        let found = changed_names(d, &number);
        assert!(
            found == 0 || found == wanted,
            "institution {number} is half-written: {found} of {wanted} changes"
        );
    }
    // The next run completes what the killed one did not.
    assert!(run(d, &["import", "after"]).status.success());
}

#[test]
fn an_operator_grants_and_revokes_the_pupil_reset_right() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"format":"tilgang-roster/1","institution":{"number":"101001","name":"Skole","type":"school","municipality_code":"751"},
        "persons":[{"user_id":"v1","given_name":"Viggo","family_name":"Vikar","roles":[{"role":"Vikar"}]},
                   {"user_id":"a1","given_name":"Alma","family_name":"Jensen","roles":[{"role":"Elev"}]}]}"#;
    std::fs::write(dir.path().join("r.json"), doc).unwrap();
    assert!(run(dir.path(), &["import", "r.json"]).status.success());
    let grant = |user: &str, inst: &str, reason: &str| {
        run(
            dir.path(),
            &[
                "user",
                "grant-right",
                user,
                "--institution",
                inst,
                "--reason",
                reason,
            ],
        )
    };
    let o = grant("v1", "101001", " ");
    assert!(
        !o.status.success() && text(&o).contains("reason"),
        "{}",
        text(&o)
    );
    let o = grant("a1", "101001", "x");
    assert!(!o.status.success(), "a pupil is no employee: {}", text(&o));
    let o = grant("v1", "999999", "x");
    assert!(!o.status.success());
    let o = grant("v1", "101001", "vikar i 1.A");
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        dir.path(),
        &["user", "revoke-right", "v1", "--institution", "101001"],
    );
    assert!(
        o.status.success() && text(&o).contains("no longer"),
        "{}",
        text(&o)
    );
    let o = run(
        dir.path(),
        &["user", "revoke-right", "v1", "--institution", "101001"],
    );
    assert!(
        o.status.success() && text(&o).contains("nothing changed"),
        "{}",
        text(&o)
    );
    // The municipality names an admin; an unknown right is refused.
    let admin = |right: &str| {
        run(
            dir.path(),
            &[
                "user",
                "grant-right",
                "v1",
                "--institution",
                "101001",
                "--right",
                right,
                "--reason",
                "skolesekretær",
            ],
        )
    };
    let o = admin("institution_admin");
    assert!(
        o.status.success() && text(&o).contains("institution admin"),
        "{}",
        text(&o)
    );
    let o = admin("superuser");
    assert!(
        !o.status.success() && text(&o).contains("unknown right"),
        "{}",
        text(&o)
    );
    // An operator on the web: no institution, any person.
    let o = admin("operator");
    assert!(
        !o.status.success() && text(&o).contains("not tied to an institution"),
        "{}",
        text(&o)
    );
    let o = run(dir.path(), &["user", "grant-right", "v1", "--reason", "x"]);
    assert!(
        !o.status.success() && text(&o).contains("--institution"),
        "{}",
        text(&o)
    );
    let operator = |cmd: &str| {
        run(
            dir.path(),
            &[
                "user",
                cmd,
                "a1",
                "--right",
                "operator",
                "--reason",
                "driftsvagt",
            ],
        )
    };
    let o = operator("grant-right");
    assert!(
        o.status.success() && text(&o).contains("a1 is now an operator"),
        "{}",
        text(&o)
    );
    let o = operator("revoke-right");
    assert!(
        o.status.success() && text(&o).contains("a1 is no longer an operator"),
        "{}",
        text(&o)
    );
    let o = operator("revoke-right");
    assert!(
        o.status.success() && text(&o).contains("was not an operator"),
        "{}",
        text(&o)
    );
    // A municipality admin: for a municipality, never with an institution.
    let municipality = |verb: &str, code: &str, extra: &[&str]| {
        let mut args = vec!["user", verb, "v1", "--municipality", code];
        args.extend_from_slice(extra);
        run(dir.path(), &args)
    };
    let why = ["--reason", "skoleafdelingen"];
    let o = municipality("grant-right", "751", &why);
    assert!(
        o.status.success() && text(&o).contains("municipality admin"),
        "{}",
        text(&o)
    );
    assert!(!municipality("grant-right", "999", &why).status.success());
    let o = municipality("grant-right", "751", &["--institution", "101001"]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = municipality("revoke-right", "751", &[]);
    assert!(
        o.status.success() && text(&o).contains("no longer"),
        "{}",
        text(&o)
    );
    assert!(run(dir.path(), &["audit", "verify"]).status.success());
}

#[test]
fn checkpoints_are_made_exported_and_checked_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["gen", "--out", "r", "--scale", "school"])
        .status
        .success());
    assert!(run(d, &["import", "r"]).status.success());
    let made = run(d, &["audit", "checkpoint", "make"]);
    assert!(made.status.success(), "{}", text(&made));
    let cp: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert!(cp["seq"].as_i64().unwrap() > 1, "{cp}");
    let again = run(d, &["audit", "checkpoint", "make"]);
    assert!(text(&again).contains("Nothing new"), "{}", text(&again));
    let out = d.join("checkpoints.json");
    let export = run(
        d,
        &[
            "audit",
            "checkpoint",
            "export",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(export.status.success(), "{}", text(&export));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["key"]["crv"], "Ed25519");
    assert_eq!(doc["checkpoints"][0]["seq"], cp["seq"]);
    let verify = run(d, &["audit", "verify"]);
    assert!(
        verify.status.success() && text(&verify).contains("1 signed checkpoint"),
        "{}",
        text(&verify)
    );
    let reports = run(d, &["security-reports"]);
    assert!(
        text(&reports).contains("No security reports"),
        "{}",
        text(&reports)
    );
}

#[test]
fn services_are_registered_listed_shown_and_removed_and_keys_rotate() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        vec!["service", "add"],
        vec!["service", "list"],
        vec!["service", "show"],
        vec!["service", "remove"],
        vec!["keys", "rotate"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let o = run(dir.path(), &args);
        assert!(
            o.status.success() && text(&o).contains("Example"),
            "{cmd:?}"
        );
    }
    let add = run(
        dir.path(),
        &[
            "service",
            "add",
            "--client-id",
            "matfessor",
            "--name",
            "Matematikfessor",
            "--redirect-uri",
            "https://app.example.dk/cb",
            "--package",
            "small",
        ],
    );
    assert!(add.status.success(), "{}", text(&add));
    let out = text(&add);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 43, "256 bits");
    let again = run(
        dir.path(),
        &[
            "service",
            "add",
            "--client-id",
            "matfessor",
            "--name",
            "X",
            "--redirect-uri",
            "https://a.example/cb",
        ],
    );
    assert!(!again.status.success());
    let bad = run(
        dir.path(),
        &[
            "service",
            "add",
            "--client-id",
            "y",
            "--name",
            "Y",
            "--redirect-uri",
            "https://a.example/cb#frag",
        ],
    );
    assert!(!bad.status.success());
    let list = text(&run(dir.path(), &["service", "list"]));
    assert!(
        list.contains("matfessor") && list.contains("small"),
        "{list}"
    );
    let show = run(dir.path(), &["service", "show", "matfessor"]);
    let shown = text(&show);
    assert!(shown.contains("https://app.example.dk/cb") && !shown.contains(&secret));
    let rotate = run(dir.path(), &["keys", "rotate"]);
    assert!(rotate.status.success(), "{}", text(&rotate));
    let keys = text(&run(dir.path(), &["keys", "list"]));
    assert_eq!(
        keys.lines().filter(|l| l.contains("signing")).count(),
        2,
        "{keys}"
    );
    assert_eq!(
        keys.lines().filter(|l| l.contains("published")).count(),
        2,
        "{keys}"
    );
    assert!(run(dir.path(), &["service", "remove", "matfessor"])
        .status
        .success());
    assert_eq!(
        run(dir.path(), &["service", "show", "matfessor"])
            .status
            .code(),
        Some(2)
    );
    let verify = run(dir.path(), &["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

#[test]
fn an_operator_runs_a_data_access_agreement_and_licences_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for cmd in [
        vec!["provider", "add"],
        vec!["provider", "mark-authority"],
        vec!["provider", "link"],
        vec!["provider", "user", "add"],
        vec!["sharing", "request"],
        vec!["sharing", "approve"],
        vec!["sharing", "reject"],
        vec!["sharing", "revoke"],
        vec!["sharing", "block"],
        vec!["sharing", "history"],
        vec!["licence", "grant"],
        vec!["licence", "import"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        assert!(text(&run(d, &args)).contains("Example"), "{cmd:?}");
    }
    let doc = r#"{"format":"tilgang-roster/1","institution":{"number":"101001","name":"Skole","type":"school","municipality_code":"751"},
        "persons":[{"user_id":"a1","given_name":"Alma","family_name":"Jensen","roles":[{"role":"Elev"}]}]}"#;
    std::fs::write(d.join("r.json"), doc).unwrap();
    assert!(run(d, &["import", "r.json"]).status.success());
    let o = run(
        d,
        &[
            "service",
            "add",
            "--client-id",
            "matte",
            "--name",
            "Matte",
            "--redirect-uri",
            "https://m.example/cb",
            "--licence-required",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        d,
        &[
            "provider",
            "add",
            "--name",
            "Forlaget",
            "--cvr",
            "12345678",
            "--contact",
            "k@f.dk",
            "--security-contact",
            "s@f.dk",
        ],
    );
    assert!(text(&o).contains("Provider 1 registered"), "{}", text(&o));
    assert!(run(
        d,
        &[
            "provider",
            "link",
            "1",
            "--service",
            "matte",
            "--licence-required"
        ]
    )
    .status
    .success());
    let spec = r#"{"purpose":"Maths","package":"small","delivery":"lookup","locations":["DK"],
        "retention":"6 months","dpa_reference":"DPA-1",
        "sub_processors":[{"name":"Host A/S","cvr":"87654321","address":"Vej 1","task":"hosting",
          "data":"names","country":"DK","protection":"encrypted"}]}"#;
    std::fs::write(d.join("spec.json"), spec).unwrap();
    let o = run(
        d,
        &[
            "sharing",
            "request",
            "--service",
            "matte",
            "--spec",
            "spec.json",
            "--municipality",
            "751",
        ],
    );
    assert!(
        text(&o).contains("request 1 to institution 101001"),
        "{}",
        text(&o)
    );
    let o = run(d, &["sharing", "list", "--pending"]);
    assert!(text(&o).contains("pending"), "{}", text(&o));
    let o = run(d, &["sharing", "approve", "1"]);
    assert!(
        text(&o).contains("small package (version 1)"),
        "{}",
        text(&o)
    );
    let o = run(
        d,
        &[
            "sharing",
            "revoke",
            "--service",
            "matte",
            "--institution",
            "101001",
            "--reason",
            "ended",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        d,
        &[
            "sharing",
            "history",
            "--service",
            "matte",
            "--institution",
            "101001",
        ],
    );
    let h = text(&o);
    assert!(
        h.contains("minimal package (no approval)")
            && h.contains("sharing.approved")
            && h.contains("sharing.revoked"),
        "{h}"
    );

    std::fs::write(
        d.join("bad.csv"),
        "service,institution,scope,target,from,to\nmatte,101001,group,,2026-08-01,\nmatte,101001,person,a1,2026-02-30,\n",
    )
    .unwrap();
    let o = run(d, &["licence", "import", "bad.csv"]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(
        t.contains("line 2, field target")
            && t.contains("line 3, field from")
            && t.contains("nothing was granted"),
        "{t}"
    );
    std::fs::write(
        d.join("ok.csv"),
        "service,institution,scope,target,from,to\nmatte,101001,person,a1,2026-08-01,\n",
    )
    .unwrap();
    let o = run(d, &["licence", "import", "ok.csv"]);
    assert!(text(&o).contains("1 licence(s) granted"), "{}", text(&o));
    let o = run(d, &["licence", "list"]);
    assert!(text(&o).contains("person") && text(&o).contains("live"));
    assert!(run(d, &["audit", "verify"]).status.success());
}

#[test]
fn lifecycle_jobs_person_rights_and_an_anonymised_copy_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let doc = |persons: &str| {
        format!(
            r#"{{"format":"tilgang-roster/1","institution":{{"number":"101001","name":"Skole","type":"school"}},"persons":[{persons}]}}"#
        )
    };
    let alma = r#"{"user_id":"a1","given_name":"Alma","family_name":"Jensen","cpr":"3002201234","roles":[{"role":"Elev"}]}"#;
    let bo =
        r#"{"user_id":"b1","given_name":"Bodil","family_name":"Hansen","roles":[{"role":"Elev"}]}"#;
    std::fs::write(dir.path().join("r.json"), doc(&format!("{alma},{bo}"))).unwrap();
    assert!(run(dir.path(), &["import", "r.json"]).status.success());

    let o = run(dir.path(), &["jobs", "list"]);
    assert!(
        o.status.success()
            && text(&o).contains("close-unused")
            && text(&o).contains("audit-retention")
            && text(&o).contains("changes-retention"),
        "{}",
        text(&o)
    );
    let o = run(
        dir.path(),
        &["jobs", "run", "archive-inactive", "--dry-run"],
    );
    assert!(
        o.status.success() && text(&o).contains("would change 0"),
        "{}",
        text(&o)
    );
    let o = run(dir.path(), &["jobs", "run", "close-unused"]);
    assert!(
        o.status.success() && text(&o).contains("changed 0"),
        "{}",
        text(&o)
    );
    for job in ["audit-retention", "changes-retention"] {
        let o = run(dir.path(), &["jobs", "run", job, "--dry-run"]);
        assert!(
            o.status.success() && text(&o).contains("past their retention"),
            "{}",
            text(&o)
        );
    }
    let o = run(dir.path(), &["audit", "prune"]);
    assert!(
        o.status.success() && text(&o).contains("no audit events are past"),
        "{}",
        text(&o)
    );
    let o = run(dir.path(), &["jobs", "run", "no-such-job"]);
    assert!(
        !o.status.success() && text(&o).contains("close-unused"),
        "{}",
        text(&o)
    );

    let o = run(dir.path(), &["person", "export", "a1"]);
    assert!(o.status.success(), "{}", text(&o));
    let exported: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(exported["cpr"], "3002201234");
    let o = run(
        dir.path(),
        &["person", "erase", "a1", "--reason", "request 7"],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("still delivered by the roster"),
        "{}",
        text(&o)
    );

    std::fs::write(dir.path().join("r.json"), doc(bo)).unwrap();
    assert!(run(dir.path(), &["import", "r.json"]).status.success());
    let o = run(
        dir.path(),
        &["person", "erase", "a1", "--reason", "request 7"],
    );
    assert!(
        o.status.success() && text(&o).contains("Erased"),
        "{}",
        text(&o)
    );

    let o = run(dir.path(), &["anonymize", "--out", "anon.db"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        dir.path(),
        &["audit", "search", "--action", "database.anonymized"],
    );
    assert!(text(&o).contains("database.anonymized"), "{}", text(&o));
    let copy = std::fs::read(dir.path().join("anon.db")).unwrap();
    let haystack = String::from_utf8_lossy(&copy);
    assert!(
        !haystack.contains("Bodil") && !haystack.contains("Hansen"),
        "a name is left in the copy"
    );
    assert!(run(dir.path(), &["audit", "verify"]).status.success());
}
