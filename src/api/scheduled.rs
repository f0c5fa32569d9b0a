//! ScheduledMessageService: a sender's messages waiting for their time.

use tonic::{Request, Response, Status};

use super::{
    ApiState,
    convert::{self, mask_paths},
    messages::{parse_patch, updatable},
    pb,
};
use crate::{
    domain::{Error, ids, messages::ScheduledPatch, paging::Page},
    store,
};

/// The ScheduledMessageService handlers.
pub struct ScheduledMessageApi {
    state: ApiState,
}

impl ScheduledMessageApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl pb::scheduled_message_service_server::ScheduledMessageService for ScheduledMessageApi {
    async fn get_scheduled_message(
        &self,
        request: Request<pb::GetScheduledMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::MESSAGE)?;
        let message = store::scheduled::get(&self.state.store, &caller, &id).await?;
        Ok(Response::new(message.into()))
    }

    async fn list_scheduled_messages(
        &self,
        request: Request<pb::ListScheduledMessagesRequest>,
    ) -> Result<Response<pb::ListScheduledMessagesResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let conversation_id = if request.conversation_id.is_empty() {
            None
        } else {
            Some(ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?)
        };
        let query = format!("scheduled|{}|{conversation_id:?}", caller.user_id);
        let page = Page::parse(request.page_size, &request.page_token, &query)?;
        let (messages, next_page_token) =
            store::scheduled::list(&self.state.store, &caller, conversation_id.as_deref(), &page).await?;
        Ok(Response::new(pb::ListScheduledMessagesResponse {
            messages: messages.into_iter().map(pb::Message::from).collect(),
            next_page_token,
        }))
    }

    async fn update_scheduled_message(
        &self,
        request: Request<pb::UpdateScheduledMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let message = request.message.ok_or_else(|| Error::invalid("message", "is required"))?;
        let id = ids::parse("message.id", &message.id, ids::MESSAGE)?;
        let fields = [updatable(&message).as_slice(), &[("schedule_time", message.schedule_time.is_some())]].concat();
        let paths = mask_paths(request.update_mask, &fields, &[])?;
        let schedule_time = if paths.iter().any(|path| path == "schedule_time") {
            let time = message
                .schedule_time
                .as_ref()
                .ok_or_else(|| Error::invalid("message.schedule_time", "is required when update_mask names it"))?;
            Some(convert::micros_from("message.schedule_time", time)?)
        } else {
            None
        };
        let patch = ScheduledPatch { message: parse_patch(&message, &paths)?, schedule_time };
        let message = store::scheduled::update(&self.state.store, &caller, id, patch, self.state.limits).await?;
        Ok(Response::new(message.into()))
    }

    async fn cancel_scheduled_message(
        &self,
        request: Request<pb::CancelScheduledMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::MESSAGE)?;
        let message = store::scheduled::cancel(&self.state.store, &caller, id).await?;
        Ok(Response::new(message.into()))
    }

    async fn send_scheduled_message_now(
        &self,
        request: Request<pb::SendScheduledMessageNowRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::MESSAGE)?;
        let message = store::scheduled::send_now(&self.state.store, &caller, id).await?;
        Ok(Response::new(message.into()))
    }
}
