//! What operators and tools rely on: health, reflection, grpc-web, graceful shutdown.

use std::time::Duration;

use missive::api::pb;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, TransactionTrait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::helpers::{Session, TestApp, assert_code, serve_in_a_process, spawn_app, spawn_app_with, text};

#[tokio::test]
async fn the_health_service_reports_serving() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.channel.clone());

    for service in ["", "missive.v1.MessageService", "missive.v1.ConversationService"] {
        let response = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service}");
    }
}

/// The server's overall health status.
async fn health_status(app: &TestApp) -> ServingStatus {
    let response = HealthClient::new(app.channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .expect("the health service answers")
        .into_inner();
    ServingStatus::try_from(response.status).expect("a known status")
}

/// Waits until the health service reports `expected`.
async fn await_health(app: &TestApp, expected: ServingStatus) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = health_status(app).await;
        if status == expected {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "health still reports {status:?}, not {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn health_follows_the_database_and_calls_without_it_are_unavailable() {
    let app = spawn_app_with(|config| config.health_check_interval = Duration::from_millis(100)).await;
    let member = app.member("member").await;
    assert_eq!(health_status(&app).await, ServingStatus::Serving);

    // The database goes away (its pool is closed under the server).
    app.close_database().await;

    await_health(&app, ServingStatus::NotServing).await;
    let unavailable = app.session(&member).get_unread_count().await;
    let status = assert_code(unavailable, tonic::Code::Unavailable);
    assert!(!status.message().contains("pool"), "the cause stays in the log: {status:?}");
}

/// Makes the server's database unable to answer a read of `accounts` until released, from
/// a connection of the test's own.
///
/// On PostgreSQL a transaction holds `LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE`: every
/// read of the table waits (hangs) until it commits. SQLite in WAL mode has no lock that
/// stops readers while the server's connections are open (`PRAGMA locking_mode=EXCLUSIVE`
/// then gets "database is locked" itself), so there the table is renamed away and back:
/// every read of it fails until then.
enum Outage {
    Postgres { _db: DatabaseConnection, lock: DatabaseTransaction },
    Sqlite { db: rusqlite::Connection },
}

impl Outage {
    async fn begin(database_url: &str) -> Outage {
        if database_url.starts_with("postgres") {
            let db = Database::connect(database_url).await.expect("the test's own connection");
            let lock = db.begin().await.expect("a transaction");
            lock.execute_unprepared("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE").await.expect("the table lock");
            Outage::Postgres { _db: db, lock }
        } else {
            let path = database_url.trim_start_matches("sqlite:");
            let db = rusqlite::Connection::open(path).expect("the test's own connection");
            db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            db.execute_batch("ALTER TABLE accounts RENAME TO accounts_away").expect("rename away");
            Outage::Sqlite { db }
        }
    }

    async fn end(self) {
        match self {
            Outage::Postgres { _db, lock } => lock.commit().await.expect("release the lock"),
            Outage::Sqlite { db } => {
                db.execute_batch("ALTER TABLE accounts_away RENAME TO accounts").expect("rename back");
                db.close().expect("close the test's connection");
            }
        }
    }
}

#[tokio::test]
async fn health_reports_not_serving_while_the_database_cannot_answer_and_serving_once_it_can() {
    let app = spawn_app_with(|config| config.health_check_interval = Duration::from_millis(100)).await;
    let member = app.member("member").await;
    await_health(&app, ServingStatus::Serving).await;

    let outage = Outage::begin(&app.database_url).await;
    await_health(&app, ServingStatus::NotServing).await;

    outage.end().await;
    await_health(&app, ServingStatus::Serving).await;
    assert_eq!(app.unread(&member).await, (0, 0), "calls are served again");
}

#[tokio::test]
async fn reflection_lists_every_service() {
    let app = spawn_app().await;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };

    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let response = responses.next().await.unwrap().unwrap();

    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("{response:?}") };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    for expected in [
        "grpc.health.v1.Health",
        "missive.v1.AdminService",
        "missive.v1.ConversationService",
        "missive.v1.EventService",
        "missive.v1.MessageService",
    ] {
        assert!(names.contains(&expected.to_string()), "{expected} missing from {names:?}");
    }
}

#[tokio::test]
async fn a_browser_can_call_over_grpc_web() {
    let app = spawn_app().await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // An empty HealthCheckRequest in one grpc-web frame: flag 0, length 0.
    let request = format!(
        "POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: {}\r\ncontent-type: application/grpc-web+proto\r\n\
         x-grpc-web: 1\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
        app.addr
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(&[0, 0, 0, 0, 0]).await.unwrap();

    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&response);

    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("application/grpc-web"), "{response}");
    assert!(response.contains("grpc-status:0"), "the trailer frame carries an OK status: {response}");
}

