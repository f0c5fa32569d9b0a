//! Messages, their enums, attachments and read receipts.

use super::{enum_field, json::json_to_struct, optional_timestamp, timestamp};
use crate::{
    api::pb,
    domain::{
        Error,
        channels::{Channel, Envelope},
        ids,
        messages::{
            Attachment, ContentType, Direction, FileSource, Message, MessageKind, MessageState, NewAttachment,
            ReadReceipt, name_of_link,
        },
        views::MessageView,
    },
};

impl From<MessageKind> for pb::MessageKind {
    fn from(kind: MessageKind) -> Self {
        match kind {
            MessageKind::Text => pb::MessageKind::Text,
            MessageKind::Image => pb::MessageKind::Image,
            MessageKind::Document => pb::MessageKind::Document,
            MessageKind::QuickReply => pb::MessageKind::QuickReply,
            MessageKind::System => pb::MessageKind::System,
            MessageKind::Template => pb::MessageKind::Template,
        }
    }
}

/// A message kind from a request; unspecified is `unspecified` (text, or template for a
/// message sent from a template).
pub fn message_kind_from(field: &str, value: i32, unspecified: MessageKind) -> Result<MessageKind, Error> {
    Ok(match enum_field::<pb::MessageKind>(field, value, "MessageKind")? {
        pb::MessageKind::Unspecified => unspecified,
        pb::MessageKind::Text => MessageKind::Text,
        pb::MessageKind::Template => MessageKind::Template,
        pb::MessageKind::Image => MessageKind::Image,
        pb::MessageKind::Document => MessageKind::Document,
        pb::MessageKind::QuickReply => MessageKind::QuickReply,
        pb::MessageKind::System => MessageKind::System,
    })
}

impl From<ContentType> for pb::ContentType {
    fn from(value: ContentType) -> Self {
        match value {
            ContentType::Text => pb::ContentType::Text,
            ContentType::InputSelect => pb::ContentType::InputSelect,
            ContentType::InputEmail => pb::ContentType::InputEmail,
            ContentType::InputCsat => pb::ContentType::InputCsat,
            ContentType::Form => pb::ContentType::Form,
            ContentType::Cards => pb::ContentType::Cards,
            ContentType::Article => pb::ContentType::Article,
        }
    }
}

/// A content type from a request; unspecified is text.
pub fn content_type_from(field: &str, value: i32) -> Result<ContentType, Error> {
    Ok(match enum_field::<pb::ContentType>(field, value, "ContentType")? {
        pb::ContentType::Unspecified | pb::ContentType::Text => ContentType::Text,
        pb::ContentType::InputSelect => ContentType::InputSelect,
        pb::ContentType::InputEmail => ContentType::InputEmail,
        pb::ContentType::InputCsat => ContentType::InputCsat,
        pb::ContentType::Form => ContentType::Form,
        pb::ContentType::Cards => ContentType::Cards,
        pb::ContentType::Article => ContentType::Article,
    })
}

impl From<Direction> for pb::Direction {
    fn from(value: Direction) -> Self {
        match value {
            Direction::Incoming => pb::Direction::Incoming,
            Direction::Outgoing => pb::Direction::Outgoing,
        }
    }
}

/// A direction from a request; `None` (derived from the sender) when unspecified.
pub fn direction_from(field: &str, value: i32) -> Result<Option<Direction>, Error> {
    Ok(match enum_field::<pb::Direction>(field, value, "Direction")? {
        pb::Direction::Unspecified => None,
        pb::Direction::Incoming => Some(Direction::Incoming),
        pb::Direction::Outgoing => Some(Direction::Outgoing),
    })
}

impl From<MessageState> for pb::MessageState {
    fn from(state: MessageState) -> Self {
        match state {
            MessageState::Sent => pb::MessageState::Sent,
            MessageState::Scheduled => pb::MessageState::Scheduled,
            MessageState::Failed => pb::MessageState::Failed,
            MessageState::Canceled => pb::MessageState::Canceled,
        }
    }
}

impl From<Channel> for pb::Channel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::InApp => pb::Channel::InApp,
            Channel::Email => pb::Channel::Email,
            Channel::Sms => pb::Channel::Sms,
            Channel::Whatsapp => pb::Channel::Whatsapp,
            Channel::Voice => pb::Channel::Voice,
        }
    }
}

/// A channel from a request; unspecified is in-app.
pub fn channel_from(field: &str, value: i32) -> Result<Channel, Error> {
    Ok(match enum_field::<pb::Channel>(field, value, "Channel")? {
        pb::Channel::Unspecified | pb::Channel::InApp => Channel::InApp,
        pb::Channel::Email => Channel::Email,
        pb::Channel::Sms => Channel::Sms,
        pb::Channel::Whatsapp => Channel::Whatsapp,
        pb::Channel::Voice => Channel::Voice,
    })
}

