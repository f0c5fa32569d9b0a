//! Events and heartbeats of the `Subscribe` stream.

use strum::IntoEnumIterator;

use super::{enum_field, optional_timestamp, timestamp};
use crate::{
    api::{cursors::CursorSeal, pb},
    domain::{
        Error,
        events::{Event, EventKind, EventPayload},
    },
};

impl From<EventKind> for pb::EventType {
    fn from(kind: EventKind) -> Self {
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
            EventKind::MessageScheduled => pb::EventType::MessageScheduled,
            EventKind::ScheduledMessageUpdated => pb::EventType::ScheduledMessageUpdated,
            EventKind::ScheduledMessageCanceled => pb::EventType::ScheduledMessageCanceled,
            EventKind::ScheduledMessageFailed => pb::EventType::ScheduledMessageFailed,
            EventKind::TemplateCreated => pb::EventType::TemplateCreated,
            EventKind::TemplateUpdated => pb::EventType::TemplateUpdated,
            EventKind::TemplateDeleted => pb::EventType::TemplateDeleted,
            EventKind::ReportCreated => pb::EventType::ReportCreated,
            EventKind::ReportResolved => pb::EventType::ReportResolved,
            EventKind::Notification => pb::EventType::Notification,
            EventKind::ConversationMuted => pb::EventType::ConversationMuted,
            EventKind::ConversationUnmuted => pb::EventType::ConversationUnmuted,
            EventKind::PresenceChanged => pb::EventType::PresenceChanged,
            EventKind::Typing => pb::EventType::Typing,
            EventKind::MessageDeliveryUpdated => pb::EventType::MessageDeliveryUpdated,
            EventKind::MessageHandled => pb::EventType::MessageHandled,
            EventKind::ConversationHandled => pb::EventType::ConversationHandled,
        }
    }
}

/// An event type of a subscribe filter; `None` for heartbeats, which always arrive.
pub fn event_kind_from(field: &str, value: i32) -> Result<Option<EventKind>, Error> {
    match enum_field::<pb::EventType>(field, value, "EventType")? {
        pb::EventType::Unspecified => Err(Error::invalid(field, "EVENT_TYPE_UNSPECIFIED is not an event type")),
        pb::EventType::Heartbeat => Ok(None),
        wanted => Ok(EventKind::iter().find(|kind| pb::EventType::from(*kind) == wanted)),
    }
}

impl From<EventPayload> for pb::event::Payload {
    fn from(payload: EventPayload) -> Self {
        use pb::event::Payload;
        match payload {
            EventPayload::Message(m) => Payload::Message((*m).into()),
            EventPayload::MessagesRead { user_id, message_ids, read_time, unread_count } => {
                Payload::MessagesRead(pb::MessagesRead {
                    user_id,
                    message_ids,
                    read_time: Some(timestamp(read_time)),
                    unread_count,
                })
            }
            EventPayload::Conversation(c) => Payload::Conversation((*c).into()),
            EventPayload::ConversationDeleted { conversation_id } => {
                Payload::ConversationDeleted(pb::ConversationDeleted { conversation_id })
            }
            EventPayload::ParticipantChange { participant, conversation } => {
                Payload::ParticipantChange(pb::ParticipantChange {
                    participant: Some(participant.into()),
                    conversation: Some((*conversation).into()),
                })
            }
            EventPayload::Template(template) => Payload::Template((*template).into()),
            EventPayload::Report(report) => Payload::Report((*report).into()),
            EventPayload::Notification { notification, count } => Payload::Notification(pb::NotificationChange {
                notification: notification.map(|n| (*n).into()),
                count: Some(count.into()),
            }),
            EventPayload::Muted { conversation, mute } => {
                let mut conversation = pb::Conversation::from(*conversation);
                conversation.muted = mute.is_some();
                conversation.mute_expire_time = optional_timestamp(mute.and_then(|mute| mute.expire_time));
                Payload::Conversation(conversation)
            }
            EventPayload::Presence { user_id, presence } => Payload::Presence(pb::Presence {
                user_id,
                online: presence.online,
                last_seen_time: optional_timestamp(presence.last_seen_time),
            }),
            EventPayload::Typing { user_id, typing } => Payload::Typing(pb::Typing { user_id, typing }),
        }
    }
}

/// An event as its subscriber gets it, with its cursor sealed by `seal`.
pub fn event(event: Event, seal: &CursorSeal) -> pb::Event {
    pb::Event {
        cursor: seal.seal(event.position),
        r#type: pb::EventType::from(event.kind) as i32,
        create_time: Some(timestamp(event.create_time)),
        actor_id: event.actor_id,
        conversation_id: event.conversation_id.unwrap_or_default(),
        payload: Some(event.payload.into()),
    }
}

/// A heartbeat with the cursor to resume after.
pub fn heartbeat(cursor: String) -> pb::Event {
    pb::Event {
        cursor,
        r#type: pb::EventType::Heartbeat as i32,
        create_time: Some(timestamp(crate::domain::now_micros())),
        actor_id: String::new(),
        conversation_id: String::new(),
        payload: Some(pb::event::Payload::Heartbeat(pb::Heartbeat {})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_can_be_subscribed_to() {
        for kind in EventKind::iter() {
            assert_eq!(event_kind_from("types[0]", pb::EventType::from(kind) as i32).unwrap(), Some(kind));
        }
        assert_eq!(event_kind_from("types[0]", pb::EventType::Heartbeat as i32).unwrap(), None);
        assert!(event_kind_from("types[0]", pb::EventType::Unspecified as i32).is_err());
    }
}
