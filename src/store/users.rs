//! Users: authentication of API keys to a caller, and the admin's user management.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Listing, Store, WriteTx, access, api_keys, columns,
    entities::{api_key, user},
    unread, views,
};
use crate::domain::{
    Admin, Caller, Credential, Error,
    idempotency::RequestKey,
    ids,
    paging::Page,
    users::{self, NewUser, Role, User, UserFilter, UserPatch},
};

/// The caller an API key acts as, or UNAUTHENTICATED.
pub async fn authenticate(store: &Store, key: &str) -> Result<Caller, Error> {
    let key_hash = api_keys::hash_key(key);
    if let Some(caller) = store.credentials.by_hash(&key_hash) {
        return Ok(caller);
    }
    let generation = store.credentials.generation();
    let found = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(&key_hash))
        .one(&store.db)
        .await?
        .ok_or_else(|| Error::Unauthenticated("the API key is not valid".into()))?;
    let caller = caller_of(store, found).await?;
    store.credentials.remember(generation, key_hash, caller.clone());
    Ok(caller)
}

/// The caller as it is now, for a long-lived stream opened as `caller`: its key may have
/// been revoked or its token expired (UNAUTHENTICATED), or its user's role changed since.
/// For keys, from the key cache, which such changes clear at their commit.
pub async fn reauthenticate(store: &Store, caller: &Caller) -> Result<Caller, Error> {
    let key_id = match &caller.credential {
        Credential::ApiKey(key_id) => key_id.as_str(),
        Credential::UserToken(grant) => return super::user_tokens::reauthenticate(store, caller, grant).await,
        Credential::System => return Ok(caller.clone()),
    };
    if let Some(caller) = store.credentials.by_key_id(key_id) {
        return Ok(caller);
    }
    let generation = store.credentials.generation();
    let found = api_key::Entity::find_by_id(key_id.to_owned())
        .filter(access::of_account::<api_key::Entity>(&caller.account_id))
        .one(&store.db)
        .await?
        .ok_or_else(|| Error::Unauthenticated("the API key no longer exists".into()))?;
    let key_hash = found.key_hash.clone();
    let caller = caller_of(store, found).await?;
    store.credentials.remember(generation, key_hash, caller.clone());
    Ok(caller)
}

async fn caller_of(store: &Store, found: api_key::Model) -> Result<Caller, Error> {
    if found.revoke_time.is_some() {
        return Err(Error::Unauthenticated("the API key has been revoked".into()));
    }
    let owner = user::Entity::find_by_id(found.user_id.clone())
        .filter(access::of_account::<user::Entity>(&found.account_id))
        .one(&store.db)
        .await?;
    key_caller(found, owner)
}

/// What key `found` of user `owner` acts as, or UNAUTHENTICATED.
fn key_caller(found: api_key::Model, owner: Option<user::Model>) -> Result<Caller, Error> {
    if found.revoke_time.is_some() {
        return Err(Error::Unauthenticated("the API key has been revoked".into()));
    }
    let owner = owner.ok_or_else(|| Error::Unauthenticated("the API key's user no longer exists".into()))?;
    if owner.deactivate_time.is_some() {
        return Err(users::deactivated());
    }
    Ok(Caller {
        account_id: owner.account_id,
        user_id: owner.id,
        role: columns::stored("role", &owner.role)?,
        credential: Credential::ApiKey(found.id),
    })
}

/// Re-reads every key cached here (`credentials.rs`), one statement per account: the keys
/// that act as they did stay cached for another while; the users of those that changed
/// (revoked, deleted, another role, deactivated, by this process or another sharing the
/// file) are forgotten, and their account's streams woken to re-check at once.
pub async fn refresh_keys(store: &Store) -> Result<(), Error> {
    let mut failed = None;
    for (account_id, cached) in store.credentials.keys_by_account() {
        for some in cached.chunks(REFRESHED_AT_ONCE) {
            // One account's failure leaves the others refreshed (its keys expire instead).
            if let Err(err) = refresh_account_keys(store, &account_id, some.to_vec()).await {
                failed = Some(err);
            }
        }
    }
    failed.map_or(Ok(()), Err)
}

/// Keys one refresh statement reads (well under SQLite's limit on parameters).
const REFRESHED_AT_ONCE: usize = 1_000;

/// [`refresh_keys`] for keys `cached` of account `account_id`.
async fn refresh_account_keys(store: &Store, account_id: &str, cached: Vec<(String, Caller)>) -> Result<(), Error> {
    let generation = store.credentials.generation();
    let hashes: Vec<String> = cached.iter().map(|(hash, _)| hash.clone()).collect();
    let mut now = keys_as_now(store, account_id, hashes).await?;
    let mut changed = Vec::new();
    for (hash, caller) in cached {
        match now.remove(&hash) {
            Some(Ok(current)) if current == caller => store.credentials.renew(generation, &hash),
            _ => changed.push(caller.user_id),
        }
    }
    for user_id in &changed {
        store.credentials.forget_user(user_id);
    }
    if !changed.is_empty() {
        store.hub.wake(account_id);
    }
    Ok(())
}