/// A message's envelope; `None` in-app.
pub fn envelope_from(envelope: Option<pb::Envelope>) -> Result<Option<Envelope>, Error> {
    let Some(envelope) = envelope else { return Ok(None) };
    let channel = channel_from("envelope.channel", envelope.channel)?;
    if envelope.delivery.is_some() {
        return Err(Error::invalid("envelope.delivery", "is the relay's to report (RelayService.ReportDelivery)"));
    }
    Envelope::parse(channel, envelope.from_address, envelope.to_address, envelope.external_id, envelope.transactional)
}

impl From<Envelope> for pb::Envelope {
    fn from(envelope: Envelope) -> Self {
        pb::Envelope {
            channel: pb::Channel::from(envelope.channel) as i32,
            from_address: envelope.from_address,
            to_address: envelope.to_address,
            external_id: envelope.external_id.unwrap_or_default(),
            transactional: envelope.transactional,
            delivery: envelope.delivery.map(pb::Delivery::from),
        }
    }
}

impl From<Attachment> for pb::Attachment {
    fn from(attachment: Attachment) -> Self {
        pb::Attachment {
            id: attachment.id,
            filename: attachment.filename,
            media_type: attachment.media_type,
            size_bytes: attachment.size_bytes,
            sha256: attachment.sha256,
            url: attachment.url.unwrap_or_default(),
        }
    }
}

impl From<ReadReceipt> for pb::ReadReceipt {
    fn from(receipt: ReadReceipt) -> Self {
        pb::ReadReceipt {
            user_id: receipt.user_id,
            read: receipt.read_time.is_some(),
            read_time: optional_timestamp(receipt.read_time),
        }
    }
}

impl From<MessageView> for pb::Message {
    fn from(view: MessageView) -> Self {
        let message = view.message;
        pb::Message {
            id: message.id,
            conversation_id: message.conversation_id,
            sender_id: message.sender_id,
            kind: pb::MessageKind::from(message.kind) as i32,
            content: message.content,
            content_type: pb::ContentType::from(message.content_type) as i32,
            content_attributes: message.content_attributes.and_then(json_to_struct),
            private: message.private,
            direction: pb::Direction::from(message.direction) as i32,
            attachments: message.attachments.into_iter().map(pb::Attachment::from).collect(),
            metadata: message.metadata.into_iter().collect(),
            create_time: Some(timestamp(message.create_time)),
            edit_time: optional_timestamp(message.edit_time),
            delete_time: optional_timestamp(message.delete_time),
            read_receipts: message.read_receipts.into_iter().map(pb::ReadReceipt::from).collect(),
            sequence: message.sequence,
            note_sequence: message.note_sequence,
            sender: view.sender.map(pb::User::from),
            conversation: view.conversation.map(|c| Box::new(pb::Conversation::from(*c))),
            template_id: message.template.as_ref().map(|t| t.template_id.clone()).unwrap_or_default(),
            variables: message.template.map(|t| t.variables.into_iter().collect()).unwrap_or_default(),
            envelope: message.envelope.map(pb::Envelope::from),
            schedule_time: optional_timestamp(message.schedule_time),
            state: pb::MessageState::from(message.state) as i32,
            failure_reason: message.failure_reason.unwrap_or_default(),
            handled: message.handled.map(pb::Handling::from),
        }
    }
}

impl From<Message> for pb::Message {
    /// The message alone, with no expansions.
    fn from(message: Message) -> Self {
        MessageView::from(message).into()
    }
}

/// A file of a send: its bytes, a link, or an attachment to forward; exactly one.
pub fn new_attachment_from(field: &str, file: pb::NewAttachment) -> Result<NewAttachment, Error> {
    let given = [!file.data.is_empty(), !file.url.is_empty(), !file.attachment_id.is_empty()];
    if given.iter().filter(|&&given| given).count() > 1 {
        return Err(Error::invalid(field, "give one of data, url and attachment_id"));
    }
    if file.size_bytes != 0 && file.url.is_empty() {
        return Err(Error::invalid(format!("{field}.size_bytes"), "goes with a url: an upload's size is its data's"));
    }
    let source = if !file.url.is_empty() {
        FileSource::Link { url: file.url, size_bytes: file.size_bytes }
    } else if !file.attachment_id.is_empty() {
        FileSource::Forward(ids::parse(&format!("{field}.attachment_id"), &file.attachment_id, ids::ATTACHMENT)?)
    } else {
        FileSource::Data(file.data)
    };
    let filename = match (&source, file.filename.is_empty()) {
        (FileSource::Link { url, .. }, true) => name_of_link(url),
        _ => file.filename,
    };
    Ok(NewAttachment { filename, media_type: file.media_type, source })
}
