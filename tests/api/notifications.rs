//! NotificationService: what makes a notification, coalescing, reading, mutes, the
//! NOTIFICATION event with its counts, and a random interleaving checked against a model.

use std::collections::HashMap;

use missive::api::pb;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tonic::Code;

use crate::helpers::{TestApp, TestUser, assert_code, in_future, next_events, next_of_type, note, spawn_app, text};

async fn feed(app: &TestApp, user: &TestUser, unread_only: bool) -> Vec<pb::Notification> {
    let request = pb::ListNotificationsRequest { unread_only, ..Default::default() };
    app.session(user).list_notifications(request).await.unwrap().notifications
}

#[tokio::test]
async fn messages_coalesce_per_conversation_until_read_and_events_carry_the_counts() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.member("Seller").await, app.member("Buyer").await);
    let conversation = app.conversation(&buyer, &[(&seller, "seller")]).await;
    let started = feed(&app, &seller, false).await;
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].r#type, pb::NotificationType::ConversationStarted as i32);
    assert!(feed(&app, &buyer, false).await.is_empty(), "nobody is told of their own doing");

    let mut events = app.session(&seller).subscribe_after("").await.unwrap();
    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    for content in ["Is it available?", "Still there?", "Hello?"] {
        app.send(&buyer, &conversation.id, content).await;
    }
    let unread = feed(&app, &seller, true).await;
    assert_eq!(unread.len(), 2, "one for the start, one for the three messages");
    let messages = &unread[0];
    assert_eq!(messages.r#type, pb::NotificationType::NewMessage as i32);
    assert_eq!((messages.count, messages.summary.as_str()), (3, "Hello?"));
    assert_eq!(messages.actor_id, buyer.id);

    // Each send told the seller: the notification and its new counts.
    let told = next_of_type(&mut events, pb::EventType::Notification, 3).await;
    let Some(pb::event::Payload::Notification(last)) = &told[2].payload else { panic!("{:?}", told[2]) };
    let count = last.count.unwrap();
    assert_eq!((count.unread_notifications, count.unread_messages), (2, 3));
    assert_eq!(last.notification.as_ref().unwrap().count, 3);
    assert_eq!(told[2].actor_id, buyer.id, "it names who wrote");
    // The sender's stream carries its messages, never the seller's notifications.
    next_events(&mut buyers, 3).await;
    let more = tokio::time::timeout(std::time::Duration::from_millis(300), buyers.message()).await;
    assert!(more.is_err(), "nothing else reached the buyer: {more:?}");

    let read = app.session(&seller).mark_notification_read(&messages.id).await.unwrap();
    assert!(read.read && read.read_time.is_some());
    app.send(&buyer, &conversation.id, "One more").await;
    let unread = feed(&app, &seller, true).await;
    assert_eq!(unread[0].count, 1, "a read notification does not grow: a new one starts");
    assert_eq!(feed(&app, &seller, false).await.len(), 3);

    let count = app.session(&seller).notification_count().await.unwrap();
    assert_eq!((count.unread_notifications, count.unread_messages), (2, 4));
    assert_eq!(app.session(&seller).mark_all_notifications_read().await.unwrap(), 2);
    assert_eq!(app.session(&seller).mark_all_notifications_read().await.unwrap(), 0);
    assert_eq!(app.session(&seller).notification_count().await.unwrap().unread_notifications, 0);

    // Someone else's notification does not exist for the caller.
    assert_code(app.session(&buyer).mark_notification_read(&read.id).await, Code::NotFound);
}

