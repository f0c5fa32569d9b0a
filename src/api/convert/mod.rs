//! Conversions between protobuf messages and domain types, one module per resource, as
//! `From` impls (domain → proto) and parse functions that name the request field they
//! read (proto → domain). Shared here: timestamps, update masks, views and enum numbers.

mod conversations;
mod events;
mod json;
mod messages;
mod templates;
mod users;

use prost_types::Timestamp;

pub use events::{event_kind_from, heartbeat};
pub use json::struct_to_json;
pub use messages::{content_type_from, direction_from, envelope_from, message_kind_from};
pub use templates::template_scope_from;
pub use users::role_from;

use super::pb;
use crate::domain::{Error, Micros, View};

/// A protobuf enum from its number; an unknown number is INVALID_ARGUMENT naming `field`.
pub fn enum_field<P: TryFrom<i32>>(field: &str, value: i32, enum_name: &str) -> Result<P, Error> {
    P::try_from(value).map_err(|_| Error::invalid(field, format!("{value} is not a {enum_name}")))
}

/// The paths of an update mask, each checked against `allowed`; an empty mask is an error.
pub fn mask_paths(mask: Option<prost_types::FieldMask>, allowed: &[&str]) -> Result<Vec<String>, Error> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(Error::invalid(
            "update_mask",
            format!("is required: name the fields to change ({})", allowed.join(", ")),
        ));
    }
    for path in &paths {
        if !allowed.contains(&path.as_str()) {
            return Err(Error::invalid(
                "update_mask",
                format!("{path:?} cannot be updated; updatable: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(paths)
}

pub fn timestamp(micros: Micros) -> Timestamp {
    Timestamp { seconds: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32 }
}

pub fn optional_timestamp(micros: Option<Micros>) -> Option<Timestamp> {
    micros.map(timestamp)
}

/// A request timestamp to microseconds; `field` names it in errors.
pub fn micros_from(field: &str, value: &Timestamp) -> Result<Micros, Error> {
    if !(0..1_000_000_000).contains(&value.nanos) {
        return Err(Error::invalid(field, "nanos must be within 0..999999999"));
    }
    value
        .seconds
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(value.nanos / 1_000)))
        .ok_or_else(|| Error::invalid(field, "is out of range"))
}

/// The view a request asked for.
pub fn view_from(field: &str, value: i32) -> Result<View, Error> {
    Ok(match enum_field::<pb::View>(field, value, "View")? {
        pb::View::Full => View::Full,
        _ => View::Basic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_to_the_microsecond() {
        for micros in [0, 1, 1_700_000_000_123_456, -1] {
            assert_eq!(micros_from("t", &timestamp(micros)).unwrap(), micros);
        }
        assert!(micros_from("t", &Timestamp { seconds: 0, nanos: -1 }).is_err());
        assert!(micros_from("t", &Timestamp { seconds: i64::MAX, nanos: 0 }).is_err());
    }

    #[test]
    fn update_masks_name_only_updatable_fields() {
        let mask =
            |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() });
        assert_eq!(mask_paths(mask(&["a"]), &["a", "b"]).unwrap(), ["a"]);
        assert!(mask_paths(mask(&[]), &["a"]).is_err());
        assert!(mask_paths(mask(&["c"]), &["a"]).is_err());
    }

    #[test]
    fn unknown_enum_numbers_name_the_field() {
        let Err(Error::InvalidArgument(violations)) = view_from("view", 99) else { panic!("expected an error") };
        assert_eq!(violations[0].field, "view");
        assert_eq!(view_from("view", pb::View::Full as i32).unwrap(), View::Full);
    }
}
