//! MessageService: send, read back, edit, delete, attachments.

use tonic::{Request, Response, Status};

use super::{
    ApiState,
    convert::{self, Updatable, mask_paths},
    fingerprint, pb,
};
use crate::{
    domain::{
        Error, error,
        idempotency::RequestKey,
        ids,
        messages::{MessageDraft, MessageKind, MessageLimits, MessagePatch, MessageQuery, NewMessage, TemplateUse},
        metadata,
        paging::Page,
        relays, search,
        templates::TemplateRef,
    },
    store,
};

/// The MessageService handlers.
pub struct MessageApi {
    state: ApiState,
}

impl MessageApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

/// Validates a send request. Fields are named from the message; one inside another
/// request names its place with `Error::within`.
pub(super) fn parse_new_message(
    mut request: pb::SendMessageRequest,
    limits: MessageLimits,
) -> Result<NewMessage, Error> {
    let request_id = RequestKey::parse("request_id", std::mem::take(&mut request.request_id), || {
        fingerprint::encoded(&mut request, |request: &mut pb::SendMessageRequest| Some(&mut request.attachments))
    })?;
    let template = if request.template_id.is_empty() {
        if !request.variables.is_empty() {
            return Err(Error::invalid("variables", "variables go with a template_id, and none was given"));
        }
        None
    } else {
        Some(TemplateUse {
            // An id or an alias: resolved to the template's id when rendered.
            template_id: TemplateRef::parse("template_id", &request.template_id)?.as_str().to_owned(),
            variables: request.variables.into_iter().collect(),
        })
    };
    let unspecified_kind = if template.is_some() { MessageKind::Template } else { MessageKind::Text };
    let draft = MessageDraft {
        kind: convert::message_kind_from("kind", request.kind, unspecified_kind)?,
        content: request.content,
        content_type: convert::content_type_from("content_type", request.content_type)?,
        content_attributes: request.content_attributes.map(convert::struct_to_json),
        private: request.private,
        direction: convert::direction_from("direction", request.direction)?,
        attachments: request
            .attachments
            .into_iter()
            .enumerate()
            .map(|(index, file)| convert::new_attachment_from(&format!("attachments[{index}]"), file))
            .collect::<Result<_, _>>()?,
        metadata: request.metadata.into_iter().collect(),
        request_id,
        template,
        envelope: convert::envelope_from(request.envelope)?,
        schedule_time: request.schedule_time.as_ref().map(|t| convert::micros_from("schedule_time", t)).transpose()?,
        raw_payload: relays::parse_raw_payload("raw_payload", request.raw_payload)?,
    };
    draft.validate(limits)
}

/// The fields of a message its sender may change, and whether `message` populates them.
pub(super) fn updatable(message: &pb::Message) -> [Updatable<'static>; 3] {
    [
        ("content", !message.content.is_empty()),
        ("content_attributes", message.content_attributes.is_some()),
        ("metadata", !message.metadata.is_empty()),
    ]
}

/// The edits an update mask names of `message` (content, content_attributes, metadata).
pub(super) fn parse_patch(message: &pb::Message, paths: &[String]) -> Result<MessagePatch, Error> {
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
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let conversation_id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION);
        let (conversation_id, new) = error::both(conversation_id, parse_new_message(request, self.state.limits))?;
        let message = store::messages::send(&self.state.store, &caller, conversation_id, new).await?;
        Ok(Response::new(message.into()))
    }

    async fn get_message(&self, request: Request<pb::GetMessageRequest>) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::MESSAGE)?;
        let view = convert::view_or_depth(request.view, request.depth)?;
        let message = store::messages::get(&self.state.store, &caller, &id, view).await?;
        Ok(Response::new(message.into()))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let query = MessageQuery {
            conversation_id: ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?,
            before: request.before.as_ref().map(|t| convert::micros_from("before", t)).transpose()?,
            after: request.after.as_ref().map(|t| convert::micros_from("after", t)).transpose()?,
            newest_first: request.newest_first,
        };
        let view = convert::view_or_depth(request.view, request.depth)?;
        let page = Page::parse(request.page_size, &request.page_token, &query.fingerprint(&caller))?;
        let listing = store::messages::list(&self.state.store, &caller, &query, &page, view).await?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: listing.items.into_iter().map(pb::Message::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total as i64,
        }))
    }

    async fn search_messages(
        &self,
        request: Request<pb::SearchMessagesRequest>,
    ) -> Result<Response<pb::SearchMessagesResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let search = convert::search_from(&request)?;
        let view = convert::view_from("view", request.view)?;
        let size = match request.page_size {
            0 => search::DEFAULT_PAGE_SIZE,
            n => n.min(search::MAX_PAGE_SIZE),
        };
        let page = Page::parse(size, &request.page_token, &search.fingerprint(&caller))?;
        let found = store::search::search(&self.state.store, &caller, &search, &page, view).await?;
        Ok(Response::new(convert::hits(found.items, found.next_page_token, found.total)))
    }

    async fn update_message(
        &self,
        request: Request<pb::UpdateMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let message = request.message.ok_or_else(|| Error::invalid("message", "is required"))?;
        let id = ids::parse("message.id", &message.id, ids::MESSAGE)?;
        let paths = mask_paths(request.update_mask, &updatable(&message), &[])?;
        let patch = parse_patch(&message, &paths)?;
        let message = store::messages::update(&self.state.store, &caller, id, patch).await?;
        Ok(Response::new(message.into()))
    }

    async fn delete_message(
        &self,
        request: Request<pb::DeleteMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::MESSAGE)?;
        let message = store::messages::delete(&self.state.store, &caller, id).await?;
        Ok(Response::new(message.into()))
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::AttachmentContent>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::ATTACHMENT)?;
        let content = store::messages::attachment(&self.state.store, &caller, &id).await?;
        Ok(Response::new(pb::AttachmentContent {
            attachment: Some(content.attachment.into()),
            message_id: content.message_id,
            data: content.data,
        }))
    }

    async fn set_message_handled(
        &self,
        request: Request<pb::SetMessageHandledRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::MESSAGE)?;
        let message = store::handling::set_message_handled(&self.state.store, &caller, id, request.handled).await?;
        Ok(Response::new(message.into()))
    }
}
