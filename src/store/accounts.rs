//! Accounts (tenants), made by operators from the command line, never through the API.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
    sea_query::{Expr, ExprTrait},
};

use super::{Store, WriteTx, entities::account};
use crate::domain::{Error, ids};

/// Creates an account and returns its id.
pub async fn create(store: &Store, name: &str) -> Result<String, Error> {
    let id = ids::new_id(ids::ACCOUNT);
    let (row_id, name) = (id.clone(), name.to_owned());
    store
        .write_as(&id, "", move |tx| {
            Box::pin(async move {
                account::ActiveModel {
                    id: Set(row_id),
                    name: Set(name),
                    create_time: Set(tx.now),
                    conversation_count: Set(0),
                    token_secret: Set(None),
                    cursor_key: Set(hex::encode(rand::random::<[u8; 16]>())),
                    search_language: Set(SIMPLE.into()),
                }
                .insert(tx.conn())
                .await?;
                Ok(())
            })
        })
        .await?;
    Ok(id)
}

/// The search language of every account on SQLite, and of a new account: words
/// lower-cased, not stemmed, any language alike.
pub const SIMPLE: &str = "simple";

/// Sets the language the account's messages are searched in (PostgreSQL's text search
/// configuration: `english`, `french`, … or `simple`) and re-indexes its messages, in one
/// unit: a search never mixes two languages. SQLite has one tokenizer for every account,
/// so there only `simple` is accepted.
pub async fn set_search_language(store: &Store, account_id: &str, language: &str) -> Result<(), Error> {
    if !exists(store, account_id).await? {
        return Err(Error::not_found("account", account_id));
    }
    let language = language.trim().to_lowercase();
    let postgres = store.backend() == DbBackend::Postgres;
    if postgres {
        ensure_text_search_configuration(store, &language).await?;
    } else if language != SIMPLE {
        return Err(Error::FailedPrecondition(format!(
            "SQLite searches every account alike ({SIMPLE}); the language {language:?} needs PostgreSQL"
        )));
    }
    let account = account_id.to_owned();
    store
        .write_as(account_id, "", move |tx| {
            Box::pin(async move {
                if postgres {
                    // A send that read the old language before this commits would keep it:
                    // sends wait until the account's messages are re-indexed, which takes
                    // longer than the statement timeout on a big account.
                    let prepare = "SET LOCAL statement_timeout = 0; LOCK TABLE messages IN SHARE MODE";
                    tx.conn().execute_unprepared(prepare).await?;
                }
                account::Entity::update_many()
                    .col_expr(account::Column::SearchLanguage, Expr::val(language.clone()))
                    .filter(account::Column::Id.eq(&account))
                    .exec(tx.conn())
                    .await?;
                if postgres {
                    // The trigger that keeps `search` re-indexes each row.
                    let reindex = "UPDATE messages SET search_language = $1 WHERE account_id = $2";
                    let values = [language.into(), account.into()];
                    tx.conn().execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, reindex, values)).await?;
                }
                Ok(())
            })
        })
        .await
}

/// The language the account's messages are searched in (read each time: another process
/// may change it, see [`set_search_language`]).
pub(super) async fn search_language<C: ConnectionTrait>(conn: &C, account_id: &str) -> Result<String, Error> {
    let language: Option<String> = account::Entity::find_by_id(account_id.to_owned())
        .select_only()
        .column(account::Column::SearchLanguage)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(language.unwrap_or_else(|| SIMPLE.to_owned()))
}

/// INVALID_ARGUMENT naming `language` unless it names one of the server's text search
/// configurations, as the index's trigger will read it (the search path's).
async fn ensure_text_search_configuration(store: &Store, language: &str) -> Result<(), Error> {
    let cast =
        Statement::from_sql_and_values(DbBackend::Postgres, "SELECT $1::regconfig::text AS name", [language.into()]);
    if store.db.query_one_raw(cast).await.is_ok_and(|row| row.is_some()) {
        return Ok(());
    }
    let known: Vec<String> = store
        .db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, "SELECT cfgname::text AS name FROM pg_ts_config"))
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "name"))
        .collect::<Result<_, _>>()?;
    Err(Error::invalid(
        "language",
        format!("{language:?} is not a text search configuration here; one of {}", known.join(", ")),
    ))
}

/// Adds `delta` to the account's number of conversations, in the unit that creates or
/// deletes one.
pub(super) async fn count_conversations(tx: &WriteTx, account_id: &str, delta: i64) -> Result<(), Error> {
    account::Entity::update_many()
        .col_expr(account::Column::ConversationCount, Expr::col(account::Column::ConversationCount).add(delta))
        .filter(account::Column::Id.eq(account_id))
        .exec(tx.conn())
        .await?;
    Ok(())
}

/// The account's number of conversations.
pub(super) async fn conversation_count(store: &Store, account_id: &str) -> Result<i64, Error> {
    let count: Option<i64> = account::Entity::find_by_id(account_id.to_owned())
        .select_only()
        .column(account::Column::ConversationCount)
        .into_tuple()
        .one(&store.db)
        .await?;
    Ok(count.unwrap_or(0))
}

/// Up to `limit` account ids, oldest first.
pub async fn ids(store: &Store, limit: u64) -> Result<Vec<String>, Error> {
    Ok(account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .order_by_asc(account::Column::CreateTime)
        .limit(limit)
        .into_tuple()
        .all(&store.db)
        .await?)
}

/// The key that seals the account's event cursors (NOT_FOUND for an unknown account).
pub async fn cursor_key(store: &Store, account_id: &str) -> Result<String, Error> {
    if let Some(key) = store.cursor_keys.lock().unwrap_or_else(|p| p.into_inner()).get(account_id) {
        return Ok(key.clone());
    }
    let key: Option<String> = account::Entity::find_by_id(account_id.to_owned())
        .select_only()
        .column(account::Column::CursorKey)
        .into_tuple()
        .one(&store.db)
        .await?;
    let key = key.ok_or_else(|| Error::not_found("account", account_id))?;
    // Made with the account and never changed: kept for every later stream.
    store.cursor_keys.lock().unwrap_or_else(|p| p.into_inner()).insert(account_id.to_owned(), key.clone());
    Ok(key)
}

/// Whether the account exists.
pub async fn exists(store: &Store, id: &str) -> Result<bool, Error> {
    Ok(account::Entity::find_by_id(id.to_owned()).one(&store.db).await?.is_some())
}

#[cfg(test)]
mod tests {
    use migrations::MigratorTrait;

    use super::*;
    use crate::{domain::users::Role, store::testing};

    /// A database from before the counter gets it filled in when migrated.
    #[tokio::test]
    async fn the_conversation_counter_is_filled_in_for_existing_conversations() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let account_id = create(&store, "a").await.unwrap();
        let agent = testing::caller(&store, &account_id, Role::Agent).await;
        for _ in 0..3 {
            testing::conversation(&store, &agent, &[]).await;
        }
        assert_eq!(conversation_count(&store, &account_id).await.unwrap(), 3);

        // Back to before the counter (and the migrations after it), then up again.
        migrations::Migrator::down(&store.db, Some(2)).await.unwrap();
        migrations::Migrator::up(&store.db, None).await.unwrap();

        assert_eq!(conversation_count(&store, &account_id).await.unwrap(), 3);
    }
}
