//! MessageService: send, read back, edit, delete, attachments.

use tonic::{Request, Response, Status};

use super::{ApiState, convert, convert::mask_paths, pb, status::to_status};
use crate::domain::{
    Error, ids,
    messages::{MessageDraft, MessageLimits, MessagePatch, MessageQuery, NewAttachment, NewMessage},
    metadata,
    paging::Page,
};

pub struct MessageApi {
    state: ApiState,
}

impl MessageApi {
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

/// Validates a send request; `prefix` is its path in the request ("" or "first_message.").
pub(super) fn parse_new_message(
    request: pb::SendMessageRequest,
    limits: MessageLimits,
    prefix: &str,
) -> Result<NewMessage, Error> {
    let draft = MessageDraft {
        kind: convert::message_kind_from(&format!("{prefix}kind"), request.kind)?,
        content: request.content,
        content_type: convert::content_type_from(&format!("{prefix}content_type"), request.content_type)?,
        content_attributes: request.content_attributes.map(convert::struct_to_json),
        private: request.private,
        direction: convert::direction_from(&format!("{prefix}direction"), request.direction)?,
        attachments: request
            .attachments
            .into_iter()
            .map(|a| NewAttachment { filename: a.filename, media_type: a.media_type, data: a.data })
            .collect(),
        metadata: request.metadata.into_iter().collect(),
        request_id: Some(request.request_id).filter(|id| !id.is_empty()),
    };
    draft.validate(limits, prefix)
}

fn parse_patch(message: pb::Message, paths: &[String]) -> Result<MessagePatch, Error> {
    let mut patch = MessagePatch::default();
    for path in paths {
        match path.as_str() {
            "content" => patch.content = Some(message.content.clone()),
            "content_attributes" => {
                patch.content_attributes = Some(message.content_attributes.clone().map(convert::struct_to_json))
            }
            "metadata" => patch.metadata = Some(metadata::parse("message.metadata", message.metadata.clone())?),
            _ => {}
        }
    }
    Ok(patch)
}

#[tonic::async_trait]
impl pb::message_service_server::MessageService for MessageApi {
    async fn send_message(&self, request: Request<pb::SendMessageRequest>) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let conversation_id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
            let new = parse_new_message(request, self.state.limits, "")?;
            self.state.store.send_message(&caller, &conversation_id, new).await
        }
        .await;
        result.map(|m| Response::new(convert::message(m))).map_err(to_status)
    }

    async fn get_message(&self, request: Request<pb::GetMessageRequest>) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let id = ids::parse("id", &request.id, ids::MESSAGE)?;
            let full = convert::full_view("view", request.view)?;
            self.state.store.get_message(&caller, &id, full).await
        }
        .await;
        result.map(|m| Response::new(convert::message(m))).map_err(to_status)
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let query = MessageQuery {
                conversation_id: ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?,
                before: request.before.as_ref().map(|t| convert::micros_from("before", t)).transpose()?,
                after: request.after.as_ref().map(|t| convert::micros_from("after", t)).transpose()?,
                newest_first: request.newest_first,
            };
            let full = convert::full_view("view", request.view)?;
            let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
            self.state.store.list_messages(&caller, &query, &page, full).await
        }
        .await;
        let (messages, next_page_token, total) = result.map_err(to_status)?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.into_iter().map(convert::message).collect(),
            next_page_token,
            total_size: total as i64,
        }))
    }

    async fn update_message(
        &self,
        request: Request<pb::UpdateMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let message = request.message.ok_or_else(|| Error::invalid("message", "is required"))?;
            let id = ids::parse("message.id", &message.id, ids::MESSAGE)?;
            let paths = mask_paths(request.update_mask, &["content", "content_attributes", "metadata"])?;
            let patch = parse_patch(message, &paths)?;
            self.state.store.update_message(&caller, &id, patch).await
        }
        .await;
        result.map(|m| Response::new(convert::message(m))).map_err(to_status)
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let id = ids::parse("id", &request.get_ref().id, ids::MESSAGE)?;
            self.state.store.delete_message(&caller, &id).await
        }
        .await;
        result.map(|m| Response::new(convert::message(m))).map_err(to_status)
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::AttachmentContent>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let id = ids::parse("id", &request.get_ref().id, ids::ATTACHMENT)?;
            self.state.store.get_attachment(&caller, &id).await
        }
        .await;
        let (attachment, message_id, data) = result.map_err(to_status)?;
        Ok(Response::new(pb::AttachmentContent { attachment: Some(convert::attachment(attachment)), message_id, data }))
    }
}
