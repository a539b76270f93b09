//! Text catalogs for pages: Danish by default, English available. Every
//! text a person reads comes from `i18n/{da,en}.json`, never from code.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Da,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Da => "da",
            Lang::En => "en",
        }
    }

    /// Picks the language from `?lang=` or `Accept-Language`; Danish unless
    /// English is asked for first.
    pub fn negotiate(query: Option<&str>, accept: Option<&str>) -> Lang {
        let pick = |s: &str| match s.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("en") => Some(Lang::En),
            Some("da") | Some("nb") | Some("nn") | Some("sv") => Some(Lang::Da),
            _ => None,
        };
        if let Some(l) = query.and_then(pick) {
            return l;
        }
        accept
            .and_then(|a| {
                a.split(',')
                    .find_map(|part| pick(part.split(';').next().unwrap_or("")))
            })
            .unwrap_or(Lang::Da)
    }
}

type Catalog = HashMap<String, String>;

fn catalogs() -> &'static (Catalog, Catalog) {
    static C: OnceLock<(Catalog, Catalog)> = OnceLock::new();
    C.get_or_init(|| {
        let parse = |s: &str| serde_json::from_str::<Catalog>(s).unwrap_or_default();
        (
            parse(include_str!("../i18n/da.json")),
            parse(include_str!("../i18n/en.json")),
        )
    })
}

/// The text for `key`; the key itself when a catalog lacks it (a test
/// checks both catalogs have the same keys).
pub fn t(lang: Lang, key: &str) -> String {
    let (da, en) = catalogs();
    let cat = if lang == Lang::En { en } else { da };
    cat.get(key).cloned().unwrap_or_else(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;

    #[test]
    fn catalogs_have_the_same_keys() {
        let (da, en) = catalogs();
        assert!(!da.is_empty());
        let mut a: Vec<_> = da.keys().collect();
        let mut b: Vec<_> = en.keys().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    /// The `{name}` placeholders in a text.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            match after.find('}') {
                Some(end) => {
                    found.push(&after[..end]);
                    rest = &after[end + 1..];
                }
                None => break,
            }
        }
        found
    }

    #[test]
    fn catalogs_cover_every_password_message() {
        use tilgang_core::identity::password::PolicyProblem;

        assert_eq!(placeholders("from {min} to {max}"), ["min", "max"]);
        let (da, en) = catalogs();
        for &key in PolicyProblem::MESSAGE_KEYS {
            let da_text = da.get(key).unwrap_or_else(|| panic!("da.json lacks {key}"));
            let en_text = en.get(key).unwrap_or_else(|| panic!("en.json lacks {key}"));
            for name in placeholders(en_text) {
                let placeholder = format!("{{{name}}}");
                assert!(
                    da_text.contains(&placeholder),
                    "da.json's {key} lacks {placeholder}"
                );
            }
        }
    }

    #[test]
    fn danish_is_the_default() {
        assert_eq!(Lang::negotiate(None, None), Lang::Da);
        assert_eq!(Lang::negotiate(None, Some("en-GB,da;q=0.5")), Lang::En);
        assert_eq!(Lang::negotiate(Some("en"), Some("da")), Lang::En);
        assert_eq!(Lang::negotiate(None, Some("fr")), Lang::Da);
    }
}
