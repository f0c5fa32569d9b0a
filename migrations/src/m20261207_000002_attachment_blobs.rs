//! Attachments by reference: the bytes of every file are stored once per account, by their
//! SHA-256 digest (`attachment_blobs`), and attachments (sent and waiting) name them by
//! digest, so that a file forwarded to another message is not stored again. An attachment
//! may instead be a link (`url`), whose bytes the server never holds.
//!
//! The bytes already stored move to `attachment_blobs`, and the tables' own `data`
//! columns go.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, fk, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AttachmentBlobs {
    Table,
    AccountId,
    Sha256,
    Data,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    AccountId,
    Sha256,
    Url,
}

#[derive(DeriveIden)]
enum ScheduledAttachments {
    Table,
    AccountId,
    Sha256,
    Url,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Copying every file's bytes takes longer than the server's statement timeout,
            // which its connections carry: lifted for this migration's transaction only.
            db.execute_unprepared("SET LOCAL statement_timeout = 0").await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AttachmentBlobs::Table)
                    .col(string(AttachmentBlobs::AccountId))
                    .col(string(AttachmentBlobs::Sha256))
                    .col(blob(AttachmentBlobs::Data))
                    .primary_key(Index::create().col(AttachmentBlobs::AccountId).col(AttachmentBlobs::Sha256))
                    .foreign_key(&mut fk(
                        "fk_attachment_blobs_account",
                        (AttachmentBlobs::Table, AttachmentBlobs::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for table in ["attachments", "scheduled_attachments"] {
            // `WHERE true`: SQLite's grammar needs it before an upsert clause on a SELECT.
            db.execute_unprepared(&format!(
                "INSERT INTO attachment_blobs (account_id, sha256, data) \
                 SELECT account_id, sha256, data FROM {table} WHERE true ON CONFLICT DO NOTHING"
            ))
            .await?;
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN data")).await?;
        }
        add_columns(manager, Attachments::Table, vec![text_null(Attachments::Url)]).await?;
        add_columns(manager, ScheduledAttachments::Table, vec![text_null(ScheduledAttachments::Url)]).await?;
        // Whether a digest is still in use, when a file is deleted.
        index(manager, "ix_attachments_digest", Attachments::Table, [Attachments::AccountId, Attachments::Sha256])
            .await?;
        index(
            manager,
            "ix_scheduled_attachments_digest",
            ScheduledAttachments::Table,
            [ScheduledAttachments::AccountId, ScheduledAttachments::Sha256],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        crate::ddl::drop_index(manager, "ix_scheduled_attachments_digest").await?;
        crate::ddl::drop_index(manager, "ix_attachments_digest").await?;
        for table in ["attachments", "scheduled_attachments"] {
            // A link has no bytes: it goes back as an empty file.
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN url")).await?;
            db.execute_unprepared(&format!("ALTER TABLE {table} ADD COLUMN data {}", blob_type(manager))).await?;
            db.execute_unprepared(&format!(
                "UPDATE {table} SET data = COALESCE((SELECT b.data FROM attachment_blobs b \
                 WHERE b.account_id = {table}.account_id AND b.sha256 = {table}.sha256), {})",
                empty_blob(manager)
            ))
            .await?;
        }
        manager.drop_table(Table::drop().table(AttachmentBlobs::Table).to_owned()).await
    }
}

fn blob_type(manager: &SchemaManager<'_>) -> &'static str {
    if manager.get_database_backend() == sea_orm::DbBackend::Postgres { "bytea" } else { "blob" }
}

fn empty_blob(manager: &SchemaManager<'_>) -> &'static str {
    if manager.get_database_backend() == sea_orm::DbBackend::Postgres { "'\\x'::bytea" } else { "x''" }
}
