//! Conversations as a caller sees them, and as events carry them.

use super::{optional_timestamp, timestamp};
use crate::{
    api::pb,
    domain::{
        conversations::{Conversation, Participant, Subject},
        presence::Presence,
        views::ConversationView,
    },
};

impl From<Subject> for pb::Subject {
    fn from(subject: Subject) -> Self {
        pb::Subject {
            kind: subject.kind,
            external_id: subject.external_id,
            title: subject.title,
            image_url: subject.image_url,
            attributes: subject.attributes,
        }
    }
}

/// A subject from a request, not yet validated (`Subject::parse` does that).
pub fn subject_parts(subject: pb::Subject) -> Subject {
    Subject {
        kind: subject.kind,
        external_id: subject.external_id,
        title: subject.title,
        image_url: subject.image_url,
        attributes: subject.attributes,
    }
}

impl From<Participant> for pb::Participant {
    /// The participant alone: no user, no presence.
    fn from(participant: Participant) -> Self {
        pb::Participant {
            user_id: participant.user_id,
            label: participant.label,
            join_time: Some(timestamp(participant.join_time)),
            user: None,
            online: false,
            last_seen_time: None,
        }
    }
}

impl From<ConversationView> for pb::Conversation {
    fn from(view: ConversationView) -> Self {
        let ConversationView { conversation, viewer, last_message, mut users, presence } = view;
        let mute = viewer.as_ref().and_then(|v| v.mute);
        pb::Conversation {
            id: conversation.id,
            subject: (conversation.subject != Subject::default()).then(|| conversation.subject.into()),
            metadata: conversation.metadata.into_iter().collect(),
            participants: conversation
                .participants
                .into_iter()
                .map(|p| {
                    let shown = presence.get(&p.user_id).copied().unwrap_or_else(Presence::default);
                    pb::Participant {
                        user: users.remove(&p.user_id).map(pb::User::from),
                        online: shown.online,
                        last_seen_time: optional_timestamp(shown.last_seen_time),
                        ..p.into()
                    }
                })
                .collect(),
            last_message: last_message.map(|m| Box::new(pb::Message::from(m))),
            unread_count: viewer.as_ref().map_or(0, |v| v.unread_count),
            archived: viewer.as_ref().is_some_and(|v| v.archived),
            participating: viewer.is_some(),
            caller_label: viewer.map(|v| v.label).unwrap_or_default(),
            muted: mute.is_some(),
            mute_expire_time: optional_timestamp(mute.and_then(|mute| mute.expire_time)),
            create_time: Some(timestamp(conversation.create_time)),
            update_time: Some(timestamp(conversation.update_time)),
            handled: conversation.handled.map(pb::Handling::from),
        }
    }
}

impl From<Conversation> for pb::Conversation {
    /// The conversation alone, with no viewer: as events carry it.
    fn from(conversation: Conversation) -> Self {
        ConversationView::from(conversation).into()
    }
}
