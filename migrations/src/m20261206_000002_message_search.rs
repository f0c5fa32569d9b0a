//! Message search. Each database's own full-text index over `messages.content`, kept by
//! the database itself in the statement that writes the message, so that no write path
//! (send, import, scheduled delivery, edit, delete, a conversation's cascade) can forget
//! it and a search never sees a message's old text after the unit that changed it:
//!
//! - SQLite: an FTS5 table over the messages' content and conversation, read through a
//!   view of `messages` (external content: the text is not stored twice; the conversation
//!   lets a member's search skip the rest of the index) with triggers on insert, update
//!   and delete. It is keyed
//!   by the messages' rowid, which SQLite keeps for a table with an index (the primary
//!   key's) through `VACUUM INTO`, the backups' copy.
//! - PostgreSQL: a `tsvector` column kept by a trigger from the content in the account's
//!   text search configuration (`accounts.search_language`: `simple` by default,
//!   lower-cased words with no stemming, every language alike; `english`, `french`… stem
//!   words), with a GIN index. SQLite has one tokenizer for every account (`simple`).
//!
//! PostgreSQL also gets an index of each account's messages by send time, newest first
//! being the order of results there: a word in many messages is found by walking it
//! (SQLite walks its FTS5 index in rowid order instead).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

use crate::ddl::{add_columns, drop_columns, drop_index, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SearchLanguage,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    AccountId,
    CreateTime,
    Id,
}

const SQLITE_UP: &[&str] = &[
    // What the index reads: a conversation id without its `conv_` prefix, which as a token
    // of its own would be in every row (and make a phrase of every conversation filter).
    "CREATE VIEW message_search_source AS \
     SELECT rowid AS message_rowid, content, substr(conversation_id, 6) AS conversation_id FROM messages",
    "CREATE VIRTUAL TABLE message_search USING fts5(content, conversation_id, \
     content='message_search_source', content_rowid='message_rowid', \
     tokenize='unicode61 remove_diacritics 0')",
    // An external-content index is told the old values to forget: exactly what it indexed.
    "CREATE TRIGGER messages_search_insert AFTER INSERT ON messages BEGIN \
     INSERT INTO message_search(rowid, content, conversation_id) \
     VALUES (new.rowid, new.content, substr(new.conversation_id, 6)); END",
    "CREATE TRIGGER messages_search_delete AFTER DELETE ON messages BEGIN \
     INSERT INTO message_search(message_search, rowid, content, conversation_id) \
     VALUES ('delete', old.rowid, old.content, substr(old.conversation_id, 6)); END",
    "CREATE TRIGGER messages_search_update AFTER UPDATE OF content, conversation_id ON messages BEGIN \
     INSERT INTO message_search(message_search, rowid, content, conversation_id) \
     VALUES ('delete', old.rowid, old.content, substr(old.conversation_id, 6)); \
     INSERT INTO message_search(rowid, content, conversation_id) \
     VALUES (new.rowid, new.content, substr(new.conversation_id, 6)); END",
    "INSERT INTO message_search(message_search) VALUES ('rebuild')",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER messages_search_update",
    "DROP TRIGGER messages_search_delete",
    "DROP TRIGGER messages_search_insert",
    "DROP TABLE message_search",
    "DROP VIEW message_search_source",
];

const POSTGRES_UP: &[&str] = &[
    // Rewriting a large messages table takes longer than the server's statement timeout,
    // which its connections carry: lifted for this migration's transaction only.
    "SET LOCAL statement_timeout = 0",
    // The language is text, not `regconfig`: pg_upgrade refuses tables that store reg*
    // types. So `search` is kept by a trigger (a generated column could only cast text to
    // regconfig, which is not immutable): each message is indexed in its account's
    // language, set by the database as it is written, so that no insert names another;
    // a change of language re-indexes the account's messages
    // (`store::accounts::set_search_language`).
    "ALTER TABLE messages ADD COLUMN search_language text NOT NULL DEFAULT 'simple'",
    "ALTER TABLE messages ADD COLUMN search tsvector",
    "UPDATE messages SET search = to_tsvector('simple'::regconfig, content)",
    "CREATE FUNCTION missive_message_search() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF TG_OP = 'INSERT' THEN \
         SELECT search_language INTO NEW.search_language FROM accounts WHERE id = NEW.account_id; \
       END IF; \
       NEW.search := to_tsvector(NEW.search_language::regconfig, NEW.content); \
       RETURN NEW; \
     END $$",
    "CREATE TRIGGER messages_search BEFORE INSERT OR UPDATE OF content, search_language ON messages \
     FOR EACH ROW EXECUTE FUNCTION missive_message_search()",
    "CREATE INDEX ix_messages_search ON messages USING gin (search)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX ix_messages_search",
    "DROP TRIGGER messages_search ON messages",
    "DROP FUNCTION missive_message_search()",
    "ALTER TABLE messages DROP COLUMN search",
    "ALTER TABLE messages DROP COLUMN search_language",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, Accounts::Table, vec![string(Accounts::SearchLanguage).default("simple").to_owned()])
            .await?;
        if !postgres(manager) {
            return run(manager, SQLITE_UP).await;
        }
        run(manager, POSTGRES_UP).await?;
        index(
            manager,
            "ix_messages_timeline",
            Messages::Table,
            [Messages::AccountId, Messages::CreateTime, Messages::Id],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if postgres(manager) {
            drop_index(manager, "ix_messages_timeline").await?;
            run(manager, POSTGRES_DOWN).await?;
        } else {
            run(manager, SQLITE_DOWN).await?;
        }
        drop_columns(manager, Accounts::Table, [Accounts::SearchLanguage]).await
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