/// What each of the keys with these hashes acts as now, read in one statement (a key
/// gone is missing from the answer).
async fn keys_as_now(
    store: &Store,
    account_id: &str,
    hashes: Vec<String>,
) -> Result<HashMap<String, Result<Caller, Error>>, Error> {
    use sea_orm::{
        ConnectionTrait, FromQueryResult,
        sea_query::{Expr, ExprTrait, Query},
    };
    let mut select = Query::select();
    columns::select_prefixed::<api_key::Entity>(&mut select, "k_");
    columns::select_prefixed::<user::Entity>(&mut select, "u_");
    let owner = Expr::col((user::Entity, user::Column::AccountId))
        .equals((api_key::Entity, api_key::Column::AccountId))
        .and(Expr::col((user::Entity, user::Column::Id)).equals((api_key::Entity, api_key::Column::UserId)));
    select
        .from(api_key::Entity)
        .left_join(user::Entity, owner)
        .and_where(access::of_account::<api_key::Entity>(account_id))
        .and_where(Expr::col((api_key::Entity, api_key::Column::KeyHash)).is_in(hashes));
    let mut now = HashMap::new();
    for row in store.db.query_all(&select).await? {
        let key = api_key::Model::from_query_result(&row, "k_")?;
        let owner = match row.try_get::<Option<String>>("", "u_id")? {
            Some(_) => Some(user::Model::from_query_result(&row, "u_")?),
            None => None,
        };
        now.insert(key.key_hash.clone(), key_caller(key, owner));
    }
    Ok(now)
}

/// Creates a user in the admin's account. A retried create with the same request id (by
/// the same admin) returns the user the first one made.
pub async fn create(store: &Store, admin: &Admin, new: NewUser, request_id: Option<RequestKey>) -> Result<User, Error> {
    store
        .write(admin.caller(), move |tx, caller| {
            let creator = Creator { account_id: caller.account_id.clone(), user_id: Some(caller.user_id.clone()) };
            Box::pin(insert(tx, creator, new, request_id))
        })
        .await
}

/// Who creates a user: an admin of the account, or the command line (no user).
struct Creator {
    account_id: String,
    user_id: Option<String>,
}

/// Creates a user in any account, for the command line's bootstrap.
pub async fn create_in(store: &Store, account_id: &str, new: NewUser) -> Result<User, Error> {
    let creator = Creator { account_id: account_id.to_owned(), user_id: None };
    store.write_as(account_id, "", move |tx| Box::pin(insert(tx, creator, new, None))).await
}

/// The user the caller acts as; any role may read itself.
pub async fn get_self(store: &Store, caller: &Caller) -> Result<User, Error> {
    find(store, caller, &caller.user_id).await
}

/// A user of the admin's account.
pub async fn get(store: &Store, admin: &Admin, id: &str) -> Result<User, Error> {
    find(store, admin.caller(), id).await
}

async fn find(store: &Store, caller: &Caller, id: &str) -> Result<User, Error> {
    views::user_from_row(access::user_in(&store.db, &caller.account_id, id).await?)
}

/// The admin account's users, by id.
pub async fn list(
    store: &Store,
    admin: &Admin,
    filter: UserFilter,
    page: &Page<String>,
) -> Result<Listing<User>, Error> {
    let mut query = user::Entity::find().filter(user::Column::AccountId.eq(&admin.caller().account_id));
    if let Some(role) = filter.role {
        query = query.filter(user::Column::Role.eq(role.as_str()));
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(user::Column::ExternalId.eq(external_id));
    }
    let total = query.clone().count(&store.db).await?;
    if let Some(after) = &page.after {
        query = query.filter(user::Column::Id.gt(after));
    }
    let rows = query.order_by_asc(user::Column::Id).limit(page.fetch_limit()).all(&store.db).await?;
    let (rows, next_page_token) = page.finish(rows, |row| row.id.clone());
    let items = rows.into_iter().map(views::user_from_row).collect::<Result<_, _>>()?;
    Ok(Listing { items, next_page_token, total })
}

