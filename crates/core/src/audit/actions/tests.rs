//! Coverage: every action the code writes is registered, and every
//! registered action has a test that asserts its event. Reads the
//! workspace's sources, so a new action without a test fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::ALL;
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every crate's `src` (production code) and `tests` (integration tests),
/// split: a `tests.rs` file, or what follows `#[cfg(test)]` in a file,
/// counts as test code.
type Files = Vec<(PathBuf, String)>;

fn sources() -> (Files, Files) {
    let mut code = Vec::new();
    let mut tests = Vec::new();
    let crates = workspace().join("crates");
    for krate in std::fs::read_dir(&crates).unwrap().flatten() {
        let mut src = Vec::new();
        rust_files(&krate.path().join("src"), &mut src);
        for p in src {
            let text = std::fs::read_to_string(&p).unwrap();
            if p.file_name().is_some_and(|n| n == "tests.rs") {
                tests.push((p, text));
            } else if let Some(i) = text.find("#[cfg(test)]") {
                tests.push((p.clone(), text[i..].to_owned()));
                code.push((p, text[..i].to_owned()));
            } else {
                code.push((p, text));
            }
        }
        let mut t = Vec::new();
        rust_files(&krate.path().join("tests"), &mut t);
        for p in t {
            let text = std::fs::read_to_string(&p).unwrap();
            tests.push((p, text));
        }
    }
    (code, tests)
}

/// The string literals in `text` (simple: no escapes in action names).
fn literals(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while j < b.len() && b[j] != b'"' {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            out.push((start, &text[start..j.min(b.len())]));
            i = j + 1;
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            // A comment: skip to the end of the line.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The second argument of each `NewEvent::new(` call, as written.
fn new_event_actions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("NewEvent::new(") {
        let rest = &text[i + "NewEvent::new(".len()..];
        let (mut depth, mut comma, mut end) = (0i32, None, None);
        for (k, c) in rest.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' if depth == 0 => {
                    end = Some(k);
                    break;
                }
                ')' | ']' | '}' => depth -= 1,
                ',' if depth == 0 && comma.is_none() => comma = Some(k),
                _ => {}
            }
        }
        if let (Some(c), Some(e)) = (comma, end) {
            out.push(
                rest[c + 1..e]
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .to_owned(),
            );
        }
    }
    out
}

fn looks_like_action(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').count() >= 2
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

#[test]
fn every_action_in_the_code_is_registered() {
    let (code, _) = sources();
    let mut bad = Vec::new();
    for (path, text) in &code {
        if path.ends_with("audit/actions.rs") {
            continue;
        }
        for arg in new_event_actions(text) {
            if let Some(lit) = arg.strip_prefix('"') {
                let lit = lit.trim_end_matches('"');
                let why = if super::is_known(lit) {
                    "use the constant from audit::actions"
                } else {
                    "not in audit::actions::ALL"
                };
                bad.push(format!("{}: \"{lit}\": {why}", path.display()));
            }
        }
        // Literals that name a registered action anywhere else (a helper's
        // argument, a tuple) must use the constant too; page-text keys
        // (`t(lang, "…")`) that happen to look alike are not actions.
        for (at, lit) in literals(text) {
            if !super::is_known(lit) {
                continue;
            }
            let before = text[..at.saturating_sub(1)].trim_end();
            if before.ends_with("t(lang,") || before.ends_with("Some(t(lang,") {
                continue;
            }
            bad.push(format!(
                "{}: \"{lit}\": use the constant from audit::actions",
                path.display()
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "unregistered or literal actions:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_registered_action_has_a_test_asserting_its_event() {
    let (_, tests) = sources();
    let names = constant_names();
    let mut untested = Vec::new();
    for (value, _) in ALL {
        let name = names
            .iter()
            .find(|(_, v)| v == value)
            .map(|(n, _)| n.as_str())
            .unwrap_or("?");
        let quoted = format!("\"{value}\"");
        let constant = format!("actions::{name}");
        let asserted = tests.iter().any(|(path, text)| {
            !path.ends_with("audit/actions/tests.rs") && {
                let lines: Vec<&str> = text.lines().collect();
                // The name or value, with an assertion or an action
                // comparison on its line or the next seven.
                (0..lines.len()).any(|i| {
                    let hit = lines[i].contains(&quoted) || lines[i].contains(&constant);
                    hit && lines[i..(i + 8).min(lines.len())]
                        .iter()
                        .any(|l| l.contains("assert") || l.contains("action"))
                })
            }
        });
        if !asserted {
            untested.push(format!("{name} ({value})"));
        }
    }
    assert!(
        untested.is_empty(),
        "registered actions no test asserts: {}",
        untested.join(", ")
    );
}

#[test]
fn the_registry_has_no_duplicates_and_every_entry_is_an_action_name() {
    for (i, (a, d)) in ALL.iter().enumerate() {
        assert!(a == &"logout" || looks_like_action(a), "{a}");
        assert!(!d.is_empty());
        assert!(!ALL[i + 1..].iter().any(|(b, _)| b == a), "{a} twice");
    }
    assert_eq!(
        constant_names().len(),
        ALL.len(),
        "a constant is missing from ALL"
    );
}

/// `(NAME, value)` of every `pub const NAME: &str = "value";` in actions.rs.
fn constant_names() -> Vec<(String, String)> {
    let text = include_str!("../actions.rs");
    text.lines()
        .filter_map(|l| {
            let l = l.strip_prefix("pub const ")?;
            let (name, rest) = l.split_once(": &str = \"")?;
            Some((name.to_owned(), rest.split('"').next()?.to_owned()))
        })
        .collect()
}

#[test]
fn the_scanner_finds_literal_actions_in_new_event_calls() {
    let src = r#"let a = NewEvent::new(format!("person:{}", id), "thing.done")
        .subjects(vec![1]);
    let b = NewEvent::new("cli", actions::LOGOUT);"#;
    assert_eq!(
        new_event_actions(src),
        vec!["\"thing.done\"".to_owned(), "actions::LOGOUT".to_owned()]
    );
    assert!(literals(src).iter().any(|(_, l)| *l == "thing.done"));
    assert!(looks_like_action("oidc.token.issued") && !looks_like_action("Skole 1"));
}