#[tokio::test]
async fn muted_conversations_make_no_notifications_but_still_count_unread() {
    let app = spawn_app().await;
    let (seller, buyer, agent) = (app.member("Seller").await, app.member("Buyer").await, app.agent("Agent").await);
    let participants = [(&buyer, "buyer"), (&seller, "seller"), (&agent, "agent")];
    let conversation = app.conversation(&agent, &participants).await;
    app.session(&seller).mark_all_notifications_read().await.unwrap();

    let muted = app.session(&seller).mute(&conversation.id, None).await.unwrap();
    assert!(muted.muted && muted.mute_expire_time.is_none());
    app.send(&buyer, &conversation.id, "hello").await;
    assert!(feed(&app, &seller, true).await.is_empty());
    assert_eq!(app.unread(&seller).await.0, 1, "still unread");
    assert!(!app.session(&buyer).get_conversation(&conversation.id).await.unwrap().muted, "a mute is one's own");

    let unmuted = app.session(&seller).unmute(&conversation.id).await.unwrap();
    assert!(!unmuted.muted);
    app.send(&buyer, &conversation.id, "again").await;
    assert_eq!(feed(&app, &seller, true).await.len(), 1);

    let hour = Some(in_future(std::time::Duration::from_secs(3600)));
    assert!(app.session(&seller).mute(&conversation.id, hour).await.unwrap().mute_expire_time.is_some());
    // A mute with an end ends by itself: then the conversation notifies again.
    app.session(&seller).mark_all_notifications_read().await.unwrap();
    let soon = Some(in_future(std::time::Duration::from_millis(1500)));
    app.session(&seller).mute(&conversation.id, soon).await.unwrap();
    app.send(&buyer, &conversation.id, "while muted").await;
    assert!(feed(&app, &seller, true).await.is_empty(), "muted until then");
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert!(!app.session(&seller).get_conversation(&conversation.id).await.unwrap().muted, "the mute is over");
    app.send(&buyer, &conversation.id, "after the mute").await;
    assert_eq!(
        feed(&app, &seller, true).await.iter().map(|n| n.summary.as_str()).collect::<Vec<_>>(),
        ["after the mute"]
    );
    let past = prost_types::Timestamp { seconds: 1, nanos: 0 };
    crate::helpers::assert_invalid(app.session(&seller).mute(&conversation.id, Some(past)).await, "expire_time");
    // Staff who do not take part cannot mute; strangers cannot see it.
    let other = app.agent("Other").await;
    assert_code(app.session(&other).mute(&conversation.id, None).await, Code::FailedPrecondition);
    let stranger = app.member("Stranger").await;
    assert_code(app.session(&stranger).mute(&conversation.id, None).await, Code::NotFound);

    // Private notes notify staff participants only.
    app.session(&agent).mark_all_notifications_read().await.unwrap();
    app.session(&agent).send_message(note(&conversation.id, "internal")).await.unwrap();
    app.session(&buyer).send_message(text(&conversation.id, "hi agent")).await.unwrap();
    assert_eq!(feed(&app, &agent, true).await.len(), 1, "the buyer's message; never one's own note");
    assert_eq!(feed(&app, &buyer, true).await.iter().filter(|n| n.summary == "internal").count(), 0);
}

