//! A message on its way in: a request's [`MessageDraft`], checked into a [`NewMessage`],
//! rendered from its template into a [`Rendered`], which is what the store takes.

use super::{
    ContentType, Direction, MAX_ATTACHMENTS, MAX_ATTRIBUTES_BYTES, MAX_CONTENT_CHARS, MessageKind, NewAttachment,
    TemplateUse,
};
use crate::domain::{
    Error, Micros,
    channels::Envelope,
    error::Violations,
    idempotency::RequestKey,
    ids,
    metadata::Metadata,
    templates::{self, Template},
    text,
};

/// A message to send, as requested; [`MessageDraft::validate`] turns it into a
/// [`NewMessage`].
#[derive(Debug, Clone)]
pub struct MessageDraft {
    /// What it is.
    pub kind: MessageKind,
    /// Its text (may be empty for images and documents).
    pub content: String,
    /// How to render it.
    pub content_type: ContentType,
    /// A JSON object, or `None`.
    pub content_attributes: Option<serde_json::Value>,
    /// A private note.
    pub private: bool,
    /// `None`: derived from the sender's role.
    pub direction: Option<Direction>,
    /// Files to store with it.
    pub attachments: Vec<NewAttachment>,
    /// Free string metadata.
    pub metadata: Metadata,
    /// The client's idempotency key, scoped to the sender.
    pub request_id: Option<RequestKey>,
    /// Render the content from this template (then `content` is empty until rendered).
    pub template: Option<TemplateUse>,
    /// How it travelled, when relayed.
    pub envelope: Option<Envelope>,
    /// Deliver at this time instead of now.
    pub schedule_time: Option<Micros>,
    /// The channel's original payload of a relayed message (staff only; kept apart from
    /// the message, never in reads or events).
    pub raw_payload: Option<Vec<u8>>,
}

/// Limits that operators configure.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    /// The largest attachment accepted.
    pub max_attachment_bytes: usize,
    /// How far ahead a message may be scheduled, in microseconds.
    pub schedule_horizon: Micros,
}

/// A message that passed validation: only [`MessageDraft::validate`] makes one, so holding
/// one proves the checks ran. One from a template is stored once rendered
/// ([`NewMessage::render`]): storing takes a [`Rendered`].
#[derive(Debug, Clone)]
pub struct NewMessage {
    draft: MessageDraft,
    /// How far ahead it may be scheduled.
    schedule_horizon: Micros,
}

impl NewMessage {
    /// The validated fields, to read.
    pub fn fields(&self) -> &MessageDraft {
        &self.draft
    }

    /// The message ready to store: its content rendered from `template` (the one it names,
    /// as loaded) with its variables, or, for a message not from a template, as it is.
    pub fn render(mut self, template: Option<&Template>) -> Result<Rendered, Error> {
        match (&self.draft.template, template) {
            (None, _) => {}
            (Some(used), Some(template)) if template.is_named_by(&used.template_id) => {
                self.draft.content = template.render(&used.variables)?;
                // Named by its alias, perhaps: the message records the template itself.
                self.draft.template = Some(TemplateUse { template_id: template.id.clone(), ..used.clone() });
            }
            (Some(used), _) => {
                return Err(Error::Internal(format!("message rendered without its template {}", used.template_id)));
            }
        }
        Ok(Rendered { draft: self.draft, id: None, attachment_ids: Vec::new() })
    }

    /// Its schedule time, if it has one: in the future, and at most the configured horizon
    /// ahead. Checked when the message is scheduled, not when a retry of that send (same
    /// request id) returns the first one, which may be due by then.
    pub fn check_schedule_time(&self, field: &str) -> Result<(), Error> {
        let Some(schedule_time) = self.draft.schedule_time else { return Ok(()) };
        check_schedule_time(field, schedule_time, self.schedule_horizon)
    }
}

/// A message ready to store: validated, and its content rendered from its template. Only
/// [`NewMessage::render`] (or [`Rendered::scheduled`], for one stored rendered) makes one.
#[derive(Debug, Clone)]
pub struct Rendered {
    draft: MessageDraft,
    /// The id a scheduled message was given when scheduled, and keeps when delivered.
    id: Option<String>,
    /// Likewise for its attachments, by position.
    attachment_ids: Vec<String>,
}

