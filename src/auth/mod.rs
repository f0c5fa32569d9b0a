//! Authentication: `authorization: Bearer <credential>` metadata to the [`Caller`] it
//! acts as. The credential is an API key (`msk_…`, a backend's) or a user token (a JWT
//! minted by a backend for one of its users, [`tokens`]). What the caller may do is decided
//! by the rules in `domain`, asked by the store's use cases (and, for administration, by
//! the `Admin` proof they require).

pub mod tokens;

use crate::{
    domain::{Caller, Error},
    store::{Store, api_keys, users},
};

/// The caller of a request, or UNAUTHENTICATED when the credential is missing, malformed,
/// unknown, revoked or expired, or its user deactivated. The caller's user and account are
/// recorded on the call's span.
pub async fn authenticate(store: &Store, headers: &http::HeaderMap) -> Result<Caller, Error> {
    let credential = bearer_key(headers)?;
    let caller = if credential.starts_with(api_keys::KEY_PREFIX) {
        users::authenticate(store, credential).await?
    } else {
        tokens::verify(store, credential).await?
    };
    let span = tracing::Span::current();
    span.record("caller", caller.user_id.as_str());
    span.record("account", caller.account_id.as_str());
    Ok(caller)
}

fn bearer_key(headers: &http::HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get("authorization")
        .ok_or_else(|| Error::Unauthenticated("missing `authorization: Bearer <key>` metadata".into()))?
        .to_str()
        .map_err(|_| Error::Unauthenticated("the authorization metadata is not ASCII".into()))?;
    let (scheme, key) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Error::Unauthenticated("authorization must be `Bearer <key>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(Error::Unauthenticated("authorization must be `Bearer <key>`".into()));
    }
    Ok(key.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_keys_are_read_case_insensitively() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "bearer msk_abc".parse().unwrap());
        assert_eq!(bearer_key(&headers).unwrap(), "msk_abc");
        headers.insert("authorization", "Basic msk_abc".parse().unwrap());
        assert!(bearer_key(&headers).is_err());
        assert!(bearer_key(&http::HeaderMap::new()).is_err());
    }
}