/// Changes a user; a role change recounts its unread counters (private notes count for
/// staff only).
pub async fn update(store: &Store, admin: &Admin, id: String, patch: UserPatch) -> Result<User, Error> {
    if patch.role.is_some_and(|role| role != Role::Admin) {
        users::ensure_not_locking_out(admin, &id, "change its own role")?;
    }
    store
        .write(admin.caller(), move |tx, caller| {
            Box::pin(async move {
                if patch.role.is_some() {
                    access::hold_role(tx.conn(), &id).await?;
                }
                let row = access::hold_user(tx.conn(), &caller.account_id, &id).await?;
                let role_changed = patch.role.is_some_and(|role| role.as_str() != row.role);
                if let Some(Some(external_id)) = &patch.external_id {
                    ensure_external_id_free(tx, &caller.account_id, external_id, Some(&id)).await?;
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
                if let Some(avatar_url) = patch.avatar_url {
                    active.avatar_url = Set(avatar_url);
                }
                if let Some(verified) = patch.verified {
                    active.verified = Set(verified);
                }
                active.update_time = Set(tx.now);
                let row = access::save(tx.conn(), tx.account_id(), active).await?;
                if role_changed {
                    unread::recount_user(tx, &id).await?;
                    tx.credentials_changed(&id);
                }
                views::user_from_row(row)
            })
        })
        .await
}

/// Deactivates a user (its keys and tokens stop working, its streams end at once) or, with
/// `active`, reactivates it. Idempotent; an admin cannot deactivate itself.
pub async fn set_active(store: &Store, admin: &Admin, id: String, active: bool) -> Result<User, Error> {
    if !active {
        users::ensure_not_locking_out(admin, &id, "deactivate itself")?;
    }
    store
        .write(admin.caller(), move |tx, caller| {
            Box::pin(async move {
                let row = access::hold_user(tx.conn(), &caller.account_id, &id).await?;
                if row.deactivate_time.is_none() == active {
                    return views::user_from_row(row);
                }
                let generation = row.token_generation;
                let mut changed: user::ActiveModel = row.into();
                changed.deactivate_time = Set((!active).then_some(tx.now));
                if !active {
                    // Its tokens stay void even after a reactivation (a stolen phone's token
                    // must not come back with its user).
                    changed.token_generation = Set(generation + 1);
                }
                changed.update_time = Set(tx.now);
                let row = access::save(tx.conn(), tx.account_id(), changed).await?;
                // Every replica forgets its keys, and its account's streams re-check now.
                tx.credentials_changed(&id);
                views::user_from_row(row)
            })
        })
        .await
}

async fn ensure_external_id_free(
    tx: &WriteTx,
    account_id: &str,
    external_id: &str,
    except_user: Option<&str>,
) -> Result<(), Error> {
    let holder: Option<String> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::AccountId.eq(account_id))
        .filter(user::Column::ExternalId.eq(external_id))
        .into_tuple()
        .one(tx.conn())
        .await?;
    match holder {
        Some(holder) if Some(holder.as_str()) != except_user => {
            Err(Error::AlreadyExists(format!("user.external_id: {external_id:?} already belongs to user {holder}")))
        }
        _ => Ok(()),
    }
}

/// The unit of a create: the new user, or the one an earlier create with the same request
/// id made.
async fn insert(
    tx: &mut WriteTx,
    creator: Creator,
    new: NewUser,
    request_id: Option<RequestKey>,
) -> Result<User, Error> {
    let Creator { account_id, user_id: creator_id } = creator;
    if let Some(key) = &request_id {
        access::claim_request_id(tx.conn(), &account_id, creator_id.as_deref().unwrap_or_default(), "user", &key.id)
            .await?;
        let earlier = user::Entity::find()
            .filter(user::Column::AccountId.eq(&account_id))
            // Users created before request ids were the creator's belong to the account.
            .filter(
                Condition::any()
                    .add(user::Column::CreatorId.eq(creator_id.clone()))
                    .add(user::Column::CreatorId.is_null()),
            )
            .filter(user::Column::CreateRequestId.eq(&key.id))
            .one(tx.conn())
            .await?;
        if let Some(earlier) = earlier {
            key.check_retry("request_id", &format!("user {}", earlier.id), earlier.request_fingerprint.as_deref())?;
            return views::user_from_row(earlier);
        }
    }
    if let Some(external_id) = &new.external_id {
        ensure_external_id_free(tx, &account_id, external_id, None).await?;
    }
    let row = user::ActiveModel {
        id: Set(ids::new_id(ids::USER)),
        account_id: Set(account_id),
        role: Set(new.role.as_str().to_owned()),
        display_name: Set(new.display_name),
        external_id: Set(new.external_id),
        email: Set(new.email),
        phone: Set(new.phone),
        creator_id: Set(creator_id),
        create_request_id: Set(request_id.as_ref().map(|key| key.id.clone())),
        request_fingerprint: Set(request_id.and_then(|key| key.stored_fingerprint())),
        create_time: Set(tx.now),
        update_time: Set(tx.now),
        deactivate_time: Set(None),
        token_generation: Set(0),
        avatar_url: Set(new.profile.avatar_url),
        verified: Set(new.profile.verified),
        online: Set(false),
        last_seen_time: Set(None),
    }
    .insert(tx.conn())
    .await?;
    views::user_from_row(row)
}
