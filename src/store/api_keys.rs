//! API keys. Keys are stored as SHA-256 hashes only: a key is 256 random bits, so a fast
//! hash is enough (no dictionary to guess from), and it lets every call find its key by an
//! indexed equality lookup.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sha2::{Digest, Sha256};

use super::{Listing, Store, WriteTx, access, entities::api_key};
use crate::domain::{
    Admin, Error, ids,
    paging::Page,
    users::{self, ApiKey},
};

/// What every key starts with, so that leaked keys are easy to recognise in logs and scans.
pub const KEY_PREFIX: &str = "msk_";

/// A new key: its description and the secret, which is shown once and stored nowhere.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The key as listed.
    pub key: ApiKey,
    /// The secret to send as `authorization: Bearer <secret>`.
    pub secret: String,
}

/// How a key is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn key_from_row(row: api_key::Model) -> ApiKey {
    ApiKey {
        id: row.id,
        user_id: row.user_id,
        name: row.name,
        prefix: row.prefix,
        create_time: row.create_time,
        revoke_time: row.revoke_time,
    }
}

/// Creates a key acting as `user_id` of the admin's account.
pub async fn create(store: &Store, admin: &Admin, user_id: String, name: String) -> Result<CreatedKey, Error> {
    store
        .write(admin.caller(), move |tx, caller| {
            Box::pin(async move {
                let owner = access::hold_user(tx.conn(), &caller.account_id, &user_id).await?;
                users::ensure_active(&user_id, owner.deactivate_time)?;
                insert(tx, &caller.account_id, &user_id, &name).await
            })
        })
        .await
}

/// Creates a key for any user, for the command line's bootstrap.
pub async fn create_in(store: &Store, account_id: &str, user_id: &str, name: &str) -> Result<CreatedKey, Error> {
    let (account, user_id, name) = (account_id.to_owned(), user_id.to_owned(), name.to_owned());
    store.write_as(account_id, "", move |tx| Box::pin(async move { insert(tx, &account, &user_id, &name).await })).await
}

/// The admin account's keys (of one user, when `user_id` is set), by id.
pub async fn list(
    store: &Store,
    admin: &Admin,
    user_id: Option<&str>,
    page: &Page<String>,
) -> Result<Listing<ApiKey, ()>, Error> {
    let mut query = api_key::Entity::find().filter(api_key::Column::AccountId.eq(&admin.caller().account_id));
    if let Some(user_id) = user_id {
        // Someone else's user is NOT_FOUND, as GetUser says, not an empty list.
        access::user_in(&store.db, &admin.caller().account_id, user_id).await?;
        query = query.filter(api_key::Column::UserId.eq(user_id));
    }
    if let Some(after) = &page.after {
        query = query.filter(api_key::Column::Id.gt(after));
    }
    let rows = query.order_by_asc(api_key::Column::Id).limit(page.fetch_limit()).all(&store.db).await?;
    let (rows, next_page_token) = page.finish(rows, |row| row.id.clone());
    Ok(Listing { items: rows.into_iter().map(key_from_row).collect(), next_page_token, total: () })
}

/// Revokes a key. Revoking a revoked key keeps its first revoke time.
pub async fn revoke(store: &Store, admin: &Admin, id: String) -> Result<ApiKey, Error> {
    store
        .write(admin.caller(), move |tx, caller| {
            Box::pin(async move {
                let row = access::find_in_account::<api_key::Entity, _>(tx.conn(), "api key", &id, &caller.account_id)
                    .await?;
                if row.revoke_time.is_some() {
                    return Ok(key_from_row(row));
                }
                tx.credentials_changed(&row.user_id);
                let mut active: api_key::ActiveModel = row.into();
                active.revoke_time = Set(Some(tx.now));
                Ok(key_from_row(access::save(tx.conn(), tx.account_id(), active).await?))
            })
        })
        .await
}

async fn insert(tx: &WriteTx, account_id: &str, user_id: &str, name: &str) -> Result<CreatedKey, Error> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let row = api_key::ActiveModel {
        id: Set(ids::new_id(ids::API_KEY)),
        account_id: Set(account_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        name: Set(name.to_owned()),
        prefix: Set(secret.chars().take(KEY_PREFIX.len() + 6).collect()),
        key_hash: Set(hash_key(&secret)),
        create_time: Set(tx.now),
        revoke_time: Set(None),
    }
    .insert(tx.conn())
    .await?;
    Ok(CreatedKey { key: key_from_row(row), secret })
}
