//! Delivery states and reports, suppressions, raw payloads, and staff's handling marks.

use super::{enum_field, timestamp};
use crate::{
    api::pb,
    domain::{
        Error,
        handling::Handling,
        relays::{Delivery, DeliveryState, RawPayload, Suppression, SuppressionReason},
    },
};

impl From<DeliveryState> for pb::DeliveryState {
    fn from(state: DeliveryState) -> Self {
        match state {
            DeliveryState::Pending => pb::DeliveryState::Pending,
            DeliveryState::Sent => pb::DeliveryState::Sent,
            DeliveryState::Delivered => pb::DeliveryState::Delivered,
            DeliveryState::Failed => pb::DeliveryState::Failed,
        }
    }
}

/// A delivery state from a request; `None` when unspecified.
pub fn delivery_state_from(field: &str, value: i32) -> Result<Option<DeliveryState>, Error> {
    Ok(match enum_field::<pb::DeliveryState>(field, value, "DeliveryState")? {
        pb::DeliveryState::Unspecified => None,
        pb::DeliveryState::Pending => Some(DeliveryState::Pending),
        pb::DeliveryState::Sent => Some(DeliveryState::Sent),
        pb::DeliveryState::Delivered => Some(DeliveryState::Delivered),
        pb::DeliveryState::Failed => Some(DeliveryState::Failed),
    })
}

impl From<Delivery> for pb::Delivery {
    fn from(delivery: Delivery) -> Self {
        let (error_code, error_message) = delivery.error.map(|error| (error.code, error.message)).unwrap_or_default();
        pb::Delivery {
            state: pb::DeliveryState::from(delivery.state) as i32,
            error_code,
            error_message,
            update_time: Some(timestamp(delivery.update_time)),
        }
    }
}

impl From<Handling> for pb::Handling {
    fn from(handling: Handling) -> Self {
        pb::Handling { handle_time: Some(timestamp(handling.handle_time)), handler_id: handling.handler_id }
    }
}

impl From<SuppressionReason> for pb::SuppressionReason {
    fn from(reason: SuppressionReason) -> Self {
        match reason {
            SuppressionReason::OptedOut => pb::SuppressionReason::OptedOut,
            SuppressionReason::Bounced => pb::SuppressionReason::Bounced,
            SuppressionReason::Complained => pb::SuppressionReason::Complained,
            SuppressionReason::Manual => pb::SuppressionReason::Manual,
        }
    }
}

/// A suppression's reason from a request: required.
pub fn suppression_reason_from(field: &str, value: i32) -> Result<SuppressionReason, Error> {
    Ok(match enum_field::<pb::SuppressionReason>(field, value, "SuppressionReason")? {
        pb::SuppressionReason::Unspecified => {
            return Err(Error::invalid(field, "is required: OPTED_OUT, BOUNCED, COMPLAINED or MANUAL"));
        }
        pb::SuppressionReason::OptedOut => SuppressionReason::OptedOut,
        pb::SuppressionReason::Bounced => SuppressionReason::Bounced,
        pb::SuppressionReason::Complained => SuppressionReason::Complained,
        pb::SuppressionReason::Manual => SuppressionReason::Manual,
    })
}

impl From<Suppression> for pb::Suppression {
    fn from(suppression: Suppression) -> Self {
        pb::Suppression {
            channel: pb::Channel::from(suppression.channel) as i32,
            address: suppression.address,
            reason: pb::SuppressionReason::from(suppression.reason) as i32,
            note: suppression.note,
            creator_id: suppression.creator_id,
            create_time: Some(timestamp(suppression.create_time)),
        }
    }
}

impl From<RawPayload> for pb::RawPayload {
    fn from(payload: RawPayload) -> Self {
        pb::RawPayload {
            message_id: payload.message_id,
            data: payload.data,
            update_time: Some(timestamp(payload.update_time)),
        }
    }
}
