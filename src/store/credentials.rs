//! What API keys act as, cached. Every call authenticates and every stream re-checks its key
//! before it delivers, so looking a key up must not cost queries each time. An entry goes
//! at the commit of a change to what its key acts as (a revoke, a role change): on this
//! replica by the writer, on others through a NOTIFY on [`CHANNEL`] (`events::listener`);
//! a replica that may have missed one forgets everything.
//!
//! A lookup that read the database before such a commit must not put back what the commit
//! just removed: every forget bumps a generation, and a lookup remembers its answer only if
//! the generation it started under is still current.

use std::{collections::HashMap, sync::Mutex};

use crate::domain::Caller;

/// The PostgreSQL NOTIFY channel on which commits announce `<account> <user>` whose
/// credentials changed.
pub const CHANNEL: &str = "missive_credentials";

/// More keys than this in use at once and the cache starts over: a bound on memory that
/// costs one query per key when it happens.
const MAX_ENTRIES: usize = 100_000;

/// The cache; see the module's documentation.
#[derive(Debug, Default)]
pub struct Credentials {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    /// By the key's hash, for calls.
    by_hash: HashMap<String, Caller>,
    /// The hash of a key id, for streams, which hold the id.
    hash_of: HashMap<String, String>,
}

/// When a lookup began, for [`Credentials::remember`].
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

impl Credentials {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The caller of the key with this hash, if cached.
    pub fn by_hash(&self, key_hash: &str) -> Option<Caller> {
        self.inner().by_hash.get(key_hash).cloned()
    }

    /// The caller of the key with this id, if cached.
    pub fn by_key_id(&self, key_id: &str) -> Option<Caller> {
        let inner = self.inner();
        inner.hash_of.get(key_id).and_then(|hash| inner.by_hash.get(hash)).cloned()
    }

    /// Taken before reading a key from the database.
    pub fn generation(&self) -> Generation {
        Generation(self.inner().generation)
    }

    /// Caches what a key read under `generation` acts as, unless something was forgotten
    /// since.
    pub fn remember(&self, generation: Generation, key_hash: String, caller: Caller) {
        let mut inner = self.inner();
        if inner.generation != generation.0 {
            return;
        }
        if inner.by_hash.len() >= MAX_ENTRIES {
            inner.by_hash.clear();
            inner.hash_of.clear();
        }
        inner.hash_of.insert(caller.key_id.clone(), key_hash.clone());
        inner.by_hash.insert(key_hash, caller);
    }

    /// Forgets every key of `user_id`.
    pub fn forget_user(&self, user_id: &str) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.by_hash.retain(|_, caller| caller.user_id != user_id);
        let Inner { by_hash, hash_of, .. } = &mut *inner;
        hash_of.retain(|_, hash| by_hash.contains_key(hash));
    }

    /// Forgets everything: after a notification may have been missed.
    pub fn forget_all(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.by_hash.clear();
        inner.hash_of.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::Role;

    fn caller(user: &str, key: &str) -> Caller {
        Caller { account_id: "acc".into(), user_id: user.into(), role: Role::Member, key_id: key.into() }
    }

    #[test]
    fn a_forgotten_user_is_looked_up_again_and_a_stale_lookup_is_not_kept() {
        let cache = Credentials::default();
        cache.remember(cache.generation(), "h1".into(), caller("u1", "k1"));
        cache.remember(cache.generation(), "h2".into(), caller("u2", "k2"));
        assert_eq!(cache.by_key_id("k1").unwrap().user_id, "u1");

        let before_revoke = cache.generation();
        cache.forget_user("u1");
        assert!(cache.by_hash("h1").is_none());
        assert!(cache.by_key_id("k1").is_none());
        assert!(cache.by_hash("h2").is_some(), "other users stay");

        // A lookup that began before the revoke read the key as valid: it must not return.
        cache.remember(before_revoke, "h1".into(), caller("u1", "k1"));
        assert!(cache.by_hash("h1").is_none());

        cache.forget_all();
        assert!(cache.by_hash("h2").is_none());
    }
}
