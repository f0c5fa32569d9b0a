//! The authorization table: every RPC of every Missive service, enumerated from the
//! descriptor set (so a new RPC cannot be forgotten), called by everyone who must not get
//! at one account's data: no key, a made-up key, a revoked key, a member of the account
//! who takes part in nothing, and a member, an agent and an admin of another account.
//! Each request carries real ids of the victim's resources.
//!
//! Expected: keyless callers UNAUTHENTICATED; no INTERNAL/UNKNOWN/UNIMPLEMENTED for
//! anyone; no byte of the victim's data in any response or error; the same answer for a
//! real id as for a made-up one (no existence oracle); and the victim's data unchanged.

use std::time::Duration;

use missive::api::pb;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use tonic::{Code, Request, Status, transport::Channel};

use crate::{
    helpers::{TestApp, TestUser, in_future, spawn_app, text},
    raw_codec::RawCodec,
};

/// Strings only the victim's data holds: none may reach an attacker.
const MARKERS: [&str; 8] = [
    "VICTIM-CONTENT",
    "VICTIM-NOTE",
    "VICTIM-TITLE",
    "VICTIM-META",
    "VICTIM-FILE",
    "VICTIM-TEMPLATE",
    "VICTIM-LATER",
    "VICTIM-REPORT",
];

/// The victim's resources, by kind.
#[derive(Clone)]
struct Ids {
    conversation: String,
    message: String,
    attachment: String,
    scheduled: String,
    template: String,
    user: String,
    api_key: String,
    report: String,
    notification: String,
}

impl Ids {
    /// The same ids with their random part changed: well formed, but of nothing.
    fn made_up(&self) -> Ids {
        let fake = |id: &str| format!("{}00000000", &id[..id.len() - 8]);
        Ids {
            conversation: fake(&self.conversation),
            message: fake(&self.message),
            attachment: fake(&self.attachment),
            scheduled: fake(&self.scheduled),
            template: fake(&self.template),
            user: fake(&self.user),
            api_key: fake(&self.api_key),
            report: fake(&self.report),
            notification: fake(&self.notification),
        }
    }

    /// The id a message of this type names by its `id` field.
    fn for_type(&self, type_name: &str) -> &str {
        let name = type_name.trim_start_matches("missive.v1.");
        if name.contains("Report") {
            &self.report
        } else if name.contains("Notification") {
            &self.notification
        } else if name.contains("Attachment") {
            &self.attachment
        } else if name.contains("ApiKey") {
            &self.api_key
        } else if name.contains("Scheduled") {
            &self.scheduled
        } else if name.contains("Template") {
            &self.template
        } else if name.contains("Message") {
            &self.message
        } else if name.contains("User") || name.contains("Caller") {
            &self.user
        } else {
            &self.conversation
        }
    }

    fn all(&self) -> [&str; 9] {
        [
            &self.report,
            &self.notification,
            &self.conversation,
            &self.message,
            &self.attachment,
            &self.scheduled,
            &self.template,
            &self.user,
            &self.api_key,
        ]
    }
}

/// A request of `descriptor`'s type aimed at the victim: every id field holds one of
/// `ids`, and the fields a handler needs before it looks anything up are set.
fn request_for(descriptor: &MessageDescriptor, ids: &Ids, method: &str, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if let Some(value) = value_for(&field, ids, method, depth) {
            message.set_field(&field, value);
        }
    }
    message
}

fn value_for(field: &FieldDescriptor, ids: &Ids, method: &str, depth: usize) -> Option<Value> {
    let text = |s: &str| Some(Value::String(s.to_owned()));
    let list = |s: &str| Some(Value::List(vec![Value::String(s.to_owned())]));
    if field.is_map() {
        return None;
    }
    match (field.kind(), field.name(), field.is_list()) {
        (Kind::String, "id", false) => {
            // A request names the method's resource; a nested resource its own kind.
            let parent = field.parent_message().full_name().to_owned();
            let owner = if parent.ends_with("Request") { method } else { parent.as_str() };
            text(ids.for_type(owner))
        }
        (Kind::String, "conversation_id", false) => text(&ids.conversation),
        (Kind::String, "message_id", false) => text(&ids.message),
        (Kind::String, "user_id", false) => text(&ids.user),
        // Only where it is the subject: a message gives content or a template, not both.
        (Kind::String, "template_id", false) if method == "RenderTemplate" => text(&ids.template),
        (Kind::String, "content" | "display_name" | "name", false) => text("probe"),
        (Kind::String, "message_ids", true) => list(&ids.message),
        (Kind::String, "conversation_ids", true) => list(&ids.conversation),
        (Kind::Message(nested), _, false) if nested.full_name() == "google.protobuf.FieldMask" => {
            let path = match field.parent_message().name() {
                "UpdateUserRequest" => "display_name",
                "UpdateConversationRequest" => "subject",
                _ => "content",
            };
            let mut mask = DynamicMessage::new(nested);
            mask.set_field_by_name("paths", Value::List(vec![Value::String(path.into())]));
            Some(Value::Message(mask))
        }
        // Nested resources get ids too; of the lists, only participants name someone.
        (Kind::Message(_), "first_message" | "envelope", _) => None,
        (Kind::Message(_), name, true) if name != "participants" => None,
        (Kind::Message(nested), _, is_list) if nested.full_name().starts_with("missive.v1.") && depth < 2 => {
            let nested = Value::Message(request_for(&nested, ids, method, depth + 1));
            Some(if is_list { Value::List(vec![nested]) } else { nested })
        }
        _ => None,
    }
}

