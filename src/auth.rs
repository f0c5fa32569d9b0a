//! Authentication: `authorization: Bearer <key>` metadata to the [`Caller`] the key acts as.
//! Authorization (what the caller may do) is decided per resource in `domain` and `store`.

use tonic::metadata::MetadataMap;

use crate::{
    domain::{Caller, Error},
    store::Store,
};

/// The caller of a request, or UNAUTHENTICATED when the key is missing, malformed, unknown
/// or revoked.
pub async fn authenticate(store: &Store, metadata: &MetadataMap) -> Result<Caller, Error> {
    let key = bearer_key(metadata)?;
    let caller = store.authenticate(key).await?;
    tracing::Span::current().record("caller", caller.user_id.as_str());
    Ok(caller)
}

fn bearer_key(metadata: &MetadataMap) -> Result<&str, Error> {
    let value = metadata
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
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", "bearer msk_abc".parse().unwrap());
        assert_eq!(bearer_key(&metadata).unwrap(), "msk_abc");
        metadata.insert("authorization", "Basic msk_abc".parse().unwrap());
        assert!(bearer_key(&metadata).is_err());
    }
}
