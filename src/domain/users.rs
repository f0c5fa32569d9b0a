//! Users, their roles and contact details, and API keys.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Error, Micros, error::Violations};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Agent,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Member => "member",
        }
    }

    pub fn from_stored(value: &str) -> Result<Self, Error> {
        match value {
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            "member" => Ok(Role::Member),
            other => Err(Error::Internal(format!("unknown stored role {other:?}"))),
        }
    }

    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Agent)
    }

    /// The roles that count as staff, as stored.
    pub const STAFF: [&'static str; 2] = ["admin", "agent"];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub account_id: String,
    pub role: Role,
    pub display_name: String,
    pub external_id: Option<String>,
    pub email: String,
    pub phone: String,
    pub create_time: Micros,
    pub update_time: Micros,
}

impl User {
    /// What a member may see of another user: no contact details, no external id.
    pub fn public_view(self) -> User {
        User { email: String::new(), phone: String::new(), external_id: None, ..self }
    }
}

/// A user listing's filters.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub external_id: Option<String>,
}

impl UserFilter {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &super::Caller) -> String {
        format!("users|{}|{:?}|{:?}", caller.user_id, self.role, self.external_id)
    }
}

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;

/// A user to create, validated.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub role: Role,
    pub display_name: String,
    pub external_id: Option<String>,
    pub email: String,
    pub phone: String,
}

impl NewUser {
    /// Validates every field at once; `role` is `None` when the request left it unset.
    pub fn parse(
        role: Option<Role>,
        display_name: String,
        external_id: String,
        email: String,
        phone: String,
    ) -> Result<Self, Error> {
        let mut violations = Violations::new();
        let role = role.or_else(|| {
            violations.add("user.role", "is required: ROLE_ADMIN, ROLE_AGENT or ROLE_MEMBER");
            None
        });
        let display_name = violations.check(parse_display_name("user.display_name", display_name));
        let external_id = violations.check(parse_external_id("user.external_id", external_id));
        let email = violations.check(parse_email("user.email", email));
        let phone = violations.check(parse_phone("user.phone", phone));
        violations.finish()?;
        match (role, display_name, external_id, email, phone) {
            (Some(role), Some(display_name), Some(external_id), Some(email), Some(phone)) => {
                Ok(Self { role, display_name, external_id, email, phone })
            }
            _ => Err(Error::Internal("validation passed with a missing field".into())),
        }
    }
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub display_name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

pub fn parse_display_name(field: &str, value: String) -> Result<String, Error> {
    super::check_text(field, &value)?;
    let value = value.trim().to_owned();
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid(field, format!("is longer than {MAX_NAME_CHARS} characters")));
    }
    Ok(value)
}

pub fn parse_external_id(field: &str, value: String) -> Result<Option<String>, Error> {
    if value.is_empty() {
        return Ok(None);
    }
    super::check_text(field, &value)?;
    if value.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(Error::invalid(field, format!("is longer than {MAX_EXTERNAL_ID_CHARS} characters")));
    }
    Ok(Some(value))
}

/// An email address, or empty for none.
pub fn parse_email(field: &str, value: String) -> Result<String, Error> {
    if value.is_empty() || email_address::EmailAddress::is_valid(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(field, format!("{value:?} is not a valid email address")))
    }
}

/// The North American pattern of the car-commerce API (seed 003), e.g. `+1 (555) 123-4567`.
static NORTH_AMERICAN_PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\+?1?[- ]?\(?([0-9]{3})\)?[- ]?([0-9]{3})-?([0-9]{4})$").expect("valid regex"));
/// E.164: a plus, then up to 15 digits, the first not zero.
static E164_PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\+[1-9][0-9]{1,14}$").expect("valid regex"));

/// A phone number in E.164 or the North American pattern, or empty for none.
pub fn parse_phone(field: &str, value: String) -> Result<String, Error> {
    if value.is_empty() || E164_PHONE.is_match(&value) || NORTH_AMERICAN_PHONE.is_match(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(
            field,
            format!("{value:?} is not a phone number: use E.164 (+4915112345678) or +1 (555) 123-4567"),
        ))
    }
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub prefix: String,
    pub create_time: Micros,
    pub revoke_time: Option<Micros>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_either_pattern_are_accepted() {
        for phone in ["+4915112345678", "+1 (555) 123-4567", "555-123-4567", "5551234567", ""] {
            assert!(parse_phone("phone", phone.into()).is_ok(), "{phone}");
        }
        for phone in ["12", "+0123", "call me", "555-1234"] {
            assert!(parse_phone("phone", phone.into()).is_err(), "{phone}");
        }
    }

    #[test]
    fn emails_are_validated() {
        assert!(parse_email("email", "jane@example.com".into()).is_ok());
        assert!(parse_email("email", "jane@".into()).is_err());
    }
}
