//! The events the log records: one per change the API makes, with the resource as it is
//! after the change, and who may see it.

use serde::{Deserialize, Serialize};

use super::{
    Error, Micros,
    conversations::{Conversation, Participant},
    messages::Message,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    MessagesRead,
    ConversationCreated,
    ConversationUpdated,
    ConversationArchived,
    ConversationUnarchived,
    ConversationDeleted,
    ParticipantAdded,
    ParticipantRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::MessageCreated,
        EventKind::MessageUpdated,
        EventKind::MessageDeleted,
        EventKind::MessagesRead,
        EventKind::ConversationCreated,
        EventKind::ConversationUpdated,
        EventKind::ConversationArchived,
        EventKind::ConversationUnarchived,
        EventKind::ConversationDeleted,
        EventKind::ParticipantAdded,
        EventKind::ParticipantRemoved,
    ];

    /// The stored name, as the seeds' webhooks named them.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "message.created",
            EventKind::MessageUpdated => "message.updated",
            EventKind::MessageDeleted => "message.deleted",
            EventKind::MessagesRead => "message.read",
            EventKind::ConversationCreated => "conversation.created",
            EventKind::ConversationUpdated => "conversation.updated",
            EventKind::ConversationArchived => "conversation.archived",
            EventKind::ConversationUnarchived => "conversation.unarchived",
            EventKind::ConversationDeleted => "conversation.deleted",
            EventKind::ParticipantAdded => "participant.added",
            EventKind::ParticipantRemoved => "participant.removed",
        }
    }

    pub fn from_stored(value: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| Error::Internal(format!("unknown stored event type {value:?}")))
    }
}

/// The resource an event carries, as it was right after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventPayload {
    Message(Box<Message>),
    MessagesRead { user_id: String, message_ids: Vec<String>, read_time: Micros, unread_count: i64 },
    Conversation(Box<Conversation>),
    ConversationDeleted { conversation_id: String },
    ParticipantChange { participant: Participant, conversation: Box<Conversation> },
}

/// Who may see an event, besides the rule that nobody sees another account's events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Audience {
    /// Only this user (archive state is one user's own business).
    pub only_user: Option<String>,
    /// Only staff (private notes; the staff copy of a deletion).
    pub staff_only: bool,
    /// This user too, even when it no longer takes part (the removed participant).
    pub also_user: Option<String>,
}

/// An event to append in the transaction of the change it describes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventKind,
    pub conversation_id: Option<String>,
    pub audience: Audience,
    pub payload: EventPayload,
}

/// An event read back from the log.
#[derive(Debug, Clone)]
pub struct Event {
    pub seq: i64,
    pub kind: EventKind,
    pub create_time: Micros,
    pub actor_id: String,
    pub conversation_id: Option<String>,
    pub payload: EventPayload,
}

/// What a subscriber asked to see.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these kinds, when set (possibly none: heartbeats only).
    pub kinds: Option<Vec<EventKind>>,
    /// Only these conversations' events, when not empty.
    pub conversation_ids: Vec<String>,
}

/// Most conversations one subscription may filter on.
pub const MAX_FILTER_CONVERSATIONS: usize = 100;
