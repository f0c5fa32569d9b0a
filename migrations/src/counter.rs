//! A counter column the server keeps in the unit of every change from the migration on,
//! filled in for the rows that already exist.

use sea_orm_migration::prelude::*;

/// Adds `column` (BIGINT, 0) to `table` and sets it, on every row, to what `count` (a
/// subquery correlated with the row) gives.
pub async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
    count: SelectStatement,
) -> Result<(), DbErr> {
    let (table, column) = (table.into_iden(), column.into_iden());
    manager
        .alter_table(
            Table::alter()
                .table(table.clone())
                .add_column(ColumnDef::new(column.clone()).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
    manager
        .exec_stmt(
            Query::update()
                .table(table)
                .value(column, SimpleExpr::SubQuery(None, Box::new(count.into_sub_query_statement())))
                .to_owned(),
        )
        .await
}

/// Drops `column` from `table`.
pub async fn drop(manager: &SchemaManager<'_>, table: impl IntoIden, column: impl IntoIden) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await
}
