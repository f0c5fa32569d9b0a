//! The edits of a message, sent or scheduled: checked against the same limits as a send.

use super::{
    MessageKind, MessageLimits,
    draft::{check_attributes, check_content, check_schedule_time},
};
use crate::domain::{Error, Micros, error::Violations, metadata::Metadata};

/// The edits of an update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct MessagePatch {
    /// New content.
    pub content: Option<String>,
    /// New attributes, or `Some(None)` to remove them.
    pub content_attributes: Option<Option<serde_json::Value>>,
    /// New metadata.
    pub metadata: Option<Metadata>,
}

impl MessagePatch {
    /// Checks the edits against the same limits as a send of a message of `kind`.
    pub fn validate(&self, kind: MessageKind) -> Result<(), Error> {
        let mut violations = Violations::new();
        if let Some(content) = &self.content {
            let captioned = matches!(kind, MessageKind::Image | MessageKind::Document);
            violations.check(check_content("message.content", content, captioned));
        }
        if let Some(attributes) = &self.content_attributes {
            violations.check(check_attributes("message.content_attributes", attributes.as_ref()));
        }
        if let Some(metadata) = &self.metadata {
            violations.check(crate::domain::metadata::check("message.metadata", metadata));
        }
        violations.finish()
    }
}

/// The edits of a scheduled message before its time.
#[derive(Debug, Clone, Default)]
pub struct ScheduledPatch {
    /// Content, attributes and metadata, as for a sent message.
    pub message: MessagePatch,
    /// A new time, checked like a send's.
    pub schedule_time: Option<Micros>,
}

impl ScheduledPatch {
    /// Checks the edits of a scheduled message of `kind`.
    pub fn validate(&self, kind: MessageKind, limits: MessageLimits) -> Result<(), Error> {
        let mut violations = Violations::new();
        violations.check(self.message.validate(kind));
        if let Some(schedule_time) = self.schedule_time {
            violations.check(check_schedule_time("message.schedule_time", schedule_time, limits.schedule_horizon));
        }
        violations.finish()
    }
}
