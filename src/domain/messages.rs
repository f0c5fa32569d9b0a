//! Messages: what may be sent, by whom, and what a reader sees of them.

use serde::{Deserialize, Serialize};

use super::{Caller, Error, Micros, error::Violations, metadata::Metadata, users::User};

/// Most characters in a message's content.
pub const MAX_CONTENT_CHARS: usize = 32 * 1024;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_FILENAME_CHARS: usize = 255;
/// Largest content_attributes, as JSON.
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Document,
    QuickReply,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Text,
    InputSelect,
    InputEmail,
    InputCsat,
    Form,
    Cards,
    Article,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// The names under which the enums are stored, so that the database stays readable.
macro_rules! stored_names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),* }
            }

            pub fn from_stored(value: &str) -> Result<Self, Error> {
                match value {
                    $($name => Ok(Self::$variant),)*
                    other => Err(Error::Internal(format!(concat!("unknown stored ", stringify!($ty), " {:?}"), other))),
                }
            }
        }
    };
}

stored_names!(MessageKind { Text => "text", Image => "image", Document => "document", QuickReply => "quick_reply", System => "system" });
stored_names!(ContentType {
    Text => "text", InputSelect => "input_select", InputEmail => "input_email", InputCsat => "input_csat",
    Form => "form", Cards => "cards", Article => "article",
});
stored_names!(Direction { Incoming => "incoming", Outgoing => "outgoing" });

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub filename: String,
    pub media_type: String,
    pub size_bytes: i64,
    pub sha256: String,
}

/// Whether one participant has read a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReceipt {
    pub user_id: String,
    pub read_time: Option<Micros>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub account_id: String,
    pub conversation_id: String,
    /// Position among the public messages.
    pub sequence: i64,
    /// 0 for a public message; a private note's position after message `sequence`.
    pub note_sequence: i64,
    pub sender_id: String,
    pub kind: MessageKind,
    pub content: String,
    pub content_type: ContentType,
    /// A JSON object, or `None`.
    pub content_attributes: Option<serde_json::Value>,
    pub private: bool,
    pub direction: Direction,
    pub attachments: Vec<Attachment>,
    pub metadata: Metadata,
    pub create_time: Micros,
    pub edit_time: Option<Micros>,
    pub delete_time: Option<Micros>,
    pub read_receipts: Vec<ReadReceipt>,
    /// The sender, when the view expands it.
    #[serde(skip)]
    pub sender: Option<User>,
    /// The conversation, when the view expands it.
    #[serde(skip)]
    pub conversation: Option<Box<super::conversations::Conversation>>,
}

/// A file sent inline with a message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub filename: String,
    pub media_type: String,
    pub data: Vec<u8>,
}

/// A message to send, as requested; [`MessageDraft::validate`] turns it into a
/// [`NewMessage`].
#[derive(Debug, Clone)]
pub struct MessageDraft {
    pub kind: MessageKind,
    pub content: String,
    pub content_type: ContentType,
    pub content_attributes: Option<serde_json::Value>,
    pub private: bool,
    /// `None`: derived from the sender's role.
    pub direction: Option<Direction>,
    pub attachments: Vec<NewAttachment>,
    pub metadata: Metadata,
    pub request_id: Option<String>,
}

/// Limits that operators configure.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    pub max_attachment_bytes: usize,
}

/// A message that passed validation: only [`MessageDraft::validate`] makes one.
#[derive(Debug, Clone)]
pub struct NewMessage(MessageDraft);

impl std::ops::Deref for NewMessage {
    type Target = MessageDraft;

    fn deref(&self) -> &MessageDraft {
        &self.0
    }
}

impl NewMessage {
    /// The validated parts, to store.
    pub fn into_parts(self) -> MessageDraft {
        self.0
    }
}

impl MessageDraft {
    /// Checks every field at once; `prefix` is the path of the message in the request (""
    /// or "first_message.") so that violations name the exact field.
    pub fn validate(self, limits: MessageLimits, prefix: &str) -> Result<NewMessage, Error> {
        let draft = self;
        let mut violations = Violations::new();
        let content_chars = draft.content.chars().count();
        let needs_attachment = matches!(draft.kind, MessageKind::Image | MessageKind::Document);
        if content_chars > MAX_CONTENT_CHARS {
            violations.add(
                format!("{prefix}content"),
                format!("has {content_chars} characters; at most {MAX_CONTENT_CHARS} are allowed"),
            );
        }
        violations.check(super::check_text(&format!("{prefix}content"), &draft.content));
        if !needs_attachment && draft.content.trim().is_empty() {
            violations.add(format!("{prefix}content"), "must not be empty");
        }
        if needs_attachment && draft.attachments.is_empty() {
            violations.add(
                format!("{prefix}attachments"),
                format!("an {} message needs at least one attachment", draft.kind.as_str()),
            );
        }
        if draft.attachments.len() > MAX_ATTACHMENTS {
            violations
                .add(format!("{prefix}attachments"), format!("at most {MAX_ATTACHMENTS} attachments are allowed"));
        }
        for (index, attachment) in draft.attachments.iter().enumerate() {
            let field = format!("{prefix}attachments[{index}]");
            let name_chars = attachment.filename.chars().count();
            if name_chars == 0 || name_chars > MAX_FILENAME_CHARS || attachment.filename.contains(['/', '\\', '\0']) {
                violations.add(
                    format!("{field}.filename"),
                    format!("must be 1 to {MAX_FILENAME_CHARS} characters with no path separators"),
                );
            }
            if !is_media_type(&attachment.media_type) {
                violations.add(format!("{field}.media_type"), "must be a media type such as image/png");
            }
            if attachment.data.is_empty() {
                violations.add(format!("{field}.data"), "must not be empty");
            }
            if attachment.data.len() > limits.max_attachment_bytes {
                violations.add(
                    format!("{field}.data"),
                    format!("has {} bytes; at most {} are allowed", attachment.data.len(), limits.max_attachment_bytes),
                );
            }
            if draft.kind == MessageKind::Image && !attachment.media_type.starts_with("image/") {
                violations.add(format!("{field}.media_type"), "an image message carries image/* attachments");
            }
        }
        violations.check(check_attributes(&format!("{prefix}content_attributes"), draft.content_attributes.as_ref()));
        violations.check(super::metadata::check(&format!("{prefix}metadata"), &draft.metadata));
        if let Some(request_id) = &draft.request_id {
            violations.check(check_request_id(&format!("{prefix}request_id"), request_id));
        }
        violations.finish()?;
        Ok(NewMessage(draft))
    }
}

