//! Reports: a user tells the account's staff that a message is abusive; staff review the
//! queue and resolve each report once. A report is evidence: it keeps the message as the
//! reporter saw it, whatever happens to the message later. Nobody but staff and the
//! reporter learns that a report exists.

use serde::{Deserialize, Serialize};

use super::{Caller, Error, Micros, messages::Message, text};

/// Most characters in a report's details or a resolution's note.
pub const MAX_DETAILS_CHARS: usize = 2000;

/// Why a message was reported. Stored by its snake_case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[allow(missing_docs)] // the seed's reasons, documented on the proto
pub enum Reason {
    Spam,
    Harassment,
    Inappropriate,
    Fraud,
    Other,
}

/// Where a report is. Stored by its snake_case name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Status {
    /// Waiting for staff.
    Open,
    /// Resolved; the message stays.
    Dismissed,
    /// Resolved; the message was deleted to a tombstone.
    MessageRemoved,
}

/// What staff decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the message.
    Dismiss,
    /// Delete the message to a tombstone.
    RemoveMessage,
}

impl Action {
    /// The status the report takes.
    pub fn status(self) -> Status {
        match self {
            Action::Dismiss => Status::Dismissed,
            Action::RemoveMessage => Status::MessageRemoved,
        }
    }
}

macro_rules! stored_name {
    ($($t:ty),*) => {$(
        impl $t {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    )*};
}
stored_name!(Reason, Status);

/// A report as staff see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `rpt_…`
    pub id: String,
    /// The reported message's conversation.
    pub conversation_id: String,
    /// The reported message.
    pub message_id: String,
    /// Who reported it.
    pub reporter_id: String,
    /// Why.
    pub reason: Reason,
    /// The reporter's own words.
    pub details: String,
    /// Where it is.
    pub status: Status,
    /// The message as the reporter saw it.
    pub message: Box<Message>,
    /// When it was filed.
    pub create_time: Micros,
    /// Who resolved it, when and why.
    pub resolution: Option<Resolution>,
}

/// How staff resolved a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The staff user.
    pub resolver_id: String,
    /// When.
    pub resolve_time: Micros,
    /// Their note for other staff.
    pub note: String,
}

impl Report {
    /// The report as `viewer` may see it: the resolver and its note are staff's business.
    pub fn seen_by(mut self, viewer: &Caller) -> Self {
        if !viewer.is_staff()
            && let Some(resolution) = &mut self.resolution
        {
            resolution.resolver_id.clear();
            resolution.note.clear();
        }
        self
    }

    /// Whether `viewer` may see the report at all: staff, and its reporter.
    pub fn visible_to(viewer: &Caller, reporter_id: &str) -> bool {
        viewer.is_staff() || viewer.user_id == reporter_id
    }

    /// A report is resolved once: FAILED_PRECONDITION after that.
    pub fn ensure_open(&self) -> Result<(), Error> {
        match &self.resolution {
            None => Ok(()),
            Some(_) => Err(Error::FailedPrecondition(format!(
                "report {} was already resolved ({}): a report is resolved once",
                self.id,
                self.status.as_str()
            ))),
        }
    }
}

/// A report to file, validated.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The message.
    pub message_id: String,
    /// Why.
    pub reason: Reason,
    /// Free text.
    pub details: String,
}

impl NewReport {
    /// A report's details: at most [`MAX_DETAILS_CHARS`].
    pub fn parse_details(details: String) -> Result<String, Error> {
        text::bounded("details", details, MAX_DETAILS_CHARS)
    }

    /// Whether `reporter` may report `message`, which it can see: not its own, and not one
    /// already deleted (nothing is left to act on).
    pub fn check_target(&self, reporter: &Caller, message: &Message) -> Result<(), Error> {
        if message.sender_id == reporter.user_id {
            return Err(Error::invalid("message_id", "is the caller's own message: one cannot report oneself"));
        }
        if message.delete_time.is_some() {
            return Err(Error::FailedPrecondition(format!("message {} was already deleted", message.id)));
        }
        Ok(())
    }
}

/// A report listing's filters.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    /// Only reports in this status.
    pub status: Option<Status>,
    /// Only reports with this reason.
    pub reason: Option<Reason>,
    /// Only reports of this conversation's messages.
    pub conversation_id: Option<String>,
}

impl ReportQuery {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!("reports|{}|{:?}|{:?}|{:?}", caller.user_id, self.status, self.reason, self.conversation_id)
    }
}
