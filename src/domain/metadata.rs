//! Free string metadata on conversations and messages (offer ids, lead ids, listing ids).

use std::collections::BTreeMap;

use super::{Error, error::Violations, text};

/// Most entries in one map.
pub const MAX_ENTRIES: usize = 64;
/// Most characters in a key (at least one).
pub const MAX_KEY_CHARS: usize = 64;
/// Most characters in a value.
pub const MAX_VALUE_CHARS: usize = 1024;

/// Validated metadata: at most 64 entries, keys of 1 to 64 characters, values up to 1024.
pub type Metadata = BTreeMap<String, String>;

/// Validates metadata from request field `field`.
pub fn parse(field: &str, entries: impl IntoIterator<Item = (String, String)>) -> Result<Metadata, Error> {
    let metadata: Metadata = entries.into_iter().collect();
    check(field, &metadata)?;
    Ok(metadata)
}

/// Checks metadata against the limits; every bad entry is named (`metadata["key"]`).
pub fn check(field: &str, metadata: &Metadata) -> Result<(), Error> {
    let mut violations = Violations::new();
    if metadata.len() > MAX_ENTRIES {
        violations.add(field, format!("has {} entries; at most {MAX_ENTRIES} are allowed", metadata.len()));
    }
    for (key, value) in metadata {
        let entry = format!("{field}[{key:?}]");
        if key.is_empty() {
            violations.add(&entry, format!("key must have 1 to {MAX_KEY_CHARS} characters"));
        }
        violations.check(text::bounded(&entry, key.clone(), MAX_KEY_CHARS));
        violations.check(text::bounded(&entry, value.clone(), MAX_VALUE_CHARS));
    }
    violations.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<Metadata, Error>) -> Vec<String> {
        match result {
            Err(Error::InvalidArgument(violations)) => violations.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn metadata_within_the_limits_passes() {
        let parsed = parse("metadata", [("offer".to_owned(), "42".to_owned())]).unwrap();
        assert_eq!(parsed["offer"], "42");
    }

    #[test]
    fn each_bad_entry_is_named() {
        let entries = [
            (String::new(), "empty key".to_owned()),
            ("k".repeat(MAX_KEY_CHARS + 1), "v".to_owned()),
            ("nul".to_owned(), "a\0".to_owned()),
            ("long".to_owned(), "v".repeat(MAX_VALUE_CHARS + 1)),
        ];
        let named = fields(parse("metadata", entries));
        assert_eq!(named.len(), 4, "{named:?}");
        assert!(named.contains(&"metadata[\"nul\"]".to_owned()));
    }

    #[test]
    fn too_many_entries_name_the_map() {
        let entries = (0..=MAX_ENTRIES).map(|i| (format!("k{i}"), String::new()));
        assert_eq!(fields(parse("conversation.metadata", entries)), ["conversation.metadata"]);
    }
}
