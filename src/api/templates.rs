//! TemplateService: canned texts with placeholders, account-wide or personal.

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{
    ApiState,
    convert::{self, mask_paths},
    pb,
};
use crate::{
    domain::{
        Error,
        idempotency::RequestKey,
        ids,
        paging::Page,
        templates::{self, NewTemplate, TemplatePatch, TemplateQuery, TemplateRef, TemplateScope},
        text,
    },
    store,
};

/// The TemplateService handlers.
pub struct TemplateApi {
    state: ApiState,
}

impl TemplateApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl pb::template_service_server::TemplateService for TemplateApi {
    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::Template>, Status> {
        let caller = self.state.caller(&request)?;
        let mut request = request.into_inner();
        let request_id =
            RequestKey::parse("request_id", std::mem::take(&mut request.request_id), || request.encode_to_vec())?;
        let template = request.template.ok_or_else(|| Error::invalid("template", "is required"))?;
        let scope = convert::template_scope_from("template.scope", template.scope)?.unwrap_or(TemplateScope::Personal);
        let new = NewTemplate::parse(scope, &template.name, &template.category, template.content, &template.alias)?;
        let template = store::templates::create(&self.state.store, &caller, new, request_id).await?;
        Ok(Response::new(template.into()))
    }

    async fn get_template(&self, request: Request<pb::GetTemplateRequest>) -> Result<Response<pb::Template>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::TEMPLATE)?;
        let template = store::templates::get(&self.state.store, &caller, &id).await?;
        Ok(Response::new(template.into()))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let query = TemplateQuery {
            category: text::filter("category", request.category)?,
            scope: convert::template_scope_from("scope", request.scope)?,
        };
        let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
        let listing = store::templates::list(&self.state.store, &caller, &query, &page).await?;
        Ok(Response::new(pb::ListTemplatesResponse {
            templates: listing.items.into_iter().map(pb::Template::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn update_template(
        &self,
        request: Request<pb::UpdateTemplateRequest>,
    ) -> Result<Response<pb::Template>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let template = request.template.ok_or_else(|| Error::invalid("template", "is required"))?;
        let id = ids::parse("template.id", &template.id, ids::TEMPLATE)?;
        let paths = mask_paths(
            request.update_mask,
            &[
                ("name", !template.name.is_empty()),
                ("category", !template.category.is_empty()),
                ("content", !template.content.is_empty()),
                ("alias", !template.alias.is_empty()),
            ],
            &[],
        )?;
        let named = |path: &str| paths.iter().any(|p| p == path);
        let patch = TemplatePatch::parse(
            named("name").then_some(template.name.as_str()),
            named("category").then_some(template.category.as_str()),
            named("content").then_some(template.content),
            named("alias").then_some(template.alias.as_str()),
        )?;
        let template = store::templates::update(&self.state.store, &caller, id, patch).await?;
        Ok(Response::new(template.into()))
    }

    async fn delete_template(&self, request: Request<pb::DeleteTemplateRequest>) -> Result<Response<()>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::TEMPLATE)?;
        store::templates::delete(&self.state.store, &caller, id).await?;
        Ok(Response::new(()))
    }

    async fn render_template(
        &self,
        request: Request<pb::RenderTemplateRequest>,
    ) -> Result<Response<pb::RenderTemplateResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let reference = TemplateRef::parse("template_id", &request.template_id)?;
        let variables = request.variables.into_iter().collect();
        templates::check_values("variables", &variables)?;
        let (content, variables) = store::templates::render(&self.state.store, &caller, &reference, &variables).await?;
        Ok(Response::new(pb::RenderTemplateResponse { content, variables }))
    }
}
