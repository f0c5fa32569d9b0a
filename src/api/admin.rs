//! AdminService: users and API keys of the caller's account.

use tonic::{Request, Response, Status};

use super::convert::mask_paths;
use super::{ApiState, convert, pb, status::to_status};
use crate::domain::{
    Error, check_text, ids,
    messages::check_request_id,
    paging::Page,
    users::{self, NewUser, UserFilter, UserPatch},
};

pub struct AdminApi {
    state: ApiState,
}

impl AdminApi {
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
                patch.display_name = Some(users::parse_display_name("user.display_name", user.display_name.clone())?)
            }
            "external_id" => {
                patch.external_id = Some(users::parse_external_id("user.external_id", user.external_id.clone())?)
            }
            "email" => patch.email = Some(users::parse_email("user.email", user.email.clone())?),
            "phone" => patch.phone = Some(users::parse_phone("user.phone", user.phone.clone())?),
            _ => {}
        }
    }
    Ok(patch)
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for AdminApi {
    async fn get_caller(&self, request: Request<pb::GetCallerRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.state.caller(&request).await?;
        let user = self.state.store.caller_user(&caller).await.map_err(to_status)?;
        Ok(Response::new(convert::user(user)))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            caller.require_admin()?;
            let user = request.user.ok_or_else(|| Error::invalid("user", "is required"))?;
            let role = convert::role_from("user.role", user.role)?;
            check_request_id("request_id", &request.request_id)?;
            let new = NewUser::parse(role, user.display_name, user.external_id, user.email, user.phone)?;
            let request_id = Some(request.request_id).filter(|id| !id.is_empty());
            self.state.store.create_user(&caller, new, request_id).await
        }
        .await;
        result.map(|user| Response::new(convert::user(user))).map_err(to_status)
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            caller.require_admin()?;
            let id = ids::parse("id", &request.get_ref().id, ids::USER)?;
            self.state.store.get_user(&caller, &id).await
        }
        .await;
        result.map(|user| Response::new(convert::user(user))).map_err(to_status)
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            caller.require_admin()?;
            check_text("external_id", &request.external_id)?;
            let filter = UserFilter {
                role: convert::role_from("role", request.role)?,
                external_id: Some(request.external_id.clone()).filter(|id| !id.is_empty()),
            };
            let page = Page::parse(request.page_size, &request.page_token, &filter.fingerprint(&caller))?;
            self.state.store.list_users(&caller, filter, &page).await
        }
        .await;
        let (users, next_page_token, total) = result.map_err(to_status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(convert::user).collect(),
            next_page_token,
            total_size: total as i64,
        }))
    }

    async fn update_user(&self, request: Request<pb::UpdateUserRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            caller.require_admin()?;
            let user = request.user.ok_or_else(|| Error::invalid("user", "is required"))?;
            let id = ids::parse("user.id", &user.id, ids::USER)?;
            let paths = mask_paths(request.update_mask, &["display_name", "role", "external_id", "email", "phone"])?;
            let patch = user_patch(user, &paths)?;
            self.state.store.update_user(&caller, &id, patch).await
        }
        .await;
        result.map(|user| Response::new(convert::user(user))).map_err(to_status)
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            caller.require_admin()?;
            let user_id = ids::parse("user_id", &request.user_id, ids::USER)?;
            check_text("name", &request.name)?;
            if request.name.chars().count() > 200 {
                return Err(Error::invalid("name", "is longer than 200 characters"));
            }
            self.state.store.create_api_key(&caller, &user_id, &request.name).await
        }
        .await;
        let (key, secret) = result.map_err(to_status)?;
        Ok(Response::new(pb::CreateApiKeyResponse { api_key: Some(convert::api_key(key)), key: secret }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            caller.require_admin()?;
            let user_id = if request.user_id.is_empty() {
                None
            } else {
                Some(ids::parse("user_id", &request.user_id, ids::USER)?)
            };
            let query = format!("keys|{}|{:?}", caller.user_id, user_id);
            let page = Page::parse(request.page_size, &request.page_token, &query)?;
            self.state.store.list_api_keys(&caller, user_id.as_deref(), &page).await
        }
        .await;
        let (keys, next_page_token) = result.map_err(to_status)?;
        Ok(Response::new(pb::ListApiKeysResponse {
            api_keys: keys.into_iter().map(convert::api_key).collect(),
            next_page_token,
        }))
    }

    async fn revoke_api_key(&self, request: Request<pb::RevokeApiKeyRequest>) -> Result<Response<pb::ApiKey>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            caller.require_admin()?;
            let id = ids::parse("id", &request.get_ref().id, ids::API_KEY)?;
            self.state.store.revoke_api_key(&caller, &id).await
        }
        .await;
        result.map(|key| Response::new(convert::api_key(key))).map_err(to_status)
    }
}
