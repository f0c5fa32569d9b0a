//! Helpers the migrations share: foreign keys, indexes, and columns added to (or dropped
//! from) tables that exist, one statement per column (SQLite alters one column at a time).

use sea_orm_migration::prelude::*;

/// A foreign key that deletes the row with what it refers to.
pub fn fk(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

/// A plain index.
pub async fn index<const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: [impl IntoIden; N],
) -> Result<(), DbErr> {
    create_index(manager, name, table, columns, false).await
}

/// A unique index.
pub async fn unique_index<const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: [impl IntoIden; N],
) -> Result<(), DbErr> {
    create_index(manager, name, table, columns, true).await
}

async fn create_index<const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: [impl IntoIden; N],
    unique: bool,
) -> Result<(), DbErr> {
    let mut statement = Index::create();
    statement.name(name).table(table);
    for column in columns {
        statement.col(column);
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}

/// Adds `columns` to `table`.
pub async fn add_columns(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    columns: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    let table = table.into_iden();
    for mut column in columns {
        manager.alter_table(Table::alter().table(table.clone()).add_column(&mut column).to_owned()).await?;
    }
    Ok(())
}

/// Drops `columns` from `table`.
pub async fn drop_columns<const N: usize>(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    columns: [impl IntoIden; N],
) -> Result<(), DbErr> {
    let table = table.into_iden();
    for column in columns {
        manager.alter_table(Table::alter().table(table.clone()).drop_column(column).to_owned()).await?;
    }
    Ok(())
}

/// Drops the index `name`, in SQL both databases read alike (sea-query's SQLite statement
/// leaves the index in place).
pub async fn drop_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(&format!("DROP INDEX {name}")).await.map(|_| ())
}
