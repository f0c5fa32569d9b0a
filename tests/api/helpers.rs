//! Spawns a real server over a fresh database and gives tests per-user clients.
//!
//! Server logs: set `TEST_LOG=1` (any non-empty value) to print the server's tracing output
//! with the test's output (`RUST_LOG` picks the filter, "info,sqlx=warn,sea_orm=warn" by
//! default), e.g. `TEST_LOG=1 cargo test --test api some_test -- --nocapture`. Without it,
//! nothing is logged.
//!
//! This file is the only one that touches the crate's internals (`missive::store`,
//! `missive::domain`, `missive::config`, `missive::server`, `missive::events`): the other
//! test files speak to the server through its gRPC API, with [`Session`], and call the
//! helpers below for the little they need from inside (a second account, the stream
//! statistics, the unread recount).

use std::{
    io::IsTerminal,
    process::Stdio,
    sync::{Arc, Once, atomic::Ordering},
    time::Duration,
};

use missive::{
    api::pb::{
        self, admin_service_client::AdminServiceClient, conversation_service_client::ConversationServiceClient,
        event_service_client::EventServiceClient, message_service_client::MessageServiceClient,
        notification_service_client::NotificationServiceClient, relay_service_client::RelayServiceClient,
        report_service_client::ReportServiceClient, scheduled_message_service_client::ScheduledMessageServiceClient,
        template_service_client::TemplateServiceClient,
    },
    config::Config,
    domain::users::{NewUser, Role},
    events::{StreamSettings, StreamStats},
    server::Application,
    store::{self, Store},
};
use sea_orm::{ConnectionTrait, Database};
use tokio::{
    process::{Child, Command},
    sync::oneshot,
    task::JoinHandle,
};
use tonic::{
    Code, Request, Status, Streaming,
    transport::{Channel, Endpoint},
};

/// Installs the tracing subscriber once per test binary: the statement recorder
/// (`statements.rs`), and a log to the test's output when TEST_LOG is set.
fn init_test_log() {
    use tracing_subscriber::{Layer, filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    static TEST_LOG: Once = Once::new();
    TEST_LOG.call_once(|| {
        let log = std::env::var("TEST_LOG").is_ok_and(|value| !value.is_empty()).then(|| {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_ansi(std::io::stdout().is_terminal())
                .with_filter(filter)
        });
        let statements = Targets::new().with_target(missive::store::STATEMENTS, tracing::Level::TRACE);
        let _ = tracing_subscriber::registry()
            .with(log)
            .with(crate::statements::Recorder.with_filter(statements))
            .try_init();
    });
}

/// A running server with its own database, an account and an admin of that account.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub store: Arc<Store>,
    stream_stats: Arc<StreamStats>,
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
pub async fn fresh_database(dir: &tempfile::TempDir) -> String {
    match std::env::var("MISSIVE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let name = format!("missive_t_{}", uuid::Uuid::now_v7().simple());
            let admin = Database::connect(&url).await.expect("MISSIVE_TEST_DATABASE_URL answers");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
            admin.close().await.ok();
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            format!("{base}/{name}")
        }
        _ => sqlite_file(dir),
    }
}

/// MISSIVE_TEST_DATABASE_URL, for a test that needs PostgreSQL. Such tests are ignored
/// (`#[ignore = "needs PostgreSQL…"]`), so that a run without it shows them skipped; the
/// PostgreSQL pass runs them with `-- --include-ignored`. Run without PostgreSQL, one fails
/// here rather than pass having tested nothing.
pub fn postgres_server() -> String {
    match std::env::var("MISSIVE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => url,
        _ => panic!(
            "this test needs PostgreSQL: set MISSIVE_TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB \
             (without it the test is ignored, unless asked for with --include-ignored or --ignored)"
        ),
    }
}

/// A new SQLite file in `dir`, for the tests about SQLite itself: they use one in the
/// PostgreSQL pass too.
pub fn sqlite_file(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("missive.db").display())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns a server after `configure` adjusted its configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut app = spawn_app_on(&fresh_database(&dir).await, configure).await;
    app._dir = Some(dir);
    app
}