/// Asserts that `end` is the UNAVAILABLE a stream cut by shutdown ends with.
#[track_caller]
fn assert_shutting_down<T: std::fmt::Debug>(end: Result<T, tonic::Status>) {
    use tonic_types::StatusExt;
    let status = assert_code(end, tonic::Code::Unavailable);
    assert!(status.message().contains("shutting down"), "{status:?}");
    let reason = status.get_details_error_info().map(|info| info.reason);
    assert_eq!(reason.as_deref(), Some("SERVER_SHUTTING_DOWN"), "{status:?}");
}

#[tokio::test]
async fn shutdown_ends_open_streams_unavailable_and_in_time() {
    let app = spawn_app().await;
    let member = app.member("member").await;
    let mut stream = app.session(&member).subscribe(pb::SubscribeRequest::default()).await.unwrap();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.r#type, pb::EventType::Heartbeat as i32);

    let started = std::time::Instant::now();
    app.shutdown().await;

    // Not a clean end (OK), which a client would take for the end of the events.
    let end = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.expect("the stream ends");
    assert_shutting_down(end);
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// SIGTERM with a `Subscribe` stream and a health `Watch` open on the process: the stream
/// ends UNAVAILABLE (the client resumes from its cursor), the watch hears NOT_SERVING and
/// ends too, and the process exits well within its grace period, held by neither.
#[tokio::test]
async fn sigterm_ends_streams_and_health_watches_and_the_process_exits_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let database = crate::helpers::fresh_database(&dir).await;
    let key = create_key(&database, "member");
    let grace = Duration::from_secs(10);
    let (mut server, channel) = serve_in_a_process(&database, &["--shutdown-grace", "10s"]).await;
    let mut stream = Session::over(channel.clone(), &key).subscribe(pb::SubscribeRequest::default()).await.unwrap();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.r#type, pb::EventType::Heartbeat as i32);
    let request = HealthCheckRequest { service: String::new() };
    let mut watch = HealthClient::new(channel).watch(request).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, ServingStatus::Serving as i32);

    let started = std::time::Instant::now();
    let pid = server.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());

    let end = tokio::time::timeout(grace, stream.message()).await.expect("the stream ends within the grace");
    assert_shutting_down(end);
    let told = tokio::time::timeout(grace, watch.message()).await.expect("the watch hears of it");
    assert_eq!(told.unwrap().map(|response| response.status), Some(ServingStatus::NotServing as i32));
    assert_shutting_down(tokio::time::timeout(grace, watch.message()).await.expect("the watch ends"));
    let exit = tokio::time::timeout(grace, server.wait()).await.expect("the process exits").unwrap();
    let took = started.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    // Held by an open call, the process would wait out the grace period (10 s).
    assert!(took < Duration::from_secs(3), "exited {took:?} after SIGTERM");
}

/// The `missive` binary serving `database` on a free port, once it accepts connections.
async fn start_binary(database: &str) -> (tokio::process::Child, u16) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let server = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database-url", database])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the server did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, port)
}

fn create_key(database: &str, role: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["keys", "create", "--role", role, "--database-url", database])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test]
async fn the_binary_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("missive.db").display());
    let (mut server, _) = start_binary(&database).await;

    let pid = server.id().unwrap().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());

    let status = tokio::time::timeout(Duration::from_secs(15), server.wait()).await.expect("stops in time").unwrap();
    assert!(status.success(), "exit status {status:?}");
}

async fn connect(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.unwrap()
}

/// A message is committed before SendMessage answers: the process is SIGKILLed right after
/// the last answer, with no chance to finish anything it deferred, and every acknowledged
/// message is there after a restart, and nothing else. A killed process cannot tell the
/// SQLite `synchronous` setting apart (the OS still writes out what was committed; only an
/// OS crash or power loss can): the unit test in `store` proves that setting.
#[tokio::test]
async fn every_acknowledged_message_was_committed_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("missive.db").display());
    let admin_key = create_key(&database, "admin");
    let (mut server, port) = start_binary(&database).await;
    let admin = Session::over(connect(port).await, &admin_key);
    let conversation =
        admin.create_conversation(pb::CreateConversationRequest::default()).await.unwrap().conversation.unwrap();
    let mut acknowledged = Vec::new();
    for index in 0..20 {
        acknowledged.push(admin.send_message(text(&conversation.id, &format!("m{index}"))).await.unwrap().id);
    }

    server.kill().await.unwrap();
    let (_restarted, port) = start_binary(&database).await;

    let admin = Session::over(connect(port).await, &admin_key);
    let listed = admin.messages_in(&conversation.id).await.unwrap();
    assert_eq!(listed.total_size, 20, "exactly the acknowledged messages");
    assert_eq!(listed.messages.into_iter().map(|m| m.id).collect::<Vec<_>>(), acknowledged);
    assert!(listed.next_page_token.is_empty(), "nothing on a further page");
}

#[tokio::test]
async fn a_bad_flag_value_exits_non_zero_naming_the_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["--heartbeat-interval", "soon"])
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--heartbeat-interval"), "{stderr}");
}

