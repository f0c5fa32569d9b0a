//! Each account's number of conversations, kept in the unit of every create and delete, so
//! that a staff inbox's totals need no count over every conversation of the account.

use sea_orm_migration::prelude::*;

use crate::counter;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    ConversationCount,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    AccountId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The conversations that exist already.
        let count = Query::select()
            .expr(Expr::col(Conversations::AccountId).count())
            .from(Conversations::Table)
            .and_where(
                Expr::col((Conversations::Table, Conversations::AccountId)).equals((Accounts::Table, Accounts::Id)),
            )
            .to_owned();
        counter::add(manager, Accounts::Table, Accounts::ConversationCount, count).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        counter::drop(manager, Accounts::Table, Accounts::ConversationCount).await
    }
}
