//! Relays: what a channel relay needs beyond the envelope.
//!
//! - An outgoing relayed message's delivery state (`messages.delivery_*`), reported by the
//!   relay, and whether it is transactional (sent even to a suppressed address);
//! - the addresses an account must not write to (`suppressions`);
//! - the channel's original payload of a relayed message (`raw_payloads`), apart from the
//!   message so that no read of messages carries it;
//! - staff's handling of messages and conversations (`handle_time`, `handler_id`);
//! - templates' aliases, unique where their names are;
//! - users' phones in E.164, as envelopes' addresses already were.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, fk, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    Transactional,
    DeliveryState,
    DeliveryErrorCode,
    DeliveryErrorMessage,
    DeliveryUpdateTime,
    HandleTime,
    HandlerId,
}

#[derive(DeriveIden)]
enum ScheduledMessages {
    Table,
    Transactional,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    HandleTime,
    HandlerId,
}

#[derive(DeriveIden)]
enum Templates {
    Table,
    AccountId,
    Namespace,
    Alias,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    AccountId,
    Channel,
    Address,
    Reason,
    Note,
    CreatorId,
    CreateTime,
}

#[derive(DeriveIden)]
enum RawPayloads {
    Table,
    MessageId,
    AccountId,
    Data,
    UpdateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            Messages::Table,
            vec![
                boolean(Messages::Transactional).default(false).to_owned(),
                string_null(Messages::DeliveryState),
                string_null(Messages::DeliveryErrorCode),
                text_null(Messages::DeliveryErrorMessage),
                big_integer_null(Messages::DeliveryUpdateTime),
                big_integer_null(Messages::HandleTime),
                string_null(Messages::HandlerId),
            ],
        )
        .await?;
        add_columns(
            manager,
            ScheduledMessages::Table,
            vec![boolean(ScheduledMessages::Transactional).default(false).to_owned()],
        )
        .await?;
        add_columns(
            manager,
            Conversations::Table,
            vec![big_integer_null(Conversations::HandleTime), string_null(Conversations::HandlerId)],
        )
        .await?;
        add_columns(manager, Templates::Table, vec![string_null(Templates::Alias)]).await?;
        // NULLs are distinct in both databases: templates without an alias never collide.
        unique_index(
            manager,
            "ux_templates_alias",
            Templates::Table,
            [Templates::AccountId, Templates::Namespace, Templates::Alias],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Suppressions::Table)
                    .col(string(Suppressions::AccountId))
                    .col(string(Suppressions::Channel))
                    .col(string(Suppressions::Address))
                    .col(string(Suppressions::Reason))
                    .col(text(Suppressions::Note))
                    .col(string(Suppressions::CreatorId))
                    .col(big_integer(Suppressions::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(Suppressions::AccountId)
                            .col(Suppressions::Channel)
                            .col(Suppressions::Address),
                    )
                    .foreign_key(&mut fk(
                        "fk_suppressions_account",
                        (Suppressions::Table, Suppressions::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RawPayloads::Table)
                    .col(string(RawPayloads::MessageId).primary_key())
                    .col(string(RawPayloads::AccountId))
                    .col(blob(RawPayloads::Data))
                    .col(big_integer(RawPayloads::UpdateTime))
                    .foreign_key(&mut fk(
                        "fk_raw_payloads_message",
                        (RawPayloads::Table, RawPayloads::MessageId),
                        (Messages::Table, Messages::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        users_phones_in_e164(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RawPayloads::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Suppressions::Table).to_owned()).await?;
        crate::ddl::drop_index(manager, "ux_templates_alias").await?;
        drop_columns(manager, Templates::Table, [Templates::Alias]).await?;
        drop_columns(manager, Conversations::Table, [Conversations::HandleTime, Conversations::HandlerId]).await?;
        drop_columns(manager, ScheduledMessages::Table, [ScheduledMessages::Transactional]).await?;
        drop_columns(
            manager,
            Messages::Table,
            [
                Messages::Transactional,
                Messages::DeliveryState,
                Messages::DeliveryErrorCode,
                Messages::DeliveryErrorMessage,
                Messages::DeliveryUpdateTime,
                Messages::HandleTime,
                Messages::HandlerId,
            ],
        )
        .await
    }
}

/// Users' phones were stored as typed (E.164 or the North American pattern); envelopes'
/// in E.164. Each stored phone is rewritten in E.164, as the one rule now stores them; one
/// that does not parse (none could pass the old check) is left as it is.
async fn users_phones_in_e164(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = manager.get_connection();
    let backend = manager.get_database_backend();
    let rows =
        db.query_all_raw(Statement::from_string(backend, "SELECT id, phone FROM users WHERE phone <> ''")).await?;
    for row in rows {
        let (id, phone): (String, String) = (row.try_get("", "id")?, row.try_get("", "phone")?);
        let region = (!phone.trim_start().starts_with('+')).then_some(phonenumber::country::Id::US);
        let Ok(number) = phonenumber::parse(region, &phone) else { continue };
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        if e164 != phone {
            let update = Query::update()
                .table(Alias::new("users"))
                .value(Alias::new("phone"), e164)
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
    }
    Ok(())
}