impl Rendered {
    /// A scheduled message, stored as `id` (its attachments as `attachment_ids`) with its
    /// content rendered when it was scheduled, ready to deliver.
    pub fn scheduled(draft: MessageDraft, id: String, attachment_ids: Vec<String>) -> Self {
        Self { draft, id: Some(id), attachment_ids }
    }

    /// The fields, to read.
    pub fn fields(&self) -> &MessageDraft {
        &self.draft
    }

    /// The ids it is stored under: the message's own and its attachments' (by position)
    /// when scheduled earlier, else new ones; and its fields.
    pub fn into_stored(self) -> (String, Vec<String>, MessageDraft) {
        let id = self.id.unwrap_or_else(|| ids::new_id(ids::MESSAGE));
        let mut reserved = self.attachment_ids.into_iter();
        let attachment_ids = self
            .draft
            .attachments
            .iter()
            .map(|_| reserved.next().unwrap_or_else(|| ids::new_id(ids::ATTACHMENT)))
            .collect();
        (id, attachment_ids, self.draft)
    }
}

impl MessageDraft {
    /// A plain public text message with `content` and nothing else.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            kind: MessageKind::Text,
            content: content.into(),
            content_type: ContentType::Text,
            content_attributes: None,
            private: false,
            direction: None,
            attachments: Vec::new(),
            metadata: Metadata::new(),
            request_id: None,
            template: None,
            envelope: None,
            schedule_time: None,
            raw_payload: None,
        }
    }

    /// Checks every field at once. Violations name the fields from the message (`content`);
    /// a message inside a request names its place with [`Error::within`].
    pub fn validate(self, limits: MessageLimits) -> Result<NewMessage, Error> {
        let draft = self;
        let mut violations = Violations::new();
        draft.check_body(&mut violations);
        draft.check_attachments(limits, &mut violations);
        violations.check(check_attributes("content_attributes", draft.content_attributes.as_ref()));
        violations.check(crate::domain::metadata::check("metadata", &draft.metadata));
        if let Some(used) = &draft.template {
            violations.check(templates::check_values("variables", &used.variables));
        }
        if draft.schedule_time.is_some() {
            draft.check_scheduled(&mut violations);
        }
        if draft.raw_payload.is_some() && draft.envelope.is_none() {
            violations.add("raw_payload", "is a relayed message's: give the envelope it came with");
        }
        violations.finish()?;
        Ok(NewMessage { draft, schedule_horizon: limits.schedule_horizon })
    }

    /// The content, or the template it is to be rendered from (never both).
    fn check_body(&self, violations: &mut Violations) {
        let captioned = matches!(self.kind, MessageKind::Image | MessageKind::Document);
        match (&self.template, self.kind) {
            (None, MessageKind::Template) => {
                violations.add("template_id", "a TEMPLATE message is sent from a template: name it")
            }
            (None, _) => {
                violations.check(check_content("content", &self.content, captioned));
            }
            (Some(_), kind) => {
                if !self.content.is_empty() {
                    violations.add(
                        "template_id",
                        "give either content or template_id, not both: a template message's content is rendered",
                    );
                }
                if kind != MessageKind::Template {
                    violations.add("kind", "a message sent from a template is of kind TEMPLATE");
                }
            }
        }
    }

    /// Each attachment, and whether the kind needs attachments.
    fn check_attachments(&self, limits: MessageLimits, violations: &mut Violations) {
        let needs_attachment = matches!(self.kind, MessageKind::Image | MessageKind::Document);
        if needs_attachment && self.attachments.is_empty() {
            violations.add("attachments", format!("an {} message needs at least one attachment", self.kind.as_str()));
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            violations.add("attachments", format!("at most {MAX_ATTACHMENTS} attachments are allowed"));
        }
        for (index, attachment) in self.attachments.iter().enumerate() {
            attachment.check(&format!("attachments[{index}]"), self.kind, limits.max_attachment_bytes, violations);
        }
    }

    /// What a message sent later cannot carry. (Its time is checked by
    /// [`NewMessage::check_schedule_time`] once the send is known not to be a retry.)
    fn check_scheduled(&self, violations: &mut Violations) {
        if self.envelope.as_ref().is_some_and(|e| e.external_id.is_some()) {
            violations.add(
                "envelope.external_id",
                "a scheduled message has no external id yet: relayed messages are sent as they arrive",
            );
        }
        if self.raw_payload.is_some() {
            violations.add("raw_payload", "a scheduled message has no channel payload yet");
        }
    }
}

