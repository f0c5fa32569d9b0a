//! Black-box tests: a real server on 127.0.0.1:0 over a fresh database per test (SQLite by
//! default, PostgreSQL when MISSIVE_TEST_DATABASE_URL names one), driven by the generated
//! tonic clients.

mod admin;
mod authorization;
mod authorization_table;
mod budgets;
mod channels;
mod cli;
mod conversations;
mod durability;
mod errors;
mod events;
mod faults;
mod files;
mod helpers;
mod idempotency;
mod limits;
mod messages;
mod metrics;
mod notifications;
mod operations;
mod pagination;
mod power;
mod presence;
mod profiles;
mod properties;
mod raw_codec;
mod relays;
mod replicas;
mod reports;
mod scheduled;
mod search;
mod sharding;
mod statements;
#[path = "../support/mod.rs"]
mod support;
mod templates;
mod tls;
mod tokens;
mod unread;
mod validation;
