//! Message search. Each database's own full-text index over `messages.content`, kept by
//! the database itself in the statement that writes the message, so that no write path
//! (send, import, scheduled delivery, edit, delete, a conversation's cascade) can forget
//! it and a search never sees a message's old text after the unit that changed it:
//!
//! - SQLite: an FTS5 table over the messages' content and conversation (`content=
//!   'messages'`: the text is not stored twice; the conversation lets a member's search
//!   skip the rest of the index) with triggers on insert, update and delete. It is keyed
//!   by the messages' rowid, which SQLite keeps for a table with an index (the primary
//!   key's) through `VACUUM INTO`, the backups' copy.
//! - PostgreSQL: a stored `tsvector` column generated from the content (text search
//!   configuration `simple`: lower-cased words, no stemming, every language alike) with a
//!   GIN index.
//!
//! PostgreSQL also gets an index of each account's messages by send time, newest first
//! being the order of results there: a word in many messages is found by walking it
//! (SQLite walks its FTS5 index in rowid order instead).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::ddl::{drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    AccountId,
    CreateTime,
    Id,
}

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE message_search USING fts5(content, conversation_id, content='messages', \
     content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')",
    // An external-content index is told the old values to forget: exactly what it indexed.
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN \
     INSERT INTO message_search(rowid, content, conversation_id) \
     VALUES (new.rowid, new.content, new.conversation_id); END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN \
     INSERT INTO message_search(message_search, rowid, content, conversation_id) \
     VALUES ('delete', old.rowid, old.content, old.conversation_id); END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF content, conversation_id ON messages BEGIN \
     INSERT INTO message_search(message_search, rowid, content, conversation_id) \
     VALUES ('delete', old.rowid, old.content, old.conversation_id); \
     INSERT INTO message_search(rowid, content, conversation_id) \
     VALUES (new.rowid, new.content, new.conversation_id); END",
    "INSERT INTO message_search(message_search) VALUES ('rebuild')",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER messages_search_update",
    "DROP TRIGGER messages_search_delete",
    "DROP TRIGGER messages_search_insert",
    "DROP TABLE message_search",
];

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN search tsvector \
     GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED",
    "CREATE INDEX ix_messages_search ON messages USING gin (search)",
];

const POSTGRES_DOWN: &[&str] = &["DROP INDEX ix_messages_search", "ALTER TABLE messages DROP COLUMN search"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return run(manager, SQLITE_UP).await;
        }
        run(manager, POSTGRES_UP).await?;
        index(manager, "ix_messages_timeline", Messages::Table, [Messages::AccountId, Messages::CreateTime, Messages::Id])
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if !postgres(manager) {
            return run(manager, SQLITE_DOWN).await;
        }
        drop_index(manager, "ix_messages_timeline").await?;
        run(manager, POSTGRES_DOWN).await
    }
}

fn postgres(manager: &SchemaManager) -> bool {
    manager.get_database_backend() == DbBackend::Postgres
}

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        manager.get_connection().execute_unprepared(statement).await?;
    }
    Ok(())
}
