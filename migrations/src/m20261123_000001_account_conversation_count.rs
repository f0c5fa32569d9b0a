//! Each account's number of conversations, kept in the unit of every create and delete, so
//! that a staff inbox's totals need no count over every conversation of the account.

use sea_orm_migration::prelude::*;

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
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(ColumnDef::new(Accounts::ConversationCount).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        // The conversations that exist already.
        let count = Query::select()
            .expr(Expr::col(Conversations::AccountId).count())
            .from(Conversations::Table)
            .and_where(
                Expr::col((Conversations::Table, Conversations::AccountId)).equals((Accounts::Table, Accounts::Id)),
            )
            .to_owned();
        manager
            .exec_stmt(
                Query::update()
                    .table(Accounts::Table)
                    .value(
                        Accounts::ConversationCount,
                        SimpleExpr::SubQuery(None, Box::new(count.into_sub_query_statement())),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Accounts::Table).drop_column(Accounts::ConversationCount).to_owned())
            .await
    }
}
