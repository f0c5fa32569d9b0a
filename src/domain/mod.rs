//! Missive's own business: validated types, limits, and the rules of who may do what.
//! Nothing here knows about tonic or sea-orm: `api` parses requests into these types,
//! `store` persists them and asks these rules before it changes anything.
//!
//! Validation happens where the data arrives (each type's `parse`/`validate`, called by
//! `api`); rules that need stored state (who sent a message, who takes part) are asked by
//! the store's use cases once that state is loaded. Each rule is written once, here.

pub mod channels;
pub mod conversations;
pub mod delivery;
pub mod error;
pub mod events;
pub mod handling;
pub mod idempotency;
pub mod ids;
pub mod messages;
pub mod metadata;
pub mod notifications;
pub mod paging;
pub mod phones;
pub mod presence;
pub mod relays;
pub mod reports;
pub mod search;
pub mod templates;
pub mod text;
pub mod unread;
pub mod users;
pub mod views;

pub use error::{Error, FieldViolation};

/// Microseconds since the Unix epoch: how every time is stored and compared.
pub type Micros = i64;

/// The current time in microseconds since the Unix epoch.
pub fn now_micros() -> Micros {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// A time as people read it in an error message: RFC 3339, to the second, in UTC.
pub fn format_time(time: Micros) -> String {
    let since_epoch = std::time::Duration::from_micros(u64::try_from(time).unwrap_or_default());
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since_epoch).to_string()
}

/// How much of a resource a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The resource itself, naming what it refers to by id (depth 0).
    #[default]
    Basic,
    /// A message with its sender and its conversation, whose participants stay ids
    /// (depth 1).
    Related,
    /// The resource with the users and conversation it refers to expanded, and the
    /// conversation's participants as users (`VIEW_FULL`, depth 2).
    Full,
}

/// The deepest `depth` a read may ask for.
pub const MAX_DEPTH: i32 = 2;

/// Who is making a call: the user an API key or a user token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account (tenant) the caller belongs to; it never sees another account's data.
    pub account_id: String,
    /// The user it acts as.
    pub user_id: String,
    /// The user's role when its credential was checked.
    pub role: users::Role,
    /// What it proved itself with: what the per-key limits count, and what long-lived
    /// streams re-check.
    pub credential: Credential,
}

/// What a caller proved itself with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key (`key_…`): a backend's, or a user's own.
    ApiKey(String),
    /// A user token, minted by a backend for an end user's device.
    UserToken(TokenGrant),
    /// None: Missive acting for a user itself (delivering a scheduled message).
    System,
}

/// What a user token grants beyond its user: until when, under which signing secret and
/// user generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The signing secret's id: a rotation makes the token void.
    pub secret_id: String,
    /// The user's token generation when minted: a deactivation makes the token void.
    pub generation: i64,
    /// When it stops working.
    pub expire_time: Micros,
}

impl TokenGrant {
    /// UNAUTHENTICATED (reason TOKEN_EXPIRED) from the moment it expires.
    pub fn ensure_live(&self, now: Micros) -> Result<(), Error> {
        if now >= self.expire_time {
            return Err(Error::TokenExpired(
                "the token has expired; mint a new one (and resume from your cursor)".into(),
            ));
        }
        Ok(())
    }
}

impl Caller {
    /// Admins and agents are staff: they see every conversation of their account and the
    /// private notes in it.
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// What the per-key limits count: the key, or for user tokens the user (a user's
    /// tokens share one allowance).
    pub fn limit_key(&self) -> std::borrow::Cow<'_, str> {
        match &self.credential {
            Credential::ApiKey(key_id) => key_id.into(),
            Credential::UserToken(_) | Credential::System => format!("user:{}", self.user_id).into(),
        }
    }

    /// The caller as an [`Admin`], or PERMISSION_DENIED. The store's user and key
    /// administration takes an `Admin`, so it cannot be reached without this check.
    pub fn require_admin(&self) -> Result<Admin, Error> {
        if matches!(self.credential, Credential::UserToken(_)) {
            // Tokens are for end users' devices; a backend administers with its key.
            return Err(Error::PermissionDenied("administration needs an API key, not a user token".into()));
        }
        if self.role == users::Role::Admin {
            Ok(Admin(self.clone()))
        } else {
            Err(Error::PermissionDenied("this call needs an admin API key".into()))
        }
    }

    /// Fails unless the caller is staff; `action` says what was refused.
    pub fn require_staff(&self, action: &str) -> Result<(), Error> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("only staff (admin or agent) may {action}")))
        }
    }
}

/// A caller proven to be an admin: only [`Caller::require_admin`] makes one.
#[derive(Debug, Clone)]
pub struct Admin(Caller);

impl Admin {
    /// The admin's call identity.
    pub fn caller(&self) -> &Caller {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use users::Role;

    fn caller(role: Role) -> Caller {
        Caller { account_id: "acc".into(), user_id: "usr".into(), role, credential: Credential::ApiKey("key".into()) }
    }

    #[test]
    fn only_admins_administer_and_only_staff_act_as_staff() {
        assert!(caller(Role::Admin).require_admin().is_ok());
        for role in [Role::Agent, Role::Member] {
            assert!(matches!(caller(role).require_admin(), Err(Error::PermissionDenied(_))));
        }
        assert!(caller(Role::Agent).require_staff("x").is_ok());
        assert!(matches!(caller(Role::Member).require_staff("x"), Err(Error::PermissionDenied(_))));
    }
}
