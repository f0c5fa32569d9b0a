//! Conversations, their participants and each participant's own state (read, archived).

use serde::{Deserialize, Serialize};

use super::{
    Caller, Error, Micros, error::Violations, handling::Handling, idempotency::RequestKey, messages::NewMessage,
    metadata::Metadata, text,
};

/// Most participants in one create.
pub const MAX_PARTICIPANTS: usize = 100;
/// Most characters in a participant's label.
pub const MAX_LABEL_CHARS: usize = 64;
/// Most characters in each part of a subject.
pub const MAX_SUBJECT_CHARS: usize = 500;

/// What a conversation is about in the host product: "listing lst_abc", "offer 42".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The kind of thing ("listing").
    pub kind: String,
    /// The host product's id of it.
    pub external_id: String,
    /// A title to show.
    pub title: String,
    /// Its picture's http(s) URL (a listing's thumbnail), or "".
    #[serde(default)]
    pub image_url: String,
    /// Facts about it as strings (price, status), bounded like metadata.
    #[serde(default)]
    pub attributes: Metadata,
}

impl Subject {
    /// Validates every part; `field` is the subject's path in the request.
    pub fn parse(field: &str, parts: Subject) -> Result<Self, Error> {
        let Subject { kind, external_id, title, image_url, attributes } = parts;
        let mut violations = Violations::new();
        let mut part = |name: &str, value: String| {
            violations.check(text::bounded(&format!("{field}.{name}"), value, MAX_SUBJECT_CHARS)).unwrap_or_default()
        };
        let (kind, external_id, title) = (part("kind", kind), part("external_id", external_id), part("title", title));
        let image_url = violations.check(text::image_url(&format!("{field}.image_url"), image_url)).unwrap_or_default();
        violations.check(super::metadata::check(&format!("{field}.attributes"), &attributes));
        violations.finish()?;
        Ok(Self { kind, external_id, title, image_url, attributes })
    }
}

/// A user taking part in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// The user.
    pub user_id: String,
    /// Its role in this conversation ("buyer", "seller").
    pub label: String,
    /// When it joined.
    pub join_time: Micros,
}

/// The caller's own state in a conversation it takes part in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerState {
    /// Its label.
    pub label: String,
    /// Messages it has not read.
    pub unread_count: i64,
    /// Whether it archived the conversation.
    pub archived: bool,
    /// Its mute, while one is in force.
    pub mute: Option<Mute>,
}

/// A participant's mute of a conversation: no notifications from it while in force;
/// its messages still count as unread (as in Stream Chat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// When it ends by itself; `None`: when the participant unmutes.
    pub expire_time: Option<Micros>,
}

impl Mute {
    /// The mute stored as (`muted`, `mute_expire_time`), if it is in force at `now`.
    pub fn in_force(muted: bool, expire_time: Option<Micros>, now: Micros) -> Option<Self> {
        (muted && expire_time.is_none_or(|end| end > now)).then_some(Self { expire_time })
    }

    /// A mute requested to end at `expire_time` (none: until unmuted), which must be after
    /// `now`; `field` names it in the request.
    pub fn until(field: &str, expire_time: Option<Micros>, now: Micros) -> Result<Self, Error> {
        match expire_time {
            Some(end) if end <= now => Err(Error::invalid(field, "must be in the future")),
            _ => Ok(Self { expire_time }),
        }
    }
}

/// A conversation as stored, and as events carry it (no viewer's state: see
/// `views::ConversationView`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// `conv_…`
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// What it is about.
    pub subject: Subject,
    /// Free string metadata.
    pub metadata: Metadata,
    /// Who takes part, in join order.
    pub participants: Vec<Participant>,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed, as the viewer sees it (staff also see private notes move it).
    pub update_time: Micros,
    /// Marked handled by staff: in staff's view only.
    #[serde(default)]
    pub handled: Option<Handling>,
}

/// A participant to add, validated.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    /// The user to add.
    pub user_id: String,
    /// Its label, trimmed.
    pub label: String,
}

/// A participant's label: trimmed, no NUL, at most [`MAX_LABEL_CHARS`].
pub fn parse_label(field: &str, label: &str) -> Result<String, Error> {
    text::trimmed(field, label, MAX_LABEL_CHARS)
}

/// A conversation to create, validated.
#[derive(Debug, Clone)]
pub struct NewConversation {
    /// The participants requested, each once.
    pub participants: Vec<NewParticipant>,
    /// What it is about.
    pub subject: Subject,
    /// Free string metadata.
    pub metadata: Metadata,
    /// A message the creator sends in the same transaction.
    pub first_message: Option<NewMessage>,
    /// The client's idempotency key, scoped to the creator.
    pub request_id: Option<RequestKey>,
    /// The label of a member creator that did not list itself.
    pub caller_label: String,
}

impl NewConversation {
    /// A conversation with these participants and nothing else (no subject, metadata, first
    /// message or request id); `caller_label` labels a member creator.
    pub fn between(participants: Vec<NewParticipant>, caller_label: impl Into<String>) -> Self {
        Self {
            participants,
            subject: Subject::default(),
            metadata: Metadata::default(),
            first_message: None,
            request_id: None,
            caller_label: caller_label.into(),
        }
    }

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
    /// Everything, archived or not.
    All,
    /// Not archived, with unread messages.
    Unread,
    /// Not archived, nothing unread.
    Read,
    /// Archived by the caller.
    Archived,
}

