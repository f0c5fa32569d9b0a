//! The events the log records: one per change the API makes, with the resource as it is
//! after the change, and who may see it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{
    Caller, Micros,
    channels::{Channel, Envelope},
    conversations::{Conversation, Mute, Participant},
    delivery::DeliveryState,
    messages::Message,
    notifications::{Notification, NotificationCount},
    presence::Presence,
    reports::Report,
    templates::Template,
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
    /// A message was scheduled (to its sender only, as the other scheduled-message events).
    #[strum(serialize = "message.scheduled")]
    MessageScheduled,
    /// A scheduled message was changed.
    #[strum(serialize = "scheduled_message.updated")]
    ScheduledMessageUpdated,
    /// A scheduled message was canceled, or a failed one dismissed.
    #[strum(serialize = "scheduled_message.canceled")]
    ScheduledMessageCanceled,
    /// A scheduled message could not be delivered.
    #[strum(serialize = "scheduled_message.failed")]
    ScheduledMessageFailed,
    /// A template was created.
    #[strum(serialize = "template.created")]
    TemplateCreated,
    /// A template was changed.
    #[strum(serialize = "template.updated")]
    TemplateUpdated,
    /// A template was deleted.
    #[strum(serialize = "template.deleted")]
    TemplateDeleted,
    /// A message was reported (to staff only).
    #[strum(serialize = "report.created")]
    ReportCreated,
    /// A report was resolved (to staff only).
    #[strum(serialize = "report.resolved")]
    ReportResolved,
    /// A user's notification was made or grew, or its notifications were read (to that
    /// user only).
    #[strum(serialize = "notification")]
    Notification,
    /// A participant muted a conversation (for itself).
    #[strum(serialize = "conversation.muted")]
    ConversationMuted,
    /// A participant unmuted it.
    #[strum(serialize = "conversation.unmuted")]
    ConversationUnmuted,
    /// A user came online or went offline. A signal: never in the log.
    #[strum(serialize = "presence.changed")]
    PresenceChanged,
    /// A participant is typing, or stopped. A signal: never in the log.
    #[strum(serialize = "typing")]
    Typing,
    /// An outgoing relayed message's delivery moved (to staff and its sender).
    #[strum(serialize = "message.delivery_updated")]
    MessageDeliveryUpdated,
    /// Staff marked a message handled or not handled (to staff only).
    #[strum(serialize = "message.handled")]
    MessageHandled,
    /// Staff marked a conversation handled or not handled (to staff only).
    #[strum(serialize = "conversation.handled")]
    ConversationHandled,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether events of this kind can move who takes part in a conversation: they carry
    /// the conversation's participants (or its deletion), which [`Membership`] follows.
    pub fn moves_membership(self) -> bool {
        matches!(
            self,
            EventKind::ConversationCreated
                | EventKind::ConversationUpdated
                | EventKind::ConversationArchived
                | EventKind::ConversationUnarchived
                | EventKind::ConversationDeleted
                | EventKind::ParticipantAdded
                | EventKind::ParticipantRemoved
        )
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
    Template(Box<Template>),
    Report(Box<Report>),
    Notification { notification: Option<Box<Notification>>, count: NotificationCount },
    Muted { conversation: Box<Conversation>, mute: Option<Mute> },
    Presence { user_id: String, presence: Presence },
    Typing { user_id: String, typing: bool },
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
    /// Every user of the account (an account template).
    Account,
}

impl Audience {
    /// Who may see a message's event: as who may see the message
    /// (`messages::visible_to`), private notes to staff only.
    pub fn for_message(private: bool) -> Self {
        if super::messages::visible_to(private, false) { Audience::Conversation } else { Audience::Staff }
    }

    /// Whether `viewer` may see an event with this audience, where `takes_part` says whether
    /// it takes part in the event's conversation. The one visibility rule of the log: staff
    /// see everything but what is one other user's own; members see their conversations'
    /// public events and what is addressed to them.
    pub fn admits(&self, viewer: &Caller, takes_part: bool) -> bool {
        let is_viewer = |user_id: &String| *user_id == viewer.user_id;
        match self {
            Audience::Conversation => viewer.is_staff() || takes_part,
            Audience::ConversationAnd(user_id) => viewer.is_staff() || takes_part || is_viewer(user_id),
            Audience::Staff => viewer.is_staff(),
            Audience::StaffAnd(user_id) => viewer.is_staff() || is_viewer(user_id),
            Audience::User(user_id) => is_viewer(user_id),
            Audience::Account => true,
        }
    }
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

/// A place in an account's log, in delivery order: the writing transaction, then the
/// append order. Writers of one account commit concurrently (on PostgreSQL), so events are
/// numbered before anyone knows their commit order; a reader delivers only events whose
/// transaction is older than every transaction still running, in this order, so that a
/// position once passed never has an event appear behind it. On SQLite every write holds
/// the file's lock, `tx` is 0 and `seq` alone is the order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The writing transaction (PostgreSQL's `pg_current_xact_id()`; 0 on SQLite and for
    /// events written before positions had it).
    pub tx: i64,
    /// The event's number among all appends.
    pub seq: i64,
}

impl Position {
    /// Before every event.
    pub const START: Position = Position { tx: 0, seq: 0 };
}

