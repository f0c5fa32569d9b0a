//! What a reader sees: a resource with the caller's own state and the expansions a full
//! view asks for. Kept apart from the resources themselves, which events carry as they
//! are, so that one struct never plays both parts.

use std::collections::HashMap;

use super::{
    conversations::{Conversation, ViewerState},
    messages::Message,
    presence::Presence,
    users::User,
};

/// A conversation as one caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    /// The conversation.
    pub conversation: Conversation,
    /// The caller's state, when it takes part.
    pub viewer: Option<ViewerState>,
    /// The newest message the caller may see.
    pub last_message: Option<Message>,
    /// The participants' users, by id, in a full view (as much as the caller may see).
    pub users: HashMap<String, User>,
    /// The participants' presence, by user id (none for an event's copy).
    pub presence: HashMap<String, Presence>,
}

impl From<Conversation> for ConversationView {
    /// The conversation alone, as an event carries it.
    fn from(conversation: Conversation) -> Self {
        Self { conversation, viewer: None, last_message: None, users: HashMap::new(), presence: HashMap::new() }
    }
}

/// A message as one caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    /// The message.
    pub message: Message,
    /// Its sender, in a full view.
    pub sender: Option<User>,
    /// Its conversation, in a full view.
    pub conversation: Option<Box<ConversationView>>,
}

impl From<Message> for MessageView {
    /// The message alone.
    fn from(message: Message) -> Self {
        Self { message, sender: None, conversation: None }
    }
}