/// What a call answered: its code, and every byte it sent back (message or status).
struct Answer {
    code: Code,
    bytes: Vec<u8>,
    message: String,
}

async fn call(channel: &Channel, key: Option<&str>, path: &str, body: Vec<u8>, streaming: bool) -> Answer {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(body);
    if let Some(key) = key {
        request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    let path = path.parse().unwrap();
    let failed = |status: Status| Answer {
        code: status.code(),
        bytes: [status.message().as_bytes(), status.details()].concat(),
        message: status.message().to_owned(),
    };
    if !streaming {
        return match grpc.unary(request, path, RawCodec).await {
            Ok(response) => Answer { code: Code::Ok, bytes: response.into_inner(), message: String::new() },
            Err(status) => failed(status),
        };
    }
    match grpc.server_streaming(request, path, RawCodec).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            let mut bytes = Vec::new();
            // What a stream shows at once: its first item (a heartbeat, or an error).
            match tokio::time::timeout(Duration::from_secs(2), stream.message()).await {
                Ok(Ok(Some(item))) => bytes.extend(item),
                Ok(Err(status)) => return failed(status),
                _ => {}
            }
            Answer { code: Code::Ok, bytes, message: String::new() }
        }
        Err(status) => failed(status),
    }
}

/// One account's data, with a marker in every text an attacker must never see.
async fn victim(app: &TestApp) -> (Ids, TestUser, TestUser) {
    let buyer = app.member("VICTIM-NAME buyer").await;
    let seller = app.member("VICTIM-NAME seller").await;
    let agent = app.agent("VICTIM-NAME agent").await;
    let conversation = app
        .session(&buyer)
        .create_conversation(pb::CreateConversationRequest {
            participants: vec![pb::NewParticipant { user_id: seller.id.clone(), label: "seller".into() }],
            subject: Some(pb::Subject {
                kind: "listing".into(),
                external_id: "l-1".into(),
                title: "VICTIM-TITLE".into(),
                ..Default::default()
            }),
            metadata: [("offer".to_string(), "VICTIM-META".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .conversation
        .unwrap();
    let message = app
        .session(&buyer)
        .send_message(pb::SendMessageRequest {
            attachments: vec![pb::NewAttachment {
                filename: "VICTIM-FILE.txt".into(),
                media_type: "text/plain".into(),
                data: b"VICTIM-FILE bytes".to_vec(),
                ..Default::default()
            }],
            ..text(&conversation.id, "VICTIM-CONTENT")
        })
        .await
        .unwrap();
    app.session(&agent)
        .send_message(pb::SendMessageRequest { private: true, ..text(&conversation.id, "VICTIM-NOTE") })
        .await
        .unwrap();
    let scheduled = app
        .session(&seller)
        .send_message(pb::SendMessageRequest {
            schedule_time: Some(in_future(Duration::from_secs(3600))),
            ..text(&conversation.id, "VICTIM-LATER")
        })
        .await
        .unwrap();
    let template = app
        .session(&seller)
        .create_template(pb::Template {
            name: "VICTIM-TEMPLATE".into(),
            content: "VICTIM-TEMPLATE {{x}}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys = app
        .as_admin()
        .list_api_keys(pb::ListApiKeysRequest { user_id: buyer.id.clone(), ..Default::default() })
        .await
        .unwrap();
    let report = app.session(&seller).report(&message.id, pb::ReportReason::Spam, "VICTIM-REPORT").await.unwrap();
    let notifications = app.session(&seller).list_notifications(Default::default()).await.unwrap().notifications;
    let notification = notifications.iter().find(|n| n.message_id == message.id).expect("the seller was notified");
    let ids = Ids {
        report: report.id,
        notification: notification.id.clone(),
        conversation: conversation.id,
        attachment: message.attachments[0].id.clone(),
        message: message.id,
        scheduled: scheduled.id,
        template: template.id,
        user: buyer.id.clone(),
        api_key: keys.api_keys[0].id.clone(),
    };
    (ids, buyer, seller)
}

/// The victim's data is as it was: nothing an attacker called changed it.
async fn assert_untouched(app: &TestApp, ids: &Ids, buyer: &TestUser, seller: &TestUser) {
    let report = app.as_admin().get_report(&ids.report).await.expect("the report is still there");
    assert_eq!(report.status, pb::ReportStatus::Open as i32, "nobody resolved it");
    let notifications = app.session(seller).list_notifications(Default::default()).await.unwrap().notifications;
    let notification = notifications.iter().find(|n| n.id == ids.notification).expect("the notification is there");
    assert!(!notification.read, "nobody marked it read");
    let as_buyer = app.session(buyer);
    let conversation = as_buyer.get_conversation(&ids.conversation).await.expect("the conversation is still there");
    assert_eq!(conversation.subject.unwrap().title, "VICTIM-TITLE");
    assert_eq!(conversation.participants.len(), 2, "nobody was added or removed");
    let messages = as_buyer.messages_in(&ids.conversation).await.unwrap().messages;
    assert_eq!(messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["VICTIM-CONTENT"]);
    assert!(messages[0].delete_time.is_none());
    let scheduled = app.session(seller).get_scheduled(&ids.scheduled).await.unwrap();
    assert_eq!((scheduled.content.as_str(), scheduled.state), ("VICTIM-LATER", pb::MessageState::Scheduled as i32));
    let template = app.session(seller).get_template(&ids.template).await.unwrap();
    assert_eq!(template.content, "VICTIM-TEMPLATE {{x}}");
    assert_eq!(app.as_admin().get_user(&ids.user).await.unwrap().display_name, "VICTIM-NAME buyer");
    as_buyer.get_caller().await.expect("the buyer's key still works");
}

#[tokio::test]
async fn no_caller_outside_reaches_another_accounts_data_through_any_rpc() {
    let app = spawn_app().await;
    let (ids, buyer, seller) = victim(&app).await;
    let revoked = app.member("revoked").await;
    let revoked_key = app
        .as_admin()
        .list_api_keys(pb::ListApiKeysRequest { user_id: revoked.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .api_keys[0]
        .id
        .clone();
    app.as_admin().revoke_api_key(&revoked_key).await.unwrap();
    let outsider = app.member("outsider").await;
    let other = app.create_account("other").await;
    let attackers: Vec<(&str, Option<String>)> = vec![
        ("no key", None),
        ("a made-up key", Some(format!("msk_{}", "a".repeat(40)))),
        ("a revoked key", Some(revoked.key.clone())),
        ("a member who takes part in nothing", Some(outsider.key.clone())),
        ("a member of another account", Some(app.bootstrap_user(&other, pb::Role::Member, "m").await.key)),
        ("an agent of another account", Some(app.bootstrap_user(&other, pb::Role::Agent, "a").await.key)),
        ("an admin of another account", Some(app.bootstrap_user(&other, pb::Role::Admin, "a").await.key)),
    ];
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let made_up = ids.made_up();
    let mut calls = 0;

    for service in pool.services().filter(|s| s.package_name() == "missive.v1") {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let streaming = method.is_server_streaming();
            let real = request_for(&method.input(), &ids, method.name(), 0).encode_to_vec();
            let fake = request_for(&method.input(), &made_up, method.name(), 0).encode_to_vec();
            for (who, key) in &attackers {
                let answer = call(&app.channel, key.as_deref(), &path, real.clone(), streaming).await;
                let context = format!("{path} by {who}: {:?} {}", answer.code, answer.message);
                calls += 1;
                assert!(!matches!(answer.code, Code::Internal | Code::Unknown | Code::Unimplemented), "{context}");
                if matches!(*who, "no key" | "a made-up key" | "a revoked key") {
                    assert_eq!(answer.code, Code::Unauthenticated, "{context}");
                }
                for marker in MARKERS.iter().chain(std::iter::once(&"VICTIM-NAME")) {
                    let leaked = answer.bytes.windows(marker.len()).any(|w| w == marker.as_bytes());
                    assert!(!leaked, "{context} returned the victim's {marker}");
                }
                // The same call about nothing fails alike: no existence oracle. (A call that
                // succeeded acted on the caller's own data, as a create does.)
                if answer.code == Code::Ok {
                    continue;
                }
                let about_nothing = call(&app.channel, key.as_deref(), &path, fake.clone(), streaming).await;
                calls += 1;
                let mut message = answer.message.clone();
                for (real_id, fake_id) in ids.all().into_iter().zip(made_up.all()) {
                    message = message.replace(real_id, fake_id);
                }
                assert_eq!(
                    (answer.code, message),
                    (about_nothing.code, about_nothing.message),
                    "{path} by {who}: a real id and a made-up one answer differently"
                );
            }
        }
    }

    assert!(calls > 400, "{calls} calls: every RPC was tried");
    assert_untouched(&app, &ids, &buyer, &seller).await;
}
