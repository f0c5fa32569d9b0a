//! Attachment positions as BIGINT, like every other number of the schema. SQLite declares
//! both widths `integer`, so an engine that reads a column's declared type cannot tell a
//! 32-bit column from a 64-bit one there; with one width it need not. PostgreSQL widens the
//! two columns in place (SQLite's integers are 64-bit already).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: [&str; 2] = ["attachments", "scheduled_attachments"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "bigint").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        retype(manager, "integer").await
    }
}

async fn retype(manager: &SchemaManager<'_>, sql_type: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for table in TABLES {
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER TABLE {table} ALTER COLUMN position TYPE {sql_type}"))
            .await?;
    }
    Ok(())
}
