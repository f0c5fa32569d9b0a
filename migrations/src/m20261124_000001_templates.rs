//! Templates: the table, the columns recording which template (and values) made a
//! message, and events every user of an account may see (an account template's changes).

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, fk, index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Templates {
    Table,
    Id,
    AccountId,
    Scope,
    OwnerId,
    Namespace,
    Name,
    Category,
    Content,
    Variables,
    CreatorId,
    CreateRequestId,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    TemplateId,
    TemplateVariables,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Everyone,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Templates::Table)
                    .col(string(Templates::Id).primary_key())
                    .col(string(Templates::AccountId))
                    .col(string(Templates::Scope))
                    .col(string_null(Templates::OwnerId))
                    // Where the name is unique: the owner's id, or the account's for account
                    // templates.
                    .col(string(Templates::Namespace))
                    .col(string(Templates::Name))
                    .col(string(Templates::Category))
                    .col(text(Templates::Content))
                    .col(text(Templates::Variables))
                    .col(string(Templates::CreatorId))
                    .col(string_null(Templates::CreateRequestId))
                    .col(big_integer(Templates::CreateTime))
                    .col(big_integer(Templates::UpdateTime))
                    .foreign_key(&mut fk(
                        "fk_templates_account",
                        (Templates::Table, Templates::AccountId),
                        (Accounts::Table, Accounts::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            "ux_templates_name",
            Templates::Table,
            [Templates::AccountId, Templates::Namespace, Templates::Name],
        )
        .await?;
        unique_index(
            manager,
            "ux_templates_request",
            Templates::Table,
            [Templates::AccountId, Templates::CreatorId, Templates::CreateRequestId],
        )
        .await?;
        index(
            manager,
            "ix_templates_listing",
            Templates::Table,
            [Templates::AccountId, Templates::Name, Templates::Id],
        )
        .await?;
        add_columns(
            manager,
            Messages::Table,
            vec![string_null(Messages::TemplateId), text_null(Messages::TemplateVariables)],
        )
        .await?;
        add_columns(manager, Events::Table, vec![boolean(Events::Everyone).default(false).to_owned()]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Events::Table, [Events::Everyone]).await?;
        drop_columns(manager, Messages::Table, [Messages::TemplateId, Messages::TemplateVariables]).await?;
        manager.drop_table(Table::drop().table(Templates::Table).to_owned()).await
    }
}
