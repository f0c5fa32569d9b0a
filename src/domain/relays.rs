//! What a channel relay reports and is bound by: its reports on an outgoing relayed
//! message's delivery (`delivery` holds the states), the addresses an account must not
//! write to on a channel (suppressions), and the channel's original payload of a relayed
//! message, which only staff read.

use serde::{Deserialize, Serialize};

pub use super::delivery::{Delivery, DeliveryError, DeliveryState};
use super::{
    Caller, Error, Micros,
    channels::{self, Channel},
    error::Violations,
    text,
};

/// Largest raw payload kept for a message: a channel's webhook body, not a file.
pub const MAX_RAW_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most characters in a channel's error code (`30007`, `550 5.1.1`).
pub const MAX_ERROR_CODE_CHARS: usize = 64;
/// Most characters in a channel's error text.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1024;
/// Most characters in a suppression's note.
pub const MAX_NOTE_CHARS: usize = 1024;

/// A relay's report on one message.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// The state reported: never `Pending`, where every message starts.
    pub state: DeliveryState,
    /// The channel's error, with `Failed` only.
    pub error: Option<DeliveryError>,
    /// The id the channel gave the message, when the message has none yet.
    pub external_id: Option<String>,
    /// The channel's payload of the report, kept as the message's raw payload.
    pub raw_payload: Option<Vec<u8>>,
}

impl DeliveryReport {
    /// A report from its request fields; every bad field is named at once.
    pub fn parse(
        state: Option<DeliveryState>,
        error_code: String,
        error_message: String,
        external_id: String,
        raw_payload: Vec<u8>,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let state = violations.check(match state {
            None | Some(DeliveryState::Pending) => {
                Err(Error::invalid("state", "is required: SENT, DELIVERED or FAILED (every message starts PENDING)"))
            }
            Some(state) => Ok(state),
        });
        let code = violations.check(text::optional("error_code", error_code, MAX_ERROR_CODE_CHARS));
        let message = violations.check(text::bounded("error_message", error_message, MAX_ERROR_MESSAGE_CHARS));
        let external_id = violations.check(text::optional("external_id", external_id, channels::MAX_EXTERNAL_ID_CHARS));
        let raw_payload = violations.check(parse_raw_payload("raw_payload", raw_payload));
        violations.finish()?;
        let (Some(state), Some(code), Some(message), Some(external_id), Some(raw_payload)) =
            (state, code, message, external_id, raw_payload)
        else {
            return Err(Error::Internal("a delivery report's fields were checked, yet one is missing".into()));
        };
        let error = match (state, code) {
            (DeliveryState::Failed, Some(code)) => Some(DeliveryError { code, message }),
            (DeliveryState::Failed, None) => {
                return Err(Error::invalid("error_code", "is required with FAILED: the channel's code for why"));
            }
            (_, Some(_)) => return Err(Error::invalid("error_code", "goes with FAILED only")),
            (_, None) if !message.is_empty() => return Err(Error::invalid("error_message", "goes with FAILED only")),
            (_, None) => None,
        };
        Ok(Self { state, error, external_id, raw_payload })
    }
}

/// A raw payload: `None` when empty, refused above [`MAX_RAW_PAYLOAD_BYTES`].
pub fn parse_raw_payload(field: &str, data: Vec<u8>) -> Result<Option<Vec<u8>>, Error> {
    if data.len() > MAX_RAW_PAYLOAD_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {} bytes; at most {MAX_RAW_PAYLOAD_BYTES} are kept", data.len()),
        ));
    }
    Ok((!data.is_empty()).then_some(data))
}

/// The channel's original payload of a relayed message, as staff fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPayload {
    /// The message it came with.
    pub message_id: String,
    /// As the relay gave it.
    pub data: Vec<u8>,
    /// When it was kept.
    pub update_time: Micros,
}

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SuppressionReason {
    /// Its owner asked for no more messages (STOP, unsubscribe).
    OptedOut,
    /// The channel could not deliver to it for good.
    Bounced,
    /// Its owner marked a message as spam.
    Complained,
    /// Staff decided.
    Manual,
}

