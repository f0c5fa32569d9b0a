//! Users and API keys. Keys are stored as SHA-256 hashes only: a key is 256 random bits, so
//! a fast hash is enough (no dictionary to guess from), and it lets every call find its key
//! by an indexed equality lookup.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};

use super::{
    Store, WriteTx,
    entities::{api_key, user},
    find_in_account,
};
use crate::domain::{
    Caller, Error, ids,
    paging::Page,
    users::{ApiKey, NewUser, Role, User, UserFilter, UserPatch},
};

/// What every key starts with, so that leaked keys are easy to recognise in logs and scans.
pub const KEY_PREFIX: &str = "msk_";

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub(super) fn user_from_row(row: user::Model) -> Result<User, Error> {
    Ok(User {
        role: Role::from_stored(&row.role)?,
        id: row.id,
        account_id: row.account_id,
        display_name: row.display_name,
        external_id: row.external_id,
        email: row.email,
        phone: row.phone,
        create_time: row.create_time,
        update_time: row.update_time,
    })
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

impl Store {
    /// The caller an API key acts as, or UNAUTHENTICATED.
    pub async fn authenticate(&self, key: &str) -> Result<Caller, Error> {
        let found = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(hash_key(key)))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the API key is not valid".into()))?;
        self.caller_of(found).await
    }

    /// The caller as it is now, for a long-lived stream opened with `key_id`: its key may
    /// have been revoked (UNAUTHENTICATED) or its role changed since.
    pub async fn reauthenticate(&self, key_id: &str) -> Result<Caller, Error> {
        let found = api_key::Entity::find_by_id(key_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the API key no longer exists".into()))?;
        self.caller_of(found).await
    }

    async fn caller_of(&self, found: api_key::Model) -> Result<Caller, Error> {
        if found.revoke_time.is_some() {
            return Err(Error::Unauthenticated("the API key has been revoked".into()));
        }
        let owner = user::Entity::find_by_id(found.user_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::Unauthenticated("the API key's user no longer exists".into()))?;
        Ok(Caller {
            account_id: owner.account_id,
            user_id: owner.id,
            role: Role::from_stored(&owner.role)?,
            key_id: found.id,
        })
    }

    /// Creates a user in the caller's account. A retried create with the same request id
    /// returns the user the first one made.
    pub async fn create_user(&self, caller: &Caller, new: NewUser, request_id: Option<String>) -> Result<User, Error> {
        caller.require_admin()?;
        let tx = self.write(caller).await?;
        let user = insert_user(&tx, &caller.account_id, new, request_id).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Creates a user in any account, for the command line's bootstrap.
    pub async fn create_user_in(&self, account_id: &str, new: NewUser) -> Result<User, Error> {
        let tx = self.write_as(account_id, "").await?;
        let user = insert_user(&tx, account_id, new, None).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// The user the caller acts as; any role may read itself.
    pub async fn caller_user(&self, caller: &Caller) -> Result<User, Error> {
        let row = find_in_account::<user::Entity, _>(&self.db, "user", &caller.user_id, &caller.account_id, |u| {
            &u.account_id
        })
        .await?;
        user_from_row(row)
    }

    pub async fn get_user(&self, caller: &Caller, id: &str) -> Result<User, Error> {
        caller.require_admin()?;
        let row =
            find_in_account::<user::Entity, _>(&self.db, "user", id, &caller.account_id, |u| &u.account_id).await?;
        user_from_row(row)
    }

    pub async fn list_users(
        &self,
        caller: &Caller,
        filter: UserFilter,
        page: &Page<String>,
    ) -> Result<(Vec<User>, String, u64), Error> {
        caller.require_admin()?;
        let mut query = user::Entity::find().filter(user::Column::AccountId.eq(&caller.account_id));
        if let Some(role) = filter.role {
            query = query.filter(user::Column::Role.eq(role.as_str()));
        }
        if let Some(external_id) = &filter.external_id {
            query = query.filter(user::Column::ExternalId.eq(external_id));
        }
        let total = query.clone().count(&self.db).await?;
        if let Some(after) = &page.after {
            query = query.filter(user::Column::Id.gt(after));
        }
        let rows = query.order_by_asc(user::Column::Id).limit(page.fetch_limit()).all(&self.db).await?;
        let (rows, next) = page.finish(rows, |row| row.id.clone());
        let users = rows.into_iter().map(user_from_row).collect::<Result<_, _>>()?;
        Ok((users, next, total))
    }

    pub async fn update_user(&self, caller: &Caller, id: &str, patch: UserPatch) -> Result<User, Error> {
        caller.require_admin()?;
        let tx = self.write(caller).await?;
        let row =
            find_in_account::<user::Entity, _>(tx.conn(), "user", id, &caller.account_id, |u| &u.account_id).await?;
        let role_changed = patch.role.is_some_and(|role| role.as_str() != row.role);
        if let Some(Some(external_id)) = &patch.external_id {
            ensure_external_id_free(&tx, &caller.account_id, external_id, Some(id)).await?;
        }
        let mut active: user::ActiveModel = row.into();
        if let Some(role) = patch.role {
            active.role = Set(role.as_str().to_owned());
        }
        if let Some(display_name) = patch.display_name {
            active.display_name = Set(display_name);
        }
        if let Some(external_id) = patch.external_id {
            active.external_id = Set(external_id);
        }
        if let Some(email) = patch.email {
            active.email = Set(email);
        }
        if let Some(phone) = patch.phone {
            active.phone = Set(phone);
        }
        active.update_time = Set(tx.now);
        let row = active.update(tx.conn()).await?;
        if role_changed {
            // Whether private notes count as unread depends on the role.
            super::reads::recount_user(&tx, id).await?;
        }
        tx.commit().await?;
        user_from_row(row)
    }

    /// Creates an API key acting as `user_id`; returns it with the plain key, which is not
    /// stored anywhere.
    pub async fn create_api_key(&self, caller: &Caller, user_id: &str, name: &str) -> Result<(ApiKey, String), Error> {
        caller.require_admin()?;
        let tx = self.write(caller).await?;
        find_in_account::<user::Entity, _>(tx.conn(), "user", user_id, &caller.account_id, |u| &u.account_id).await?;
        let created = insert_key(&tx, &caller.account_id, user_id, name).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Creates an API key for any user, for the command line's bootstrap.
    pub async fn create_api_key_in(
        &self,
        account_id: &str,
        user_id: &str,
        name: &str,
    ) -> Result<(ApiKey, String), Error> {
        let tx = self.write_as(account_id, "").await?;
        let created = insert_key(&tx, account_id, user_id, name).await?;
        tx.commit().await?;
        Ok(created)
    }

    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        user_id: Option<&str>,
        page: &Page<String>,
    ) -> Result<(Vec<ApiKey>, String), Error> {
        caller.require_admin()?;
        let mut query = api_key::Entity::find().filter(api_key::Column::AccountId.eq(&caller.account_id));
        if let Some(user_id) = user_id {
            query = query.filter(api_key::Column::UserId.eq(user_id));
        }
        if let Some(after) = &page.after {
            query = query.filter(api_key::Column::Id.gt(after));
        }
        let rows = query.order_by_asc(api_key::Column::Id).limit(page.fetch_limit()).all(&self.db).await?;
        let (rows, next) = page.finish(rows, |row| row.id.clone());
        Ok((rows.into_iter().map(key_from_row).collect(), next))
    }

    /// Revokes a key. Revoking a revoked key keeps its first revoke time.
    pub async fn revoke_api_key(&self, caller: &Caller, id: &str) -> Result<ApiKey, Error> {
        caller.require_admin()?;
        let tx = self.write(caller).await?;
        let row =
            find_in_account::<api_key::Entity, _>(tx.conn(), "api key", id, &caller.account_id, |k| &k.account_id)
                .await?;
        let row = if row.revoke_time.is_some() {
            row
        } else {
            let mut active: api_key::ActiveModel = row.into();
            active.revoke_time = Set(Some(tx.now));
            active.update(tx.conn()).await?
        };
        tx.commit().await?;
        Ok(key_from_row(row))
    }

    /// The users with these ids in the caller's account, for expanding views: as much of
    /// each as the caller may see (members see no one else's contact details).
    pub(super) async fn users_by_id(
        &self,
        caller: &Caller,
        mut ids: Vec<String>,
    ) -> Result<std::collections::HashMap<String, User>, Error> {
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let rows = user::Entity::find()
            .filter(user::Column::AccountId.eq(&caller.account_id))
            .filter(user::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let user = user_from_row(row)?;
                let user = if caller.is_staff() || user.id == caller.user_id { user } else { user.public_view() };
                Ok((user.id.clone(), user))
            })
            .collect()
    }
}

async fn ensure_external_id_free(
    tx: &WriteTx<'_>,
    account_id: &str,
    external_id: &str,
    except_user: Option<&str>,
) -> Result<(), Error> {
    let holder = user::Entity::find()
        .filter(user::Column::AccountId.eq(account_id))
        .filter(user::Column::ExternalId.eq(external_id))
        .one(tx.conn())
        .await?;
    match holder {
        Some(holder) if Some(holder.id.as_str()) != except_user => Err(Error::AlreadyExists(format!(
            "user.external_id: {external_id:?} already belongs to user {}",
            holder.id
        ))),
        _ => Ok(()),
    }
}

async fn insert_user(
    tx: &WriteTx<'_>,
    account_id: &str,
    new: NewUser,
    request_id: Option<String>,
) -> Result<User, Error> {
    if let Some(request_id) = &request_id {
        let earlier = user::Entity::find()
            .filter(user::Column::AccountId.eq(account_id))
            .filter(user::Column::CreateRequestId.eq(request_id))
            .one(tx.conn())
            .await?;
        if let Some(earlier) = earlier {
            return user_from_row(earlier);
        }
    }
    if let Some(external_id) = &new.external_id {
        ensure_external_id_free(tx, account_id, external_id, None).await?;
    }
    let row = user::ActiveModel {
        id: Set(ids::new_id(ids::USER)),
        account_id: Set(account_id.to_owned()),
        role: Set(new.role.as_str().to_owned()),
        display_name: Set(new.display_name),
        external_id: Set(new.external_id),
        email: Set(new.email),
        phone: Set(new.phone),
        create_request_id: Set(request_id),
        create_time: Set(tx.now),
        update_time: Set(tx.now),
    }
    .insert(tx.conn())
    .await?;
    user_from_row(row)
}

async fn insert_key(tx: &WriteTx<'_>, account_id: &str, user_id: &str, name: &str) -> Result<(ApiKey, String), Error> {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let row = api_key::ActiveModel {
        id: Set(ids::new_id(ids::API_KEY)),
        account_id: Set(account_id.to_owned()),
        user_id: Set(user_id.to_owned()),
        name: Set(name.to_owned()),
        prefix: Set(key.chars().take(KEY_PREFIX.len() + 6).collect()),
        key_hash: Set(hash_key(&key)),
        create_time: Set(tx.now),
        revoke_time: Set(None),
    }
    .insert(tx.conn())
    .await?;
    Ok((key_from_row(row), key))
}