#[tokio::test]
async fn joining_and_resolved_reports_notify_their_user() {
    let app = spawn_app().await;
    let (agent, buyer, seller) = (app.agent("Agent").await, app.member("Buyer").await, app.member("Seller").await);
    let conversation = app.conversation(&agent, &[(&seller, "seller")]).await;
    app.session(&agent).add_participant(&conversation.id, &buyer.id, "buyer").await.unwrap();
    let joined = feed(&app, &buyer, true).await;
    assert_eq!(joined[0].r#type, pb::NotificationType::AddedToConversation as i32);

    let message = app.send(&seller, &conversation.id, "spam spam").await;
    let report = app.session(&buyer).report(&message.id, pb::ReportReason::Spam, "").await.unwrap();
    assert!(feed(&app, &seller, false).await.iter().all(|n| n.report_id.is_empty()), "never told of being reported");
    let mut buyers = app.session(&buyer).subscribe_after("").await.unwrap();
    app.session(&agent).resolve_report(&report.id, pb::ReportAction::Dismiss, "fine").await.unwrap();
    let resolved = feed(&app, &buyer, true).await;
    assert_eq!(resolved[0].r#type, pb::NotificationType::ReportResolved as i32);
    assert_eq!(resolved[0].report_id, report.id);
    assert!(!resolved[0].summary.contains("fine"), "staff's note stays with staff");
    // Nor who resolved it: not in the notification, not in its event.
    assert!(resolved[0].actor_id.is_empty(), "{:?}", resolved[0]);
    let told = next_of_type(&mut buyers, pb::EventType::Notification, 1).await;
    assert!(told[0].actor_id.is_empty() && !format!("{told:?}").contains(&agent.id), "{told:?}");

    // Leaving a conversation takes its notifications along: nothing of it stays readable.
    app.send(&seller, &conversation.id, "after the report").await;
    assert!(feed(&app, &buyer, true).await.iter().any(|n| n.conversation_id == conversation.id && n.count > 0));
    app.session(&buyer).remove_participant(&conversation.id, &buyer.id).await.unwrap();
    let left = feed(&app, &buyer, false).await;
    assert!(left.iter().all(|n| n.r#type == pb::NotificationType::ReportResolved as i32), "{left:?}");
}

/// What the feed should hold, kept beside the server's: per user, the unread
/// new-message notification of each conversation (its count), and how many others.
#[derive(Default, Clone, Debug, PartialEq)]
struct Expected {
    growing: HashMap<String, i64>,
    unread: i64,
    total: i64,
}

impl Expected {
    /// A notification that does not coalesce.
    fn another(&mut self) {
        self.unread += 1;
        self.total += 1;
    }

    /// A message from someone else in `conversation`: grows its unread notification, or
    /// starts one.
    fn new_message(&mut self, conversation: &str) {
        let grown = self.growing.entry(conversation.to_owned()).or_insert(0);
        if *grown == 0 {
            self.unread += 1;
            self.total += 1;
        }
        *grown += 1;
    }
}

#[tokio::test]
async fn a_random_interleaving_gives_exactly_the_notifications_the_actions_should() {
    let app = spawn_app().await;
    let agent = app.agent("Agent").await;
    let members = [app.member("A").await, app.member("B").await, app.member("C").await];
    let mut conversations = Vec::new();
    for pair in [(0, 1), (1, 2), (0, 2)] {
        let participants = [(&members[pair.0], "one"), (&members[pair.1], "two")];
        conversations.push((app.conversation(&agent, &participants).await.id, pair));
    }
    let mut expected: HashMap<String, Expected> = HashMap::new();
    for (_, (a, b)) in &conversations {
        for user in [*a, *b] {
            expected.entry(members[user].id.clone()).or_default().another();
        }
    }
    let mut muted: HashMap<(usize, usize), bool> = HashMap::new();
    let mut rng = StdRng::seed_from_u64(0x9_2026);
    for _ in 0..120 {
        let (index, (a, b)) = conversations[rng.random_range(0..conversations.len())].clone();
        let (actor, other) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
        let conversation = index;
        match rng.random_range(0..10) {
            0..=5 => {
                app.send(&members[actor], &conversation, "hi").await;
                if !muted.get(&(other, a + b)).copied().unwrap_or(false) {
                    expected.get_mut(&members[other].id).unwrap().new_message(&conversation);
                }
            }
            6 => {
                let now = !muted.get(&(actor, a + b)).copied().unwrap_or(false);
                let session = app.session(&members[actor]);
                if now { session.mute(&conversation, None).await } else { session.unmute(&conversation).await }
                    .unwrap();
                muted.insert((actor, a + b), now);
            }
            7 => {
                app.session(&members[actor]).mark_all_notifications_read().await.unwrap();
                let entry = expected.get_mut(&members[actor].id).unwrap();
                entry.unread = 0;
                entry.growing.clear();
            }
            8 => {
                app.session(&members[actor]).mark_all_read(&conversation).await.unwrap();
            }
            _ => {
                let message = app.send(&members[other], &conversation, "report me").await;
                let reported = app.session(&members[actor]).report(&message.id, pb::ReportReason::Other, "").await;
                if !muted.get(&(actor, a + b)).copied().unwrap_or(false) {
                    expected.get_mut(&members[actor].id).unwrap().new_message(&conversation);
                }
                let action =
                    if rng.random_bool(0.5) { pb::ReportAction::Dismiss } else { pb::ReportAction::RemoveMessage };
                app.session(&agent).resolve_report(&reported.unwrap().id, action, "").await.unwrap();
                expected.get_mut(&members[actor].id).unwrap().another();
            }
        }
    }
    for user in &members {
        let want = &expected[&user.id];
        let all = feed(&app, user, false).await;
        let unread: Vec<&pb::Notification> = all.iter().filter(|n| !n.read).collect();
        assert_eq!((unread.len() as i64, all.len() as i64), (want.unread, want.total), "{}", user.id);
        for (conversation, count) in &want.growing {
            let growing = unread
                .iter()
                .find(|n| n.r#type == pb::NotificationType::NewMessage as i32 && n.conversation_id == *conversation);
            assert_eq!(growing.map(|n| n.count), Some(*count), "{} in {conversation}", user.id);
        }
        let count = app.session(user).notification_count().await.unwrap();
        assert_eq!(count.unread_notifications, want.unread);
        assert_eq!(count.unread_messages, app.unread(user).await.0);
    }
    app.assert_no_unread_drift().await;
}