impl NewMessage {
    /// Checks what the caller's role allows: private notes, system messages and choosing
    /// the direction are staff's (a member's message always comes in).
    pub fn authorize(&self, caller: &Caller, prefix: &str) -> Result<(), Error> {
        if !caller.is_staff() && self.direction.is_some_and(|d| d != Direction::Incoming) {
            return Err(Error::PermissionDenied(format!(
                "{prefix}direction: a member's messages are incoming; only staff send outgoing ones"
            )));
        }
        if self.private && !caller.is_staff() {
            return Err(Error::PermissionDenied(format!("{prefix}private: only staff may write private notes")));
        }
        if self.kind == MessageKind::System && !caller.is_staff() {
            return Err(Error::PermissionDenied(format!("{prefix}kind: only staff may send system messages")));
        }
        Ok(())
    }

    /// The direction to store: as requested, else outgoing from staff, incoming from members.
    pub fn direction_for(&self, caller: &Caller) -> Direction {
        self.direction.unwrap_or(if caller.is_staff() { Direction::Outgoing } else { Direction::Incoming })
    }
}

/// Structured content: a JSON object of bounded size.
fn check_attributes(field: &str, attributes: Option<&serde_json::Value>) -> Result<(), Error> {
    let Some(attributes) = attributes else { return Ok(()) };
    let size = serde_json::to_vec(attributes).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
    if size > MAX_ATTRIBUTES_BYTES {
        return Err(Error::invalid(field, format!("is larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON")));
    }
    if has_nul(attributes) {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(fields) => fields.iter().any(|(key, value)| key.contains('\0') || has_nul(value)),
        _ => false,
    }
}

/// A client's idempotency key: up to 200 characters.
pub fn check_request_id(field: &str, request_id: &str) -> Result<(), Error> {
    super::check_text(field, request_id)?;
    if request_id.chars().count() > 200 {
        return Err(Error::invalid(field, "is longer than 200 characters"));
    }
    Ok(())
}

fn is_media_type(value: &str) -> bool {
    let mut parts = value.split('/');
    let token = |part: Option<&str>| {
        part.is_some_and(|p| {
            !p.is_empty() && p.len() <= 127 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        })
    };
    token(parts.next())
        && token(parts.next().map(|p| p.split(';').next().unwrap_or(p).trim()))
        && parts.next().is_none()
}

/// The edits of an update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MessagePatch {
    pub content: Option<String>,
    pub content_attributes: Option<Option<serde_json::Value>>,
    pub metadata: Option<Metadata>,
}

impl MessagePatch {
    /// Checks the edits against the same limits as a send of a message of `kind`.
    pub fn validate(&self, kind: MessageKind) -> Result<(), Error> {
        let mut violations = Violations::new();
        if let Some(content) = &self.content {
            violations.check(super::check_text("message.content", content));
            let captioned = matches!(kind, MessageKind::Image | MessageKind::Document);
            if !captioned && content.trim().is_empty() {
                violations.add("message.content", "must not be empty");
            }
            if content.chars().count() > MAX_CONTENT_CHARS {
                violations.add("message.content", format!("is longer than {MAX_CONTENT_CHARS} characters"));
            }
        }
        if let Some(attributes) = &self.content_attributes {
            violations.check(check_attributes("message.content_attributes", attributes.as_ref()));
        }
        if let Some(metadata) = &self.metadata {
            violations.check(super::metadata::check("message.metadata", metadata));
        }
        violations.finish()
    }
}

/// Where a message list starts and in which order.
#[derive(Debug, Clone)]
pub struct MessageQuery {
    pub conversation_id: String,
    pub before: Option<Micros>,
    pub after: Option<Micros>,
    pub newest_first: bool,
}

impl MessageQuery {
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!(
            "messages|{}|{}|{:?}|{:?}|{}",
            caller.user_id, self.conversation_id, self.before, self.after, self.newest_first
        )
    }
}

/// Whether a message counts as unread for a participant: someone else's, not deleted, and
/// visible to it (private notes only for staff). Every unread counter follows this rule.
pub fn counts_for(message_sender: &str, private: bool, deleted: bool, reader_id: &str, reader_is_staff: bool) -> bool {
    message_sender != reader_id && !deleted && (!private || reader_is_staff)
}
