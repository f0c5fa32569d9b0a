//! User tokens: short-lived JWTs (HS256, `jsonwebtoken`) that a product's backend mints
//! for one of its users, so that a browser or phone calls Missive as that user without
//! holding an API key. Claims: `iss` "missive", `sub` the user, `acc` its account, `iat`,
//! `exp`; the header's `kid` names the account secret that signed it.
//!
//! A token is checked on every call against its user and account as they are now (one
//! query): a deactivated user, or a rotated secret, ends its tokens at once; a stream
//! opened with one ends when it expires (`events::stream`).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Caller, Error, Micros, TokenGrant, now_micros},
    store::{
        Store,
        user_tokens::{self, SigningSecret},
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
    /// Issued at, in seconds since the epoch.
    iat: i64,
    /// Expires at, in seconds since the epoch.
    exp: i64,
}

/// A token for `user_id` of `account_id`, signed with `secret`, working for `ttl`; with
/// when it expires.
pub fn mint(secret: &SigningSecret, account_id: &str, user_id: &str, ttl: Duration) -> Result<(String, Micros), Error> {
    let iat = now_micros() / 1_000_000;
    let exp = iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    let claims = Claims { iss: ISSUER.into(), sub: user_id.into(), acc: account_id.into(), iat, exp };
    let header = Header { kid: Some(secret.id()), ..Header::new(Algorithm::HS256) };
    let signing = |err| Error::Internal(format!("signing a token: {err}"));
    let key = EncodingKey::from_secret(secret.key()).map_err(signing)?;
    let token = jsonwebtoken::encode(&header, &claims, &key).map_err(signing)?;
    Ok((token, exp.saturating_mul(1_000_000)))
}

/// The caller a token acts as, or UNAUTHENTICATED: not a token, not signed by its
/// account's current secret, expired, or its user deactivated or gone.
pub async fn verify(store: &Store, token: &str) -> Result<Caller, Error> {
    let invalid =
        || Error::Unauthenticated("the credential is neither an API key (msk_…) nor a valid user token".into());
    // Whose token it claims to be, to find the secret to check it with.
    let claimed: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| invalid())?;
    let (role, secret) = user_tokens::holder(store, &claimed.acc, &claimed.sub).await?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    // Expiry is exact: a token is void the second its `exp` passes.
    validation.leeway = 0;
    let key = DecodingKey::from_secret(secret.key()).map_err(|_| invalid())?;
    let expired = || Error::TokenExpired("the token has expired; mint a new one".into());
    let claims = match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(err) if matches!(err.kind(), ErrorKind::ExpiredSignature) => return Err(expired()),
        Err(_) => return Err(invalid()),
    };
    let expire_time = claims.exp.saturating_mul(1_000_000);
    // The library still takes a token during its `exp` second; a stream ends at its start.
    if now_micros() >= expire_time {
        return Err(expired());
    }
    Ok(Caller {
        key_id: format!("token:{}", claims.sub),
        account_id: claims.acc,
        user_id: claims.sub,
        role,
        token: Some(TokenGrant { secret_id: secret.id(), expire_time }),
    })
}
