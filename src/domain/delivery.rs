//! The delivery of an outgoing relayed message, as its relay reports it: where it stands
//! with its channel, which only ever moves forward, and the channel's error when it failed.

use serde::{Deserialize, Serialize};

use super::Micros;

/// Where an outgoing relayed message stands with its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum DeliveryState {
    /// Stored; the relay has not sent it yet.
    Pending,
    /// Handed to the channel.
    Sent,
    /// The channel delivered it. Final.
    Delivered,
    /// The channel could not deliver it. Final.
    Failed,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// How far along the way it is: a report moves a message only forward.
    fn rank(self) -> u8 {
        match self {
            DeliveryState::Pending => 0,
            DeliveryState::Sent => 1,
            DeliveryState::Delivered | DeliveryState::Failed => 2,
        }
    }

    /// Whether a report of `reported` moves a message in this state: only forward, so that
    /// reports arriving out of order (a late SENT after DELIVERED) and repeated ones change
    /// nothing, and a final state stays final.
    pub fn advances_to(self, reported: DeliveryState) -> bool {
        reported.rank() > self.rank()
    }
}

/// Why the channel could not deliver a message, in its own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryError {
    /// The channel's code.
    pub code: String,
    /// The channel's text ("" when it gave none).
    pub message: String,
}

/// An outgoing relayed message's delivery, as its relay last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it stands.
    pub state: DeliveryState,
    /// Why it failed, in [`DeliveryState::Failed`].
    pub error: Option<DeliveryError>,
    /// When it last moved (when it was sent, for `Pending`).
    pub update_time: Micros,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_moves_only_forward() {
        use DeliveryState::*;
        assert!(Pending.advances_to(Sent) && Sent.advances_to(Delivered) && Pending.advances_to(Failed));
        assert!(!Delivered.advances_to(Sent) && !Delivered.advances_to(Failed) && !Failed.advances_to(Delivered));
        assert!(!Sent.advances_to(Sent) && !Sent.advances_to(Pending));
    }
}
