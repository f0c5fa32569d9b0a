//! The first schema: accounts, users, API keys, conversations with their participants,
//! messages with attachments and read receipts, and the event log.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{fk, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Name,
    CreateTime,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    AccountId,
    Role,
    DisplayName,
    ExternalId,
    Email,
    Phone,
    CreateRequestId,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    AccountId,
    UserId,
    Name,
    Prefix,
    KeyHash,
    CreateTime,
    RevokeTime,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    AccountId,
    SubjectKind,
    SubjectExternalId,
    SubjectTitle,
    Metadata,
    CreatorId,
    CreateRequestId,
    CreateTime,
    UpdateTime,
    PublicUpdateTime,
    MessageSequence,
    NoteSequence,
    LastMessageId,
    LastPublicMessageId,
}

#[derive(DeriveIden)]
enum Participants {
    Table,
    ConversationId,
    UserId,
    AccountId,
    Label,
    Archived,
    UnreadCount,
    JoinTime,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    AccountId,
    ConversationId,
    Sequence,
    NoteSequence,
    SenderId,
    Kind,
    Content,
    ContentType,
    ContentAttributes,
    Private,
    Direction,
    Metadata,
    SendRequestId,
    CreateTime,
    EditTime,
    DeleteTime,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    AccountId,
    MessageId,
    Position,
    Filename,
    MediaType,
    SizeBytes,
    Sha256,
    Data,
}

#[derive(DeriveIden)]
enum MessageReads {
    Table,
    MessageId,
    UserId,
    ConversationId,
    ReadTime,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    AccountId,
    EventType,
    ConversationId,
    ActorId,
    AudienceUserId,
    SubjectUserId,
    StaffOnly,
    CreateTime,
    Payload,
}

