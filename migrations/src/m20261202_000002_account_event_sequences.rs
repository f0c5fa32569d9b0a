//! Event cursors counted per account, so that no account can observe another's volume:
//! `events.account_seq` numbers each account's events 1, 2, 3… in commit order, and
//! `accounts.event_seq` is the last number given (kept in the unit that appends).
//!
//! Existing events keep their global sequence as their account sequence: cursors clients
//! hold stay valid, and each account's numbers continue from there without gaps.

use sea_orm_migration::{prelude::*, schema::*};

use crate::{
    counter,
    ddl::{add_columns, drop_columns, drop_index, index, unique_index},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    EventSeq,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    AccountId,
    AccountSeq,
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
        add_columns(manager, Events::Table, vec![big_integer(Events::AccountSeq).default(0).to_owned()]).await?;
        manager
            .exec_stmt(
                Query::update().table(Events::Table).value(Events::AccountSeq, Expr::col(Events::Seq)).to_owned(),
            )
            .await?;
        drop_index(manager, "ix_events_account_seq").await?;
        unique_index(manager, "ux_events_account_seq", Events::Table, [Events::AccountId, Events::AccountSeq]).await?;
        // The last number given: the newest event's, or where pruning left off.
        let pruned = Query::select()
            .column(EventRetention::PrunedThrough)
            .from(EventRetention::Table)
            .and_where(
                Expr::col((EventRetention::Table, EventRetention::AccountId)).equals((Accounts::Table, Accounts::Id)),
            )
            .to_owned();
        let last = Query::select()
            .expr(Func::coalesce([
                Expr::col((Events::Table, Events::AccountSeq)).max(),
                SimpleExpr::SubQuery(None, Box::new(pruned.into_sub_query_statement())),
                Expr::val(0),
            ]))
            .from(Events::Table)
            .and_where(Expr::col((Events::Table, Events::AccountId)).equals((Accounts::Table, Accounts::Id)))
            .to_owned();
        counter::add(manager, Accounts::Table, Accounts::EventSeq, last).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        counter::drop(manager, Accounts::Table, Accounts::EventSeq).await?;
        drop_index(manager, "ux_events_account_seq").await?;
        drop_columns(manager, Events::Table, [Events::AccountSeq]).await?;
        index(manager, "ix_events_account_seq", Events::Table, [Events::AccountId, Events::Seq]).await
    }
}
