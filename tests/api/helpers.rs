//! Spawns a real server over a fresh database and gives tests authenticated clients.

use std::{sync::Arc, time::Duration};

use missive::{
    api::pb::{
        self, admin_service_client::AdminServiceClient, conversation_service_client::ConversationServiceClient,
        event_service_client::EventServiceClient, message_service_client::MessageServiceClient,
    },
    config::Config,
    domain::users::{NewUser, Role},
    events::StreamStats,
    server::Application,
    store::Store,
};
use sea_orm::{ConnectionTrait, Database};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Code, Request, Status, transport::Channel};

/// A running server with its own database, an account and an admin of that account.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub store: Arc<Store>,
    pub stream_stats: Arc<StreamStats>,
    pub account_id: String,
    pub admin: TestUser,
    pub channel: Channel,
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// A user with an API key.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub key: String,
}

/// A database URL nobody else uses: a new SQLite file, or a new PostgreSQL database on the
/// server MISSIVE_TEST_DATABASE_URL names.
async fn fresh_database(dir: &tempfile::TempDir) -> String {
    match std::env::var("MISSIVE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let name = format!("missive_t_{}", uuid::Uuid::now_v7().simple());
            let admin = Database::connect(&url).await.expect("MISSIVE_TEST_DATABASE_URL answers");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
            admin.close().await.ok();
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            format!("{base}/{name}")
        }
        _ => format!("sqlite:{}", dir.path().join("missive.db").display()),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a server after `configure` adjusted its configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut app = TestApp::serve_database_with(&fresh_database(&dir).await, configure).await;
    app.account_id = missive::store::accounts::create(&app.store, "test").await.expect("an account");
    app.admin = bootstrap_user(&app.store, &app.account_id, Role::Admin, "Admin").await;
    app._dir = Some(dir);
    app
}

type Started = (Arc<Store>, Arc<StreamStats>, std::net::SocketAddr, JoinHandle<()>, oneshot::Sender<()>);

async fn start(database_url: &str, configure: impl FnOnce(&mut Config)) -> Started {
    let mut config = Config::for_database(database_url);
    config.shutdown_grace = Duration::from_secs(2);
    configure(&mut config);
    let app = Application::build(config).await.expect("the server starts");
    let addr = app.local_addr();
    let store = app.store();
    let stream_stats = app.stream_stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("the server runs");
    });
    (store, stream_stats, addr, server, stop)
}

/// A user made directly in the store (as `missive keys create` does).
pub async fn bootstrap_user(store: &Store, account_id: &str, role: Role, name: &str) -> TestUser {
    let new = NewUser::parse(Some(role), name.into(), String::new(), String::new(), String::new()).unwrap();
    let user = missive::store::users::create_in(store, account_id, new).await.expect("a user");
    let key = missive::store::api_keys::create_in(store, account_id, &user.id, "test").await.expect("a key").secret;
    TestUser { id: user.id, key }
}

/// `message` with `authorization: Bearer <key>`.
pub fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ASCII key"));
    request
}

impl TestApp {
    /// A server on an existing database, with no account of its own made.
    pub async fn serve_database(database_url: &str) -> TestApp {
        Self::serve_database_with(database_url, |_| {}).await
    }

    async fn serve_database_with(database_url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
        let (store, stream_stats, addr, server, stop) = start(database_url, configure).await;
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connect");
        TestApp {
            addr,
            store,
            stream_stats,
            account_id: String::new(),
            admin: TestUser { id: String::new(), key: String::new() },
            channel,
            database_url: database_url.to_owned(),
            stop: Some(stop),
            server: Some(server),
            _dir: None,
        }
    }

    /// A second server on the same database, as a replica behind a load balancer would be.
    pub async fn replica(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut replica = Self::serve_database_with(&self.database_url, configure).await;
        replica.account_id = self.account_id.clone();
        replica.admin = self.admin.clone();
        replica
    }

    pub fn admin_client(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    pub fn conversations(&self) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::new(self.channel.clone())
    }

