//! Conversations, their participants and each participant's own state (read, archived).

use serde::{Deserialize, Serialize};

use super::{Caller, Error, Micros, messages::Message, metadata::Metadata, users::User};

pub const MAX_PARTICIPANTS: usize = 100;
pub const MAX_LABEL_CHARS: usize = 64;
pub const MAX_SUBJECT_CHARS: usize = 500;

/// What a conversation is about in the host product: "listing lst_abc", "offer 42".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub external_id: String,
    pub title: String,
}

impl Subject {
    pub fn parse(field: &str, kind: String, external_id: String, title: String) -> Result<Self, Error> {
        for (name, value) in [("kind", &kind), ("external_id", &external_id), ("title", &title)] {
            super::check_text(&format!("{field}.{name}"), value)?;
            if value.chars().count() > MAX_SUBJECT_CHARS {
                return Err(Error::invalid(
                    format!("{field}.{name}"),
                    format!("is longer than {MAX_SUBJECT_CHARS} characters"),
                ));
            }
        }
        Ok(Self { kind, external_id, title })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: String,
    pub label: String,
    pub join_time: Micros,
    /// The user, when the view expands it.
    #[serde(skip)]
    pub user: Option<User>,
}

/// The caller's own state in a conversation it takes part in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerState {
    pub label: String,
    pub unread_count: i64,
    pub archived: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub account_id: String,
    pub subject: Subject,
    pub metadata: Metadata,
    pub participants: Vec<Participant>,
    pub create_time: Micros,
    pub update_time: Micros,
    /// The newest message the viewer may see.
    #[serde(skip)]
    pub last_message: Option<Box<Message>>,
    /// The viewer's state, when the viewer takes part.
    #[serde(skip)]
    pub viewer: Option<ViewerState>,
}

/// A participant to add, validated.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub user_id: String,
    pub label: String,
}

pub fn parse_label(field: &str, label: String) -> Result<String, Error> {
    super::check_text(field, &label)?;
    let label = label.trim().to_owned();
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(Error::invalid(field, format!("is longer than {MAX_LABEL_CHARS} characters")));
    }
    Ok(label)
}

/// A conversation to create, validated.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub participants: Vec<NewParticipant>,
    pub subject: Subject,
    pub metadata: Metadata,
    pub first_message: Option<super::messages::NewMessage>,
    pub request_id: Option<String>,
    pub caller_label: String,
}

impl NewConversation {
    /// The participants to insert: the requested ones, plus a member caller that did not
    /// list itself (a member always takes part in what it creates).
    pub fn participants_with_caller(&self, caller: &Caller) -> Vec<NewParticipant> {
        let mut participants = self.participants.clone();
        if !caller.is_staff() && !participants.iter().any(|p| p.user_id == caller.user_id) {
            participants.push(NewParticipant { user_id: caller.user_id.clone(), label: self.caller_label.clone() });
        }
        participants
    }
}

/// Which of the caller's conversations to list, by its own read and archive state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Everything not archived by the caller.
    #[default]
    Active,
    All,
    Unread,
    Read,
    Archived,
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: StatusFilter,
    pub label: Option<String>,
    pub subject_kind: Option<String>,
    pub subject_external_id: Option<String>,
    pub participating_only: bool,
}

impl ConversationFilter {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!(
            "conversations|{}|{:?}|{:?}|{:?}|{:?}|{}",
            caller.user_id,
            self.status,
            self.label,
            self.subject_kind,
            self.subject_external_id,
            self.participating_only
        )
    }
}

/// How many conversations a listing matched.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConversationCounts {
    /// With every filter of the request.
    pub matching: i64,
    /// Not archived, ignoring the status filter.
    pub active: i64,
    /// Not archived and unread, ignoring the status filter.
    pub unread: i64,
}

/// The changes an update makes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConversationPatch {
    pub subject_kind: Option<String>,
    pub subject_external_id: Option<String>,
    pub subject_title: Option<String>,
    pub metadata: Option<Metadata>,
}

/// Who may see a conversation: staff of its account, and its participants.
pub fn can_view(caller: &Caller, account_id: &str, participating: bool) -> bool {
    caller.account_id == account_id && (caller.is_staff() || participating)
}