#[tokio::test]
async fn keys_create_prints_only_a_working_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite:{}", dir.path().join("missive.db").display());
    let create = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
            .args(["keys", "create", "--database-url", &database])
            .args(extra)
            .output()
            .unwrap()
    };

    let admin = create(&[]);
    let agent = create(&["--role", "agent"]);
    let elsewhere = create(&["--new-account", "--account-name", "second tenant"]);
    let ambiguous = create(&[]);

    assert!(admin.status.success() && agent.status.success() && elsewhere.status.success());
    assert!(!ambiguous.status.success(), "two accounts: the command must be told which");
    assert!(String::from_utf8_lossy(&ambiguous.stderr).contains("--account"));
    let admin_key = String::from_utf8(admin.stdout).unwrap();
    let agent_key = String::from_utf8(agent.stdout).unwrap();
    let elsewhere_key = String::from_utf8(elsewhere.stdout).unwrap();
    assert_eq!(admin_key.lines().count(), 1, "only the key on stdout: {admin_key:?}");
    let app = crate::helpers::TestApp::serve_database(&database).await;
    let whoami = |key: String| {
        let session = app.session_with_key(key.trim());
        async move { session.get_caller().await.unwrap() }
    };
    let (admin_user, agent_user) = (whoami(admin_key).await, whoami(agent_key).await);
    assert_eq!((admin_user.role, admin_user.display_name.as_str()), (pb::Role::Admin as i32, "Admin"));
    assert_eq!((agent_user.role, agent_user.display_name.as_str()), (pb::Role::Agent as i32, "Agent"));
    assert_eq!(admin_user.account_id, agent_user.account_id, "the second key joins the database's only account");
    assert_ne!(whoami(elsewhere_key).await.account_id, admin_user.account_id);
}

#[tokio::test]
async fn replicas_started_together_on_a_new_database_all_serve() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database(&dir).await;
    let ports: Vec<u16> = (0..3).map(|_| crate::helpers::free_port()).collect();

    // The same moment, the same empty database: one migrates, the others wait for it.
    let mut replicas: Vec<_> =
        ports.iter().map(|&port| crate::helpers::missive_process(&database_url, port, &[])).collect();

    for &port in &ports {
        let endpoint = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
        let channel = crate::helpers::connected(endpoint).await;
        let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
        assert_eq!(answer.expect("health answers").into_inner().status, ServingStatus::Serving as i32);
    }
    for replica in &mut replicas {
        assert!(replica.try_wait().unwrap().is_none(), "every replica is still running");
    }
}

/// A TCP relay to PostgreSQL that can be cut: while cut, its port refuses connections and
/// every relayed connection is gone, as when PostgreSQL is stopped or its host is away.
struct Relay {
    listen: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay { listen: listener.local_addr().unwrap(), upstream, tasks: Default::default() };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (upstream, tasks) = (self.upstream, std::sync::Arc::clone(&self.tasks));
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relayed = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(relayed.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accepting.abort_handle());
    }

    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn mend(&self) {
        self.serve(tokio::net::TcpListener::bind(self.listen).await.unwrap());
    }
}

/// PostgreSQL only: while PostgreSQL cannot be reached (connections refused, the open ones
/// gone), calls made once health says NOT_SERVING are refused UNAVAILABLE at once instead
/// of each waiting out the pool's acquire timeout; the service serves again when it ends.
#[tokio::test]
#[ignore = "needs PostgreSQL: MISSIVE_TEST_DATABASE_URL=postgres://… and --include-ignored"]
async fn calls_while_postgres_is_unreachable_are_refused_at_once() {
    crate::helpers::postgres_server();
    let dir = tempfile::tempdir().unwrap();
    let direct = crate::helpers::fresh_database(&dir).await;
    let address = url::Url::parse(&direct).unwrap();
    let upstream = tokio::net::lookup_host((address.host_str().unwrap(), address.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    let relay = Relay::start(upstream).await;
    let mut relayed = address.clone();
    relayed.set_host(Some("127.0.0.1")).unwrap();
    relayed.set_port(Some(relay.listen.port())).unwrap();
    let app = crate::helpers::spawn_app_on(relayed.as_str(), |_| {}).await;
    let member = app.member("member").await;

    relay.cut();
    await_health(&app, ServingStatus::NotServing).await;
    // The second failed probe in a row switches refusals on: at most one more interval.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut slow = Vec::new();
    for _ in 0..24 {
        let started = std::time::Instant::now();
        assert_code(app.session(&member).get_unread_count().await, tonic::Code::Unavailable);
        slow.extend(Some(started.elapsed()).filter(|took| *took > Duration::from_millis(500)));
    }
    relay.mend().await;
    assert!(slow.is_empty(), "{} of 24 refusals took over 500 ms: {slow:?}", slow.len());
    await_health(&app, ServingStatus::Serving).await;
    assert_eq!(app.unread(&member).await, (0, 0), "calls are served again");
}
