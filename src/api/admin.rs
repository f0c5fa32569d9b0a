//! AdminService: users, API keys and user tokens of the caller's account. Every call but
//! GetCaller needs an admin with an API key: the handler asks for the `Admin` proof first,
//! which the store's administration requires.

use std::time::Duration;

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{
    ApiState,
    convert::{self, mask_paths},
    pb,
};
use crate::{
    auth,
    domain::{
        Error,
        idempotency::RequestKey,
        ids,
        paging::Page,
        text,
        users::{self, NewUser, Profile, UserFilter, UserPatch},
    },
    store,
};

/// How long a user token works when the request does not say.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);

/// The AdminService handlers.
pub struct AdminApi {
    state: ApiState,
}

impl AdminApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

fn user_patch(user: pb::User, paths: &[String]) -> Result<UserPatch, Error> {
    let mut patch = UserPatch::default();
    for path in paths {
        match path.as_str() {
            "role" => {
                patch.role = Some(
                    convert::role_from("user.role", user.role)?
                        .ok_or_else(|| Error::invalid("user.role", "must be set when named in update_mask"))?,
                );
            }
            "display_name" => {
                patch.display_name = Some(users::parse_display_name("user.display_name", &user.display_name)?)
            }
            "external_id" => {
                patch.external_id = Some(users::parse_external_id("user.external_id", user.external_id.clone())?)
            }
            "email" => patch.email = Some(users::parse_email("user.email", user.email.clone())?),
            "phone" => patch.phone = Some(users::parse_phone("user.phone", user.phone.clone())?),
            "avatar_url" => patch.avatar_url = Some(text::image_url("user.avatar_url", user.avatar_url.clone())?),
            "verified" => patch.verified = Some(user.verified),
            _ => {}
        }
    }
    Ok(patch)
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminApi {
    async fn get_caller(&self, request: Request<pb::GetCallerRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.state.caller(&request)?;
        let user = store::users::get_self(&self.state.store, &caller).await?;
        Ok(Response::new(user.into()))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let mut request = request.into_inner();
        let request_id =
            RequestKey::parse("request_id", std::mem::take(&mut request.request_id), || request.encode_to_vec())?;
        let user = request.user.ok_or_else(|| Error::invalid("user", "is required"))?;
        let role = convert::role_from("user.role", user.role)?;
        let profile = Profile::parse(user.avatar_url, user.verified);
        let new = NewUser::parse(role, user.display_name, user.external_id, user.email, user.phone);
        let new = match (new, profile) {
            (Ok(new), Ok(profile)) => new.with_profile(profile),
            (new, profile) => return Err(Error::merge([new.err(), profile.err()].into_iter().flatten()).into()),
        };
        let user = store::users::create(&self.state.store, &admin, new, request_id).await?;
        Ok(Response::new(user.into()))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let id = ids::parse("id", &request.get_ref().id, ids::USER)?;
        let user = store::users::get(&self.state.store, &admin, &id).await?;
        Ok(Response::new(user.into()))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let request = request.into_inner();
        let filter = UserFilter {
            role: convert::role_from("role", request.role)?,
            external_id: text::filter("external_id", request.external_id)?,
        };
        let page = Page::parse(request.page_size, &request.page_token, &filter.fingerprint(admin.caller()))?;
        let listing = store::users::list(&self.state.store, &admin, filter, &page).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: listing.items.into_iter().map(pb::User::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let request = request.into_inner();
        let user = request.user.ok_or_else(|| Error::invalid("user", "is required"))?;
        let id = ids::parse("user.id", &user.id, ids::USER)?;
        let paths = mask_paths(
            request.update_mask,
            &[
                ("display_name", !user.display_name.is_empty()),
                ("role", user.role != 0),
                ("external_id", !user.external_id.is_empty()),
                ("email", !user.email.is_empty()),
                ("phone", !user.phone.is_empty()),
                ("avatar_url", !user.avatar_url.is_empty()),
                ("verified", user.verified),
            ],
            &[],
        )?;
        let patch = user_patch(user, &paths)?;
        let user = store::users::update(&self.state.store, &admin, id, patch).await?;
        Ok(Response::new(user.into()))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let request = request.into_inner();
        let user_id = ids::parse("user_id", &request.user_id, ids::USER)?;
        let name = users::parse_key_name("name", request.name)?;
        let created = store::api_keys::create(&self.state.store, &admin, user_id, name).await?;
        Ok(Response::new(pb::CreateApiKeyResponse { api_key: Some(created.key.into()), key: created.secret }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let request = request.into_inner();
        let user_id =
            if request.user_id.is_empty() { None } else { Some(ids::parse("user_id", &request.user_id, ids::USER)?) };
        let query = format!("keys|{}|{:?}", admin.caller().user_id, user_id);
        let page = Page::parse(request.page_size, &request.page_token, &query)?;
        let listing = store::api_keys::list(&self.state.store, &admin, user_id.as_deref(), &page).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: listing.items.into_iter().map(pb::ApiKey::from).collect(),
            next_page_token: listing.next_page_token,
        }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let id = ids::parse("id", &request.get_ref().id, ids::API_KEY)?;
        let key = store::api_keys::revoke(&self.state.store, &admin, id).await?;
        Ok(Response::new(key.into()))
    }

    async fn deactivate_user(&self, request: Request<pb::DeactivateUserRequest>) -> Result<Response<pb::User>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let id = ids::parse("id", &request.get_ref().id, ids::USER)?;
        let user = store::users::set_active(&self.state.store, &admin, id, false).await?;
        Ok(Response::new(user.into()))
    }

    async fn reactivate_user(&self, request: Request<pb::ReactivateUserRequest>) -> Result<Response<pb::User>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let id = ids::parse("id", &request.get_ref().id, ids::USER)?;
        let user = store::users::set_active(&self.state.store, &admin, id, true).await?;
        Ok(Response::new(user.into()))
    }

    async fn create_user_token(
        &self,
        request: Request<pb::CreateUserTokenRequest>,
    ) -> Result<Response<pb::CreateUserTokenResponse>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let request = request.into_inner();
        let user_id = ids::parse("user_id", &request.user_id, ids::USER)?;
        let ttl = token_ttl(request.ttl, self.state.max_token_ttl)?;
        let (holder, secret) = store::user_tokens::grant(&self.state.store, &admin, user_id.clone()).await?;
        let (token, expire_time) = auth::tokens::mint(&secret, &admin.caller().account_id, &user_id, &holder, ttl)?;
        Ok(Response::new(pb::CreateUserTokenResponse { token, expire_time: Some(convert::timestamp(expire_time)) }))
    }

    async fn rotate_user_token_secret(
        &self,
        request: Request<pb::RotateUserTokenSecretRequest>,
    ) -> Result<Response<pb::RotateUserTokenSecretResponse>, Status> {
        let admin = self.state.caller(&request)?.require_admin()?;
        let rotated = store::user_tokens::rotate(&self.state.store, &admin).await?;
        Ok(Response::new(pb::RotateUserTokenSecretResponse { rotate_time: Some(convert::timestamp(rotated)) }))
    }
}

/// How long a token asked for works: `ttl`, or an hour (at most `max`) when unset.
fn token_ttl(ttl: Option<prost_types::Duration>, max: Duration) -> Result<Duration, Error> {
    let Some(ttl) = ttl else {
        return Ok(DEFAULT_TOKEN_TTL.min(max));
    };
    let ttl = convert::duration_from("ttl", &ttl)?;
    if ttl < Duration::from_secs(1) {
        return Err(Error::invalid("ttl", "must be at least 1s"));
    }
    if ttl > max {
        return Err(Error::invalid(
            "ttl",
            format!("must be at most {} (--max-user-token-ttl)", humantime::format_duration(max)),
        ));
    }
    Ok(ttl)
}
