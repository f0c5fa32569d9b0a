//! What the store's own tests set up, made once: a caller with a real key, a plain
//! conversation.

use super::{Store, api_keys, conversations, users};
use crate::domain::{
    Caller,
    conversations::{NewConversation, NewParticipant},
    users::{NewUser, Role},
};

/// A new user of `account_id` with `role`, as its key authenticates.
pub async fn caller(store: &Store, account_id: &str, role: Role) -> Caller {
    let new = NewUser::parse(Some(role), "someone".into(), String::new(), String::new(), String::new()).unwrap();
    let user = users::create_in(store, account_id, new).await.unwrap();
    let key = api_keys::create_in(store, account_id, &user.id, "test").await.unwrap();
    users::authenticate(store, &key.secret).await.unwrap()
}

/// A conversation `creator` starts with `others`; its id.
pub async fn conversation(store: &Store, creator: &Caller, others: &[&Caller]) -> String {
    let participants =
        others.iter().map(|other| NewParticipant { user_id: other.user_id.clone(), label: String::new() }).collect();
    let new = NewConversation::between(participants, "");
    conversations::create(store, creator, new).await.unwrap().conversation.conversation.id
}
