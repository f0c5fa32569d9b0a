//! ConversationService: conversations, participants and the caller's read, archive and
//! mute state; typing indicators (`typing.rs`).

use tonic::{Request, Response, Status};

use super::{
    ApiState,
    convert::{self, mask_paths},
    fingerprint,
    messages::parse_new_message,
    pb, typing,
};
use crate::{
    domain::{
        Error,
        conversations::{
            self, ConversationFilter, ConversationPatch, Mute, NewConversation, NewParticipant, StatusFilter, Subject,
        },
        error::Violations,
        idempotency::RequestKey,
        ids, metadata, now_micros,
        paging::Page,
        text,
    },
    store,
};

/// Most message ids one MarkRead may name.
const MAX_MARK_READ_IDS: usize = 1000;

/// The ConversationService handlers.
pub struct ConversationApi {
    state: ApiState,
}

impl ConversationApi {
    /// The service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

fn parse_participant(field: &str, participant: pb::NewParticipant) -> Result<NewParticipant, Error> {
    Ok(NewParticipant {
        user_id: ids::parse(&format!("{field}.user_id"), &participant.user_id, ids::USER)?,
        label: conversations::parse_label(&format!("{field}.label"), &participant.label)?,
    })
}

fn parse_new_conversation(
    mut request: pb::CreateConversationRequest,
    state: &ApiState,
) -> Result<NewConversation, Error> {
    let mut violations = Violations::new();
    let request_id = violations.check(RequestKey::parse("request_id", std::mem::take(&mut request.request_id), || {
        fingerprint::encoded(&mut request, |request: &mut pb::CreateConversationRequest| {
            request.first_message.as_mut().map(|first| &mut first.attachments)
        })
    }));
    let requested = request
        .participants
        .into_iter()
        .enumerate()
        .map(|(index, participant)| parse_participant(&format!("participants[{index}]"), participant));
    let participants = conversations::unique_participants(requested, &mut violations);
    let subject = request.subject.map(convert::subject_parts).unwrap_or_default();
    let subject = violations.check(Subject::parse("subject", subject));
    let metadata = violations.check(metadata::parse("metadata", request.metadata));
    let caller_label = violations.check(conversations::parse_label("caller_label", &request.caller_label));
    let first_message = match request.first_message {
        Some(first) => {
            violations.check(parse_new_message(first, state.limits).map_err(|err| err.within("first_message.")))
        }
        None => None,
    };
    violations.finish()?;
    Ok(NewConversation {
        participants,
        subject: subject.unwrap_or_default(),
        metadata: metadata.unwrap_or_default(),
        first_message,
        request_id: request_id.flatten(),
        caller_label: caller_label.unwrap_or_default(),
    })
}

fn parse_status(value: i32) -> Result<StatusFilter, Error> {
    Ok(match convert::enum_field::<pb::ConversationStatus>("status", value, "ConversationStatus")? {
        pb::ConversationStatus::Unspecified => StatusFilter::Active,
        pb::ConversationStatus::All => StatusFilter::All,
        pb::ConversationStatus::Unread => StatusFilter::Unread,
        pb::ConversationStatus::Read => StatusFilter::Read,
        pb::ConversationStatus::Archived => StatusFilter::Archived,
    })
}

fn parse_patch(conversation: pb::Conversation, paths: &[String]) -> Result<ConversationPatch, Error> {
    let subject = conversation.subject.map(convert::subject_parts).unwrap_or_default();
    let subject = Subject::parse("conversation.subject", subject)?;
    let mut patch = ConversationPatch::default();
    for path in paths {
        match path.as_str() {
            "subject" => {
                patch.subject_kind = Some(subject.kind.clone());
                patch.subject_external_id = Some(subject.external_id.clone());
                patch.subject_title = Some(subject.title.clone());
                patch.subject_image_url = Some(subject.image_url.clone());
                patch.subject_attributes = Some(subject.attributes.clone());
            }
            "subject.kind" => patch.subject_kind = Some(subject.kind.clone()),
            "subject.external_id" => patch.subject_external_id = Some(subject.external_id.clone()),
            "subject.title" => patch.subject_title = Some(subject.title.clone()),
            "subject.image_url" => patch.subject_image_url = Some(subject.image_url.clone()),
            "subject.attributes" => patch.subject_attributes = Some(subject.attributes.clone()),
            "metadata" => {
                patch.metadata = Some(metadata::parse("conversation.metadata", conversation.metadata.clone())?)
            }
            _ => {}
        }
    }
    Ok(patch)
}

fn parse_filter(request: &pb::ListConversationsRequest) -> Result<ConversationFilter, Error> {
    Ok(ConversationFilter {
        status: parse_status(request.status)?,
        label: text::filter("label", request.label.clone())?,
        subject_kind: text::filter("subject_kind", request.subject_kind.clone())?,
        subject_external_id: text::filter("subject_external_id", request.subject_external_id.clone())?,
        participating_only: request.participating_only,
        handled: request.handled,
    })
}

fn parse_message_ids(values: &[String]) -> Result<Vec<String>, Error> {
    if values.len() > MAX_MARK_READ_IDS {
        return Err(Error::invalid("message_ids", format!("at most {MAX_MARK_READ_IDS} ids at a time")));
    }
    let mut violations = Violations::new();
    let ids = values
        .iter()
        .enumerate()
        .filter_map(|(index, value)| {
            violations.check(ids::parse(&format!("message_ids[{index}]"), value, ids::MESSAGE))
        })
        .collect();
    violations.finish()?;
    Ok(ids)
}

#[tonic::async_trait]
impl pb::conversation_service_server::ConversationService for ConversationApi {
    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Result<Response<pb::CreateConversationResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let new = parse_new_conversation(request.into_inner(), &self.state)?;
        let created = store::conversations::create(&self.state.store, &caller, new).await?;
        Ok(Response::new(pb::CreateConversationResponse {
            conversation: Some(created.conversation.into()),
            first_message: created.first_message.map(pb::Message::from),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::CONVERSATION)?;
        let view = convert::view_from("view", request.view)?;
        let conversation = store::conversations::get(&self.state.store, &caller, &id, view).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let filter = parse_filter(&request)?;
        if filter.handled.is_some() {
            caller.require_staff("filter conversations on handled (a staff inbox's filter)")?;
        }
        let view = convert::view_from("view", request.view)?;
        let page = Page::parse(request.page_size, &request.page_token, &filter.fingerprint(&caller))?;
        let listing = store::conversations::list(&self.state.store, &caller, &filter, &page, view).await?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: listing.items.into_iter().map(pb::Conversation::from).collect(),
            next_page_token: listing.next_page_token,
            total_size: listing.total.matching,
            summary: Some(pb::ConversationSummary { total: listing.total.active, unread: listing.total.unread }),
        }))
    }

    async fn update_conversation(
        &self,
        request: Request<pb::UpdateConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let conversation = request.conversation.ok_or_else(|| Error::invalid("conversation", "is required"))?;
        let id = ids::parse("conversation.id", &conversation.id, ids::CONVERSATION)?;
        let subject = conversation.subject.clone().unwrap_or_default();
        // The subject as a whole only by name or `*`; with no mask, the parts given.
        let paths = mask_paths(
            request.update_mask,
            &[("subject", false), ("metadata", !conversation.metadata.is_empty())],
            &[
                ("subject.kind", !subject.kind.is_empty()),
                ("subject.external_id", !subject.external_id.is_empty()),
                ("subject.title", !subject.title.is_empty()),
                ("subject.image_url", !subject.image_url.is_empty()),
                ("subject.attributes", !subject.attributes.is_empty()),
            ],
        )?;
        let patch = parse_patch(conversation, &paths)?;
        let conversation = store::conversations::update(&self.state.store, &caller, id, patch).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn add_participant(
        &self,
        request: Request<pb::AddParticipantRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
        let participant = request.participant.ok_or_else(|| Error::invalid("participant", "is required"))?;
        let participant = parse_participant("participant", participant)?;
        let conversation = store::participants::add(&self.state.store, &caller, id, participant).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn remove_participant(
        &self,
        request: Request<pb::RemoveParticipantRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
        let user_id = ids::parse("user_id", &request.user_id, ids::USER)?;
        let conversation = store::participants::remove(&self.state.store, &caller, id, user_id).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn archive_conversation(
        &self,
        request: Request<pb::ArchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
        let conversation = store::conversations::set_archived(&self.state.store, &caller, id, true).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn unarchive_conversation(
        &self,
        request: Request<pb::UnarchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
        let conversation = store::conversations::set_archived(&self.state.store, &caller, id, false).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
        let message_ids = parse_message_ids(&request.message_ids)?;
        let read = store::reads::mark_read(&self.state.store, &caller, id, message_ids).await?;
        Ok(Response::new(pb::MarkReadResponse { marked: read.marked, unread_count: read.unread_count }))
    }

    async fn get_unread_count(
        &self,
        request: Request<pb::GetUnreadCountRequest>,
    ) -> Result<Response<pb::GetUnreadCountResponse>, Status> {
        let caller = self.state.caller(&request)?;
        let totals = store::reads::totals(&self.state.store, &caller).await?;
        Ok(Response::new(pb::GetUnreadCountResponse {
            unread_count: totals.messages,
            conversations_with_unread: totals.conversations,
        }))
    }

    async fn mute_conversation(
        &self,
        request: Request<pb::MuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::CONVERSATION)?;
        let expire_time = request.expire_time.map(|end| convert::micros_from("expire_time", &end)).transpose()?;
        let mute = Mute::until("expire_time", expire_time, now_micros())?;
        let conversation = store::mutes::set(&self.state.store, &caller, id, Some(mute)).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn unmute_conversation(
        &self,
        request: Request<pb::UnmuteConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
        let conversation = store::mutes::set(&self.state.store, &caller, id, None).await?;
        Ok(Response::new(conversation.into()))
    }

    async fn send_typing_indicator(
        &self,
        request: Request<pb::SendTypingIndicatorRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
        typing::send(&self.state, &caller, id, request.typing).await?;
        Ok(Response::new(()))
    }

    async fn delete_conversation(
        &self,
        request: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.state.caller(&request)?;
        let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
        store::conversations::delete(&self.state.store, &caller, id).await?;
        Ok(Response::new(()))
    }

    async fn set_conversation_handled(
        &self,
        request: Request<pb::SetConversationHandledRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request)?;
        let request = request.into_inner();
        let id = ids::parse("id", &request.id, ids::CONVERSATION)?;
        let view = store::handling::set_conversation_handled(&self.state.store, &caller, id, request.handled).await?;
        Ok(Response::new(view.into()))
    }
}
