//! The envelope of a message relayed through another channel: the channel, its addresses
//! and the channel's own id of the message, unique per channel in an account so that a
//! relay that delivers twice is refused.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    AccountId,
    Channel,
    ChannelFrom,
    ChannelTo,
    ExternalId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            manager,
            Messages::Table,
            vec![
                string_null(Messages::Channel),
                string_null(Messages::ChannelFrom),
                string_null(Messages::ChannelTo),
                string_null(Messages::ExternalId),
            ],
        )
        .await?;
        unique_index(
            manager,
            "ux_messages_external",
            Messages::Table,
            [Messages::AccountId, Messages::Channel, Messages::ExternalId],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("ux_messages_external").table(Messages::Table).to_owned()).await?;
        drop_columns(
            manager,
            Messages::Table,
            [Messages::Channel, Messages::ChannelFrom, Messages::ChannelTo, Messages::ExternalId],
        )
        .await
    }
}