impl SuppressionReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An address an account does not write to on a channel, but for transactional messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The channel (never in-app).
    pub channel: Channel,
    /// The address, normalized as envelopes store it.
    pub address: String,
    /// Why.
    pub reason: SuppressionReason,
    /// Staff's words ("" for none).
    pub note: String,
    /// Who added it.
    pub creator_id: String,
    /// When.
    pub create_time: Micros,
}

/// An address on a channel (never in-app), as suppressions and envelopes store it: every
/// bad field named.
pub fn parse_address(channel: Channel, address: String) -> Result<(Channel, String), Error> {
    let mut violations = Violations::new();
    if channel == Channel::InApp {
        violations.add("channel", "is required: EMAIL, SMS, WHATSAPP or VOICE");
    }
    let address = if address.is_empty() {
        violations.check(Err::<String, _>(Error::invalid("address", "is required")))
    } else if channel == Channel::InApp {
        None
    } else {
        violations.check(channels::parse_address("address", channel, address))
    };
    violations.finish()?;
    address
        .map(|address| (channel, address))
        .ok_or_else(|| Error::Internal("an address's fields were checked, yet one is missing".into()))
}

/// Which suppressions a listing wants: of one channel, or one address on it ("is this
/// address suppressed?"), or all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuppressionQuery {
    /// Only this channel's.
    pub channel: Option<Channel>,
    /// Only this address (normalized), with `channel`.
    pub address: Option<String>,
}

impl SuppressionQuery {
    /// The query of a request's `channel` (in-app: any) and `address` ("": any), which
    /// needs its channel.
    pub fn parse(channel: Channel, address: String) -> Result<Self, Error> {
        match (channel, address.is_empty()) {
            (Channel::InApp, true) => Ok(Self::default()),
            (channel, true) => Ok(Self { channel: Some(channel), address: None }),
            (channel, false) => {
                let (channel, address) = parse_address(channel, address)?;
                Ok(Self { channel: Some(channel), address: Some(address) })
            }
        }
    }

    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!("suppressions|{}|{:?}|{:?}", caller.user_id, self.channel, self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_what_is_wrong() {
        let report = |state, code: &str, message: &str| {
            DeliveryReport::parse(state, code.into(), message.into(), String::new(), Vec::new())
        };
        let field = |result: Result<DeliveryReport, Error>| match result {
            Err(Error::InvalidArgument(v)) => v[0].field.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(report(None, "", "")), "state");
        assert_eq!(field(report(Some(DeliveryState::Pending), "", "")), "state");
        assert_eq!(field(report(Some(DeliveryState::Failed), "", "no route")), "error_code");
        assert_eq!(field(report(Some(DeliveryState::Sent), "30007", "")), "error_code");
        assert_eq!(field(report(Some(DeliveryState::Delivered), "", "fine")), "error_message");
        let big = DeliveryReport::parse(Some(DeliveryState::Sent), "".into(), "".into(), "".into(), vec![0; 70_000]);
        assert_eq!(field(big), "raw_payload");
        let failed = report(Some(DeliveryState::Failed), "30007", "carrier filtered").unwrap();
        assert_eq!(failed.error, Some(DeliveryError { code: "30007".into(), message: "carrier filtered".into() }));
    }

    #[test]
    fn suppressed_addresses_are_stored_as_envelopes_store_them() {
        assert_eq!(parse_address(Channel::Sms, "(555) 123-4567".into()).unwrap().1, "+15551234567");
        fn field<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<String> {
            match result {
                Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(field(parse_address(Channel::InApp, "x".into())), ["channel"]);
        assert_eq!(field(parse_address(Channel::InApp, String::new())), ["channel", "address"]);
        assert_eq!(field(parse_address(Channel::Email, "not an address".into())), ["address"]);
        assert_eq!(field(SuppressionQuery::parse(Channel::InApp, "a@b.example".into())), ["channel"]);
        let one = SuppressionQuery::parse(Channel::Sms, "555-123-4567".into()).unwrap();
        assert_eq!((one.channel, one.address.as_deref()), (Some(Channel::Sms), Some("+15551234567")));
    }
}
