//! Authentication: `authorization: Bearer <key>` metadata to the [`Caller`] the key acts
//! as. What the caller may do is decided by the rules in `domain`, asked by the store's use
//! cases (and, for administration, by the `Admin` proof they require).

use crate::{
    domain::{Caller, Error},
    store::{Store, users},
};

/// The caller of a request, or UNAUTHENTICATED when the key is missing, malformed, unknown
/// or revoked. The caller's user and account are recorded on the call's span.
pub async fn authenticate(store: &Store, headers: &http::HeaderMap) -> Result<Caller, Error> {
    let key = bearer_key(headers)?;
    let caller = users::authenticate(store, key).await?;
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
