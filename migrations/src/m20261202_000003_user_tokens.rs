//! User tokens and deactivation: `accounts.token_secret` signs the account's user tokens
//! (made at the first token, replaced by a rotation), `users.deactivate_time` marks a user
//! whose keys and tokens do not work, and `users.token_generation`, which each deactivation
//! advances, voids the tokens minted before it for good (reactivating does not revive them).

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{add_columns, drop_columns};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    TokenSecret,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    DeactivateTime,
    TokenGeneration,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_columns(manager, Accounts::Table, vec![string_null(Accounts::TokenSecret)]).await?;
        add_columns(
            manager,
            Users::Table,
            vec![big_integer_null(Users::DeactivateTime), big_integer(Users::TokenGeneration).default(0).to_owned()],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(manager, Users::Table, [Users::DeactivateTime, Users::TokenGeneration]).await?;
        drop_columns(manager, Accounts::Table, [Accounts::TokenSecret]).await
    }
}
