//! An event log that writers of one account append to concurrently: each event records
//! the transaction that wrote it (`events.tx`), and readers order by (tx, seq) and deliver
//! only what no running transaction can still precede (see `store::events`). The account
//! counter that numbered events 1, 2, 3… (`accounts.event_seq`) made every write of an
//! account wait for the one before it to commit, and goes.
//!
//! `message_reads` gets the account it belongs to, the one table that lacked it, so that
//! every table can be distributed by account.
//!
//! Cursors become opaque tokens sealed with a key of the account's own
//! (`accounts.cursor_key`), so that the transaction ids and global numbers inside them
//! reveal nothing of other accounts. Cursors handed out before (the account numbers) keep
//! working: `events.account_seq` stays on the events that have one, indexed for that
//! lookup only, and `event_retention.pruned_through` keeps counting in them; where pruning
//! has reached in positions is `pruned_tx`, `pruned_seq`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, drop_index, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    CursorKey,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    AccountId,
    AccountSeq,
    Tx,
    Seq,
}

#[derive(DeriveIden)]
enum MessageReads {
    Table,
    AccountId,
}

#[derive(DeriveIden)]
enum EventRetention {
    Table,
    PrunedTx,
    PrunedSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = manager.get_database_backend() == sea_orm::DbBackend::Postgres;
        let db = manager.get_connection();
        add_columns(manager, Events::Table, vec![big_integer(Events::Tx).default(0).to_owned()]).await?;
        if postgres {
            // Filled in by the database, so that no write needs a round trip for it.
            db.execute_unprepared(
                "ALTER TABLE events ALTER COLUMN tx SET DEFAULT (pg_current_xact_id()::text::bigint)",
            )
            .await?;
        }
        index(manager, "ix_events_position", Events::Table, [Events::AccountId, Events::Tx, Events::Seq]).await?;
        drop_index(manager, "ux_events_account_seq").await?;
        // Only the events numbered before this migration (new ones have 0): the lookup of
        // an old cursor, at no cost to new appends.
        db.execute_unprepared(
            "CREATE INDEX ix_events_legacy_seq ON events (account_id, account_seq) WHERE account_seq > 0",
        )
        .await?;
        db.execute_unprepared("ALTER TABLE accounts DROP COLUMN event_seq").await?;

        add_columns(manager, Accounts::Table, vec![string(Accounts::CursorKey).default("").to_owned()]).await?;
        let random_key = if postgres {
            // 122 random bits (gen_random_uuid draws from the operating system's source).
            "replace(gen_random_uuid()::text, '-', '')"
        } else {
            "lower(hex(randomblob(16)))"
        };
        db.execute_unprepared(&format!("UPDATE accounts SET cursor_key = {random_key}")).await?;

        // Every table names its account, so that it can be distributed by account.
        add_columns(manager, MessageReads::Table, vec![string(MessageReads::AccountId).default("").to_owned()]).await?;
        db.execute_unprepared(
            "UPDATE message_reads SET account_id = (SELECT account_id FROM messages WHERE messages.id = message_reads.message_id)",
        )
        .await?;

        add_columns(
            manager,
            EventRetention::Table,
            vec![
                big_integer(EventRetention::PrunedTx).default(0).to_owned(),
                big_integer(EventRetention::PrunedSeq).default(0).to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        drop_columns(manager, EventRetention::Table, [EventRetention::PrunedTx, EventRetention::PrunedSeq]).await?;
        drop_columns(manager, Accounts::Table, [Accounts::CursorKey]).await?;
        drop_columns(manager, MessageReads::Table, [MessageReads::AccountId]).await?;
        db.execute_unprepared("ALTER TABLE accounts ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0").await?;
        db.execute_unprepared(
            "UPDATE accounts SET event_seq = COALESCE((SELECT MAX(account_seq) FROM events WHERE events.account_id = accounts.id), 0)",
        )
        .await?;
        drop_index(manager, "ix_events_legacy_seq").await?;
        drop_index(manager, "ix_events_position").await?;
        drop_columns(manager, Events::Table, [Events::Tx]).await?;
        // Events appended since have no account number: they cannot be numbered back.
        db.execute_unprepared("DELETE FROM events WHERE account_seq = 0").await?;
        unique_index(manager, "ux_events_account_seq", Events::Table, [Events::AccountId, Events::AccountSeq]).await?;
        Ok(())
    }
}
