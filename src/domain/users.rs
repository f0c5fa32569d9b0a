//! Users, their roles and contact details, and API keys.

use serde::{Deserialize, Serialize};

use super::{Admin, Error, Micros, text};

/// What a user may do. Stored and logged by its snake_case name (`admin`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::EnumString, strum::IntoStaticStr, strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Staff who also manage users and keys.
    Admin,
    /// Staff: sees every conversation of the account and the private notes in it.
    Agent,
    /// An end user: sees the conversations it takes part in, never a private note.
    Member,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the role is staff (admin or agent).
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Agent)
    }
}

/// A user of the host product, in one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// `usr_…`
    pub id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// What it may do.
    pub role: Role,
    /// The name others see.
    pub display_name: String,
    /// The host product's id for it, unique in the account when set.
    pub external_id: Option<String>,
    /// Contact details, seen only by staff and the user itself ("" for none).
    pub email: String,
    /// A phone number ("" for none).
    pub phone: String,
    /// When it was created.
    pub create_time: Micros,
    /// When it last changed.
    pub update_time: Micros,
    /// Set while it is deactivated: its keys and tokens do not work.
    pub deactivate_time: Option<Micros>,
    /// How others see it: picture and badge.
    pub profile: Profile,
}

/// How other users see a user besides its name: what a marketplace shows next to a
/// message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Its picture's http(s) URL, or "".
    pub avatar_url: String,
    /// Vouched for by the account's admins (a verified seller).
    pub verified: bool,
}

impl Profile {
    /// Validates a profile from request fields `user.avatar_url` and `user.verified`.
    pub fn parse(avatar_url: String, verified: bool) -> Result<Self, Error> {
        Ok(Self { avatar_url: text::image_url("user.avatar_url", avatar_url)?, verified })
    }
}

/// Why a deactivated user's keys and tokens are refused.
pub fn deactivated() -> Error {
    Error::Unauthenticated("the user is deactivated".into())
}

/// An admin may not lock itself out (deactivate itself, or take another role): that could
/// leave its account without a working admin, and only the command line could mend it.
/// FAILED_PRECONDITION, saying what it may not `do` ("deactivate itself").
pub fn ensure_not_locking_out(admin: &Admin, user_id: &str, what: &str) -> Result<(), Error> {
    if admin.caller().user_id == user_id {
        return Err(Error::FailedPrecondition(format!("an admin cannot {what}")));
    }
    Ok(())
}

/// New credentials (keys, tokens) are made for active users only: FAILED_PRECONDITION for
/// user `id`, deactivated at `deactivate_time`.
pub fn ensure_active(id: &str, deactivate_time: Option<Micros>) -> Result<(), Error> {
    match deactivate_time {
        Some(_) => Err(Error::FailedPrecondition(format!("user {id} is deactivated; reactivate it first"))),
        None => Ok(()),
    }
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
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only the user with this external id.
    pub external_id: Option<String>,
}

impl UserFilter {
    /// Identifies the query for page tokens.
    pub fn fingerprint(&self, caller: &super::Caller) -> String {
        format!("users|{}|{:?}|{:?}", caller.user_id, self.role, self.external_id)
    }
}

/// Most characters in a display name or an API key's name.
pub const MAX_NAME_CHARS: usize = 200;
/// Most characters in an external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;

/// A user to create, validated.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Its role.
    pub role: Role,
    /// Trimmed, at most [`MAX_NAME_CHARS`].
    pub display_name: String,
    /// Unique in the account when set.
    pub external_id: Option<String>,
    /// A valid address or "".
    pub email: String,
    /// A valid number or "".
    pub phone: String,
    /// Picture and badge; none unless [`NewUser::with_profile`].
    pub profile: Profile,
}

impl NewUser {
    /// The same user with this profile.
    pub fn with_profile(self, profile: Profile) -> Self {
        Self { profile, ..self }
    }

