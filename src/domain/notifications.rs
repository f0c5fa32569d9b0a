//! Each user's notification feed: what happened that concerns it. Notifications are
//! written in the unit of the change that causes them (so never lost and never twice);
//! each of those units decides whom its change concerns, with the rules here for what a
//! notification says, who it names as its actor, and how unread ones coalesce.

use serde::{Deserialize, Serialize};

use super::{Caller, Micros, messages::Message};

/// What a notification is about. Stored by its snake_case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NotificationKind {
    /// Someone else wrote in a conversation the user takes part in.
    NewMessage,
    /// Someone started a conversation with the user.
    ConversationStarted,
    /// Someone added the user to a conversation.
    AddedToConversation,
    /// Staff resolved the user's report.
    ReportResolved,
    /// The user's scheduled message could not be delivered.
    ScheduledMessageFailed,
}

impl NotificationKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an unread notification of this kind grows instead of a new one being made:
    /// new messages of one conversation, so a busy conversation does not flood the feed.
    fn coalesces(self) -> bool {
        self == NotificationKind::NewMessage
    }
}

/// Most characters of a message's content a notification shows.
pub const SUMMARY_CHARS: usize = 140;

/// A notification as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `ntf_…`
    pub id: String,
    /// What about.
    pub kind: NotificationKind,
    /// The conversation, when any.
    pub conversation_id: Option<String>,
    /// Who caused the latest of what it counts.
    pub actor_id: String,
    /// The latest message, or the scheduled message that failed.
    pub message_id: Option<String>,
    /// The report.
    pub report_id: Option<String>,
    /// How many things it stands for; at least 1.
    pub count: i64,
    /// A short text to show.
    pub summary: String,
    /// When it was read.
    pub read_time: Option<Micros>,
    /// When it was made.
    pub create_time: Micros,
    /// When it last grew.
    pub update_time: Micros,
}

/// A user's counts: what its badges show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCount {
    /// Unread notifications.
    pub unread_notifications: i64,
    /// Unread messages over its conversations that are not archived (as GetUnreadCount).
    pub unread_messages: i64,
}

/// A notification to make (or grow) for one user.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Who is notified.
    pub user_id: String,
    /// Whom it names as having caused it ("" for nobody: the server's own doing, or staff
    /// who stay anonymous, as a report's resolver does).
    pub actor_id: String,
    /// What about.
    pub kind: NotificationKind,
    /// The conversation, when any.
    pub conversation_id: Option<String>,
    /// The message, when any.
    pub message_id: Option<String>,
    /// The report, when any.
    pub report_id: Option<String>,
    /// What it says.
    pub summary: String,
}

impl Notice {
    /// The key under which an unread notice grows the notification already there, if its
    /// kind coalesces: one per kind and conversation.
    pub fn coalesce_key(&self) -> Option<String> {
        self.kind
            .coalesces()
            .then(|| format!("{}:{}", self.kind.as_str(), self.conversation_id.as_deref().unwrap_or("")))
    }

    /// A new message for `user_id`.
    pub fn new_message(user_id: &str, message: &Message) -> Self {
        Self {
            user_id: user_id.to_owned(),
            actor_id: message.sender_id.clone(),
            kind: NotificationKind::NewMessage,
            conversation_id: Some(message.conversation_id.clone()),
            message_id: Some(message.id.clone()),
            report_id: None,
            summary: message_summary(message),
        }
    }

    /// A conversation `user_id` now takes part in, started with it or joined by `actor_id`.
    pub fn conversation(
        user_id: &str,
        actor_id: &str,
        kind: NotificationKind,
        conversation_id: &str,
        title: &str,
    ) -> Self {
        let summary = match (kind, title.is_empty()) {
            (NotificationKind::ConversationStarted, true) => "A conversation was started with you".to_owned(),
            (NotificationKind::ConversationStarted, false) => format!("A conversation was started with you: {title}"),
            (_, true) => "You were added to a conversation".to_owned(),
            (_, false) => format!("You were added to a conversation: {title}"),
        };
        Self {
            user_id: user_id.to_owned(),
            actor_id: actor_id.to_owned(),
            kind,
            conversation_id: Some(conversation_id.to_owned()),
            message_id: None,
            report_id: None,
            summary,
        }
    }
}

/// What a notification shows of a message: its content's beginning, or what it carries;
/// of a deleted message, only that it was deleted.
pub fn message_summary(message: &Message) -> String {
    if message.delete_time.is_some() {
        return "This message was deleted".to_owned();
    }
    let content = message.content.trim();
    if content.is_empty() {
        return match message.attachments.len() {
            0 => "New message".to_owned(),
            1 => "Sent a file".to_owned(),
            n => format!("Sent {n} files"),
        };
    }
    let mut summary: String = content.chars().take(SUMMARY_CHARS).collect();
    if content.chars().count() > SUMMARY_CHARS {
        summary.push('…');
    }
    summary
}

/// Whether `caller` may see a notification of `user_id`: only its own.
pub fn is_own(caller: &Caller, user_id: &str) -> bool {
    caller.user_id == user_id
}

/// Which notifications to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationQuery {
    /// Unread ones only.
    pub unread_only: bool,
}

impl NotificationQuery {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!("notifications|{}|{}", caller.user_id, self.unread_only)
    }
}
