//! SearchMessages over gRPC: who finds what (the same rule as reads: a member its
//! conversations' public messages, staff their account's, notes included; never another
//! account's, a deleted message or an edited message's old text), the query language and
//! its refusals, filters, order, pages and snippets.

use std::collections::{BTreeSet, HashSet};

use missive::api::pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::helpers::{TestApp, assert_code, note, spawn_app, text};

/// Every id `query` finds for the session, over all pages of 2.
async fn found(app: &TestApp, user: &crate::helpers::TestUser, query: &str) -> BTreeSet<String> {
    app.session(user).search_all(query, Default::default(), 2).await.expect("search").into_iter().collect()
}

fn ids<'a>(messages: impl IntoIterator<Item = &'a pb::Message>) -> BTreeSet<String> {
    messages.into_iter().map(|m| m.id.clone()).collect()
}

#[tokio::test]
async fn each_caller_finds_exactly_what_it_may_read() {
    let app = spawn_app().await;
    let (buyer, seller, later) = (app.member("buyer").await, app.member("seller").await, app.member("later").await);
    let agent = app.agent("agent").await;
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await.id;
    let elsewhere = app.conversation(&seller, &[(&later, "other")]).await.id;

    let public = app.send(&buyer, &conversation, "the invoice is attached").await;
    let staff_note = app.session(&agent).send_message(note(&conversation, "invoice looks forged")).await.unwrap();
    let other = app.send(&seller, &elsewhere, "another invoice here").await;
    let deleted = app.send(&buyer, &conversation, "invoice to delete").await;
    app.session(&buyer).delete_message(&deleted.id).await.unwrap();
    let edited = app.send(&buyer, &conversation, "invoice typo walrus").await;
    app.session(&buyer)
        .update_message(pb::UpdateMessageRequest {
            message: Some(pb::Message { id: edited.id.clone(), content: "invoice fixed".into(), ..Default::default() }),
            update_mask: Some(FieldMask { paths: vec!["content".into()] }),
        })
        .await
        .unwrap();
    // Another account's message with the same word.
    let stranger_account = app.create_account("other").await;
    let stranger = app.bootstrap_user(&stranger_account, pb::Role::Agent, "stranger").await;
    let foreign_member = app.bootstrap_user(&stranger_account, pb::Role::Member, "foreign").await;
    let foreign = app.conversation(&stranger, &[(&foreign_member, "m")]).await.id;
    let foreign_message = app.send(&stranger, &foreign, "invoice abroad").await;

    assert_eq!(found(&app, &buyer, "invoice").await, ids([&public, &edited]), "a member: its conversation, no note");
    assert_eq!(found(&app, &seller, "invoice").await, ids([&public, &edited, &other]));
    assert_eq!(found(&app, &later, "invoice").await, ids([&other]));
    assert_eq!(found(&app, &agent, "invoice").await, ids([&public, &staff_note, &other, &edited]), "staff: notes too");
    assert_eq!(found(&app, &stranger, "invoice").await, ids([&foreign_message]), "one account only");
    assert!(found(&app, &agent, "walrus").await.is_empty(), "an edited message's old text is gone");
    assert!(found(&app, &agent, "delete").await.is_empty(), "a deleted message is gone");
    assert!(found(&app, &buyer, "forged").await.is_empty(), "a member never finds a note");

    // Added later: the history it can list, it can find. Removed: nothing of it any more,
    // neither what was said before nor after.
    app.session(&agent).add_participant(&conversation, &later.id, "late").await.unwrap();
    assert_eq!(found(&app, &later, "invoice").await, ids([&public, &edited, &other]));
    app.session(&agent).remove_participant(&conversation, &buyer.id).await.unwrap();
    app.send(&seller, &conversation, "invoice after you left").await;
    assert!(found(&app, &buyer, "invoice").await.is_empty(), "a removed member finds nothing there");

    // A conversation filter the caller may not see is NOT_FOUND, as every RPC naming one.
    let filtered = pb::SearchMessagesRequest {
        query: "invoice".into(),
        conversation_id: conversation.clone(),
        ..Default::default()
    };
    assert_code(app.session(&buyer).search(filtered.clone()).await, Code::NotFound);
    assert_code(app.session(&stranger).search(filtered).await, Code::NotFound);

    // Deleting the conversation takes its messages out of the index with it.
    app.session(&agent).delete_conversation(&conversation).await.unwrap();
    assert_eq!(found(&app, &agent, "invoice").await, ids([&other]));
}

