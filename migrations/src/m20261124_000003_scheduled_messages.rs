//! Scheduled messages: waiting (or failed) messages and their attachments, kept apart from
//! the messages table until delivered, so that nothing that reads a conversation has to
//! leave them out; and the time a delivered message was scheduled for.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, fk, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScheduledMessages {
    Table,
    Id,
    AccountId,
    ConversationId,
    SenderId,
    Kind,
    Content,
    ContentType,
    ContentAttributes,
    Private,
    Direction,
    Metadata,
    TemplateId,
    TemplateVariables,
    Channel,
    ChannelFrom,
    ChannelTo,
    SendRequestId,
    ScheduleTime,
    State,
    FailureReason,
    CreateTime,
    EditTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ScheduledAttachments {
    Table,
    Id,
    AccountId,
    ScheduledMessageId,
    Position,
    Filename,
    MediaType,
    SizeBytes,
    Sha256,
    Data,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ScheduleTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ScheduledMessages as S;
        // No foreign key to the conversation: a message whose conversation is deleted
        // before its time must stay, to end FAILED for its sender to see.
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .col(string(S::Id).primary_key())
                    .col(string(S::AccountId))
                    .col(string(S::ConversationId))
                    .col(string(S::SenderId))
                    .col(string(S::Kind))
                    .col(text(S::Content))
                    .col(string(S::ContentType))
                    .col(text_null(S::ContentAttributes))
                    .col(boolean(S::Private))
                    .col(string(S::Direction))
                    .col(text(S::Metadata))
                    .col(string_null(S::TemplateId))
                    .col(text_null(S::TemplateVariables))
                    .col(string_null(S::Channel))
                    .col(string_null(S::ChannelFrom))
                    .col(string_null(S::ChannelTo))
                    .col(string_null(S::SendRequestId))
                    .col(big_integer(S::ScheduleTime))
                    .col(string(S::State))
                    .col(text_null(S::FailureReason))
                    .col(big_integer(S::CreateTime))
                    .col(big_integer_null(S::EditTime))
                    .col(big_integer(S::UpdateTime))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_scheduled_due", S::Table, [S::State, S::ScheduleTime]).await?;
        index(manager, "ix_scheduled_sender", S::Table, [S::SenderId, S::ScheduleTime, S::Id]).await?;
        index(manager, "ix_scheduled_conversation", S::Table, [S::ConversationId, S::ScheduleTime, S::Id]).await?;
        unique_index(manager, "ux_scheduled_request", S::Table, [S::SenderId, S::SendRequestId]).await?;
        use ScheduledAttachments as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .col(string(A::Id).primary_key())
                    .col(string(A::AccountId))
                    .col(string(A::ScheduledMessageId))
                    .col(integer(A::Position))
                    .col(string(A::Filename))
                    .col(string(A::MediaType))
                    .col(big_integer(A::SizeBytes))
                    .col(string(A::Sha256))
                    .col(blob(A::Data))
                    .foreign_key(&mut fk(
                        "fk_scheduled_attachments_message",
                        (A::Table, A::ScheduledMessageId),
                        (S::Table, S::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_scheduled_attachments_message", A::Table, [A::ScheduledMessageId, A::Position]).await?;
        add_columns(manager, Messages::Table, vec![big_integer_null(Messages::ScheduleTime)]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Messages::Table, [Messages::ScheduleTime]).await?;
        manager.drop_table(Table::drop().table(ScheduledAttachments::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ScheduledMessages::Table).to_owned()).await
    }
}
