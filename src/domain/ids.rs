//! Resource ids: a type prefix and a UUIDv7, so ids are unguessable (74 random bits),
//! sort by creation time, and say what they name (`msg_0192…`).

use super::Error;

/// Accounts (tenants).
pub const ACCOUNT: &str = "acc";
/// Users.
pub const USER: &str = "usr";
/// API keys (the id, not the secret).
pub const API_KEY: &str = "key";
/// Conversations.
pub const CONVERSATION: &str = "conv";
/// Messages.
pub const MESSAGE: &str = "msg";
/// Attachments.
pub const ATTACHMENT: &str = "att";
/// Templates.
pub const TEMPLATE: &str = "tpl";
/// Reports of messages.
pub const REPORT: &str = "rpt";
/// Notifications.
pub const NOTIFICATION: &str = "ntf";

/// A new id with the given prefix.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// Checks that `value`, read from request field `field`, looks like an id with `prefix`.
/// A malformed id is INVALID_ARGUMENT; a well-formed id that names nothing the caller may
/// see is NOT_FOUND later, in the store.
pub fn parse(field: &str, value: &str, prefix: &str) -> Result<String, Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    let well_formed = value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(field, format!("is not a valid id: expected {prefix}_ followed by 32 hex digits")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_and_sort_by_creation() {
        let first = new_id(MESSAGE);
        let second = new_id(MESSAGE);
        assert_eq!(parse("id", &first, MESSAGE).unwrap(), first);
        assert!(first < second);
    }

    #[test]
    fn ids_of_another_kind_are_rejected() {
        let id = new_id(USER);
        assert!(parse("id", &id, MESSAGE).is_err());
        assert!(parse("id", "msg_123", MESSAGE).is_err());
    }
}