#[tokio::test]
async fn words_phrases_and_prefixes_find_what_people_expect() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await.id;
    let paid = app.send(&buyer, &conversation, "I paid the Invoice yesterday").await;
    let invoicing = app.send(&seller, &conversation, "our invoicing runs weekly; paid in full").await;
    let email = app.send(&buyer, &conversation, "my e-mail changed").await;

    assert_eq!(found(&app, &buyer, "INVOICE").await, ids([&paid]), "any case, whole words");
    assert_eq!(found(&app, &buyer, "invoic*").await, ids([&paid, &invoicing]), "a prefix");
    assert_eq!(found(&app, &buyer, "paid invoice").await, ids([&paid]), "every word must occur");
    assert_eq!(found(&app, &buyer, "\"paid the invoice\"").await, ids([&paid]), "a phrase");
    assert!(found(&app, &buyer, "\"invoice paid\"").await.is_empty(), "a phrase in its order");
    assert_eq!(found(&app, &buyer, "e-mail").await, ids([&email]), "punctuation joins a phrase");
    assert_eq!(found(&app, &buyer, "paid -").await, ids([&paid, &invoicing]), "a lone operator means nothing");
    assert!(found(&app, &buyer, "NOT").await.is_empty(), "operator words are only words");

    let page = app
        .session(&buyer)
        .search(pb::SearchMessagesRequest { query: "invoice".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((page.total_size, page.total_size_capped), (1, false));
    let snippet = &page.hits[0].snippet;
    let marked: Vec<&str> = snippet.iter().filter(|part| part.matched).map(|part| part.text.as_str()).collect();
    assert_eq!(marked, ["Invoice"], "the match is marked as written: {snippet:?}");
    assert_eq!(snippet.iter().map(|part| part.text.as_str()).collect::<String>(), "I paid the Invoice yesterday");
}

#[tokio::test]
async fn filters_order_and_pages() {
    let app = spawn_app().await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let agent = app.agent("agent").await;
    let first = app.conversation(&buyer, &[(&seller, "seller")]).await.id;
    let second = app.conversation(&seller, &[(&buyer, "buyer")]).await.id;
    let mut sent = Vec::new();
    for n in 0..7 {
        let (sender, conversation) = if n % 2 == 0 { (&buyer, &first) } else { (&seller, &second) };
        let words = if n == 3 { "parcel parcel parcel parcel arrived" } else { "parcel shipped" };
        sent.push(app.send(sender, conversation, &format!("{words} {n}")).await);
    }
    let staff = app.session(&agent);
    let newest: Vec<String> = sent.iter().rev().map(|m| m.id.clone()).collect();
    assert_eq!(staff.search_all("parcel", Default::default(), 3).await.unwrap(), newest, "newest first, paged");

    let by = |request: pb::SearchMessagesRequest| {
        let staff = app.session(&agent);
        async move { staff.search_all("parcel", request, 2).await.unwrap().into_iter().collect::<HashSet<_>>() }
    };
    let of = |pick: &dyn Fn(usize) -> bool| {
        sent.iter().enumerate().filter(|(n, _)| pick(*n)).map(|(_, m)| m.id.clone()).collect::<HashSet<_>>()
    };
    assert_eq!(
        by(pb::SearchMessagesRequest { conversation_id: first.clone(), ..Default::default() }).await,
        of(&|n| n % 2 == 0)
    );
    assert_eq!(
        by(pb::SearchMessagesRequest { sender_id: seller.id.clone(), ..Default::default() }).await,
        of(&|n| n % 2 == 1)
    );
    assert_eq!(
        by(pb::SearchMessagesRequest { after: sent[2].create_time, before: sent[5].create_time, ..Default::default() })
            .await,
        of(&|n| (2..5).contains(&n))
    );
    assert_eq!(
        by(pb::SearchMessagesRequest { has_attachments: Some(true), ..Default::default() }).await,
        HashSet::new()
    );
    assert_eq!(
        by(pb::SearchMessagesRequest { has_attachments: Some(false), ..Default::default() }).await,
        of(&|_| true)
    );
    assert_eq!(
        by(pb::SearchMessagesRequest {
            direction: pb::Direction::Incoming.into(),
            kind: pb::MessageKind::Text.into(),
            ..Default::default()
        })
        .await,
        of(&|_| true)
    );
    assert_eq!(
        by(pb::SearchMessagesRequest { channel: pb::Channel::Email.into(), ..Default::default() }).await,
        HashSet::new()
    );

    // Relevance: the message that says it four times first, then newest first.
    let ranked = staff
        .search(pb::SearchMessagesRequest {
            query: "parcel".into(),
            order: pb::SearchOrder::Relevance.into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ranked.hits[0].message.as_ref().unwrap().id, sent[3].id);
    let relevance = pb::SearchMessagesRequest { order: pb::SearchOrder::Relevance.into(), ..Default::default() };
    let all_ranked = staff.search_all("parcel", relevance, 2).await.unwrap();
    assert_eq!(all_ranked.iter().collect::<HashSet<_>>().len(), 7, "relevance pages neither skip nor repeat");
    assert_eq!(all_ranked[0], sent[3].id);
}

#[tokio::test]
async fn bad_searches_name_the_field() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let session = app.session(&member);
    let search = |query: &str| pb::SearchMessagesRequest { query: query.into(), ..Default::default() };
    for (query, why) in [
        ("", "required"),
        ("  * - ( ) ", "no word"),
        ("\"unbalanced", "unclosed"),
        ("a*", "at least 2"),
        ("mid*dle", "only end a word"),
        ("alpha:*", "one word"),
        (&"x".repeat(10 * 1024), "bytes"),
        ("nul\0inside", "NUL"),
    ] {
        let status = assert_code(session.search(search(query)).await, Code::InvalidArgument);
        assert!(status.message().contains("query") && status.message().contains(why), "{query:.20}: {status:?}");
    }
    // Every bad field at once.
    let status = assert_code(
        session
            .search(pb::SearchMessagesRequest {
                query: String::new(),
                conversation_id: "nope".into(),
                sender_id: "usr_x".into(),
                order: 99,
                kind: 42,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    for field in ["query", "conversation_id", "sender_id", "order", "kind"] {
        assert!(status.message().contains(field), "{field} not named: {status:?}");
    }
    // A token from another query.
    let conversation = app.conversation(&member, &[]).await.id;
    for n in 0..3 {
        app.send(&member, &conversation, &format!("alpha beta {n}")).await;
    }
    let first = session
        .search(pb::SearchMessagesRequest { query: "alpha".into(), page_size: 1, ..Default::default() })
        .await
        .unwrap();
    assert!(!first.next_page_token.is_empty());
    let status = assert_code(
        session
            .search(pb::SearchMessagesRequest {
                query: "beta".into(),
                page_token: first.next_page_token.clone(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("page_token"), "{status:?}");
    // The same search spelled differently continues it.
    let next = session
        .search(pb::SearchMessagesRequest {
            query: "  ALPHA ".into(),
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next.hits.len(), 1);
    // FTS5 and tsquery syntax typed by a caller is only text: operator words must occur
    // as words (no message has "or", "near" or "col"), punctuation only separates words.
    for (query, hits) in [
        ("alpha OR beta", 0),
        ("alpha NEAR(beta)", 0),
        ("col:alpha", 0),
        ("content:alpha", 0),
        ("alpha & !beta", 3),
        ("^alpha", 3),
        ("alpha'", 3),
        ("(alpha", 3),
    ] {
        let page = session.search(search(query)).await.unwrap_or_else(|status| panic!("{query}: {status:?}"));
        assert_eq!(page.hits.len(), hits, "{query}");
    }
}

/// Search shows each caller exactly what reads show it: over a random history of sends,
/// notes, deletions, edits and membership changes, the messages a word finds for a caller
/// are those it can list in the conversations it can list whose content has the word.
mod against_reads {
    use proptest::prelude::*;

    use super::*;
    use crate::helpers::TestUser;

    const WORDS: [&str; 4] = ["apple", "pear", "plum", "fig"];
    const MEMBERS: usize = 3;
    const CONVERSATIONS: usize = 3;

    #[derive(Debug, Clone)]
    enum Op {
        Send { sender: usize, conversation: usize, words: Vec<usize> },
        Note { conversation: usize, word: usize },
        Delete { conversation: usize },
        Edit { conversation: usize, word: usize },
        Remove { user: usize, conversation: usize },
        Add { user: usize, conversation: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        let (user, conversation, word) = (0..MEMBERS, 0..CONVERSATIONS, 0..WORDS.len());
        prop_oneof![
            5 => (user.clone(), conversation.clone(), proptest::collection::vec(word.clone(), 1..4))
                .prop_map(|(sender, conversation, words)| Op::Send { sender, conversation, words }),
            2 => (conversation.clone(), word.clone()).prop_map(|(conversation, word)| Op::Note { conversation, word }),
            1 => conversation.clone().prop_map(|conversation| Op::Delete { conversation }),
            1 => (conversation.clone(), word).prop_map(|(conversation, word)| Op::Edit { conversation, word }),
            1 => (user.clone(), conversation.clone()).prop_map(|(user, conversation)| Op::Remove { user, conversation }),
            1 => (user, conversation).prop_map(|(user, conversation)| Op::Add { user, conversation }),
        ]
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
            let mut conversations = Vec::new();
            for index in 0..CONVERSATIONS {
                let other = &members[(index + 1) % MEMBERS];
                conversations.push(app.conversation(&members[index], &[(other, "other")]).await.id);
            }
            Self { app, members, agent, conversations }
        }

        /// The newest live message of a conversation, as staff list it.
        async fn newest(&self, conversation: usize) -> Option<pb::Message> {
            let all = self.app.session(&self.agent).all_messages_in(&self.conversations[conversation], 1000).await;
            all.ok()?.into_iter().rfind(|m| m.delete_time.is_none())
        }

        async fn apply(&self, op: &Op) {
            let agent = self.app.session(&self.agent);
            match op {
                Op::Send { sender, conversation, words } => {
                    let content: Vec<&str> = words.iter().map(|w| WORDS[*w]).collect();
                    let request = text(&self.conversations[*conversation], &content.join(" "));
                    // A removed member's send is refused; that is fine.
                    let _ = self.app.session(&self.members[*sender]).send_message(request).await;
                }
                Op::Note { conversation, word } => {
                    agent.send_message(note(&self.conversations[*conversation], WORDS[*word])).await.unwrap();
                }
                Op::Delete { conversation } => {
                    if let Some(newest) = self.newest(*conversation).await {
                        agent.delete_message(&newest.id).await.unwrap();
                    }
                }
                Op::Edit { conversation, word } => {
                    let Some(newest) = self.newest(*conversation).await else { return };
                    let sender = self.members.iter().find(|m| m.id == newest.sender_id).unwrap_or(&self.agent);
                    let edit = pb::UpdateMessageRequest {
                        message: Some(pb::Message {
                            id: newest.id,
                            content: WORDS[*word].into(),
                            ..Default::default()
                        }),
                        update_mask: Some(FieldMask { paths: vec!["content".into()] }),
                    };
                    // The sender may have left; then the edit is refused.
                    let _ = self.app.session(sender).update_message(edit).await;
                }
                Op::Remove { user, conversation } => {
                    let (id, user) = (&self.conversations[*conversation], &self.members[*user].id);
                    let _ = agent.remove_participant(id, user).await;
                }
                Op::Add { user, conversation } => {
                    let (id, user) = (&self.conversations[*conversation], &self.members[*user].id);
                    let _ = agent.add_participant(id, user, "").await;
                }
            }
        }

        /// What `user` reads that has `word`: every conversation it can list, every live
        /// message it can list there.
        async fn readable_with(&self, user: &TestUser, word: &str) -> BTreeSet<String> {
            let session = self.app.session(user);
            let mut readable = BTreeSet::new();
            for conversation in &self.conversations {
                let Ok(messages) = session.all_messages_in(conversation, 1000).await else { continue };
                readable.extend(
                    messages
                        .into_iter()
                        .filter(|m| m.delete_time.is_none() && m.content.split(' ').any(|w| w == word))
                        .map(|m| m.id),
                );
            }
            readable
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::properties::cases(8)))]

        #[test]
        fn search_finds_what_list_messages_shows_every_caller(
            ops in proptest::collection::vec(op(), 1..30),
            page_size in 1..4i32,
        ) {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                let world = World::new().await;
                for op in &ops {
                    world.apply(op).await;
                }
                for user in world.members.iter().chain([&world.agent]) {
                    for word in WORDS {
                        let searched = world.app.session(user).search_all(word, Default::default(), page_size).await.unwrap();
                        let unique: BTreeSet<String> = searched.iter().cloned().collect();
                        assert_eq!(unique.len(), searched.len(), "a hit was repeated");
                        assert_eq!(unique, world.readable_with(user, word).await, "{} searching {word}", user.id);
                    }
                }
            });
        }
    }
}

/// SQLite's index is keyed by the messages' rowids: a backup (`VACUUM INTO`), restored,
/// finds what the live file finds, with gaps in the rowids from deleted conversations, and
/// FTS5's own check finds the index and the messages in agreement.
#[tokio::test]
async fn a_restored_backup_finds_what_the_live_file_found() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::sqlite_file(&dir);
    let app = crate::helpers::spawn_app_on(&url, |_| {}).await;
    let (buyer, seller, agent) = (app.member("buyer").await, app.member("seller").await, app.agent("agent").await);
    let mut kept = Vec::new();
    for round in 0..3 {
        let doomed = app.conversation(&buyer, &[(&seller, "seller")]).await.id;
        let conversation = app.conversation(&seller, &[(&buyer, "buyer")]).await.id;
        for n in 0..4 {
            app.send(&buyer, &doomed, &format!("lantern doomed {round} {n}")).await;
            kept.push(app.send(&seller, &conversation, &format!("lantern kept {round} {n}")).await);
        }
        app.session(&agent).delete_conversation(&doomed).await.unwrap();
    }
    let live = found(&app, &buyer, "lantern").await;
    assert_eq!(live, ids(&kept));

    let backup = dir.path().join("backup.db");
    let (backed_up, said) = crate::durability::backup_to(&url, &backup).await;
    assert!(backed_up, "backup: {said}");
    let check = "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n\
                 db.execute(\"INSERT INTO message_search(message_search, rank) VALUES ('integrity-check', 1)\")\n";
    let checked = std::process::Command::new("python3").args(["-c", check]).arg(&backup).output().unwrap();
    assert!(checked.status.success(), "FTS5 integrity-check: {}", String::from_utf8_lossy(&checked.stderr));

    let restored = TestApp::serve_database(&format!("sqlite:{}", backup.display())).await;
    assert_eq!(found(&restored, &buyer, "lantern").await, live);
    assert!(found(&restored, &buyer, "doomed").await.is_empty());
}

/// `missive accounts search-language` as a process on `url`: whether it succeeded, and
/// what it said.
async fn set_language(url: &str, account: &str, language: &str) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["accounts", "search-language", language, "--account", account, "--database-url", url])
        .output()
        .await
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// SQLite searches every account alike: another language is refused, saying why.
#[tokio::test]
async fn sqlite_has_one_search_language() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::sqlite_file(&dir);
    let app = crate::helpers::spawn_app_on(&url, |_| {}).await;
    let (ok, said) = set_language(&url, &app.account_id, "english").await;
    assert!(!ok && said.contains("PostgreSQL"), "{said}");
    let (ok, said) = set_language(&url, &app.account_id, "simple").await;
    assert!(ok, "{said}");
}

/// On PostgreSQL an account's messages are searched in its language: set to english, the
/// messages it had are re-indexed in the same unit and new ones follow (words stemmed:
/// "running" finds "runs"), while another account stays `simple`.
#[tokio::test]
#[ignore = "needs PostgreSQL: MISSIVE_TEST_DATABASE_URL=postgres://… and --include-ignored"]
async fn a_postgres_account_is_searched_in_its_language() {
    crate::helpers::postgres_server();
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::fresh_database(&dir).await;
    let app = crate::helpers::spawn_app_on(&url, |_| {}).await;
    let (buyer, seller) = (app.member("buyer").await, app.member("seller").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await.id;
    let before = app.send(&buyer, &conversation, "the engine runs smoothly").await;
    assert!(found(&app, &buyer, "running").await.is_empty(), "simple does not stem");

    let (ok, said) = set_language(&url, &app.account_id, "English").await;
    assert!(ok, "{said}");
    let after = app.send(&seller, &conversation, "I ran it for an hour").await;
    let again = app.send(&seller, &conversation, "running costs are low").await;
    assert_eq!(found(&app, &buyer, "running").await, ids([&before, &again]), "stemmed, old and new");
    assert_eq!(found(&app, &buyer, "hour").await, ids([&after]));

    let other_account = app.create_account("other").await;
    let agent = app.bootstrap_user(&other_account, pb::Role::Agent, "agent").await;
    let elsewhere = app.conversation(&agent, &[]).await.id;
    app.send(&agent, &elsewhere, "the engine runs").await;
    assert!(found(&app, &agent, "running").await.is_empty(), "another account stays simple");

    let (ok, said) = set_language(&url, &app.account_id, "klingon").await;
    assert!(!ok && said.contains("language") && said.contains("english"), "{said}");
}
