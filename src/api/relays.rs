//! RelayService: a relay's delivery reports and raw payloads, and the account's
//! suppressed addresses. Staff only (a relay runs with a staff key).

use tonic::{Request, Response, Status};

use super::{ApiState, convert, pb};
use crate::{
    domain::{
        Error,
        channels::Channel,
        error::Violations,
        ids,
        paging::Page,
        relays::{self, DeliveryReport, MAX_NOTE_CHARS, SuppressionQuery},
        text,
    },
    store,
};

/// The RelayService handlers.
pub struct RelayApi {
    state: ApiState,
}

impl RelayApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

/// An address on a channel from a request's `channel` and `address` fields.
fn address_from(channel: i32, address: String) -> Result<(Channel, String), Error> {
    let channel = convert::channel_from("channel", channel)?;
    relays::parse_address(channel, address)
}

#[tonic::async_trait]
impl pb::relay_service_server::RelayService for RelayApi {
    async fn report_delivery(
        &self,
        request: Request<pb::ReportDeliveryRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let message_id = violations.check(ids::parse("message_id", &request.message_id, ids::MESSAGE));
        let report = violations.check(convert::delivery_state_from("state", request.state).and_then(|state| {
            DeliveryReport::parse(
                state,
                request.error_code,
                request.error_message,
                request.external_id,
                request.raw_payload,
            )
        }));
        violations.finish()?;
        let (Some(message_id), Some(report)) = (message_id, report) else {
            return Err(Error::Internal("a delivery report's fields were checked, yet one is missing".into()).into());
        };
        let message = store::relays::report_delivery(&self.state.store, &caller, message_id, report).await?;
        Ok(Response::new(message.into()))
    }

    async fn get_raw_payload(
        &self,
        request: Request<pb::GetRawPayloadRequest>,
    ) -> Result<Response<pb::RawPayload>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("message_id", &request.get_ref().message_id, ids::MESSAGE)?;
        let payload = store::relays::raw_payload(&self.state.store, &caller, &id).await?;
        Ok(Response::new(payload.into()))
    }

    async fn list_suppressions(
        &self,
        request: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let query = SuppressionQuery::parse(convert::channel_from("channel", request.channel)?, request.address)?;
        let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
        let listing = store::relays::list_suppressions(&self.state.store, &caller, &query, &page).await?;
        Ok(Response::new(pb::ListSuppressionsResponse {
            suppressions: listing.items.into_iter().map(pb::Suppression::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn add_suppression(
        &self,
        request: Request<pb::AddSuppressionRequest>,
    ) -> Result<Response<pb::Suppression>, Status> {
        let caller = self.state.caller(&request)?;
        let suppression =
            request.into_inner().suppression.ok_or_else(|| Error::invalid("suppression", "is required"))?;
        let mut violations = Violations::new();
        let address = violations.check(address_from(suppression.channel, suppression.address));
        let reason = violations.check(convert::suppression_reason_from("reason", suppression.reason));
        let note = violations.check(text::bounded("note", suppression.note, MAX_NOTE_CHARS));
        violations.finish().map_err(|err| err.within("suppression."))?;
        let (Some((channel, address)), Some(reason), Some(note)) = (address, reason, note) else {
            return Err(Error::Internal("a suppression's fields were checked, yet one is missing".into()).into());
        };
        let added = store::relays::add_suppression(&self.state.store, &caller, channel, address, reason, note).await?;
        Ok(Response::new(added.into()))
    }

    async fn remove_suppression(&self, request: Request<pb::RemoveSuppressionRequest>) -> Result<Response<()>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let (channel, address) = address_from(request.channel, request.address)?;
        store::relays::remove_suppression(&self.state.store, &caller, channel, address).await?;
        Ok(Response::new(()))
    }
}