#[derive(DeriveIden)]
enum EventRetention {
    Table,
    AccountId,
    PrunedThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(string(Accounts::Id).primary_key())
                    .col(string(Accounts::Name))
                    .col(big_integer(Accounts::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string(Users::Id).primary_key())
                    .col(string(Users::AccountId))
                    .col(string(Users::Role))
                    .col(string(Users::DisplayName))
                    .col(string_null(Users::ExternalId))
                    .col(string(Users::Email))
                    .col(string(Users::Phone))
                    .col(string_null(Users::CreateRequestId))
                    .col(big_integer(Users::CreateTime))
                    .col(big_integer(Users::UpdateTime))
                    .foreign_key(&mut fk(
                        "fk_users_account",
                        (Users::Table, Users::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, "ux_users_external_id", Users::Table, [Users::AccountId, Users::ExternalId]).await?;
        unique_index(manager, "ux_users_request", Users::Table, [Users::AccountId, Users::CreateRequestId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(string(ApiKeys::Id).primary_key())
                    .col(string(ApiKeys::AccountId))
                    .col(string(ApiKeys::UserId))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::Prefix))
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(big_integer(ApiKeys::CreateTime))
                    .col(big_integer_null(ApiKeys::RevokeTime))
                    .foreign_key(&mut fk(
                        "fk_api_keys_user",
                        (ApiKeys::Table, ApiKeys::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_api_keys_account_user", ApiKeys::Table, [ApiKeys::AccountId, ApiKeys::UserId]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(string(Conversations::Id).primary_key())
                    .col(string(Conversations::AccountId))
                    .col(string(Conversations::SubjectKind))
                    .col(string(Conversations::SubjectExternalId))
                    .col(string(Conversations::SubjectTitle))
                    .col(text(Conversations::Metadata))
                    .col(string(Conversations::CreatorId))
                    .col(string_null(Conversations::CreateRequestId))
                    .col(big_integer(Conversations::CreateTime))
                    .col(big_integer(Conversations::UpdateTime))
                    .col(big_integer(Conversations::PublicUpdateTime))
                    .col(big_integer(Conversations::MessageSequence))
                    .col(big_integer(Conversations::NoteSequence))
                    .col(string_null(Conversations::LastMessageId))
                    .col(string_null(Conversations::LastPublicMessageId))
                    .foreign_key(&mut fk(
                        "fk_conversations_account",
                        (Conversations::Table, Conversations::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_conversations_activity",
            Conversations::Table,
            [Conversations::AccountId, Conversations::UpdateTime, Conversations::Id],
        )
        .await?;
        index(
            manager,
            "ix_conversations_public_activity",
            Conversations::Table,
            [Conversations::AccountId, Conversations::PublicUpdateTime, Conversations::Id],
        )
        .await?;
        index(
            manager,
            "ix_conversations_subject",
            Conversations::Table,
            [Conversations::AccountId, Conversations::SubjectKind, Conversations::SubjectExternalId],
        )
        .await?;
        unique_index(
            manager,
            "ux_conversations_request",
            Conversations::Table,
            [Conversations::AccountId, Conversations::CreatorId, Conversations::CreateRequestId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Participants::Table)
                    .col(string(Participants::ConversationId))
                    .col(string(Participants::UserId))
                    .col(string(Participants::AccountId))
                    .col(string(Participants::Label))
                    .col(boolean(Participants::Archived))
                    .col(big_integer(Participants::UnreadCount))
                    .col(big_integer(Participants::JoinTime))
                    .primary_key(Index::create().col(Participants::ConversationId).col(Participants::UserId))
                    .foreign_key(&mut fk(
                        "fk_participants_conversation",
                        (Participants::Table, Participants::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .foreign_key(&mut fk(
                        "fk_participants_user",
                        (Participants::Table, Participants::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_participants_user", Participants::Table, [Participants::UserId, Participants::Archived])
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(string(Messages::Id).primary_key())
                    .col(string(Messages::AccountId))
                    .col(string(Messages::ConversationId))
                    .col(big_integer(Messages::Sequence))
                    .col(big_integer(Messages::NoteSequence))
                    .col(string(Messages::SenderId))
                    .col(string(Messages::Kind))
                    .col(text(Messages::Content))
                    .col(string(Messages::ContentType))
                    .col(text_null(Messages::ContentAttributes))
                    .col(boolean(Messages::Private))
                    .col(string(Messages::Direction))
                    .col(text(Messages::Metadata))
                    .col(string_null(Messages::SendRequestId))
                    .col(big_integer(Messages::CreateTime))
                    .col(big_integer_null(Messages::EditTime))
                    .col(big_integer_null(Messages::DeleteTime))
                    .foreign_key(&mut fk(
                        "fk_messages_conversation",
                        (Messages::Table, Messages::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            "ux_messages_sequence",
            Messages::Table,
            [Messages::ConversationId, Messages::Sequence, Messages::NoteSequence],
        )
        .await?;
        unique_index(manager, "ux_messages_request", Messages::Table, [Messages::SenderId, Messages::SendRequestId])
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(string(Attachments::Id).primary_key())
                    .col(string(Attachments::AccountId))
                    .col(string(Attachments::MessageId))
                    .col(integer(Attachments::Position))
                    .col(string(Attachments::Filename))
                    .col(string(Attachments::MediaType))
                    .col(big_integer(Attachments::SizeBytes))
                    .col(string(Attachments::Sha256))
                    .col(blob(Attachments::Data))
                    .foreign_key(&mut fk(
                        "fk_attachments_message",
                        (Attachments::Table, Attachments::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_attachments_message", Attachments::Table, [Attachments::MessageId, Attachments::Position])
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MessageReads::Table)
                    .col(string(MessageReads::MessageId))
                    .col(string(MessageReads::UserId))
                    .col(string(MessageReads::ConversationId))
                    .col(big_integer(MessageReads::ReadTime))
                    .primary_key(Index::create().col(MessageReads::MessageId).col(MessageReads::UserId))
                    .foreign_key(&mut fk(
                        "fk_message_reads_message",
                        (MessageReads::Table, MessageReads::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_message_reads_reader",
            MessageReads::Table,
            [MessageReads::ConversationId, MessageReads::UserId],
        )
        .await?;

        // No foreign keys: the log outlives what it describes (a deleted conversation's
        // events stay until retention prunes them).
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Seq))
                    .col(string(Events::AccountId))
                    .col(string(Events::EventType))
                    .col(string_null(Events::ConversationId))
                    .col(string(Events::ActorId))
                    .col(string_null(Events::AudienceUserId))
                    .col(string_null(Events::SubjectUserId))
                    .col(boolean(Events::StaffOnly))
                    .col(big_integer(Events::CreateTime))
                    .col(text(Events::Payload))
                    .to_owned(),
            )
            .await?;
        index(manager, "ix_events_account_seq", Events::Table, [Events::AccountId, Events::Seq]).await?;
        index(manager, "ix_events_create_time", Events::Table, [Events::CreateTime]).await?;

        manager
            .create_table(
                Table::create()
                    .table(EventRetention::Table)
                    .col(string(EventRetention::AccountId).primary_key())
                    .col(big_integer(EventRetention::PrunedThrough))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EventRetention::Table.into_iden(),
            Events::Table.into_iden(),
            MessageReads::Table.into_iden(),
            Attachments::Table.into_iden(),
            Messages::Table.into_iden(),
            Participants::Table.into_iden(),
            Conversations::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            Users::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
