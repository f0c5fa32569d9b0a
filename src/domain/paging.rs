//! Keyset pagination (never OFFSET): a page token is the sort key of the last item returned,
//! bound to the query it came from so that a token from another query is rejected instead of
//! silently returning the wrong page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use super::Error;

/// The page size when a request leaves it 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page size accepted.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// A validated page request: how many items, and where to continue from.
#[derive(Debug, Clone)]
pub struct Page<K> {
    /// Items per page.
    pub size: u64,
    /// The sort key to continue after, from the page token.
    pub after: Option<K>,
    fingerprint: String,
}

#[derive(Serialize, Deserialize)]
struct Token<K> {
    /// Fingerprint of the query the token belongs to.
    q: String,
    /// The sort key of the last item of the previous page.
    k: K,
}

impl<K: Serialize + DeserializeOwned> Page<K> {
    /// Parses `page_size` and `page_token` of a request. `query` identifies the query: the
    /// caller and every filter, so that a token is only accepted by the query that made it.
    pub fn parse(page_size: i32, page_token: &str, query: &str) -> Result<Self, Error> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            // A larger page is capped, not refused (AIP-158): the next token carries on.
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        let fingerprint = hex::encode(&Sha256::digest(query.as_bytes())[..12]);
        let after = if page_token.is_empty() {
            None
        } else {
            let token: Token<K> = URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(|| Error::invalid("page_token", "is not a page token issued by this server"))?;
            if token.q != fingerprint {
                return Err(Error::invalid(
                    "page_token",
                    "belongs to another query: keep every filter as in the request that returned it",
                ));
            }
            Some(token.k)
        };
        Ok(Self { size, after, fingerprint })
    }

    /// The token that continues after `last`, the sort key of the last item returned.
    pub fn token_after(&self, last: K) -> String {
        let token = Token { q: self.fingerprint.clone(), k: last };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
    }

    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch_limit`]) to the page and makes the next token.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> (Vec<T>, String) {
        if rows.len() as u64 > self.size {
            rows.truncate(self.size as usize);
            let next = rows.last().map(|row| self.token_after(key(row))).unwrap_or_default();
            (rows, next)
        } else {
            (rows, String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_accepted_by_its_own_query_only() {
        let page: Page<i64> = Page::parse(10, "", "q1").unwrap();
        let token = page.token_after(42);
        assert_eq!(Page::<i64>::parse(10, &token, "q1").unwrap().after, Some(42));
        assert!(Page::<i64>::parse(10, &token, "q2").is_err());
        assert!(Page::<i64>::parse(10, "garbage", "q1").is_err());
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(Page::<i64>::parse(0, "", "q").unwrap().size, DEFAULT_PAGE_SIZE);
        assert!(Page::<i64>::parse(-1, "", "q").is_err());
        assert_eq!(Page::<i64>::parse(1001, "", "q").unwrap().size, MAX_PAGE_SIZE, "capped");
    }
}
