//! Missive's database schema as sea-orm migrations, one file per migration, each with a
//! `down`. The server runs [`Migrator::up`] at start-up, so a fresh database is usable at
//! once.
//!
//! Conventions every table follows: ids are prefixed, time-ordered strings; times are
//! microseconds since the Unix epoch in a BIGINT (the same on SQLite and PostgreSQL, and
//! exact); every row carries `account_id`, the tenant and future shard key.

pub use sea_orm_migration::prelude::*;

mod counter;
mod ddl;
mod m20261121_000001_create_schema;
mod m20261123_000001_account_conversation_count;
mod m20261123_000002_conversation_note_count;
mod m20261124_000001_templates;
mod m20261124_000002_message_channels;
mod m20261124_000003_scheduled_messages;
mod m20261202_000001_request_fingerprints;
mod m20261202_000002_account_event_sequences;
mod m20261202_000003_user_tokens;
mod m20261203_000001_safety_and_attention;
mod m20261204_000001_concurrent_event_log;
mod m20261206_000001_wide_attachment_positions;
mod m20261206_000002_message_search;
mod m20261207_000001_relays;
mod m20261207_000002_attachment_blobs;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_schema::Migration),
            Box::new(m20261123_000001_account_conversation_count::Migration),
            Box::new(m20261123_000002_conversation_note_count::Migration),
            Box::new(m20261124_000001_templates::Migration),
            Box::new(m20261124_000002_message_channels::Migration),
            Box::new(m20261124_000003_scheduled_messages::Migration),
            Box::new(m20261202_000001_request_fingerprints::Migration),
            Box::new(m20261202_000002_account_event_sequences::Migration),
            Box::new(m20261202_000003_user_tokens::Migration),
            Box::new(m20261203_000001_safety_and_attention::Migration),
            Box::new(m20261204_000001_concurrent_event_log::Migration),
            Box::new(m20261206_000001_wide_attachment_positions::Migration),
            Box::new(m20261206_000002_message_search::Migration),
            Box::new(m20261207_000001_relays::Migration),
            Box::new(m20261207_000002_attachment_blobs::Migration),
        ]
    }
}
