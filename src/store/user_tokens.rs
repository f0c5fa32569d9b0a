//! User tokens' storage side: each account's signing secret (made at its first token,
//! replaced by a rotation, never sent or logged) and what verifying a token needs, the
//! secret and then its user's state, read on every call so that deactivating the user or
//! rotating the secret takes effect at once. Signing and checking signatures is
//! `auth::tokens`' business.

use base64::Engine;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    sea_query::Expr,
};
use sha2::{Digest, Sha256};

use super::{
    Store, access, columns,
    entities::{account, user},
};
use crate::domain::{
    Admin, Caller, Error, Micros, TokenGrant, now_micros,
    users::{self, Role},
};

/// A signing secret, as stored (base64url of 32 random bytes).
#[derive(Clone)]
pub struct SigningSecret(String);

impl SigningSecret {
    fn generate() -> Self {
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
    }

    /// The key bytes to sign with.
    pub fn key(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A public name for it (the token header's `kid`): a digest prefix, so that a token
    /// signed with an older secret is told apart without revealing anything.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({})", self.id())
    }
}

/// The user a token is minted for, and the secret to sign with (made now if the account
/// has none). The user must be of the admin's account (else NOT_FOUND) and active.
pub async fn grant(store: &Store, admin: &Admin, user_id: String) -> Result<(TokenHolder, SigningSecret), Error> {
    let account_id = admin.caller().account_id.clone();
    let row = access::user_in(&store.db, &account_id, &user_id).await?;
    users::ensure_active(&user_id, row.deactivate_time)?;
    let holder = TokenHolder { role: columns::stored("role", &row.role)?, generation: row.token_generation };
    if let Some(secret) = account_secret(store, &account_id).await? {
        return Ok((holder, secret));
    }
    store
        .write(admin.caller(), |tx, caller| {
            Box::pin(async move {
                // Another replica may have made it meanwhile: only an absent secret is set.
                account::Entity::update_many()
                    .col_expr(account::Column::TokenSecret, Expr::value(SigningSecret::generate().0))
                    .filter(account::Column::Id.eq(&caller.account_id))
                    .filter(account::Column::TokenSecret.is_null())
                    .exec(tx.conn())
                    .await?;
                Ok(())
            })
        })
        .await?;
    let secret = account_secret(store, &account_id).await?;
    Ok((holder, secret.ok_or_else(|| Error::Internal("the token secret was not stored".into()))?))
}

/// Replaces the admin's account's secret: tokens signed before stop working, and the
/// account's streams re-check at once. When it happened.
pub async fn rotate(store: &Store, admin: &Admin) -> Result<Micros, Error> {
    store
        .write(admin.caller(), |tx, caller| {
            Box::pin(async move {
                let mut account: account::ActiveModel = account::Entity::find_by_id(caller.account_id.clone())
                    .one(tx.conn())
                    .await?
                    .ok_or_else(|| Error::not_found("account", caller.account_id.clone()))?
                    .into();
                account.token_secret = Set(Some(SigningSecret::generate().0));
                account.update(tx.conn()).await?;
                // Wakes the account's streams (on every replica) to re-check their callers.
                tx.credentials_changed(&caller.user_id);
                Ok(tx.now)
            })
        })
        .await
}

/// A token's user as it is now, read after the token's signature was checked.
#[derive(Debug, Clone, Copy)]
pub struct TokenHolder {
    /// Its role now.
    pub role: Role,
    /// Its token generation now: tokens of an older one are void.
    pub generation: i64,
}

/// The user a genuine token of `account_id` names: none when it is not there (any more),
/// UNAUTHENTICATED when it is deactivated.
pub async fn holder(store: &Store, account_id: &str, user_id: &str) -> Result<Option<TokenHolder>, Error> {
    let found: Option<HolderColumns> = user::Entity::find_by_id(user_id.to_owned())
        .select_only()
        .columns([user::Column::Role, user::Column::DeactivateTime, user::Column::TokenGeneration])
        .filter(user::Column::AccountId.eq(account_id))
        .into_model::<HolderColumns>()
        .one(&store.db)
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if found.deactivate_time.is_some() {
        return Err(users::deactivated());
    }
    Ok(Some(TokenHolder { role: columns::stored("role", &found.role)?, generation: found.token_generation }))
}

/// A token holder's state as read, by column name.
#[derive(Debug, FromQueryResult)]
struct HolderColumns {
    /// Its role, as stored.
    role: String,
    /// When it was deactivated, if it was.
    deactivate_time: Option<i64>,
    /// Its token generation.
    token_generation: i64,
}

/// Whether `grant` still holds for `holder` under the account's `secret`: UNAUTHENTICATED
/// once the secret was rotated or the user deactivated since it was minted.
pub fn ensure_current(grant: &TokenGrant, holder: &TokenHolder, secret: Option<&SigningSecret>) -> Result<(), Error> {
    if secret.map(SigningSecret::id).as_deref() != Some(grant.secret_id.as_str()) {
        return Err(Error::Unauthenticated("the token's signing secret has been rotated".into()));
    }
    if holder.generation != grant.generation {
        return Err(Error::Unauthenticated("the token was voided when its user was deactivated".into()));
    }
    Ok(())
}

/// The caller a token stream acts as now: UNAUTHENTICATED once the token expired, its user
/// was deactivated or the secret it was signed with was replaced. (Two indexed reads, on
/// each re-check of a token's stream.)
pub(super) async fn reauthenticate(store: &Store, caller: &Caller, grant: &TokenGrant) -> Result<Caller, Error> {
    grant.ensure_live(now_micros())?;
    let holder = holder(store, &caller.account_id, &caller.user_id)
        .await?
        .ok_or_else(|| Error::Unauthenticated("the token's user no longer exists".into()))?;
    ensure_current(grant, &holder, account_secret(store, &caller.account_id).await?.as_ref())?;
    Ok(Caller { role: holder.role, ..caller.clone() })
}

/// The account's current signing secret, if it has made one: what a token claiming the
/// account must be signed with.
pub async fn account_secret(store: &Store, account_id: &str) -> Result<Option<SigningSecret>, Error> {
    let secret: Option<Option<String>> = account::Entity::find_by_id(account_id.to_owned())
        .select_only()
        .column(account::Column::TokenSecret)
        .into_tuple()
        .one(&store.db)
        .await?;
    Ok(secret.flatten().map(SigningSecret))
}