/// Spawns a server on `database_url` (a new database), with an account and its admin.
pub async fn spawn_app_on(database_url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut app = TestApp::serve_database_with(database_url, configure).await;
    app.account_id = app.create_account("test").await;
    app.admin = app.bootstrap_user(&app.account_id, pb::Role::Admin, "Admin").await;
    app
}

type Started = (Arc<Store>, Arc<StreamStats>, std::net::SocketAddr, JoinHandle<()>, oneshot::Sender<()>);

async fn start(database_url: &str, configure: impl FnOnce(&mut Config)) -> Started {
    init_test_log();
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

/// `message` with `authorization: Bearer <key>`. (Tests that send odd metadata on purpose
/// build their own `Request`.)
fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().expect("ASCII key"));
    request
}

/// One user's client: one method per RPC of every service, each sending the user's key.
/// Methods take the request message, or the few fields of a small request; each returns
/// what the server answered.
#[derive(Clone, Debug)]
pub struct Session {
    key: String,
    channel: Channel,
}

impl Session {
    /// A session over any channel (another server, other HTTP/2 settings).
    pub fn over(channel: Channel, key: &str) -> Session {
        Session { key: key.to_owned(), channel }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        authed(&self.key, message)
    }

    fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    fn conversations(&self) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::new(self.channel.clone())
    }

    fn messages(&self) -> MessageServiceClient<Channel> {
        MessageServiceClient::new(self.channel.clone()).max_decoding_message_size(64 * 1024 * 1024)
    }

    fn templates(&self) -> TemplateServiceClient<Channel> {
        TemplateServiceClient::new(self.channel.clone())
    }

    fn scheduled(&self) -> ScheduledMessageServiceClient<Channel> {
        ScheduledMessageServiceClient::new(self.channel.clone())
    }

    fn reports(&self) -> ReportServiceClient<Channel> {
        ReportServiceClient::new(self.channel.clone())
    }

    fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel.clone())
    }

    // ReportService.

    pub async fn report(
        &self,
        message_id: &str,
        reason: pb::ReportReason,
        details: &str,
    ) -> Result<pb::Report, Status> {
        let request =
            pb::CreateReportRequest { message_id: message_id.into(), reason: reason as i32, details: details.into() };
        self.reports().create_report(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn get_report(&self, id: &str) -> Result<pb::Report, Status> {
        let request = pb::GetReportRequest { id: id.into() };
        self.reports().get_report(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn list_reports(&self, request: pb::ListReportsRequest) -> Result<pb::ListReportsResponse, Status> {
        self.reports().list_reports(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn resolve_report(&self, id: &str, action: pb::ReportAction, note: &str) -> Result<pb::Report, Status> {
        let request = pb::ResolveReportRequest { id: id.into(), action: action as i32, note: note.into() };
        self.reports().resolve_report(self.request(request)).await.map(|r| r.into_inner())
    }

    // NotificationService.

    pub async fn list_notifications(
        &self,
        request: pb::ListNotificationsRequest,
    ) -> Result<pb::ListNotificationsResponse, Status> {
        self.notifications().list_notifications(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn notification_count(&self) -> Result<pb::NotificationCount, Status> {
        let request = pb::GetNotificationCountRequest {};
        self.notifications().get_notification_count(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn mark_notification_read(&self, id: &str) -> Result<pb::Notification, Status> {
        let request = pb::MarkNotificationReadRequest { id: id.into() };
        self.notifications().mark_notification_read(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn mark_all_notifications_read(&self) -> Result<i64, Status> {
        let request = pb::MarkAllNotificationsReadRequest {};
        self.notifications().mark_all_notifications_read(self.request(request)).await.map(|r| r.into_inner().marked)
    }

    // TemplateService.

    pub async fn create_template(&self, template: pb::Template) -> Result<pb::Template, Status> {
        self.create_template_request(pb::CreateTemplateRequest { template: Some(template), request_id: String::new() })
            .await
    }

    pub async fn create_template_request(&self, request: pb::CreateTemplateRequest) -> Result<pb::Template, Status> {
        self.templates().create_template(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn get_template(&self, id: &str) -> Result<pb::Template, Status> {
        let request = pb::GetTemplateRequest { id: id.into() };
        self.templates().get_template(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn list_templates(&self, request: pb::ListTemplatesRequest) -> Result<pb::ListTemplatesResponse, Status> {
        self.templates().list_templates(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn update_template(&self, template: pb::Template, paths: &[&str]) -> Result<pb::Template, Status> {
        let update_mask = Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() });
        let request = pb::UpdateTemplateRequest { template: Some(template), update_mask };
        self.templates().update_template(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn delete_template(&self, id: &str) -> Result<(), Status> {
        let request = pb::DeleteTemplateRequest { id: id.into() };
        self.templates().delete_template(self.request(request)).await.map(|_| ())
    }

    pub async fn render_template(
        &self,
        id: &str,
        variables: &[(&str, &str)],
    ) -> Result<pb::RenderTemplateResponse, Status> {
        let variables = variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let request = pb::RenderTemplateRequest { template_id: id.into(), variables };
        self.templates().render_template(self.request(request)).await.map(|r| r.into_inner())
    }

    // ScheduledMessageService.

    pub async fn get_scheduled(&self, id: &str) -> Result<pb::Message, Status> {
        let request = pb::GetScheduledMessageRequest { id: id.into() };
        self.scheduled().get_scheduled_message(self.request(request)).await.map(|r| r.into_inner())
    }

    /// The caller's scheduled messages (in `conversation_id` when not empty), one page of 1000.
    pub async fn list_scheduled(&self, conversation_id: &str) -> Result<Vec<pb::Message>, Status> {
        let request = pb::ListScheduledMessagesRequest {
            conversation_id: conversation_id.into(),
            page_size: 1000,
            ..Default::default()
        };
        self.scheduled().list_scheduled_messages(self.request(request)).await.map(|r| r.into_inner().messages)
    }

    pub async fn update_scheduled(&self, message: pb::Message, paths: &[&str]) -> Result<pb::Message, Status> {
        let update_mask = Some(prost_types::FieldMask { paths: paths.iter().map(|p| p.to_string()).collect() });
        let request = pb::UpdateScheduledMessageRequest { message: Some(message), update_mask };
        self.scheduled().update_scheduled_message(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn cancel_scheduled(&self, id: &str) -> Result<pb::Message, Status> {
        let request = pb::CancelScheduledMessageRequest { id: id.into() };
        self.scheduled().cancel_scheduled_message(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn send_scheduled_now(&self, id: &str) -> Result<pb::Message, Status> {
        let request = pb::SendScheduledMessageNowRequest { id: id.into() };
        self.scheduled().send_scheduled_message_now(self.request(request)).await.map(|r| r.into_inner())
    }

    // AdminService.

    pub async fn get_caller(&self) -> Result<pb::User, Status> {
        self.admin().get_caller(self.request(pb::GetCallerRequest {})).await.map(|r| r.into_inner())
    }

    pub async fn create_user(&self, request: pb::CreateUserRequest) -> Result<pb::User, Status> {
        self.admin().create_user(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn get_user(&self, id: &str) -> Result<pb::User, Status> {
        self.admin().get_user(self.request(pb::GetUserRequest { id: id.into() })).await.map(|r| r.into_inner())
    }

    pub async fn list_users(&self, request: pb::ListUsersRequest) -> Result<pb::ListUsersResponse, Status> {
        self.admin().list_users(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn update_user(&self, request: pb::UpdateUserRequest) -> Result<pb::User, Status> {
        self.admin().update_user(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn create_api_key(&self, user_id: &str, name: &str) -> Result<pb::CreateApiKeyResponse, Status> {
        let request = pb::CreateApiKeyRequest { user_id: user_id.into(), name: name.into() };
        self.admin().create_api_key(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn list_api_keys(&self, request: pb::ListApiKeysRequest) -> Result<pb::ListApiKeysResponse, Status> {
        self.admin().list_api_keys(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<pb::ApiKey, Status> {
        self.admin()
            .revoke_api_key(self.request(pb::RevokeApiKeyRequest { id: id.into() }))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn deactivate_user(&self, id: &str) -> Result<pb::User, Status> {
        let request = self.request(pb::DeactivateUserRequest { id: id.into() });
        self.admin().deactivate_user(request).await.map(|r| r.into_inner())
    }

    pub async fn reactivate_user(&self, id: &str) -> Result<pb::User, Status> {
        let request = self.request(pb::ReactivateUserRequest { id: id.into() });
        self.admin().reactivate_user(request).await.map(|r| r.into_inner())
    }

    /// A token for `user_id` working `ttl` (the server's default when `None`).
    pub async fn create_user_token(
        &self,
        user_id: &str,
        ttl: Option<Duration>,
    ) -> Result<pb::CreateUserTokenResponse, Status> {
        let ttl =
            ttl.map(|ttl| prost_types::Duration { seconds: ttl.as_secs() as i64, nanos: ttl.subsec_nanos() as i32 });
        let request = self.request(pb::CreateUserTokenRequest { user_id: user_id.into(), ttl });
        self.admin().create_user_token(request).await.map(|r| r.into_inner())
    }

    pub async fn rotate_user_token_secret(&self) -> Result<pb::RotateUserTokenSecretResponse, Status> {
        let request = self.request(pb::RotateUserTokenSecretRequest {});
        self.admin().rotate_user_token_secret(request).await.map(|r| r.into_inner())
    }

    // ConversationService.

    pub async fn create_conversation(
        &self,
        request: pb::CreateConversationRequest,
    ) -> Result<pb::CreateConversationResponse, Status> {
        self.conversations().create_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    /// GetConversation in the default (basic) view.
    pub async fn get_conversation(&self, id: &str) -> Result<pb::Conversation, Status> {
        self.get_conversation_in(id, pb::View::Unspecified).await
    }

    /// GetConversation in `view`.
    pub async fn get_conversation_in(&self, id: &str, view: pb::View) -> Result<pb::Conversation, Status> {
        let request = pb::GetConversationRequest { id: id.into(), view: view as i32 };
        self.conversations().get_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn list_conversations(
        &self,
        request: pb::ListConversationsRequest,
    ) -> Result<pb::ListConversationsResponse, Status> {
        self.conversations().list_conversations(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn update_conversation(
        &self,
        request: pb::UpdateConversationRequest,
    ) -> Result<pb::Conversation, Status> {
        self.conversations().update_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn add_participant(
        &self,
        conversation_id: &str,
        user_id: &str,
        label: &str,
    ) -> Result<pb::Conversation, Status> {
        let request = pb::AddParticipantRequest {
            conversation_id: conversation_id.into(),
            participant: Some(pb::NewParticipant { user_id: user_id.into(), label: label.into() }),
        };
        self.conversations().add_participant(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn remove_participant(&self, conversation_id: &str, user_id: &str) -> Result<pb::Conversation, Status> {
        let request = pb::RemoveParticipantRequest { conversation_id: conversation_id.into(), user_id: user_id.into() };
        self.conversations().remove_participant(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn archive_conversation(&self, id: &str) -> Result<pb::Conversation, Status> {
        let request = pb::ArchiveConversationRequest { id: id.into() };
        self.conversations().archive_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn unarchive_conversation(&self, id: &str) -> Result<pb::Conversation, Status> {
        let request = pb::UnarchiveConversationRequest { id: id.into() };
        self.conversations().unarchive_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    /// MarkRead of these messages; no ids marks the whole conversation read.
    pub async fn mark_read(
        &self,
        conversation_id: &str,
        message_ids: &[String],
    ) -> Result<pb::MarkReadResponse, Status> {
        let request =
            pb::MarkReadRequest { conversation_id: conversation_id.into(), message_ids: message_ids.to_vec() };
        self.conversations().mark_read(self.request(request)).await.map(|r| r.into_inner())
    }

    /// MarkRead of the whole conversation.
    pub async fn mark_all_read(&self, conversation_id: &str) -> Result<pb::MarkReadResponse, Status> {
        self.mark_read(conversation_id, &[]).await
    }

    pub async fn get_unread_count(&self) -> Result<pb::GetUnreadCountResponse, Status> {
        self.conversations().get_unread_count(self.request(pb::GetUnreadCountRequest {})).await.map(|r| r.into_inner())
    }

    pub async fn mute(
        &self,
        id: &str,
        expire_time: Option<prost_types::Timestamp>,
    ) -> Result<pb::Conversation, Status> {
        let request = pb::MuteConversationRequest { id: id.into(), expire_time };
        self.conversations().mute_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn unmute(&self, id: &str) -> Result<pb::Conversation, Status> {
        let request = pb::UnmuteConversationRequest { id: id.into() };
        self.conversations().unmute_conversation(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn typing(&self, conversation_id: &str, typing: bool) -> Result<(), Status> {
        let request = pb::SendTypingIndicatorRequest { conversation_id: conversation_id.into(), typing };
        self.conversations().send_typing_indicator(self.request(request)).await.map(|_| ())
    }

    pub async fn delete_conversation(&self, id: &str) -> Result<(), Status> {
        let request = pb::DeleteConversationRequest { id: id.into() };
        self.conversations().delete_conversation(self.request(request)).await.map(|_| ())
    }

    // MessageService.

    pub async fn send_message(&self, request: pb::SendMessageRequest) -> Result<pb::Message, Status> {
        self.messages().send_message(self.request(request)).await.map(|r| r.into_inner())
    }

    /// GetMessage in the default (basic) view.
    pub async fn get_message(&self, id: &str) -> Result<pb::Message, Status> {
        self.get_message_in(id, pb::View::Unspecified).await
    }

    /// GetMessage in `view`.
    pub async fn get_message_in(&self, id: &str, view: pb::View) -> Result<pb::Message, Status> {
        let request = pb::GetMessageRequest { id: id.into(), view: view as i32, depth: None };
        self.messages().get_message(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn list_messages(&self, request: pb::ListMessagesRequest) -> Result<pb::ListMessagesResponse, Status> {
        self.messages().list_messages(self.request(request)).await.map(|r| r.into_inner())
    }

    /// The first page (of the default size) of a conversation's messages, oldest first.
    pub async fn messages_in(&self, conversation_id: &str) -> Result<pb::ListMessagesResponse, Status> {
        self.list_messages(pb::ListMessagesRequest { conversation_id: conversation_id.into(), ..Default::default() })
            .await
    }

    /// Every message of a conversation, oldest first, read `page_size` at a time through
    /// every page.
    pub async fn all_messages_in(&self, conversation_id: &str, page_size: i32) -> Result<Vec<pb::Message>, Status> {
        let mut messages = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .list_messages(pb::ListMessagesRequest {
                    conversation_id: conversation_id.into(),
                    page_size,
                    page_token,
                    ..Default::default()
                })
                .await?;
            messages.extend(page.messages);
            if page.next_page_token.is_empty() {
                return Ok(messages);
            }
            page_token = page.next_page_token;
        }
    }

    pub async fn search(&self, request: pb::SearchMessagesRequest) -> Result<pb::SearchMessagesResponse, Status> {
        self.messages().search_messages(self.request(request)).await.map(|r| r.into_inner())
    }

    /// The ids of every message `query` finds for this caller (with `filters`), newest
    /// first, read `page_size` at a time through every page.
    pub async fn search_all(
        &self,
        query: &str,
        filters: pb::SearchMessagesRequest,
        page_size: i32,
    ) -> Result<Vec<String>, Status> {
        let mut found = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::SearchMessagesRequest { query: query.into(), page_size, page_token, ..filters.clone() };
            let page = self.search(request).await?;
            found.extend(page.hits.into_iter().map(|hit| hit.message.expect("a message").id));
            if page.next_page_token.is_empty() {
                return Ok(found);
            }
            page_token = page.next_page_token;
        }
    }

    pub async fn update_message(&self, request: pb::UpdateMessageRequest) -> Result<pb::Message, Status> {
        self.messages().update_message(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn delete_message(&self, id: &str) -> Result<pb::Message, Status> {
        self.messages()
            .delete_message(self.request(pb::DeleteMessageRequest { id: id.into() }))
            .await
            .map(|r| r.into_inner())
    }

    pub async fn get_attachment(&self, id: &str) -> Result<pb::AttachmentContent, Status> {
        let request = pb::GetAttachmentRequest { id: id.into() };
        self.messages().get_attachment(self.request(request)).await.map(|r| r.into_inner())
    }

    // EventService.

    pub async fn subscribe(&self, request: pb::SubscribeRequest) -> Result<Streaming<pb::Event>, Status> {
        EventServiceClient::new(self.channel.clone()).subscribe(self.request(request)).await.map(|r| r.into_inner())
    }

    /// Subscribes to every event after `after` ("" for live events only).
    pub async fn subscribe_after(&self, after: &str) -> Result<Streaming<pb::Event>, Status> {
        self.subscribe(pb::SubscribeRequest { after: after.into(), ..Default::default() }).await
    }

    // RelayService, and staff's handled marks.

    fn relays(&self) -> RelayServiceClient<Channel> {
        RelayServiceClient::new(self.channel.clone())
    }

    pub async fn report_delivery(&self, request: pb::ReportDeliveryRequest) -> Result<pb::Message, Status> {
        self.relays().report_delivery(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn raw_payload(&self, message_id: &str) -> Result<pb::RawPayload, Status> {
        let request = pb::GetRawPayloadRequest { message_id: message_id.into() };
        self.relays().get_raw_payload(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn add_suppression(&self, suppression: pb::Suppression) -> Result<pb::Suppression, Status> {
        let request = pb::AddSuppressionRequest { suppression: Some(suppression) };
        self.relays().add_suppression(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn remove_suppression(&self, channel: pb::Channel, address: &str) -> Result<(), Status> {
        let request = pb::RemoveSuppressionRequest { channel: channel as i32, address: address.into() };
        self.relays().remove_suppression(self.request(request)).await.map(|_| ())
    }

    pub async fn list_suppressions(
        &self,
        request: pb::ListSuppressionsRequest,
    ) -> Result<pb::ListSuppressionsResponse, Status> {
        self.relays().list_suppressions(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn set_message_handled(&self, id: &str, handled: bool) -> Result<pb::Message, Status> {
        let request = pb::SetMessageHandledRequest { id: id.into(), handled };
        self.messages().set_message_handled(self.request(request)).await.map(|r| r.into_inner())
    }

    pub async fn set_conversation_handled(&self, id: &str, handled: bool) -> Result<pb::Conversation, Status> {
        let request = pb::SetConversationHandledRequest { id: id.into(), handled };
        self.conversations().set_conversation_handled(self.request(request)).await.map(|r| r.into_inner())
    }
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

    /// `user`'s client of this server.
    pub fn session(&self, user: &TestUser) -> Session {
        Session::over(self.channel.clone(), &user.key)
    }

    /// A client with this key (which need not be valid).
    pub fn session_with_key(&self, key: &str) -> Session {
        Session::over(self.channel.clone(), key)
    }

    /// The admin's client.
    pub fn as_admin(&self) -> Session {
        self.session(&self.admin)
    }

    /// A new account made directly in the store (as `missive keys create --new-account`
    /// does); its id.
    pub async fn create_account(&self, name: &str) -> String {
        store::seed::create_account(&self.store, name).await.expect("an account")
    }

    /// A user of any account made directly in the store (as `missive keys create` does),
    /// with a key.
    pub async fn bootstrap_user(&self, account_id: &str, role: pb::Role, name: &str) -> TestUser {
        let role = match role {
            pb::Role::Admin => Role::Admin,
            pb::Role::Agent => Role::Agent,
            pb::Role::Member => Role::Member,
            pb::Role::Unspecified => panic!("a bootstrapped user needs a role"),
        };
        let new = NewUser::parse(Some(role), name.into(), String::new(), String::new(), String::new()).unwrap();
        let user = store::seed::create_user(&self.store, account_id, new).await.expect("a user");
        let key = store::seed::create_key(&self.store, account_id, &user.id, "test").await.expect("a key").secret;
        TestUser { id: user.id, key }
    }

    /// How many files' bytes the account keeps: what the API does not show.
    pub async fn kept_files(&self) -> u64 {
        store::seed::kept_files(&self.store, &self.account_id).await.expect("a count")
    }

    /// An agent of a new account of its own.
    pub async fn other_account_agent(&self) -> TestUser {
        let account_id = self.create_account("Other").await;
        self.bootstrap_user(&account_id, pb::Role::Agent, "Other agent").await
    }

    /// Creates a user through the API, with a key.
    pub async fn user(&self, role: pb::Role, name: &str) -> TestUser {
        let admin = self.as_admin();
        let user = admin
            .create_user(pb::CreateUserRequest {
                user: Some(pb::User { role: role as i32, display_name: name.into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await
            .expect("create user");
        let key = admin.create_api_key(&user.id, name).await.expect("create key").key;
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
        self.session(creator)
            .create_conversation(pb::CreateConversationRequest {
                participants: participants
                    .iter()
                    .map(|(user, label)| pb::NewParticipant { user_id: user.id.clone(), label: (*label).into() })
                    .collect(),
                ..Default::default()
            })
            .await
            .expect("create conversation")
            .conversation
            .expect("a conversation")
    }

    /// Sends a text message.
    pub async fn send(&self, sender: &TestUser, conversation_id: &str, content: &str) -> pb::Message {
        self.session(sender).send_message(text(conversation_id, content)).await.expect("send")
    }

    /// `user`'s (unread messages, conversations with unread messages).
    pub async fn unread(&self, user: &TestUser) -> (i64, i64) {
        let counts = self.session(user).get_unread_count().await.expect("unread count");
        (counts.unread_count, counts.conversations_with_unread)
    }

    /// Asserts that every stored unread counter equals a recount from the messages.
    pub async fn assert_no_unread_drift(&self) {
        let drift = store::seed::unread_drift(&self.store, &self.account_id).await.expect("recount");
        assert!(drift.is_empty(), "unread counters drifted: {drift:?}");
    }

    /// Closes the server's connection pool under it: the database is gone for good.
    pub async fn close_database(&self) {
        self.store.close().await;
    }

    /// Event streams running now.
    pub fn open_streams(&self) -> usize {
        self.stream_stats.active.load(Ordering::Relaxed)
    }

    /// Events handed to the queues of clients' streams, over all streams.
    pub fn events_queued_for_streams(&self) -> u64 {
        self.stream_stats.queued_total.load(Ordering::Relaxed)
    }

    /// The most events ever queued for one stream.
    pub fn peak_stream_queue(&self) -> usize {
        self.stream_stats.peak_queued.load(Ordering::Relaxed)
    }

    /// The bound on one stream's queue (with the default settings).
    pub fn stream_queue_capacity(&self) -> usize {
        StreamSettings::default().queue_capacity
    }

    /// Stops the server the way SIGTERM does, waits `down` and starts a new one on the same
    /// database (its account and admin are the same).
    pub async fn restart_after(mut self, down: Duration) -> TestApp {
        let dir = self._dir.take();
        let (database_url, account_id, admin) =
            (self.database_url.clone(), self.account_id.clone(), self.admin.clone());
        self.shutdown().await;
        tokio::time::sleep(down).await;
        let mut restarted = Self::serve_database(&database_url).await;
        restarted.account_id = account_id;
        restarted.admin = admin;
        restarted._dir = dir;
        restarted
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

/// A free port on the loopback interface, for a child process to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `missive serve` on `database_url` with `flags`, as a separate process, and a channel to
/// it once it answers.
pub async fn serve_in_a_process(database_url: &str, flags: &[&str]) -> (Child, Channel) {
    let port = free_port();
    let child = missive_process(database_url, port, flags);
    (child, connected(Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap()).await)
}

/// `missive serve` on `database_url` and 127.0.0.1:`port` with `flags`, as a separate
/// process (killed when dropped).
pub fn missive_process(database_url: &str, port: u16, flags: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", database_url])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the missive binary starts")
}

/// A channel through `endpoint` once a server answers there.
pub async fn connected(endpoint: Endpoint) -> Channel {
    for _ in 0..200 {
        if let Ok(channel) = endpoint.connect().await {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the missive process did not start listening");
}

/// How long a test waits for an event.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits until `condition` holds, looking every 20 ms; fails naming `what` after `within`.
/// For synchronising on a state a test can see, instead of sleeping and hoping.
pub async fn wait_until(what: &str, within: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next `count` changes of resources: events that are not heartbeats, notifications
/// (which every send makes for its recipients) or signals (presence, typing, which come
/// as streams open and close). `next_of_type` reads those.
pub async fn next_events(stream: &mut Streaming<pb::Event>, count: usize) -> Vec<pb::Event> {
    let aside =
        [pb::EventType::Heartbeat, pb::EventType::Notification, pb::EventType::PresenceChanged, pb::EventType::Typing];
    next_matching(stream, count, |event| !aside.iter().any(|kind| event.r#type == *kind as i32)).await
}

/// The next `count` events of type `kind`, skipping the others.
pub async fn next_of_type(stream: &mut Streaming<pb::Event>, kind: pb::EventType, count: usize) -> Vec<pb::Event> {
    next_matching(stream, count, |event| event.r#type == kind as i32).await
}

async fn next_matching(
    stream: &mut Streaming<pb::Event>,
    count: usize,
    wanted: impl Fn(&pb::Event) -> bool,
) -> Vec<pb::Event> {
    let mut events = Vec::new();
    while events.len() < count {
        let event = tokio::time::timeout(WAIT, stream.message())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events", events.len()))
            .expect("a healthy stream")
            .expect("an open stream");
        if wanted(&event) {
            events.push(event);
        }
    }
    events
}

/// The timestamp `from_now` ahead of now.
pub fn in_future(from_now: Duration) -> prost_types::Timestamp {
    let at = std::time::SystemTime::now() + from_now;
    let since_epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap();
    prost_types::Timestamp { seconds: since_epoch.as_secs() as i64, nanos: since_epoch.subsec_nanos() as i32 }
}

/// A response timestamp in microseconds, for comparisons.
pub fn micros(timestamp: Option<prost_types::Timestamp>) -> i64 {
    let timestamp = timestamp.expect("a timestamp");
    timestamp.seconds * 1_000_000 + i64::from(timestamp.nanos / 1_000)
}

/// Every change a stream replays before the heartbeat that says it caught up (a stream
/// opened after a cursor), signals and notifications left out.
pub async fn events_until_heartbeat(stream: &mut Streaming<pb::Event>) -> Vec<pb::Event> {
    let aside = [pb::EventType::Notification, pb::EventType::PresenceChanged, pb::EventType::Typing];
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Ok(Ok(Some(event))) if event.r#type == pb::EventType::Heartbeat as i32 => return events,
            Ok(Ok(Some(event))) if aside.iter().any(|kind| event.r#type == *kind as i32) => {}
            Ok(Ok(Some(event))) => events.push(event),
            other => panic!("the stream ended before catching up: {other:?}"),
        }
    }
}
