//! Conversations as a caller sees them, and as events carry them.

use super::timestamp;
use crate::{
    api::pb,
    domain::{
        conversations::{Conversation, Subject},
        views::ConversationView,
    },
};

impl From<ConversationView> for pb::Conversation {
    fn from(view: ConversationView) -> Self {
        let ConversationView { conversation, viewer, last_message, mut users } = view;
        pb::Conversation {
            id: conversation.id,
            subject: (conversation.subject != Subject::default()).then_some(pb::Subject {
                kind: conversation.subject.kind,
                external_id: conversation.subject.external_id,
                title: conversation.subject.title,
            }),
            metadata: conversation.metadata.into_iter().collect(),
            participants: conversation
                .participants
                .into_iter()
                .map(|p| pb::Participant {
                    user: users.remove(&p.user_id).map(pb::User::from),
                    user_id: p.user_id,
                    label: p.label,
                    join_time: Some(timestamp(p.join_time)),
                })
                .collect(),
            last_message: last_message.map(|m| Box::new(pb::Message::from(m))),
            unread_count: viewer.as_ref().map_or(0, |v| v.unread_count),
            archived: viewer.as_ref().is_some_and(|v| v.archived),
            participating: viewer.is_some(),
            caller_label: viewer.map(|v| v.label).unwrap_or_default(),
            create_time: Some(timestamp(conversation.create_time)),
            update_time: Some(timestamp(conversation.update_time)),
        }
    }
}

impl From<Conversation> for pb::Conversation {
    /// The conversation alone, with no viewer: as events carry it.
    fn from(conversation: Conversation) -> Self {
        ConversationView::from(conversation).into()
    }
}
