//! Conversions between domain types and protobuf messages.

use prost_types::{Struct, Timestamp, value::Kind};

use super::pb;
use crate::domain::{
    Error, Micros,
    conversations::{Conversation, Participant, Subject},
    events::{Event, EventKind, EventPayload},
    messages::{Attachment, ContentType, Direction, Message, MessageKind, ReadReceipt},
    users::{ApiKey, Role, User},
};

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

pub fn role(role: Role) -> pb::Role {
    match role {
        Role::Admin => pb::Role::Admin,
        Role::Agent => pb::Role::Agent,
        Role::Member => pb::Role::Member,
    }
}

/// A role from a request; `None` for ROLE_UNSPECIFIED.
pub fn role_from(field: &str, value: i32) -> Result<Option<Role>, Error> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::Admin) => Ok(Some(Role::Admin)),
        Ok(pb::Role::Agent) => Ok(Some(Role::Agent)),
        Ok(pb::Role::Member) => Ok(Some(Role::Member)),
        Err(_) => Err(Error::invalid(field, format!("{value} is not a Role"))),
    }
}

pub fn user(user: User) -> pb::User {
    pb::User {
        id: user.id,
        account_id: user.account_id,
        role: role(user.role) as i32,
        display_name: user.display_name,
        external_id: user.external_id.unwrap_or_default(),
        email: user.email,
        phone: user.phone,
        create_time: Some(timestamp(user.create_time)),
        update_time: Some(timestamp(user.update_time)),
    }
}

pub fn api_key(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id,
        user_id: key.user_id,
        name: key.name,
        prefix: key.prefix,
        create_time: Some(timestamp(key.create_time)),
        revoke_time: optional_timestamp(key.revoke_time),
    }
}

fn participant(participant: Participant) -> pb::Participant {
    pb::Participant {
        user_id: participant.user_id,
        label: participant.label,
        join_time: Some(timestamp(participant.join_time)),
        user: participant.user.map(user),
    }
}

pub fn conversation(conversation: Conversation) -> pb::Conversation {
    let viewer = conversation.viewer;
    pb::Conversation {
        id: conversation.id,
        subject: (conversation.subject != Subject::default()).then_some(pb::Subject {
            kind: conversation.subject.kind,
            external_id: conversation.subject.external_id,
            title: conversation.subject.title,
        }),
        metadata: conversation.metadata.into_iter().collect(),
        participants: conversation.participants.into_iter().map(participant).collect(),
        last_message: conversation.last_message.map(|m| Box::new(message(*m))),
        unread_count: viewer.as_ref().map_or(0, |v| v.unread_count),
        archived: viewer.as_ref().is_some_and(|v| v.archived),
        participating: viewer.is_some(),
        caller_label: viewer.map(|v| v.label).unwrap_or_default(),
        create_time: Some(timestamp(conversation.create_time)),
        update_time: Some(timestamp(conversation.update_time)),
    }
}

pub fn message_kind(kind: MessageKind) -> pb::MessageKind {
    match kind {
        MessageKind::Text => pb::MessageKind::Text,
        MessageKind::Image => pb::MessageKind::Image,
        MessageKind::Document => pb::MessageKind::Document,
        MessageKind::QuickReply => pb::MessageKind::QuickReply,
        MessageKind::System => pb::MessageKind::System,
    }
}

pub fn message_kind_from(field: &str, value: i32) -> Result<MessageKind, Error> {
    match pb::MessageKind::try_from(value) {
        Ok(pb::MessageKind::Unspecified | pb::MessageKind::Text) => Ok(MessageKind::Text),
        Ok(pb::MessageKind::Image) => Ok(MessageKind::Image),
        Ok(pb::MessageKind::Document) => Ok(MessageKind::Document),
        Ok(pb::MessageKind::QuickReply) => Ok(MessageKind::QuickReply),
        Ok(pb::MessageKind::System) => Ok(MessageKind::System),
        Err(_) => Err(Error::invalid(field, format!("{value} is not a MessageKind"))),
    }
}