/// What a conversation listing selects.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// By the caller's own state.
    pub status: StatusFilter,
    /// Only where the caller has this label.
    pub label: Option<String>,
    /// Only subjects of this kind.
    pub subject_kind: Option<String>,
    /// Only this subject.
    pub subject_external_id: Option<String>,
    /// Staff: only conversations they take part in.
    pub participating_only: bool,
    /// Staff: only conversations marked handled (`Some(true)`) or not (`Some(false)`).
    pub handled: Option<bool>,
}

impl ConversationFilter {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &Caller) -> String {
        format!(
            "conversations|{}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            caller.user_id,
            self.status,
            self.label,
            self.subject_kind,
            self.subject_external_id,
            self.participating_only,
            self.handled
        )
    }
}

/// How many conversations a listing matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    /// A new subject kind.
    pub subject_kind: Option<String>,
    /// A new subject id.
    pub subject_external_id: Option<String>,
    /// A new subject title.
    pub subject_title: Option<String>,
    /// A new subject picture ("" clears it).
    pub subject_image_url: Option<String>,
    /// New subject attributes.
    pub subject_attributes: Option<Metadata>,
    /// New metadata.
    pub metadata: Option<Metadata>,
}

/// Who may see a conversation: staff of its account, and its participants.
pub fn can_view(caller: &Caller, account_id: &str, participating: bool) -> bool {
    caller.account_id == account_id && (caller.is_staff() || participating)
}

/// Who may remove `user_id` from a conversation: staff anyone, a member only itself.
pub fn may_remove(caller: &Caller, user_id: &str) -> Result<(), Error> {
    if caller.is_staff() || caller.user_id == user_id {
        Ok(())
    } else {
        Err(Error::PermissionDenied("members may only remove themselves from a conversation".into()))
    }
}

/// The participants of a create, each once: duplicates and more than [`MAX_PARTICIPANTS`]
/// are INVALID_ARGUMENT naming the field.
pub fn unique_participants(
    requested: impl ExactSizeIterator<Item = Result<NewParticipant, Error>>,
    violations: &mut Violations,
) -> Vec<NewParticipant> {
    if requested.len() > MAX_PARTICIPANTS {
        violations.add("participants", format!("at most {MAX_PARTICIPANTS} participants are allowed"));
    }
    let mut participants: Vec<NewParticipant> = Vec::new();
    for (index, parsed) in requested.enumerate() {
        let Some(parsed) = violations.check(parsed) else { continue };
        if participants.iter().any(|p| p.user_id == parsed.user_id) {
            violations.add(format!("participants[{index}].user_id"), format!("{} is listed twice", parsed.user_id));
        } else {
            participants.push(parsed);
        }
    }
    participants
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::Role;

    fn caller(role: Role, user_id: &str) -> Caller {
        Caller {
            account_id: "acc".into(),
            user_id: user_id.into(),
            role,
            credential: crate::domain::Credential::ApiKey("key".into()),
        }
    }

    #[test]
    fn a_subject_names_each_bad_part() {
        let parts =
            Subject { kind: "a\0".into(), external_id: "ok".into(), title: "x".repeat(501), ..Subject::default() };
        let err = Subject::parse("subject", parts).unwrap_err();
        let Error::InvalidArgument(violations) = err else { panic!("{err:?}") };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["subject.kind", "subject.title"]);
        let parts = Subject { kind: "listing".into(), external_id: "l1".into(), ..Subject::default() };
        assert_eq!(Subject::parse("s", parts).unwrap().kind, "listing");
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        assert_eq!(parse_label("label", "  buyer ").unwrap(), "buyer");
        assert!(parse_label("label", &"x".repeat(MAX_LABEL_CHARS + 1)).is_err());
    }

    #[test]
    fn staff_see_their_accounts_conversations_members_their_own() {
        let agent = caller(Role::Agent, "a");
        let member = caller(Role::Member, "m");
        assert!(can_view(&agent, "acc", false));
        assert!(!can_view(&agent, "other", true), "never another account's");
        assert!(can_view(&member, "acc", true));
        assert!(!can_view(&member, "acc", false));
    }

    #[test]
    fn members_remove_only_themselves() {
        assert!(may_remove(&caller(Role::Member, "m"), "m").is_ok());
        assert!(matches!(may_remove(&caller(Role::Member, "m"), "x"), Err(Error::PermissionDenied(_))));
        assert!(may_remove(&caller(Role::Agent, "a"), "x").is_ok());
    }

    #[test]
    fn a_member_creator_joins_what_it_creates() {
        let new = NewConversation {
            participants: vec![NewParticipant { user_id: "seller".into(), label: "seller".into() }],
            subject: Subject::default(),
            metadata: Metadata::new(),
            first_message: None,
            request_id: None,
            caller_label: "buyer".into(),
        };
        let ids =
            |caller: &Caller| new.participants_with_caller(caller).into_iter().map(|p| p.user_id).collect::<Vec<_>>();
        assert_eq!(ids(&caller(Role::Member, "buyer")), ["seller", "buyer"]);
        assert_eq!(ids(&caller(Role::Agent, "agent")), ["seller"], "staff watch without joining");
    }

    #[test]
    fn duplicate_participants_are_named() {
        let p = |id: &str| Ok(NewParticipant { user_id: id.into(), label: String::new() });
        let mut violations = Violations::new();
        let unique = unique_participants(vec![p("a"), p("b"), p("a")].into_iter(), &mut violations);
        assert_eq!(unique.len(), 2);
        let Err(Error::InvalidArgument(found)) = violations.finish() else { panic!("a violation expected") };
        assert_eq!(found[0].field, "participants[2].user_id");
    }
}