/// An event read back from the log.
#[derive(Debug, Clone)]
pub struct Event {
    /// Its position in the log: the cursor to resume after.
    pub position: Position,
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

impl Event {
    /// The event as `viewer` may see it (a message's envelope only where
    /// [`Message::seen_by`] shows it). A notification names the actor its notification
    /// names, not whoever's unit made it: a report's resolver stays anonymous, and a
    /// scheduled message's delivery is its sender's.
    pub fn seen_by(mut self, viewer: &Caller) -> Self {
        match self.payload {
            EventPayload::Message(message) => self.payload = EventPayload::Message(Box::new(message.seen_by(viewer))),
            EventPayload::Notification { notification: Some(notification), count } => {
                self.actor_id = notification.actor_id.clone();
                self.payload = EventPayload::Notification { notification: Some(notification), count };
            }
            payload => self.payload = payload,
        }
        self
    }
}

/// An event with its audience, as the log holds it: what a stream filters.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// The event.
    pub event: Event,
    /// Who may see it.
    pub audience: Audience,
}

/// The conversations one user takes part in, as a stream follows them: loaded when the
/// stream opens, then moved by the events after that point, in log order, so that each
/// live event is judged by the membership of its moment in the log.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    conversations: HashSet<String>,
}

impl Membership {
    /// Membership of these conversations.
    pub fn new(conversation_ids: impl IntoIterator<Item = String>) -> Self {
        Self { conversations: conversation_ids.into_iter().collect() }
    }

    /// Whether the followed user and the one `other` follows take part in a conversation
    /// together.
    pub fn shares_with(&self, other: &Membership) -> bool {
        let (small, large) = if self.conversations.len() <= other.conversations.len() {
            (&self.conversations, &other.conversations)
        } else {
            (&other.conversations, &self.conversations)
        };
        small.iter().any(|id| large.contains(id))
    }

    /// Whether the followed user takes part in the conversation.
    pub fn takes_part(&self, conversation_id: Option<&str>) -> bool {
        conversation_id.is_some_and(|id| self.conversations.contains(id))
    }

    /// Follows what `event` changed of `user_id`'s membership: a conversation or participant
    /// change carries the conversation's participants after it; a deletion ends them.
    pub fn follow(&mut self, user_id: &str, event: &Event) {
        let conversation = match &event.payload {
            EventPayload::Conversation(conversation) => conversation,
            EventPayload::ParticipantChange { conversation, .. } => conversation,
            EventPayload::ConversationDeleted { conversation_id } => {
                self.conversations.remove(conversation_id);
                return;
            }
            EventPayload::Message(_)
            | EventPayload::MessagesRead { .. }
            | EventPayload::Template(_)
            | EventPayload::Report(_)
            | EventPayload::Notification { .. }
            | EventPayload::Muted { .. }
            | EventPayload::Presence { .. }
            | EventPayload::Typing { .. } => return,
        };
        if conversation.participants.iter().any(|p| p.user_id == user_id) {
            self.conversations.insert(conversation.id.clone());
        } else {
            self.conversations.remove(&conversation.id);
        }
    }
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
    /// Only message events of messages relayed through these channels, when not empty.
    pub channels: Vec<Channel>,
    /// Only message events of outgoing relayed messages in these delivery states, when not
    /// empty.
    pub delivery_states: Vec<DeliveryState>,
}

impl EventFilter {
    /// Whether the subscriber asked for `event`, as the subscriber sees it (a member sees
    /// the envelope of its own messages only, so another's relayed message matches no
    /// channel).
    pub fn selects(&self, event: &Event, viewer: &Caller) -> bool {
        let kind = match &self.kinds {
            KindFilter::Every => true,
            KindFilter::Only(kinds) => kinds.contains(&event.kind),
        };
        let conversation = self.conversation_ids.is_empty()
            || event.conversation_id.as_ref().is_some_and(|id| self.conversation_ids.contains(id));
        kind && conversation && self.selects_envelope(event, viewer)
    }

    /// The channel and delivery state filters: with either, only message events whose
    /// envelope matches.
    fn selects_envelope(&self, event: &Event, viewer: &Caller) -> bool {
        if self.channels.is_empty() && self.delivery_states.is_empty() {
            return true;
        }
        let EventPayload::Message(message) = &event.payload else { return false };
        let Some(envelope) = message.envelope.as_ref().filter(|_| Envelope::visible_to(viewer, &message.sender_id))
        else {
            return false;
        };
        let channel = self.channels.is_empty() || self.channels.contains(&envelope.channel);
        let state = self.delivery_states.is_empty()
            || envelope.delivery.as_ref().is_some_and(|delivery| self.delivery_states.contains(&delivery.state));
        channel && state
    }
}

/// What one reader of the log can never be shown, to leave out when reading: a narrowing
/// that drops only events that [`Audience::admits`] and [`EventFilter::selects`] would drop
/// anyway, so that a stream reading the log itself does not fetch and decode the rest of
/// its account's events. (Membership is not narrowed on: it moves as the stream reads.)
#[derive(Debug, Clone, Default)]
pub struct Narrowing {
    /// Leave out what is addressed to one other user; and, for a member, what is for staff
    /// only (unless it names this user too).
    pub viewer: Option<(String, bool)>,
    /// Only these kinds, those that move membership always included; every kind if `None`.
    pub kinds: Option<Vec<EventKind>>,
    /// Only these conversations' events, when not empty.
    pub conversation_ids: Vec<String>,
}

impl Narrowing {
    /// Everything: what an account's feed reads for all its streams.
    pub fn none() -> Self {
        Self::default()
    }

    /// What `viewer`, with `filter`, can be shown at most.
    pub fn for_viewer(viewer: &Caller, filter: &EventFilter) -> Self {
        use strum::IntoEnumIterator;
        let kinds = match &filter.kinds {
            KindFilter::Every => None,
            KindFilter::Only(kinds) => {
                Some(EventKind::iter().filter(|kind| kind.moves_membership() || kinds.contains(kind)).collect())
            }
        };
        Self {
            viewer: Some((viewer.user_id.clone(), viewer.is_staff())),
            kinds,
            conversation_ids: filter.conversation_ids.clone(),
        }
    }
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
