//! Each conversation's number of private notes, kept in the unit of every send, so that a
//! staff listing of a conversation's messages has its total (public messages, which are
//! numbered without gaps, plus notes) without counting the conversation's messages.

use sea_orm_migration::prelude::*;

use crate::counter;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    NoteCount,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    ConversationId,
    Private,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The notes that exist already.
        let count = Query::select()
            .expr(Expr::col(Messages::ConversationId).count())
            .from(Messages::Table)
            .and_where(
                Expr::col((Messages::Table, Messages::ConversationId))
                    .equals((Conversations::Table, Conversations::Id)),
            )
            .and_where(Expr::col((Messages::Table, Messages::Private)).eq(true))
            .to_owned();
        counter::add(manager, Conversations::Table, Conversations::NoteCount, count).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        counter::drop(manager, Conversations::Table, Conversations::NoteCount).await
    }
}
