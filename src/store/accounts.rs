//! Accounts (tenants), made by operators from the command line, never through the API.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};

use super::{Store, entities::account};
use crate::domain::{Error, ids};

/// Creates an account and returns its id.
pub async fn create(store: &Store, name: &str) -> Result<String, Error> {
    let id = ids::new_id(ids::ACCOUNT);
    let (row_id, name) = (id.clone(), name.to_owned());
    store
        .write_as(&id, "", move |tx| {
            Box::pin(async move {
                account::ActiveModel { id: Set(row_id), name: Set(name), create_time: Set(tx.now) }
                    .insert(tx.conn())
                    .await?;
                Ok(())
            })
        })
        .await?;
    Ok(id)
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

/// Whether the account exists.
pub async fn exists(store: &Store, id: &str) -> Result<bool, Error> {
    Ok(account::Entity::find_by_id(id.to_owned()).one(&store.db).await?.is_some())
}
