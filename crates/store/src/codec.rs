//! Column encodings both dialects share: phones and address as JSON text,
//! dates as ISO text where the dialect has no date type.

use tilgang_core::roster::{Address, Phone};

pub fn phones_json(phones: &[Phone]) -> Option<String> {
    (!phones.is_empty()).then(|| serde_json::to_string(phones).unwrap_or_default())
}

pub fn address_json(a: &Option<Address>) -> Option<String> {
    a.as_ref()
        .map(|a| serde_json::to_string(a).unwrap_or_default())
}

pub fn phones_from(s: Option<String>) -> Vec<Phone> {
    s.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

pub fn address_from(s: Option<String>) -> Option<Address> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}
