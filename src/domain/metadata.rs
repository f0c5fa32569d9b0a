//! Free string metadata on conversations and messages (offer ids, lead ids, listing ids).

use std::collections::BTreeMap;

use super::{Error, error::Violations};

pub const MAX_ENTRIES: usize = 64;
pub const MAX_KEY_CHARS: usize = 64;
pub const MAX_VALUE_CHARS: usize = 1024;

/// Validated metadata: at most 64 entries, keys of 1 to 64 characters, values up to 1024.
pub type Metadata = BTreeMap<String, String>;

/// Validates metadata from request field `field`.
pub fn parse(field: &str, entries: impl IntoIterator<Item = (String, String)>) -> Result<Metadata, Error> {
    let metadata: Metadata = entries.into_iter().collect();
    check(field, &metadata)?;
    Ok(metadata)
}

/// Checks metadata against the limits.
pub fn check(field: &str, metadata: &Metadata) -> Result<(), Error> {
    let mut violations = Violations::new();
    if metadata.len() > MAX_ENTRIES {
        violations.add(field, format!("has {} entries; at most {MAX_ENTRIES} are allowed", metadata.len()));
    }
    for (key, value) in metadata {
        let key_chars = key.chars().count();
        if key_chars == 0 || key_chars > MAX_KEY_CHARS {
            violations.add(format!("{field}[{key:?}]"), format!("key must have 1 to {MAX_KEY_CHARS} characters"));
        }
        if key.contains('\0') || value.contains('\0') {
            violations.add(format!("{field}[{key:?}]"), "must not contain NUL characters");
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            violations.add(format!("{field}[{key:?}]"), format!("value is longer than {MAX_VALUE_CHARS} characters"));
        }
    }
    violations.finish()
}
