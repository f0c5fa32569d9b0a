//! User tokens: short-lived JWTs (HS256, `jsonwebtoken`) that a product's backend mints
//! for one of its users, so that a browser or phone calls Missive as that user without
//! holding an API key. Claims: `iss` "missive", `sub` the user, `acc` its account, `gen`
//! the user's token generation, `iat`, `exp`; the header's `kid` names the account secret
//! that signed it.
//!
//! A token is checked on every call against its account's secret and then its user as
//! they are now: a rotated secret or a deactivation (even one since undone) ends its
//! tokens at once; a stream opened with one ends when it expires (`events::stream`).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Caller, Credential, Error, Micros, TokenGrant, now_micros},
    store::{
        Store,
        user_tokens::{self, SigningSecret, TokenHolder},
    },
};

/// The issuer every Missive token names.
const ISSUER: &str = "missive";

/// What a token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The user it acts as.
    sub: String,
    /// The user's account.
    acc: String,
    /// The user's token generation when minted (a deactivation advances it).
    #[serde(rename = "gen")]
    generation: i64,
    /// Issued at, in seconds since the epoch.
    iat: i64,
    /// Expires at, in seconds since the epoch.
    exp: i64,
}

/// A token for `holder`, user `user_id` of `account_id`, signed with `secret`, working for
/// at least `ttl` (its expiry is rounded up to the second, as JWTs count); with when it
/// expires.
pub fn mint(
    secret: &SigningSecret,
    account_id: &str,
    user_id: &str,
    holder: &TokenHolder,
    ttl: Duration,
) -> Result<(String, Micros), Error> {
    let now = now_micros();
    let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    let exp = now.saturating_add(ttl).saturating_add(999_999) / 1_000_000;
    let claims = Claims {
        iss: ISSUER.into(),
        sub: user_id.into(),
        acc: account_id.into(),
        generation: holder.generation,
        iat: now / 1_000_000,
        exp,
    };
    let header = Header { kid: Some(secret.id()), ..Header::new(Algorithm::HS256) };
    let signing = |err| Error::Internal(format!("signing a token: {err}"));
    let key = EncodingKey::from_secret(secret.key()).map_err(signing)?;
    let token = jsonwebtoken::encode(&header, &claims, &key).map_err(signing)?;
    Ok((token, exp.saturating_mul(1_000_000)))
}

/// The caller a token acts as, or UNAUTHENTICATED: not a token, not signed by its
/// account's current secret, expired, voided by a deactivation, or its user deactivated or
/// gone. Nothing about the user is read, or told, before the signature is found genuine.
pub async fn verify(store: &Store, token: &str) -> Result<Caller, Error> {
    let invalid =
        || Error::Unauthenticated("the credential is neither an API key (msk_…) nor a valid user token".into());
    // Which account it claims, to find the secret to check it with.
    let claimed: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| invalid())?;
    let secret = user_tokens::account_secret(store, &claimed.acc).await?.ok_or_else(invalid)?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    // Expiry is `TokenGrant::ensure_live`'s, to the microsecond, below.
    validation.validate_exp = false;
    let key = DecodingKey::from_secret(secret.key()).map_err(|_| invalid())?;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|_| invalid())?.claims;
    let grant = TokenGrant {
        secret_id: secret.id(),
        generation: claims.generation,
        expire_time: claims.exp.saturating_mul(1_000_000),
    };
    grant.ensure_live(now_micros())?;
    // A genuine token of a user the account does not hold is answered like a forgery.
    let holder = user_tokens::holder(store, &claims.acc, &claims.sub).await?.ok_or_else(invalid)?;
    user_tokens::ensure_current(&grant, &holder, Some(&secret))?;
    Ok(Caller {
        account_id: claims.acc,
        user_id: claims.sub,
        role: holder.role,
        credential: Credential::UserToken(grant),
    })
}
