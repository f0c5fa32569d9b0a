//! Missive's own business: validated types, limits and the rules of who may do what.
//! Nothing here knows about tonic or sea-orm; `api` parses requests into these types and
//! `store` persists them.

pub mod conversations;
pub mod error;
pub mod events;
pub mod ids;
pub mod messages;
pub mod metadata;
pub mod paging;
pub mod users;

pub use error::{Error, FieldViolation};

/// Microseconds since the Unix epoch: how every time is stored and compared.
pub type Micros = i64;

/// The current time in microseconds since the Unix epoch.
pub fn now_micros() -> Micros {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// Rejects text that no database may store as given: PostgreSQL cannot hold a NUL
/// character, so it is refused everywhere rather than only on one backend.
pub fn check_text(field: &str, value: &str) -> Result<(), Error> {
    if value.contains('\0') {
        return Err(Error::invalid(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Who is making a call: the user an API key acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    pub user_id: String,
    pub role: users::Role,
    /// The API key used, for the trace.
    pub key_id: String,
}

impl Caller {
    /// Admins and agents are staff: they see every conversation of their account and the
    /// private notes in it.
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    /// Fails unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.role == users::Role::Admin {
            Ok(())
        } else {
            Err(Error::PermissionDenied("this call needs an admin API key".into()))
        }
    }

    /// Fails unless the caller is staff.
    pub fn require_staff(&self, action: &str) -> Result<(), Error> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!("only staff (admin or agent) may {action}")))
        }
    }
}
