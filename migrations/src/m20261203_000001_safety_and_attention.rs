//! Reports, notifications, mute, presence and what people and subjects look like:
//!
//! - `reports`: a user's report of a message, with the message as it was (a snapshot);
//! - `notifications`: each user's feed; `coalesce_key` is set while a notification is
//!   unread and may still grow (one per user and key), and cleared when it is read;
//! - `presence`: one row per (replica, user) with open streams, renewed while they are
//!   open, and on `users` the presence last announced (`online`, `last_seen_time`);
//! - `participants.muted` / `mute_expire_time`; `users.avatar_url` / `verified`;
//!   `conversations.subject_image_url` / `subject_attributes`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, drop_index, fk, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    AccountId,
    ConversationId,
    MessageId,
    ReporterId,
    Reason,
    Details,
    Status,
    Snapshot,
    CreateTime,
    ResolveTime,
    ResolverId,
    ResolutionNote,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    AccountId,
    UserId,
    Kind,
    ConversationId,
    ActorId,
    MessageId,
    ReportId,
    Count,
    Summary,
    CoalesceKey,
    ReadTime,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Presence {
    Table,
    ReplicaId,
    UserId,
    AccountId,
    RenewTime,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    AvatarUrl,
    Verified,
    Online,
    LastSeenTime,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    Muted,
    MuteExpireTime,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    SubjectImageUrl,
    SubjectAttributes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(string(Reports::Id).primary_key())
                    .col(string(Reports::AccountId))
                    .col(string(Reports::ConversationId))
                    .col(string(Reports::MessageId))
                    .col(string(Reports::ReporterId))
                    .col(string(Reports::Reason))
                    .col(text(Reports::Details))
                    .col(string(Reports::Status))
                    // The message as the reporter saw it, as JSON: evidence that later edits
                    // and deletion (and the conversation's deletion) leave as it is.
                    .col(text(Reports::Snapshot))
                    .col(big_integer(Reports::CreateTime))
                    .col(big_integer_null(Reports::ResolveTime))
                    .col(string_null(Reports::ResolverId))
                    .col(text_null(Reports::ResolutionNote))
                    .foreign_key(&mut fk(
                        "fk_reports_account",
                        (Reports::Table, Reports::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            "ux_reports_reporter_message",
            Reports::Table,
            [Reports::AccountId, Reports::ReporterId, Reports::MessageId],
        )
        .await?;
        index(manager, "ix_reports_queue", Reports::Table, [Reports::AccountId, Reports::Status, Reports::Id]).await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(string(Notifications::Id).primary_key())
                    .col(string(Notifications::AccountId))
                    .col(string(Notifications::UserId))
                    .col(string(Notifications::Kind))
                    .col(string_null(Notifications::ConversationId))
                    .col(string(Notifications::ActorId))
                    .col(string_null(Notifications::MessageId))
                    .col(string_null(Notifications::ReportId))
                    .col(big_integer(Notifications::Count))
                    .col(text(Notifications::Summary))
                    .col(string_null(Notifications::CoalesceKey))
                    .col(big_integer_null(Notifications::ReadTime))
                    .col(big_integer(Notifications::CreateTime))
                    .col(big_integer(Notifications::UpdateTime))
                    .foreign_key(&mut fk(
                        "fk_notifications_account",
                        (Notifications::Table, Notifications::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in both databases: read notifications never clash.
        unique_index(
            manager,
            "ux_notifications_coalesce",
            Notifications::Table,
            [Notifications::AccountId, Notifications::UserId, Notifications::CoalesceKey],
        )
        .await?;
        index(
            manager,
            "ix_notifications_feed",
            Notifications::Table,
            [Notifications::AccountId, Notifications::UserId, Notifications::UpdateTime, Notifications::Id],
        )
        .await?;
        index(
            manager,
            "ix_notifications_unread",
            Notifications::Table,
            [Notifications::AccountId, Notifications::UserId, Notifications::ReadTime],
        )
        .await?;
        // Leaving or deleting a conversation forgets the notifications that show it.
        index(
            manager,
            "ix_notifications_conversation",
            Notifications::Table,
            [Notifications::AccountId, Notifications::ConversationId],
        )
        .await?;
        // Edits and deletions restate the notifications that show their message.
        index(
            manager,
            "ix_notifications_message",
            Notifications::Table,
            [Notifications::AccountId, Notifications::MessageId],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Presence::Table)
                    .col(string(Presence::ReplicaId))
                    .col(string(Presence::UserId))
                    .col(string(Presence::AccountId))
                    .col(big_integer(Presence::RenewTime))
                    .primary_key(Index::create().col(Presence::ReplicaId).col(Presence::UserId))
                    .foreign_key(&mut fk(
                        "fk_presence_account",
                        (Presence::Table, Presence::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_presence_user", Presence::Table, [Presence::AccountId, Presence::UserId]).await?;
        add_columns(
            manager,
            Users::Table,
            vec![
                string(Users::AvatarUrl).default("").to_owned(),
                boolean(Users::Verified).default(false).to_owned(),
                boolean(Users::Online).default(false).to_owned(),
                big_integer_null(Users::LastSeenTime),
            ],
        )
        .await?;
        // Few users are online: the sweep finds them by this.
        index(manager, "ix_users_online", Users::Table, [Users::Online]).await?;
        add_columns(
            manager,
            Participants::Table,
            vec![
                boolean(Participants::Muted).default(false).to_owned(),
                big_integer_null(Participants::MuteExpireTime),
            ],
        )
        .await?;
        add_columns(
            manager,
            Conversations::Table,
            vec![
                string(Conversations::SubjectImageUrl).default("").to_owned(),
                text_null(Conversations::SubjectAttributes),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Conversations::Table, [Conversations::SubjectImageUrl, Conversations::SubjectAttributes])
            .await?;
        drop_columns(manager, Participants::Table, [Participants::Muted, Participants::MuteExpireTime]).await?;
        drop_index(manager, "ix_users_online").await?;
        drop_columns(manager, Users::Table, [Users::AvatarUrl, Users::Verified, Users::Online, Users::LastSeenTime])
            .await?;
        for table in [Presence::Table.into_iden(), Notifications::Table.into_iden(), Reports::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
