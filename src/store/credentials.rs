//! What API keys act as, cached. Every call authenticates and every stream re-checks its key
//! before it delivers, so looking a key up must not cost queries each time. An entry goes
//! at the commit of a change to what its key acts as (a revoke, a role change): on this
//! replica by the writer, on others through a NOTIFY on [`CHANNEL`] (`events::listener`);
//! a replica that may have missed one forgets everything.
//!
//! A lookup that read the database before such a commit must not put back what the commit
//! just removed: every forget bumps a generation, and a lookup remembers its answer only if
//! the generation it started under is still current.
//!
//! Several processes sharing one SQLite file have no channel between them: there an entry
//! lives [`SHARED_FILE_MAX_AGE`] at most, so a revoke through one process takes effect on
//! the others within that time. A job (`jobs::keys`) re-reads every cached key well within
//! that age, one statement per account (`users::refresh_keys`), so that the keys in use
//! stay cached: a stream re-checking its key at each heartbeat finds it here, and idle
//! streams run no statement each.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::domain::{Caller, Credential};

/// The PostgreSQL NOTIFY channel on which commits announce `<account> <user>` whose
/// credentials changed.
pub const CHANNEL: &str = "missive_credentials";

/// More keys than this in use at once and the cache starts over: a bound on memory that
/// costs one query per key when it happens.
const MAX_ENTRIES: usize = 100_000;

/// How long an entry lives where no notification reaches other processes (SQLite).
pub const SHARED_FILE_MAX_AGE: Duration = Duration::from_secs(1);

/// The cache; see the module's documentation.
#[derive(Debug, Default)]
pub struct Credentials {
    inner: Mutex<Inner>,
    /// How long an entry lives; for ever (until forgotten) when `None`.
    max_age: Option<Duration>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    /// By the key's hash, for calls, with when it was read and when it was last used.
    by_hash: HashMap<String, Entry>,
    /// The hash of a key id, for streams, which hold the id.
    hash_of: HashMap<String, String>,
}

/// A cached key: what it acts as, when that was read, when the key was last used.
#[derive(Debug)]
struct Entry {
    caller: Caller,
    read: Instant,
    used: Instant,
}

/// Keys used within this long are kept cached by the refresh (`keys_by_account`): a stream
/// uses its key at every heartbeat (15 s by default); keys nobody uses expire.
const IN_USE: Duration = Duration::from_secs(60);

/// When a lookup began, for [`Credentials::remember`]; a stream also compares it to tell
/// whether any key changed since it last checked its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl Credentials {
    /// A cache whose entries live `max_age` at most (`None`: until forgotten).
    pub fn new(max_age: Option<Duration>) -> Self {
        Self { inner: Mutex::default(), max_age }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry's caller unless it expired, marking the key used.
    fn fresh(&self, entry: &mut Entry) -> Option<Caller> {
        let expired = self.max_age.is_some_and(|max_age| entry.read.elapsed() > max_age);
        entry.used = Instant::now();
        (!expired).then(|| entry.caller.clone())
    }

    /// The caller of the key with this hash, if cached.
    pub fn by_hash(&self, key_hash: &str) -> Option<Caller> {
        self.inner().by_hash.get_mut(key_hash).and_then(|entry| self.fresh(entry))
    }

    /// The caller of the key with this id, if cached.
    pub fn by_key_id(&self, key_id: &str) -> Option<Caller> {
        let mut inner = self.inner();
        let hash = inner.hash_of.get(key_id)?.clone();
        inner.by_hash.get_mut(&hash).and_then(|entry| self.fresh(entry))
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
        if let Credential::ApiKey(key_id) = &caller.credential {
            inner.hash_of.insert(key_id.clone(), key_hash.clone());
        }
        let now = Instant::now();
        inner.by_hash.insert(key_hash, Entry { caller, read: now, used: now });
    }

    /// Every cached API key used lately (`IN_USE`), by account: (its hash, what it acts
    /// as). A refresh renews these; the others expire.
    pub fn keys_by_account(&self) -> HashMap<String, Vec<(String, Caller)>> {
        let mut keys: HashMap<String, Vec<(String, Caller)>> = HashMap::new();
        for (hash, entry) in &self.inner().by_hash {
            if matches!(entry.caller.credential, Credential::ApiKey(_)) && entry.used.elapsed() < IN_USE {
                keys.entry(entry.caller.account_id.clone()).or_default().push((hash.clone(), entry.caller.clone()));
            }
        }
        keys
    }

    /// Marks the key with this hash as read again now (it acts as cached), unless
    /// something was forgotten since `generation` or the key left the cache; when it was
    /// last used stays as it was.
    pub fn renew(&self, generation: Generation, key_hash: &str) {
        let mut inner = self.inner();
        if inner.generation != generation.0 {
            return;
        }
        if let Some(entry) = inner.by_hash.get_mut(key_hash) {
            entry.read = Instant::now();
        }
    }

    /// Forgets every key of `user_id`.
    pub fn forget_user(&self, user_id: &str) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.by_hash.retain(|_, entry| entry.caller.user_id != user_id);
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
        Caller {
            account_id: "acc".into(),
            user_id: user.into(),
            role: Role::Member,
            credential: Credential::ApiKey(key.into()),
        }
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

    #[test]
    fn entries_expire_where_other_processes_cannot_say_what_changed() {
        let cache = Credentials::new(Some(Duration::from_millis(20)));
        cache.remember(cache.generation(), "h1".into(), caller("u1", "k1"));
        assert!(cache.by_hash("h1").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.by_hash("h1").is_none());
        assert!(cache.by_key_id("k1").is_none());
    }
}