pub fn content_type(value: ContentType) -> pb::ContentType {
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

pub fn content_type_from(field: &str, value: i32) -> Result<ContentType, Error> {
    match pb::ContentType::try_from(value) {
        Ok(pb::ContentType::Unspecified | pb::ContentType::Text) => Ok(ContentType::Text),
        Ok(pb::ContentType::InputSelect) => Ok(ContentType::InputSelect),
        Ok(pb::ContentType::InputEmail) => Ok(ContentType::InputEmail),
        Ok(pb::ContentType::InputCsat) => Ok(ContentType::InputCsat),
        Ok(pb::ContentType::Form) => Ok(ContentType::Form),
        Ok(pb::ContentType::Cards) => Ok(ContentType::Cards),
        Ok(pb::ContentType::Article) => Ok(ContentType::Article),
        Err(_) => Err(Error::invalid(field, format!("{value} is not a ContentType"))),
    }
}

pub fn direction(value: Direction) -> pb::Direction {
    match value {
        Direction::Incoming => pb::Direction::Incoming,
        Direction::Outgoing => pb::Direction::Outgoing,
    }
}

pub fn direction_from(field: &str, value: i32) -> Result<Option<Direction>, Error> {
    match pb::Direction::try_from(value) {
        Ok(pb::Direction::Unspecified) => Ok(None),
        Ok(pb::Direction::Incoming) => Ok(Some(Direction::Incoming)),
        Ok(pb::Direction::Outgoing) => Ok(Some(Direction::Outgoing)),
        Err(_) => Err(Error::invalid(field, format!("{value} is not a Direction"))),
    }
}

/// Whether a request asked for VIEW_FULL.
pub fn full_view(field: &str, value: i32) -> Result<bool, Error> {
    match pb::View::try_from(value) {
        Ok(pb::View::Full) => Ok(true),
        Ok(_) => Ok(false),
        Err(_) => Err(Error::invalid(field, format!("{value} is not a View"))),
    }
}

pub fn attachment(attachment: Attachment) -> pb::Attachment {
    pb::Attachment {
        id: attachment.id,
        filename: attachment.filename,
        media_type: attachment.media_type,
        size_bytes: attachment.size_bytes,
        sha256: attachment.sha256,
    }
}

fn read_receipt(receipt: ReadReceipt) -> pb::ReadReceipt {
    pb::ReadReceipt {
        user_id: receipt.user_id,
        read: receipt.read_time.is_some(),
        read_time: optional_timestamp(receipt.read_time),
    }
}

pub fn message(message: Message) -> pb::Message {
    pb::Message {
        id: message.id,
        conversation_id: message.conversation_id,
        sender_id: message.sender_id,
        kind: message_kind(message.kind) as i32,
        content: message.content,
        content_type: content_type(message.content_type) as i32,
        content_attributes: message.content_attributes.and_then(|value| match json_to_value(value).kind {
            Some(Kind::StructValue(object)) => Some(object),
            _ => None,
        }),
        private: message.private,
        direction: direction(message.direction) as i32,
        attachments: message.attachments.into_iter().map(attachment).collect(),
        metadata: message.metadata.into_iter().collect(),
        create_time: Some(timestamp(message.create_time)),
        edit_time: optional_timestamp(message.edit_time),
        delete_time: optional_timestamp(message.delete_time),
        read_receipts: message.read_receipts.into_iter().map(read_receipt).collect(),
        sequence: message.sequence,
        note_sequence: message.note_sequence,
        sender: message.sender.map(user),
        conversation: message.conversation.map(|c| Box::new(conversation(*c))),
    }
}

/// A protobuf Struct as a JSON object.
pub fn struct_to_json(value: Struct) -> serde_json::Value {
    serde_json::Value::Object(value.fields.into_iter().map(|(key, value)| (key, value_to_json(value))).collect())
}

fn value_to_json(value: prost_types::Value) -> serde_json::Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(number)) => {
            serde_json::Number::from_f64(number).map_or(serde_json::Value::Null, serde_json::Value::Number)
        }
        Some(Kind::StringValue(text)) => serde_json::Value::String(text),
        Some(Kind::BoolValue(flag)) => serde_json::Value::Bool(flag),
        Some(Kind::StructValue(object)) => struct_to_json(object),
        Some(Kind::ListValue(list)) => serde_json::Value::Array(list.values.into_iter().map(value_to_json).collect()),
    }
}

fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(json_to_value).collect() })
        }
        serde_json::Value::Object(fields) => Kind::StructValue(Struct {
            fields: fields.into_iter().map(|(key, value)| (key, json_to_value(value))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

pub fn event_type(kind: EventKind) -> pb::EventType {
    match kind {
        EventKind::MessageCreated => pb::EventType::MessageCreated,
        EventKind::MessageUpdated => pb::EventType::MessageUpdated,
        EventKind::MessageDeleted => pb::EventType::MessageDeleted,
        EventKind::MessagesRead => pb::EventType::MessagesRead,
        EventKind::ConversationCreated => pb::EventType::ConversationCreated,
        EventKind::ConversationUpdated => pb::EventType::ConversationUpdated,
        EventKind::ConversationArchived => pb::EventType::ConversationArchived,
        EventKind::ConversationUnarchived => pb::EventType::ConversationUnarchived,
        EventKind::ConversationDeleted => pb::EventType::ConversationDeleted,
        EventKind::ParticipantAdded => pb::EventType::ParticipantAdded,
        EventKind::ParticipantRemoved => pb::EventType::ParticipantRemoved,
    }
}

/// An event type of a subscribe filter; `None` for heartbeats, which always arrive.
pub fn event_kind_from(field: &str, value: i32) -> Result<Option<EventKind>, Error> {
    let wanted =
        pb::EventType::try_from(value).map_err(|_| Error::invalid(field, format!("{value} is not an EventType")))?;
    match wanted {
        pb::EventType::Unspecified => Err(Error::invalid(field, "EVENT_TYPE_UNSPECIFIED is not an event type")),
        pb::EventType::Heartbeat => Ok(None),
        other => Ok(EventKind::ALL.into_iter().find(|kind| event_type(*kind) == other)),
    }
}

pub fn event(event: Event) -> pb::Event {
    use pb::event::Payload;
    let payload = match event.payload {
        EventPayload::Message(m) => Payload::Message(message(*m)),
        EventPayload::MessagesRead { user_id, message_ids, read_time, unread_count } => {
            Payload::MessagesRead(pb::MessagesRead {
                user_id,
                message_ids,
                read_time: Some(timestamp(read_time)),
                unread_count,
            })
        }
        EventPayload::Conversation(c) => Payload::Conversation(conversation(*c)),
        EventPayload::ConversationDeleted { conversation_id } => {
            Payload::ConversationDeleted(pb::ConversationDeleted { conversation_id })
        }
        EventPayload::ParticipantChange { participant: p, conversation: c } => {
            Payload::ParticipantChange(pb::ParticipantChange {
                participant: Some(participant(p)),
                conversation: Some(conversation(*c)),
            })
        }
    };
    pb::Event {
        cursor: event.seq.to_string(),
        r#type: event_type(event.kind) as i32,
        create_time: Some(timestamp(event.create_time)),
        actor_id: event.actor_id,
        conversation_id: event.conversation_id.unwrap_or_default(),
        payload: Some(payload),
    }
}

pub fn heartbeat(position: i64) -> pb::Event {
    pb::Event {
        cursor: position.to_string(),
        r#type: pb::EventType::Heartbeat as i32,
        create_time: Some(timestamp(crate::domain::now_micros())),
        actor_id: String::new(),
        conversation_id: String::new(),
        payload: Some(pb::event::Payload::Heartbeat(pb::Heartbeat {})),
    }
}
