//! Column codecs: JSON columns (metadata maps and content attributes) and enums stored by
//! name (the domain enums' `as_str` names, read back with `FromStr`).

use std::str::FromStr;

use crate::domain::{Error, metadata::Metadata};

/// A stored enum name back to its value; an unknown name is a corrupt row, INTERNAL.
pub fn stored<T: FromStr>(what: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::Internal(format!("unknown stored {what} {value:?}")))
}

pub fn metadata_to_column(metadata: &Metadata) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}

pub fn metadata_from_column(column: &str) -> Result<Metadata, Error> {
    serde_json::from_str(column).map_err(|err| Error::Internal(format!("stored metadata is not a JSON map: {err}")))
}

pub fn value_to_column(value: &Option<serde_json::Value>) -> Option<String> {
    value.as_ref().map(serde_json::Value::to_string)
}

pub fn value_from_column(column: Option<&str>) -> Result<Option<serde_json::Value>, Error> {
    column
        .map(|text| serde_json::from_str(text).map_err(|err| Error::Internal(format!("stored JSON is invalid: {err}"))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::Role;

    #[test]
    fn stored_names_read_back_and_unknown_ones_are_internal() {
        assert_eq!(stored::<Role>("role", Role::Agent.as_str()).unwrap(), Role::Agent);
        assert!(matches!(stored::<Role>("role", "root"), Err(Error::Internal(_))));
    }
}
