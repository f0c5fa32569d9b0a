//! ReportService: members report abusive messages; staff work through the queue.

use tonic::{Request, Response, Status};

use super::{ApiState, convert, pb};
use crate::{
    domain::{
        Error,
        error::Violations,
        ids,
        paging::Page,
        reports::{NewReport, ReportQuery},
        text,
    },
    store,
};

/// The ReportService handlers.
pub struct ReportApi {
    state: ApiState,
}

impl ReportApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl pb::report_service_server::ReportService for ReportApi {
    async fn create_report(&self, request: Request<pb::CreateReportRequest>) -> Result<Response<pb::Report>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let message_id = violations.check(ids::parse("message_id", &request.message_id, ids::MESSAGE));
        let reason = violations.check(convert::report_reason_from("reason", request.reason).and_then(|reason| {
            reason
                .ok_or_else(|| Error::invalid("reason", "is required: SPAM, HARASSMENT, INAPPROPRIATE, FRAUD or OTHER"))
        }));
        let details = violations.check(NewReport::parse_details(request.details));
        violations.finish()?;
        let (Some(message_id), Some(reason), Some(details)) = (message_id, reason, details) else {
            return Err(Error::Internal("a report's fields were checked, yet one is missing".into()).into());
        };
        let new = NewReport { message_id, reason, details };
        let report = store::reports::create(&self.state.store, &caller, new).await?;
        Ok(Response::new(report.into()))
    }

    async fn get_report(&self, request: Request<pb::GetReportRequest>) -> Result<Response<pb::Report>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::REPORT)?;
        let report = store::reports::get(&self.state.store, &caller, &id).await?;
        Ok(Response::new(report.into()))
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let conversation_id = match request.conversation_id.as_str() {
            "" => None,
            id => Some(ids::parse("conversation_id", id, ids::CONVERSATION)?),
        };
        let query = ReportQuery {
            status: convert::report_status_from("status", request.status)?,
            reason: convert::report_reason_from("reason", request.reason)?,
            conversation_id,
        };
        let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
        let listing = store::reports::list(&self.state.store, &caller, &query, &page).await?;
        Ok(Response::new(pb::ListReportsResponse {
            reports: listing.items.into_iter().map(pb::Report::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn resolve_report(&self, request: Request<pb::ResolveReportRequest>) -> Result<Response<pb::Report>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::REPORT)?;
        let action = convert::report_action_from("action", request.action)?;
        let note = text::bounded("note", request.note, crate::domain::reports::MAX_DETAILS_CHARS)?;
        let report = store::reports::resolve(&self.state.store, &caller, id, action, note).await?;
        Ok(Response::new(report.into()))
    }
}