    pub fn messages(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel.clone()).max_decoding_message_size(64 * 1024 * 1024)
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel.clone())
    }

    /// Creates a user through the API, with a key.
    pub async fn user(&self, role: pb::Role, name: &str) -> TestUser {
        let user = self
            .admin_client()
            .create_user(authed(
                &self.admin.key,
                pb::CreateUserRequest {
                    user: Some(pb::User { role: role as i32, display_name: name.into(), ..Default::default() }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("create user")
            .into_inner();
        let key = self
            .admin_client()
            .create_api_key(authed(
                &self.admin.key,
                pb::CreateApiKeyRequest { user_id: user.id.clone(), name: name.into() },
            ))
            .await
            .expect("create key")
            .into_inner()
            .key;
        TestUser { id: user.id, key }
    }

    pub async fn member(&self, name: &str) -> TestUser {
        self.user(pb::Role::Member, name).await
    }

    pub async fn agent(&self, name: &str) -> TestUser {
        self.user(pb::Role::Agent, name).await
    }

    /// A conversation created by `creator` with these (user, label) participants.
    pub async fn conversation(&self, creator: &TestUser, participants: &[(&TestUser, &str)]) -> pb::Conversation {
        self.conversations()
            .create_conversation(authed(
                &creator.key,
                pb::CreateConversationRequest {
                    participants: participants
                        .iter()
                        .map(|(user, label)| pb::NewParticipant { user_id: user.id.clone(), label: (*label).into() })
                        .collect(),
                    ..Default::default()
                },
            ))
            .await
            .expect("create conversation")
            .into_inner()
            .conversation
            .expect("a conversation")
    }

    /// Sends a text message.
    pub async fn send(&self, sender: &TestUser, conversation_id: &str, content: &str) -> pb::Message {
        self.send_request(sender, text(conversation_id, content)).await.expect("send")
    }

    pub async fn send_request(
        &self,
        sender: &TestUser,
        request: pb::SendMessageRequest,
    ) -> Result<pb::Message, Status> {
        self.messages().send_message(authed(&sender.key, request)).await.map(|r| r.into_inner())
    }

    pub async fn get_conversation(&self, user: &TestUser, id: &str) -> Result<pb::Conversation, Status> {
        self.conversations()
            .get_conversation(authed(&user.key, pb::GetConversationRequest { id: id.into(), view: 0 }))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn unread_result(&self, user: &TestUser) -> Result<pb::GetUnreadCountResponse, Status> {
        self.conversations()
            .get_unread_count(authed(&user.key, pb::GetUnreadCountRequest {}))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn unread(&self, user: &TestUser) -> (i64, i64) {
        let counts = self
            .conversations()
            .get_unread_count(authed(&user.key, pb::GetUnreadCountRequest {}))
            .await
            .expect("unread count")
            .into_inner();
        (counts.unread_count, counts.conversations_with_unread)
    }

    /// Asserts that every stored unread counter equals a recount from the messages.
    pub async fn assert_no_unread_drift(&self) {
        let drift = missive::store::unread::drift(&self.store, &self.account_id).await.expect("recount");
        assert!(drift.is_empty(), "unread counters drifted: {drift:?}");
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the server stops in time")
                .expect("clean stop");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A private note request (staff only).
pub fn note(conversation_id: &str, content: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest { private: true, ..text(conversation_id, content) }
}

/// A text message request.
pub fn text(conversation_id: &str, content: &str) -> pb::SendMessageRequest {
    pb::SendMessageRequest { conversation_id: conversation_id.into(), content: content.into(), ..Default::default() }
}

/// Asserts a status code, and returns the status for further checks.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The fields a status's google.rpc.BadRequest names.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT naming exactly `field` among its violations.
#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = assert_code(result, Code::InvalidArgument);
    let fields = violated_fields(&status);
    assert!(fields.iter().any(|f| f == field), "expected a violation of {field}, got {fields:?} ({status:?})");
}

/// A response timestamp in microseconds, for comparisons.
pub fn micros(timestamp: Option<prost_types::Timestamp>) -> i64 {
    let timestamp = timestamp.expect("a timestamp");
    timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1_000)
}
