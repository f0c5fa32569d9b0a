//! Idempotent creates that can tell a retry from a different request (AIP-155): every row a
//! `request_id` created keeps a fingerprint of the request it came with, and a user's
//! request id belongs to the admin that created it, as a message's belongs to its sender.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, drop_index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    AccountId,
    CreatorId,
    CreateRequestId,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
}

#[derive(DeriveIden)]
enum ScheduledMessages {
    Table,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
}

#[derive(DeriveIden)]
enum Column {
    RequestFingerprint,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            add_columns(manager, table, vec![string_null(Column::RequestFingerprint)]).await?;
        }
        add_columns(manager, Users::Table, vec![string_null(Users::CreatorId)]).await?;
        // A new name: on SQLite the next statement may run on another pooled connection,
        // whose cached schema still holds the index dropped here.
        drop_index(manager, "ux_users_request").await?;
        unique_index(
            manager,
            "ux_users_creator_request",
            Users::Table,
            [Users::AccountId, Users::CreatorId, Users::CreateRequestId],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, "ux_users_creator_request").await?;
        unique_index(manager, "ux_users_request", Users::Table, [Users::AccountId, Users::CreateRequestId]).await?;
        drop_columns(manager, Users::Table, [Users::CreatorId]).await?;
        for table in tables() {
            drop_columns(manager, table, [Column::RequestFingerprint]).await?;
        }
        Ok(())
    }
}

/// Every table whose rows a request id can create.
fn tables() -> [DynIden; 5] {
    [
        Users::Table.into_iden(),
        Conversations::Table.into_iden(),
        Messages::Table.into_iden(),
        ScheduledMessages::Table.into_iden(),
        Templates::Table.into_iden(),
    ]
}