/// A schedule time: in the future, and at most `horizon` ahead.
pub(super) fn check_schedule_time(field: &str, schedule_time: Micros, horizon: Micros) -> Result<(), Error> {
    let now = crate::domain::now_micros();
    if schedule_time <= now {
        return Err(Error::invalid(field, "must be in the future; to send now, leave it unset"));
    }
    if schedule_time - now > horizon {
        const DAY: Micros = 24 * 3600 * 1_000_000;
        let at_most = if horizon % DAY == 0 {
            format!("{} days", horizon / DAY)
        } else {
            humantime::format_duration(std::time::Duration::from_secs(u64::try_from(horizon / 1_000_000).unwrap_or(0)))
                .to_string()
        };
        return Err(Error::invalid(field, format!("is too far ahead: at most {at_most} from now")));
    }
    Ok(())
}

/// Structured content: a JSON object of bounded size.
pub(super) fn check_attributes(field: &str, attributes: Option<&serde_json::Value>) -> Result<(), Error> {
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

/// Content: bounded text, not blank unless `captioned` (images and documents may have
/// no caption).
pub(super) fn check_content(field: &str, content: &str, captioned: bool) -> Result<(), Error> {
    // Checked on a borrowed value: content can be large, and is only copied once stored.
    if content.contains('\0') || content.chars().count() > MAX_CONTENT_CHARS {
        text::bounded(field, content.to_owned(), MAX_CONTENT_CHARS)?;
    }
    if !captioned && content.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::domain::{
        Caller,
        messages::{MessagePatch, may_delete, may_edit},
    };

    const LIMITS: MessageLimits = MessageLimits { max_attachment_bytes: 10, schedule_horizon: 1_000_000_000 };

    fn draft(kind: MessageKind, content: &str) -> MessageDraft {
        MessageDraft { kind, ..MessageDraft::text(content) }
    }

    fn file(filename: &str, media_type: &str, size: usize) -> NewAttachment {
        NewAttachment::upload(filename, media_type, vec![1; size])
    }

    fn fields(result: Result<NewMessage, Error>) -> Vec<String> {
        match result {
            Err(Error::InvalidArgument(violations)) => violations.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn a_text_message_needs_content_within_the_limit() {
        assert!(draft(MessageKind::Text, "hi").validate(LIMITS).is_ok());
        assert_eq!(fields(draft(MessageKind::Text, "  ").validate(LIMITS)), ["content"]);
        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        assert_eq!(
            fields(draft(MessageKind::Text, &long).validate(LIMITS).map_err(|err| err.within("first_message."))),
            ["first_message.content"]
        );
        assert_eq!(fields(draft(MessageKind::Text, "a\0").validate(LIMITS)), ["content"]);
    }

    #[test]
    fn an_image_needs_image_attachments_and_no_caption() {
        assert_eq!(fields(draft(MessageKind::Image, "").validate(LIMITS)), ["attachments"]);
        let mut image = draft(MessageKind::Image, "");
        image.attachments = vec![file("a.png", "image/png", 3)];
        assert!(image.clone().validate(LIMITS).is_ok());
        image.attachments = vec![file("a.pdf", "application/pdf", 3)];
        assert_eq!(fields(image.validate(LIMITS)), ["attachments[0].media_type"]);
    }

    #[test]
    fn every_bad_attachment_field_is_named() {
        let mut message = draft(MessageKind::Document, "");
        message.attachments = vec![file("dir/a.txt", "pdf", 0), file("b.txt", "text/plain", 11)];
        assert_eq!(
            fields(message.validate(LIMITS)),
            ["attachments[0].filename", "attachments[0].media_type", "attachments[0].data", "attachments[1].data"]
        );
        let mut many = draft(MessageKind::Document, "");
        many.attachments = vec![file("a", "text/plain", 1); MAX_ATTACHMENTS + 1];
        assert_eq!(fields(many.validate(LIMITS)), ["attachments"]);
    }

    #[test]
    fn attributes_are_bounded_and_nul_free() {
        let mut message = draft(MessageKind::Text, "hi");
        message.content_attributes = Some(serde_json::json!({"options": ["a\u{0}"]}));
        assert_eq!(fields(message.clone().validate(LIMITS)), ["content_attributes"]);
        message.content_attributes = Some(serde_json::json!({"big": "x".repeat(MAX_ATTRIBUTES_BYTES)}));
        assert_eq!(fields(message.validate(LIMITS)), ["content_attributes"]);
    }

    #[test]
    fn members_send_incoming_public_messages_only() {
        let member = Caller {
            account_id: "acc".into(),
            user_id: "usr".into(),
            role: crate::domain::users::Role::Member,
            credential: crate::domain::Credential::ApiKey("key".into()),
        };
        let staff = Caller { role: crate::domain::users::Role::Agent, ..member.clone() };
        let mut note = draft(MessageKind::Text, "note");
        note.private = true;
        let note = note.validate(LIMITS).unwrap();
        assert!(matches!(note.fields().authorize(&member), Err(Error::PermissionDenied(_))));
        assert!(note.fields().authorize(&staff).is_ok());
        let plain = draft(MessageKind::Text, "hi").validate(LIMITS).unwrap();
        assert_eq!(plain.fields().direction_for(&member), Direction::Incoming);
        assert_eq!(plain.fields().direction_for(&staff), Direction::Outgoing);
        assert!(may_edit(&member, "usr").is_ok());
        assert!(may_edit(&staff, "someone").is_err(), "not even staff edit others' words");
        assert!(may_delete(&staff, "someone").is_ok());
        assert!(may_delete(&member, "someone").is_err());
    }

    #[test]
    fn a_template_message_names_its_template_and_has_no_content() {
        let used = TemplateUse { template_id: "tpl_1".into(), variables: BTreeMap::new() };
        let from_template = MessageDraft { template: Some(used.clone()), ..draft(MessageKind::Template, "") };
        let new = from_template.clone().validate(LIMITS).unwrap();
        assert!(new.fields().template.is_some(), "rendered in the store, where the template is");
        let both = MessageDraft { content: "hi".into(), ..from_template.clone() };
        assert_eq!(fields(both.validate(LIMITS)), ["template_id"]);
        let other_kind = MessageDraft { kind: MessageKind::Text, ..from_template };
        assert_eq!(fields(other_kind.validate(LIMITS)), ["kind"]);
        assert_eq!(fields(draft(MessageKind::Template, "").validate(LIMITS)), ["template_id"]);
    }

    #[test]
    fn a_schedule_time_is_in_the_future_within_the_horizon() {
        let now = crate::domain::now_micros();
        let at = |time| MessageDraft { schedule_time: Some(time), ..draft(MessageKind::Text, "later") };
        let time_check = |draft: MessageDraft| draft.validate(LIMITS).unwrap().check_schedule_time("schedule_time");
        assert!(time_check(at(now + 60_000_000)).is_ok());
        assert!(matches!(time_check(at(now - 1)), Err(Error::InvalidArgument(_))));
        let Err(Error::InvalidArgument(too_far)) = time_check(at(now + 2 * LIMITS.schedule_horizon)) else {
            panic!("too far ahead")
        };
        assert!(too_far[0].description.contains("at most 16m 40s"), "{too_far:?}");
        let mut relayed = at(now + 60_000_000);
        relayed.envelope = Some(Envelope {
            channel: crate::domain::channels::Channel::Email,
            from_address: String::new(),
            to_address: String::new(),
            external_id: Some("x".into()),
            transactional: false,
            delivery: None,
        });
        assert_eq!(fields(relayed.validate(LIMITS)), ["envelope.external_id"]);
    }

    #[test]
    fn an_edit_follows_the_send_limits() {
        let blank = MessagePatch { content: Some(" ".into()), ..MessagePatch::default() };
        assert!(blank.validate(MessageKind::Text).is_err());
        assert!(blank.validate(MessageKind::Image).is_ok(), "a caption may be removed");
    }
}
