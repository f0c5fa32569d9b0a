//! Message channels: the envelope of a message relayed through email, SMS, WhatsApp or
//! voice (seed 000's `from_email`/`to_number`/`external_comm_id`, seed 003's internal and
//! external addresses), validated for its channel.
//!
//! Email addresses follow the users' rule (`users::parse_email`), phone numbers the one
//! rule of `phones` (stored in E.164), the same as users' phones.

use serde::{Deserialize, Serialize};

use super::{Caller, Error, delivery::Delivery, error::Violations, phones, text, users::parse_email};

/// Most characters in an external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// Most characters in an address (an email address's limit, and far more than a phone's).
pub const MAX_ADDRESS_CHARS: usize = 320;

/// The channel a message travelled through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Channel {
    /// The product itself (no envelope is stored for it).
    InApp,
    /// Email: addresses are email addresses.
    Email,
    /// SMS: addresses are phone numbers.
    Sms,
    /// WhatsApp: addresses are phone numbers.
    Whatsapp,
    /// A call: addresses are phone numbers.
    Voice,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// How a relayed message travelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Never [`Channel::InApp`]: an in-app message has no envelope.
    pub channel: Channel,
    /// The sender's address on the channel ("" when not given).
    pub from_address: String,
    /// The recipient's address ("" when not given).
    pub to_address: String,
    /// The id the channel gave the message, unique per channel in the account.
    pub external_id: Option<String>,
    /// Sent even to an address suppressed on the channel (a receipt, a password reset).
    #[serde(default)]
    pub transactional: bool,
    /// An outgoing message's delivery, as its relay reported it (`None` for incoming ones).
    #[serde(default)]
    pub delivery: Option<Delivery>,
}

impl Envelope {
    /// The envelope of a message's `envelope.*` fields: `None` for an in-app message, which
    /// must carry no addresses or external id.
    pub fn parse(
        channel: Channel,
        from_address: String,
        to_address: String,
        external_id: String,
        transactional: bool,
    ) -> Result<Option<Envelope>, Error> {
        let field = |name: &str| format!("envelope.{name}");
        if channel == Channel::InApp {
            if [&from_address, &to_address, &external_id].iter().any(|value| !value.is_empty()) || transactional {
                return Err(Error::invalid(
                    field("channel"),
                    "an in-app message carries no addresses or external id: name the channel it came through",
                ));
            }
            return Ok(None);
        }
        let mut violations = Violations::new();
        let from_address = violations.check(parse_address(&field("from_address"), channel, from_address));
        let to_address = violations.check(parse_address(&field("to_address"), channel, to_address));
        let external_id = violations.check(text::optional(&field("external_id"), external_id, MAX_EXTERNAL_ID_CHARS));
        violations.finish()?;
        Ok(Some(Envelope {
            channel,
            from_address: from_address.unwrap_or_default(),
            to_address: to_address.unwrap_or_default(),
            external_id: external_id.flatten(),
            transactional,
            delivery: None,
        }))
    }

    /// Whether `viewer` may see the envelope of a message `sender_id` sent: addresses are
    /// contact details, so, as with users' email and phone, members see only their own.
    pub fn visible_to(viewer: &Caller, sender_id: &str) -> bool {
        viewer.is_staff() || viewer.user_id == sender_id
    }
}

/// An address for `channel`, normalized; "" stays "" (not given).
pub fn parse_address(field: &str, channel: Channel, value: String) -> Result<String, Error> {
    if value.is_empty() {
        return Ok(value);
    }
    let value = text::bounded(field, value, MAX_ADDRESS_CHARS)?;
    match channel {
        Channel::InApp => Err(Error::invalid(field, "an in-app message has no addresses")),
        // One address, one spelling: a suppression of Buyer@Example.com holds for
        // buyer@example.com (mailbox names are case-blind in practice, domains always).
        Channel::Email => parse_email(field, value.to_lowercase()),
        Channel::Sms | Channel::Whatsapp | Channel::Voice => phones::parse(field, &value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<Option<Envelope>, Error>) -> Vec<String> {
        match result {
            Err(Error::InvalidArgument(violations)) => violations.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn envelope_phone_numbers_follow_the_one_rule() {
        for (given, stored) in [
            ("+1 (415) 555-2671", "+14155552671"),
            ("(415) 555-2671", "+14155552671"),
            ("415-555-2671", "+14155552671"),
            ("+4915112345678", "+4915112345678"),
            ("(555) 123-4567", "+15551234567"),
        ] {
            let envelope = Envelope::parse(Channel::Sms, given.into(), String::new(), "sm1".into(), false).unwrap();
            assert_eq!(envelope.unwrap().from_address, stored, "{given}");
        }
    }

    #[test]
    fn addresses_must_fit_their_channel() {
        let sms = Envelope::parse(Channel::Sms, "a@b.example".into(), "12".into(), String::new(), false);
        assert_eq!(fields(sms), ["envelope.from_address", "envelope.to_address"]);
        let extension =
            Envelope::parse(Channel::Voice, "+14155552671 ext 5".into(), String::new(), String::new(), false);
        assert!(matches!(extension, Err(Error::InvalidArgument(v)) if v[0].description.contains("extension")));
        let email = Envelope::parse(Channel::Email, "a@b.example".into(), "+14155552671".into(), String::new(), false);
        assert_eq!(fields(email), ["envelope.to_address"]);
        let long = format!("a@{}.example", "b".repeat(MAX_ADDRESS_CHARS));
        let refused = Envelope::parse(Channel::Email, long, String::new(), String::new(), false);
        assert!(matches!(refused, Err(Error::InvalidArgument(v)) if v[0].description.contains("characters")));
        let ok = Envelope::parse(Channel::Email, "a@b.example".into(), "c@d.example".into(), "<id@x>".into(), false);
        assert_eq!(ok.unwrap().unwrap().external_id.as_deref(), Some("<id@x>"));
    }

    #[test]
    fn in_app_messages_have_no_envelope() {
        assert!(Envelope::parse(Channel::InApp, String::new(), String::new(), String::new(), false).unwrap().is_none());
        let addressed = Envelope::parse(Channel::InApp, "x".into(), String::new(), String::new(), false);
        assert_eq!(fields(addressed.map_err(|err| err.within("first_message."))), ["first_message.envelope.channel"]);
    }
}
