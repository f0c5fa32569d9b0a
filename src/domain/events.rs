//! The events the log records: one per change the API makes, with the resource as it is
//! after the change, and who may see it.

use serde::{Deserialize, Serialize};

use super::{
    Micros,
    conversations::{Conversation, Participant},
    messages::Message,
};

/// What changed. Stored by the names the seeds' webhooks use (`message.created`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::EnumIter,
)]
pub enum EventKind {
    /// A message was sent.
    #[strum(serialize = "message.created")]
    MessageCreated,
    /// A message was edited.
    #[strum(serialize = "message.updated")]
    MessageUpdated,
    /// A message was deleted to a tombstone.
    #[strum(serialize = "message.deleted")]
    MessageDeleted,
    /// A participant read messages.
    #[strum(serialize = "message.read")]
    MessagesRead,
    /// A conversation was created.
    #[strum(serialize = "conversation.created")]
    ConversationCreated,
    /// Its subject or metadata changed.
    #[strum(serialize = "conversation.updated")]
    ConversationUpdated,
    /// A participant archived it (for itself).
    #[strum(serialize = "conversation.archived")]
    ConversationArchived,
    /// A participant unarchived it.
    #[strum(serialize = "conversation.unarchived")]
    ConversationUnarchived,
    /// It was deleted with everything in it.
    #[strum(serialize = "conversation.deleted")]
    ConversationDeleted,
    /// A participant joined.
    #[strum(serialize = "participant.added")]
    ParticipantAdded,
    /// A participant left or was removed.
    #[strum(serialize = "participant.removed")]
    ParticipantRemoved,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The resource an event carries, as it was right after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)] // the fields are the payloads' own, documented on the proto
pub enum EventPayload {
    Message(Box<Message>),
    MessagesRead { user_id: String, message_ids: Vec<String>, read_time: Micros, unread_count: i64 },
    Conversation(Box<Conversation>),
    ConversationDeleted { conversation_id: String },
    ParticipantChange { participant: Participant, conversation: Box<Conversation> },
}

/// Who may see an event, besides the rule that nobody sees another account's events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Audience {
    /// Whoever may see the conversation: its account's staff and its participants.
    #[default]
    Conversation,
    /// Whoever may see the conversation, and this user even when it no longer takes part
    /// (the removed participant).
    ConversationAnd(String),
    /// Staff only (private notes; the staff copy of a deletion).
    Staff,
    /// Staff and this user (what concerns one member but must stay from the others).
    StaffAnd(String),
    /// This user only (archive state is one user's own business).
    User(String),
}

/// An event to append in the transaction of the change it describes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// What changed.
    pub kind: EventKind,
    /// The conversation it concerns, if any.
    pub conversation_id: Option<String>,
    /// Who may see it.
    pub audience: Audience,
    /// The resource after the change.
    pub payload: EventPayload,
}

/// An event read back from the log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its position in the log: the cursor to resume after.
    pub seq: i64,
    /// What changed.
    pub kind: EventKind,
    /// When.
    pub create_time: Micros,
    /// Who made the change.
    pub actor_id: String,
    /// The conversation it concerns, if any.
    pub conversation_id: Option<String>,
    /// The resource after the change.
    pub payload: EventPayload,
}

/// Which kinds of event a subscriber wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KindFilter {
    /// Every kind.
    #[default]
    Every,
    /// Only these kinds; none at all means heartbeats only.
    Only(Vec<EventKind>),
}

/// What a subscriber asked to see.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// By kind.
    pub kinds: KindFilter,
    /// Only these conversations' events, when not empty.
    pub conversation_ids: Vec<String>,
}

/// Most conversations one subscription may filter on.
pub const MAX_FILTER_CONVERSATIONS: usize = 100;

#[cfg(test)]
mod tests {
    use strum::IntoEnumIterator;

    use super::*;

    #[test]
    fn every_kind_has_a_distinct_stored_name_that_reads_back() {
        let names: std::collections::HashSet<&str> = EventKind::iter().map(EventKind::as_str).collect();
        assert_eq!(names.len(), EventKind::iter().count());
        for kind in EventKind::iter() {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
        assert_eq!(EventKind::MessagesRead.as_str(), "message.read");
    }
}
