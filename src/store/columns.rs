//! Column codecs: JSON columns (metadata maps and content attributes), enums stored by
//! name (the domain enums' `as_str` names, read back with `FromStr`), the column groups
//! of a message's template and envelope, shared by sent and scheduled messages (and a sent
//! message's delivery), and the
//! prefixed columns of a join read back as two models ([`select_prefixed`]).

use std::str::FromStr;

use crate::domain::{
    Error,
    channels::Envelope,
    messages::TemplateUse,
    metadata::Metadata,
    relays::{Delivery, DeliveryError},
};

/// Selects every column of `E` as `<prefix><column>`: a join of two tables in one
/// statement, each row read back with `E::Model::from_query_result(row, prefix)`.
pub fn select_prefixed<E: sea_orm::EntityTrait>(select: &mut sea_orm::sea_query::SelectStatement, prefix: &str) {
    use sea_orm::{IdenStatic, Iterable, sea_query::Expr};
    for column in E::Column::iter() {
        select.expr_as(Expr::col((E::default(), column)), format!("{prefix}{}", column.as_str()));
    }
}

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

/// A subject's attributes: NULL when there are none, which most subjects have.
pub fn attributes_to_column(attributes: &Metadata) -> Option<String> {
    (!attributes.is_empty()).then(|| metadata_to_column(attributes))
}

pub fn attributes_from_column(column: Option<&str>) -> Result<Metadata, Error> {
    column.map_or_else(|| Ok(Metadata::new()), metadata_from_column)
}

pub fn value_to_column(value: &Option<serde_json::Value>) -> Option<String> {
    value.as_ref().map(serde_json::Value::to_string)
}

pub fn value_from_column(column: Option<&str>) -> Result<Option<serde_json::Value>, Error> {
    column
        .map(|text| serde_json::from_str(text).map_err(|err| Error::Internal(format!("stored JSON is invalid: {err}"))))
        .transpose()
}

/// (template id, variables as JSON).
pub fn template_to_columns(template: &Option<TemplateUse>) -> (Option<String>, Option<String>) {
    match template {
        Some(used) => (
            Some(used.template_id.clone()),
            Some(serde_json::to_string(&used.variables).unwrap_or_else(|_| "{}".to_owned())),
        ),
        None => (None, None),
    }
}

pub fn template_from_columns(id: Option<String>, variables: Option<&str>) -> Result<Option<TemplateUse>, Error> {
    let Some(template_id) = id else { return Ok(None) };
    let variables = serde_json::from_str(variables.unwrap_or("{}"))
        .map_err(|err| Error::Internal(format!("stored template variables are not a JSON map: {err}")))?;
    Ok(Some(TemplateUse { template_id, variables }))
}

/// The envelope's columns: (channel, from, to, external id), all NULL in-app, and whether
/// it is transactional. (Its delivery is a sent message's own: `relays::delivery_of`.)
pub struct EnvelopeColumns {
    pub channel: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub external_id: Option<String>,
    pub transactional: bool,
}

pub fn envelope_to_columns(envelope: &Option<Envelope>) -> EnvelopeColumns {
    let non_empty = |value: &String| Some(value.clone()).filter(|v| !v.is_empty());
    match envelope {
        Some(envelope) => EnvelopeColumns {
            channel: Some(envelope.channel.as_str().to_owned()),
            from: non_empty(&envelope.from_address),
            to: non_empty(&envelope.to_address),
            external_id: envelope.external_id.clone(),
            transactional: envelope.transactional,
        },
        None => EnvelopeColumns { channel: None, from: None, to: None, external_id: None, transactional: false },
    }
}

pub fn envelope_from_columns(columns: EnvelopeColumns) -> Result<Option<Envelope>, Error> {
    let Some(channel) = columns.channel else { return Ok(None) };
    Ok(Some(Envelope {
        channel: stored("channel", &channel)?,
        from_address: columns.from.unwrap_or_default(),
        to_address: columns.to.unwrap_or_default(),
        external_id: columns.external_id,
        transactional: columns.transactional,
        delivery: None,
    }))
}

/// A message row's delivery, from its columns.
pub fn delivery_of(row: &super::entities::message::Model) -> Result<Option<Delivery>, Error> {
    let Some(state) = row.delivery_state.as_deref() else { return Ok(None) };
    let error = row
        .delivery_error_code
        .clone()
        .map(|code| DeliveryError { code, message: row.delivery_error_message.clone().unwrap_or_default() });
    Ok(Some(Delivery {
        state: stored("delivery state", state)?,
        error,
        update_time: row.delivery_update_time.unwrap_or(row.create_time),
    }))
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
