//! Accounts (tenants) and the bootstrap of their first users, for the command line.

use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::{Store, entities::account};
use crate::domain::{Error, ids, now_micros};

impl Store {
    /// Creates an account and returns its id. Accounts are made by operators, from the
    /// command line, never through the API.
    pub async fn create_account(&self, name: &str) -> Result<String, Error> {
        let id = ids::new_id(ids::ACCOUNT);
        let tx = self.write_as(&id, "").await?;
        account::ActiveModel { id: Set(id.clone()), name: Set(name.to_owned()), create_time: Set(now_micros()) }
            .insert(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Up to `limit` account ids, oldest first.
    pub async fn account_ids(&self, limit: u64) -> Result<Vec<String>, Error> {
        use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
        Ok(account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .order_by_asc(account::Column::CreateTime)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Whether the account exists.
    pub async fn account_exists(&self, id: &str) -> Result<bool, Error> {
        use sea_orm::EntityTrait;
        Ok(account::Entity::find_by_id(id.to_owned()).one(&self.db).await?.is_some())
    }
}
