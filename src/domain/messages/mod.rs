//! Messages: what a message is and what a reader sees of it. What may be sent is in
//! `draft` (a request's message through validation and rendering to what is stored), who
//! may do what in `rules` (private notes are for staff, stated once), edits in `patch`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Caller, Micros, channels::Envelope, handling::Handling, metadata::Metadata};

mod draft;
mod files;
mod patch;
mod rules;

pub use draft::{MessageDraft, MessageLimits, NewMessage, Rendered};
pub use files::{FileSource, NewAttachment, name_of_link};
pub use patch::{MessagePatch, ScheduledPatch};
pub use rules::{may_delete, may_dispatch, may_edit, sees_notes, sees_scheduled, visible_to};

pub use super::text::MAX_CONTENT_CHARS;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Most characters in an attachment's file name.
pub const MAX_FILENAME_CHARS: usize = 255;
/// Largest content_attributes, as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

/// What a message is; stored by its snake_case name, as are the other enums here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// One or more images, with an optional caption.
    Image,
    /// One or more files, with an optional caption.
    Document,
    /// A question with suggested answers (seed 001's quick replies).
    QuickReply,
    /// Written by the service or staff on behalf of the product (staff only).
    System,
    /// Rendered from a template.
    Template,
}

/// Where a message is in its life: only sent messages are in their conversation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum MessageState {
    /// In the conversation.
    #[default]
    Sent,
    /// Waiting for its schedule time.
    Scheduled,
    /// Its delivery was impossible.
    Failed,
    /// Canceled before delivery.
    Canceled,
}

impl MessageState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which template made a message, with which values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateUse {
    /// `tpl_…`
    pub template_id: String,
    /// The value of each placeholder.
    pub variables: BTreeMap<String, String>,
}

/// How a client renders a message's content (seed 001's content types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ContentType {
    /// Text only.
    Text,
    /// A choice among options in `content_attributes`.
    InputSelect,
    /// Asks for an email address.
    InputEmail,
    /// A satisfaction survey.
    InputCsat,
    /// A form described in `content_attributes`.
    Form,
    /// Cards described in `content_attributes`.
    Cards,
    /// An article link.
    Article,
}

/// Which way a message goes from the host product's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Direction {
    /// From an end user (a member).
    Incoming,
    /// From staff.
    Outgoing,
}

impl MessageKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl ContentType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
/// A file sent with a message, as described (its bytes are fetched on their own).
pub struct Attachment {
    /// `att_…`
    pub id: String,
    /// The name it was sent under.
    pub filename: String,
    /// Its media type, such as `image/png`.
    pub media_type: String,
    /// Its size (0 for a link whose size is not known).
    pub size_bytes: i64,
    /// The hex SHA-256 of its bytes ("" for a link).
    pub sha256: String,
    /// A link's address: the server holds no bytes of it.
    #[serde(default)]
    pub url: Option<String>,
}

/// Whether one participant has read a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReceipt {
    /// The participant.
    pub user_id: String,
    /// When it read the message, if it has.
    pub read_time: Option<Micros>,
}

/// A message as stored, and as events carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_…`
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The conversation it is in.
    pub conversation_id: String,
    /// Position among the public messages.
    pub sequence: i64,
    /// 0 for a public message; a private note's position after message `sequence`.
    pub note_sequence: i64,
    /// Who sent it.
    pub sender_id: String,
    /// What it is.
    pub kind: MessageKind,
    /// Its text ("" once deleted).
    pub content: String,
    /// How to render it.
    pub content_type: ContentType,
    /// A JSON object, or `None`.
    pub content_attributes: Option<serde_json::Value>,
    /// A private note: staff only.
    pub private: bool,
    /// Incoming (from a member) or outgoing (from staff).
    pub direction: Direction,
    /// Its files, in the order sent (none once deleted).
    pub attachments: Vec<Attachment>,
    /// Free string metadata.
    pub metadata: Metadata,
    /// When it was sent.
    pub create_time: Micros,
    /// When it was last edited.
    pub edit_time: Option<Micros>,
    /// When it was deleted to a tombstone.
    pub delete_time: Option<Micros>,
    /// Who of those who may see it has read it.
    pub read_receipts: Vec<ReadReceipt>,
    /// The template it was rendered from.
    #[serde(default)]
    pub template: Option<TemplateUse>,
    /// How it travelled, when relayed through another channel.
    #[serde(default)]
    pub envelope: Option<Envelope>,
    /// The time it was scheduled for, when it was scheduled.
    #[serde(default)]
    pub schedule_time: Option<Micros>,
    /// Sent, or where a scheduled message stands.
    #[serde(default)]
    pub state: MessageState,
    /// Why its delivery failed.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// Marked handled by staff (staff only).
    #[serde(default)]
    pub handled: Option<Handling>,
}

impl Message {
    /// The message as `viewer` may see it: the envelope's addresses are contact details,
    /// which members see on their own messages only; handling is staff's own business.
    pub fn seen_by(mut self, viewer: &Caller) -> Self {
        if !Envelope::visible_to(viewer, &self.sender_id) {
            self.envelope = None;
        }
        if !viewer.is_staff() {
            self.handled = None;
        }
        self
    }
}

/// An attachment with its bytes, as fetched on its own.
#[derive(Debug, Clone)]
pub struct AttachmentContent {
    /// Its description.
    pub attachment: Attachment,
    /// The message it belongs to.
    pub message_id: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// Where a message list starts and in which order.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    /// The conversation listed.
    pub conversation_id: String,
    /// Only messages sent before this time.
    pub before: Option<Micros>,
    /// Only messages sent after this time.
    pub after: Option<Micros>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

impl MessageQuery {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!(
            "messages|{}|{}|{:?}|{:?}|{}",
            caller.user_id, self.conversation_id, self.before, self.after, self.newest_first
        )
    }
}
