//! The JSON columns: metadata maps and content attributes.

use crate::domain::{Error, metadata::Metadata};

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
