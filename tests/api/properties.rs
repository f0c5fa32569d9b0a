//! Properties over random sequences of calls (one after another, in any order): whatever
//! members and staff do (send, read, delete, archive, add and remove participants, write
//! Unicode edge cases), every unread counter
//! equals a recount, no call fails as INTERNAL, and paging never skips or repeats a message
//! while others keep sending. `PROPTEST_CASES` runs more cases (12 by default, for CI).

use std::collections::HashSet;

use missive::api::pb;
use proptest::prelude::*;
use tonic::{Code, Status};

use crate::helpers::{TestApp, TestUser, note, spawn_app, text};

/// Texts that have broken other systems: combining marks, right-to-left and bidi
/// controls, emoji sequences, NUL, the largest code points, and long ones.
fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("e\u{301}\u{301}\u{301} zalgo".to_string()),
        Just("\u{5e9}\u{5dc}\u{5d5}\u{5dd} \u{202e}reversed\u{202c}".to_string()),
        Just("👩‍👩‍👧‍👦🏳️‍🌈 family".to_string()),
        Just("nul \u{0} inside".to_string()),
        Just("\u{10FFFF}\u{FEFF}\u{200B}".to_string()),
        Just("é".repeat(32 * 1024)),
        Just("é".repeat(32 * 1024 + 1)),
        "\\PC{1,40}",
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Send { sender: usize, conversation: usize, content: String },
    Note { conversation: usize },
    ReadAll { user: usize, conversation: usize },
    ReadNewest { user: usize, conversation: usize },
    Delete { conversation: usize },
    Archive { user: usize, conversation: usize },
    Unarchive { user: usize, conversation: usize },
    Remove { user: usize, conversation: usize },
    Add { user: usize, conversation: usize },
}

const MEMBERS: usize = 3;
const CONVERSATIONS: usize = 2;

fn op() -> impl Strategy<Value = Op> {
    let (user, conversation) = (0..MEMBERS, 0..CONVERSATIONS);
    prop_oneof![
        4 => (user.clone(), conversation.clone(), awkward_text())
            .prop_map(|(sender, conversation, content)| Op::Send { sender, conversation, content }),
        1 => conversation.clone().prop_map(|conversation| Op::Note { conversation }),
        2 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::ReadAll { user, conversation }),
        2 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::ReadNewest { user, conversation }),
        1 => conversation.clone().prop_map(|conversation| Op::Delete { conversation }),
        1 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::Archive { user, conversation }),
        1 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::Unarchive { user, conversation }),
        1 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::Remove { user, conversation }),
        1 => (user, conversation).prop_map(|(user, conversation)| Op::Add { user, conversation }),
    ]
}

/// A refusal is fine (a removed member cannot send); a failure of the server is not.
fn allowed<T>(result: Result<T, Status>, op: &Op) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(status) if matches!(status.code(), Code::Internal | Code::Unknown | Code::Unavailable) => {
            panic!("{op:?} failed: {status:?}")
        }
        Err(_) => None,
    }
}

struct World {
    app: TestApp,
    members: Vec<TestUser>,
    agent: TestUser,
    conversations: Vec<String>,
}

impl World {
    async fn new() -> Self {
        let app = spawn_app().await;
        let mut members = Vec::new();
        for index in 0..MEMBERS {
            members.push(app.member(&format!("member {index}")).await);
        }
        let agent = app.agent("agent").await;
        let conversations = vec![
            app.conversation(&members[0], &[(&members[1], "b")]).await.id,
            app.conversation(&members[1], &[(&members[2], "c"), (&members[0], "a")]).await.id,
        ];
        Self { app, members, agent, conversations }
    }

    async fn newest_message(&self, conversation: &str) -> Option<pb::Message> {
        let listed = self.app.session(&self.agent).all_messages_in(conversation, 1000).await.ok()?;
        listed.into_iter().rfind(|m| m.delete_time.is_none())
    }

    async fn apply(&self, op: &Op) {
        let session = |user: &TestUser| self.app.session(user);
        match op {
            Op::Send { sender, conversation, content } => {
                let request = text(&self.conversations[*conversation], content);
                allowed(session(&self.members[*sender]).send_message(request).await, op);
            }
            Op::Note { conversation } => {
                let request = note(&self.conversations[*conversation], "staff only");
                allowed(session(&self.agent).send_message(request).await, op);
            }
            Op::ReadAll { user, conversation } => {
                allowed(session(&self.members[*user]).mark_all_read(&self.conversations[*conversation]).await, op);
            }
            Op::ReadNewest { user, conversation } => {
                let id = &self.conversations[*conversation];
                if let Some(newest) = self.newest_message(id).await {
                    allowed(session(&self.members[*user]).mark_read(id, &[newest.id]).await, op);
                }
            }
            Op::Delete { conversation } => {
                if let Some(newest) = self.newest_message(&self.conversations[*conversation]).await {
                    allowed(session(&self.agent).delete_message(&newest.id).await, op);
                }
            }
            Op::Archive { user, conversation } => {
                let id = &self.conversations[*conversation];
                allowed(session(&self.members[*user]).archive_conversation(id).await, op);
            }
            Op::Unarchive { user, conversation } => {
                let id = &self.conversations[*conversation];
                allowed(session(&self.members[*user]).unarchive_conversation(id).await, op);
            }
            Op::Remove { user, conversation } => {
                let (id, user) = (&self.conversations[*conversation], &self.members[*user].id);
                allowed(session(&self.agent).remove_participant(id, user).await, op);
            }
            Op::Add { user, conversation } => {
                let (id, user) = (&self.conversations[*conversation], &self.members[*user].id);
                allowed(session(&self.agent).add_participant(id, user, "").await, op);
            }
        }
    }

    /// Pages through a conversation `page_size` at a time while someone sends between the
    /// first pages: every message there at the start is seen exactly once.
    async fn assert_paging_is_exact(&self, conversation: &str, page_size: i32) {
        let staff = self.app.session(&self.agent);
        let before: HashSet<String> =
            staff.all_messages_in(conversation, 1000).await.unwrap().into_iter().map(|m| m.id).collect();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = staff
                .list_messages(pb::ListMessagesRequest {
                    conversation_id: conversation.into(),
                    page_size,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            seen.extend(page.messages.into_iter().map(|m| m.id));
            // A few arrive while paging (each page would otherwise meet a new message).
            if seen.len() <= 3 * page_size as usize {
                staff.send_message(note(conversation, "while paging")).await.unwrap();
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "a message was listed twice");
        assert!(before.iter().all(|id| unique.contains(id)), "a message was skipped");
    }
}

/// Cases a property runs: `PROPTEST_CASES`, else `default` (kept small for CI).
pub(crate) fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(12)))]

    #[test]
    fn counters_equal_a_recount_and_pages_are_exact_after_any_interleaving(
        ops in proptest::collection::vec(op(), 1..40),
        page_size in 1..4i32,
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let world = World::new().await;
            for op in &ops {
                world.apply(op).await;
            }
            world.app.assert_no_unread_drift().await;
            for conversation in &world.conversations {
                world.assert_paging_is_exact(conversation, page_size).await;
            }
            world.app.assert_no_unread_drift().await;
        });
    }
}
