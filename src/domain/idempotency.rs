//! Idempotent creates (AIP-155): a client's `request_id`, scoped to the user that sends
//! it, and a fingerprint of the whole request it came with. A retry (same id, same
//! request) gets the first result; the same id with a different request is refused, so
//! two integrations that happen to number their requests alike never receive each
//! other's resources.

use sha2::{Digest, Sha256};

use super::{Error, text};

/// A request id and the fingerprint of the request that carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestKey {
    /// The client's id: at most [`text::MAX_REQUEST_ID_CHARS`] characters.
    pub id: String,
    /// A digest of the encoded request; empty for rows stored before fingerprints were
    /// kept, which then match any retry.
    pub fingerprint: String,
}

impl RequestKey {
    /// `None` for an empty id; else the id and the fingerprint of `encoded`, the request's
    /// bytes (asked for only when there is an id). The encoding must be deterministic:
    /// the same request always gives the same bytes.
    pub fn parse(field: &str, id: String, encoded: impl FnOnce() -> Vec<u8>) -> Result<Option<Self>, Error> {
        let Some(id) = text::request_id(field, id)? else { return Ok(None) };
        Ok(Some(Self { id, fingerprint: hex::encode(Sha256::digest(encoded())) }))
    }

    /// A key read back from storage.
    pub fn stored(id: String, fingerprint: Option<String>) -> Self {
        Self { id, fingerprint: fingerprint.unwrap_or_default() }
    }

    /// The fingerprint to store, `None` when unknown.
    pub fn stored_fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.clone()).filter(|f| !f.is_empty())
    }

    /// Checks that `earlier` (what this id created before, with its stored fingerprint)
    /// came from this same request: a retry. `field` names the request id.
    pub fn check_retry(&self, field: &str, earlier: &str, earlier_fingerprint: Option<&str>) -> Result<(), Error> {
        match earlier_fingerprint {
            Some(stored) if !stored.is_empty() && !self.fingerprint.is_empty() && stored != self.fingerprint => {
                Err(Error::invalid(
                    field,
                    format!(
                        "was already used for {earlier} by a different request: a retry must repeat its request \
                         exactly, and a new request needs a new request_id"
                    ),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, body: &[u8]) -> RequestKey {
        RequestKey::parse("request_id", id.into(), || body.to_vec()).unwrap().unwrap()
    }

    #[test]
    fn an_empty_id_is_no_key_and_the_body_is_not_read() {
        let key = RequestKey::parse("request_id", String::new(), || panic!("encoded without an id")).unwrap();
        assert_eq!(key, None);
    }

    #[test]
    fn an_overlong_id_is_refused() {
        assert!(RequestKey::parse("request_id", "x".repeat(201), Vec::new).is_err());
    }

    #[test]
    fn the_same_request_is_a_retry_and_another_is_refused() {
        let first = key("r-1", b"hello");
        assert!(key("r-1", b"hello").check_retry("request_id", "user u", Some(&first.fingerprint)).is_ok());
        let error = key("r-1", b"other").check_retry("request_id", "user u", Some(&first.fingerprint)).unwrap_err();
        assert!(error.to_string().contains("user u by a different request"), "{error}");
    }

    #[test]
    fn rows_from_before_fingerprints_match_any_retry() {
        assert!(key("r-1", b"x").check_retry("request_id", "user u", None).is_ok());
        assert!(key("r-1", b"x").check_retry("request_id", "user u", Some("")).is_ok());
    }
}
