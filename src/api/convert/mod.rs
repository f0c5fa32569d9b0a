//! Conversions between protobuf messages and domain types, one module per resource, as
//! `From` impls (domain → proto) and parse functions that name the request field they
//! read (proto → domain). Shared here: timestamps, update masks, views and enum numbers.

mod conversations;
mod events;
mod json;
mod messages;
mod notifications;
mod relays;
mod reports;
mod search;
mod templates;
mod users;

use prost_types::Timestamp;

pub use conversations::subject_parts;
pub use events::{event, event_kind_from, heartbeat};
pub use json::struct_to_json;
pub use messages::{
    channel_from, content_type_from, direction_from, envelope_from, message_kind_from, new_attachment_from,
};
pub use relays::{delivery_state_from, suppression_reason_from};
pub use reports::{report_action_from, report_reason_from, report_status_from};
pub use search::{hits, search_from};
pub use templates::template_scope_from;
pub use users::role_from;

use super::pb;
use crate::domain::{Error, Micros, View};

/// A protobuf enum from its number; an unknown number is INVALID_ARGUMENT naming `field`.
pub fn enum_field<P: TryFrom<i32>>(field: &str, value: i32, enum_name: &str) -> Result<P, Error> {
    P::try_from(value).map_err(|_| Error::invalid(field, format!("{value} is not a {enum_name}")))
}

/// One field an Update method may change: its mask path, and whether the request
/// populates it (has a non-empty value there).
pub type Updatable<'a> = (&'a str, bool);

/// The paths an update changes, as AIP-134 reads an update mask: the paths it names, each
/// one of `fields` (or of `nested`, paths inside them); `*` alone names every field of
/// `fields`, a full replacement where what the request leaves empty is cleared (or refused,
/// when required); no mask names the populated paths of both, so a message field given in
/// part (a subject with only its title) changes only those parts. A request that would
/// change nothing is refused, naming `update_mask`.
pub fn mask_paths(
    mask: Option<prost_types::FieldMask>,
    fields: &[Updatable<'_>],
    nested: &[Updatable<'_>],
) -> Result<Vec<String>, Error> {
    let updatable = || fields.iter().chain(nested).map(|(path, _)| *path).collect::<Vec<_>>().join(", ");
    let paths: Vec<String> =
        mask.map(|mask| mask.paths).unwrap_or_default().iter().map(|path| snake_case(path)).collect();
    if paths.is_empty() {
        let populated: Vec<String> = fields
            .iter()
            .chain(nested)
            .filter(|(_, populated)| *populated)
            .map(|(path, _)| (*path).to_owned())
            .collect();
        if populated.is_empty() {
            return Err(Error::invalid(
                "update_mask",
                format!("is empty and the request sets none of the updatable fields ({})", updatable()),
            ));
        }
        return Ok(populated);
    }
    if paths.iter().any(|path| path == "*") {
        if paths.len() > 1 {
            return Err(Error::invalid("update_mask", "\"*\" must be the only path"));
        }
        return Ok(fields.iter().map(|(path, _)| (*path).to_owned()).collect());
    }
    for path in &paths {
        let known = fields.iter().chain(nested).any(|(field, _)| field == path);
        if !known {
            return Err(Error::invalid(
                "update_mask",
                format!("{path:?} cannot be updated; updatable: {}", updatable()),
            ));
        }
    }
    Ok(paths)
}

/// A mask path as the proto names it: JSON clients may write `displayName` or
/// `subject.externalId` (the FieldMask JSON mapping's lowerCamelCase), and some tools pass
/// those through unconverted.
fn snake_case(path: &str) -> String {
    let mut snake = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
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

/// A request's duration, which must not be negative; `field` names it in errors.
pub fn duration_from(field: &str, value: &prost_types::Duration) -> Result<std::time::Duration, Error> {
    // A Duration's parts have one sign, and its nanos stay under a second.
    let (Ok(seconds), Ok(nanos)) = (u64::try_from(value.seconds), u32::try_from(value.nanos)) else {
        return Err(Error::invalid(field, "must not be negative"));
    };
    if nanos >= 1_000_000_000 {
        return Err(Error::invalid(field, "nanos must be within 0..999999999"));
    }
    Ok(std::time::Duration::new(seconds, nanos))
}

/// The view a request asked for.
pub fn view_from(field: &str, value: i32) -> Result<View, Error> {
    Ok(match enum_field::<pb::View>(field, value, "View")? {
        pb::View::Full => View::Full,
        _ => View::Basic,
    })
}

/// The view a message read asked for, by `view` or by `depth` (seed 003's levels of
/// related objects: 0 ids only, 1 the sender and conversation, 2 also the conversation's
/// participants as users), not both.
pub fn view_or_depth(view: i32, depth: Option<i32>) -> Result<View, Error> {
    let Some(depth) = depth else { return view_from("view", view) };
    if view != pb::View::Unspecified as i32 {
        return Err(Error::invalid("depth", "give view or depth, not both"));
    }
    match depth {
        0 => Ok(View::Basic),
        1 => Ok(View::Related),
        2 => Ok(View::Full),
        _ => Err(Error::invalid(
            "depth",
            format!(
                "is {depth}: 0 (ids only), 1 (sender and conversation) or {} (also its participants)",
                crate::domain::MAX_DEPTH
            ),
        )),
    }
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
    fn update_masks_follow_aip_134() {
        let mask =
            |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() });
        let fields = [("a", true), ("b", false)];
        assert_eq!(mask_paths(mask(&["b"]), &fields, &[]).unwrap(), ["b"]);
        assert_eq!(mask_paths(mask(&["a.x"]), &fields, &[("a.x", false)]).unwrap(), ["a.x"]);
        assert!(mask_paths(mask(&["c"]), &fields, &[]).is_err());
        // No mask: the populated fields. `*`: all of them.
        assert_eq!(mask_paths(None, &fields, &[]).unwrap(), ["a"]);
        assert_eq!(mask_paths(mask(&[]), &fields, &[]).unwrap(), ["a"]);
        assert_eq!(mask_paths(mask(&["*"]), &fields, &[("a.x", true)]).unwrap(), ["a", "b"]);
        // A nested field given in part: only its populated parts.
        assert_eq!(mask_paths(None, &[("s", false)], &[("s.x", true), ("s.y", false)]).unwrap(), ["s.x"]);
        assert!(mask_paths(mask(&["*", "a"]), &fields, &[]).is_err());
        assert!(mask_paths(None, &[("a", false)], &[]).is_err());
        // lowerCamelCase paths, as JSON clients write them.
        let camel = [("display_name", false), ("subject.external_id", false)];
        assert_eq!(
            mask_paths(mask(&["displayName", "subject.externalId"]), &camel, &[]).unwrap(),
            ["display_name", "subject.external_id"]
        );
    }

    #[test]
    fn durations_are_not_negative_and_keep_their_nanos_under_a_second() {
        let duration = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(duration_from("d", &duration(3, 5)).unwrap(), std::time::Duration::new(3, 5));
        for bad in [duration(-1, 0), duration(10, -5), duration(1, 1_000_000_000)] {
            assert!(duration_from("d", &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unknown_enum_numbers_name_the_field() {
        let Err(Error::InvalidArgument(violations)) = view_from("view", 99) else { panic!("expected an error") };
        assert_eq!(violations[0].field, "view");
        assert_eq!(view_from("view", pb::View::Full as i32).unwrap(), View::Full);
    }
}
