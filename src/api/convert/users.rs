//! Users, roles and API keys.

use super::{enum_field, optional_timestamp, timestamp};
use crate::{
    api::pb,
    domain::{
        Error,
        users::{ApiKey, Role, User},
    },
};

impl From<Role> for pb::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => pb::Role::Admin,
            Role::Agent => pb::Role::Agent,
            Role::Member => pb::Role::Member,
        }
    }
}

/// A role from a request; `None` for ROLE_UNSPECIFIED.
pub fn role_from(field: &str, value: i32) -> Result<Option<Role>, Error> {
    Ok(match enum_field::<pb::Role>(field, value, "Role")? {
        pb::Role::Unspecified => None,
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Agent => Some(Role::Agent),
        pb::Role::Member => Some(Role::Member),
    })
}

impl From<User> for pb::User {
    fn from(user: User) -> Self {
        pb::User {
            id: user.id,
            account_id: user.account_id,
            role: pb::Role::from(user.role) as i32,
            display_name: user.display_name,
            external_id: user.external_id.unwrap_or_default(),
            email: user.email,
            phone: user.phone,
            create_time: Some(timestamp(user.create_time)),
            update_time: Some(timestamp(user.update_time)),
            deactivate_time: optional_timestamp(user.deactivate_time),
            avatar_url: user.profile.avatar_url,
            verified: user.profile.verified,
        }
    }
}

impl From<ApiKey> for pb::ApiKey {
    fn from(key: ApiKey) -> Self {
        pb::ApiKey {
            id: key.id,
            user_id: key.user_id,
            name: key.name,
            prefix: key.prefix,
            create_time: Some(timestamp(key.create_time)),
            revoke_time: optional_timestamp(key.revoke_time),
        }
    }
}