    /// Validates every field at once; `role` is `None` when the request left it unset.
    pub fn parse(
        role: Option<Role>,
        display_name: String,
        external_id: String,
        email: String,
        phone: String,
    ) -> Result<Self, Error> {
        let role =
            role.ok_or_else(|| Error::invalid("user.role", "is required: ROLE_ADMIN, ROLE_AGENT or ROLE_MEMBER"));
        let display_name = parse_display_name("user.display_name", &display_name);
        let external_id = parse_external_id("user.external_id", external_id);
        let email = parse_email("user.email", email);
        let phone = parse_phone("user.phone", phone);
        match (role, display_name, external_id, email, phone) {
            (Ok(role), Ok(display_name), Ok(external_id), Ok(email), Ok(phone)) => {
                Ok(Self { role, display_name, external_id, email, phone, profile: Profile::default() })
            }
            (role, display_name, external_id, email, phone) => Err(Error::merge(
                [role.err(), display_name.err(), external_id.err(), email.err(), phone.err()].into_iter().flatten(),
            )),
        }
    }
}

/// The fields an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    /// A new role (counters that depend on it are recounted).
    pub role: Option<Role>,
    /// A new display name.
    pub display_name: Option<String>,
    /// A new external id, or `Some(None)` to clear it.
    pub external_id: Option<Option<String>>,
    /// A new email address.
    pub email: Option<String>,
    /// A new phone number.
    pub phone: Option<String>,
    /// A new picture URL ("" clears it).
    pub avatar_url: Option<String>,
    /// A new verified badge.
    pub verified: Option<bool>,
}

/// A display name: trimmed, no NUL, at most [`MAX_NAME_CHARS`].
pub fn parse_display_name(field: &str, value: &str) -> Result<String, Error> {
    text::trimmed(field, value, MAX_NAME_CHARS)
}

/// An API key's name: no NUL, at most [`MAX_NAME_CHARS`].
pub fn parse_key_name(field: &str, value: String) -> Result<String, Error> {
    text::bounded(field, value, MAX_NAME_CHARS)
}

/// An external id, or `None` when empty.
pub fn parse_external_id(field: &str, value: String) -> Result<Option<String>, Error> {
    text::optional(field, value, MAX_EXTERNAL_ID_CHARS)
}

/// An email address, or empty for none.
pub fn parse_email(field: &str, value: String) -> Result<String, Error> {
    if value.is_empty() || email_address::EmailAddress::is_valid(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(field, format!("{value:?} is not a valid email address")))
    }
}

/// A phone number in E.164 or the North American pattern, stored in E.164 (`phones`), or
/// empty for none.
pub fn parse_phone(field: &str, value: String) -> Result<String, Error> {
    super::phones::parse(field, &value)
}

/// An API key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_…`, the key's id (not its secret).
    pub id: String,
    /// The user it acts as.
    pub user_id: String,
    /// A label chosen by whoever made it.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// When it was made.
    pub create_time: Micros,
    /// When it was revoked, if it was.
    pub revoke_time: Option<Micros>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_reports_every_bad_field_at_once() {
        let err = NewUser::parse(None, "x".repeat(201), String::new(), "jane@".into(), "12".into()).unwrap_err();
        let Error::InvalidArgument(violations) = err else { panic!("{err:?}") };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["user.role", "user.display_name", "user.email", "user.phone"]);
        let user = NewUser::parse(Some(Role::Agent), "  Ann ".into(), String::new(), String::new(), String::new());
        let user = user.unwrap();
        assert_eq!((user.display_name.as_str(), user.external_id), ("Ann", None));
    }

    #[test]
    fn roles_are_stored_by_name() {
        assert_eq!(Role::Agent.as_str(), "agent");
        assert_eq!("member".parse::<Role>().unwrap(), Role::Member);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_validated() {
        assert!(parse_email("email", "jane@example.com".into()).is_ok());
        assert!(parse_email("email", "jane@".into()).is_err());
    }
}
