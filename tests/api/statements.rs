//! The statements the servers of this test binary send to the database, as the store logs
//! them (`missive::sql`), recorded while a test asks for them; and the rule that makes an
//! account-sharded deployment (Citus) possible: every statement on an account's tables names
//! the account, so that it can go to that account's shard alone.

use std::{
    collections::BTreeSet,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tracing::{Event, Subscriber, field::Visit};
use tracing_subscriber::{Layer, layer::Context};

/// Tests recording now (recording is on while any is).
static RECORDING: AtomicUsize = AtomicUsize::new(0);
static RECORDED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Records the `sql` of every statement event while recording is on.
pub struct Recorder;

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if RECORDING.load(Ordering::Relaxed) == 0 || event.metadata().target() != missive::store::STATEMENTS {
            return;
        }
        struct Sql(Option<String>);
        impl Visit for Sql {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "sql" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut sql = Sql(None);
        event.record(&mut sql);
        if let Some(sql) = sql.0 {
            RECORDED.lock().unwrap().insert(sql);
        }
    }
}

/// Records statements until the returned guard is dropped.
pub fn record() -> Recording {
    RECORDING.fetch_add(1, Ordering::SeqCst);
    Recording
}

pub struct Recording;

impl Recording {
    /// Every distinct statement recorded so far (by any test recording meanwhile).
    pub fn statements(&self) -> BTreeSet<String> {
        RECORDED.lock().unwrap().clone()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tables with one row per something of an account: sharded by `account_id` (`accounts`
/// by its `id`).
const ACCOUNT_TABLES: &[&str] = &[
    "accounts",
    "api_keys",
    "attachments",
    "conversations",
    "event_retention",
    "events",
    "message_reads",
    "messages",
    "notifications",
    "participants",
    "presence",
    "reports",
    "scheduled_attachments",
    "scheduled_messages",
    "templates",
    "users",
];

/// Statements that do not name an account, each on purpose (a piece of each, and why):
/// how an account is found, or background work over every account, which a sharded
/// database runs on every shard.
pub const ACROSS_ACCOUNTS: &[(&str, &str)] = &[
    ("\"api_keys\".\"key_hash\" =", "authentication: a key is how its account is found"),
    ("SELECT id FROM accounts LIMIT 1", "the health probe: is the database there at all"),
    ("FROM \"events\" WHERE \"events\".\"create_time\" <", "retention: which accounts have expired events"),
    ("AND \"scheduled_messages\".\"schedule_time\" <=", "delivery: which messages of any account are due"),
    ("SELECT DISTINCT \"scheduled_messages\".\"account_id\"", "retention: which accounts have old failed messages"),
    ("DELETE FROM \"presence\" WHERE \"presence\".\"renew_time\" <", "presence: leases of replicas that stopped"),
    ("NOT IN (SELECT \"user_id\" FROM \"presence\")", "presence: users of any account left without a lease"),
    ("UPDATE \"users\" SET \"online\"", "presence: a replica's changes, batched over accounts"),
    ("DELETE FROM \"presence\" WHERE \"presence\".\"replica_id\" =", "presence: a replica's leases, over accounts"),
];

/// The account-tables a statement reads or writes.
pub fn tables_of(sql: &str) -> Vec<&'static str> {
    ACCOUNT_TABLES
        .iter()
        .copied()
        .filter(|table| {
            [
                format!("FROM \"{table}\""),
                format!("FROM {table} "),
                format!("INTO \"{table}\""),
                format!("UPDATE \"{table}\""),
                format!("JOIN \"{table}\""),
                format!("FROM {table}\n"),
            ]
            .iter()
            .any(|needle| sql.contains(needle.as_str()))
        })
        .collect()
}

/// Whether a statement names its account: an insert of a row with `account_id`, or a
/// condition on it (on `id` for `accounts`).
pub fn names_its_account(sql: &str) -> bool {
    sql.contains("\"account_id\" =")
        || sql.contains("account_id = $")
        || sql.contains("account_id = ?")
        || sql.contains("\"account_id\" IN")
        || (sql.starts_with("INSERT") && sql.contains("\"account_id\""))
        || sql.contains("\"accounts\".\"id\" =")
        || sql.starts_with("INSERT INTO \"accounts\" (\"id\"")
}
