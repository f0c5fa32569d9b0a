//! ConversationService: conversations, participants and the caller's read and archive state.

use tonic::{Request, Response, Status};

use super::{ApiState, convert, convert::mask_paths, messages::parse_new_message, pb, status::to_status};
use crate::domain::{
    Error, check_text,
    conversations::{
        self, ConversationFilter, ConversationPatch, MAX_PARTICIPANTS, NewConversation, NewParticipant, StatusFilter,
        Subject,
    },
    error::Violations,
    ids,
    messages::check_request_id,
    metadata,
    paging::Page,
};

/// Most message ids one MarkRead may name.
const MAX_MARK_READ_IDS: usize = 1000;

pub struct ConversationApi {
    state: ApiState,
}

impl ConversationApi {
    pub fn new(state: ApiState) -> Self {
        Self { state }
    }
}

fn parse_participant(field: &str, participant: pb::NewParticipant) -> Result<NewParticipant, Error> {
    Ok(NewParticipant {
        user_id: ids::parse(&format!("{field}.user_id"), &participant.user_id, ids::USER)?,
        label: conversations::parse_label(&format!("{field}.label"), participant.label)?,
    })
}

fn parse_new_conversation(request: pb::CreateConversationRequest, state: &ApiState) -> Result<NewConversation, Error> {
    let mut violations = Violations::new();
    if request.participants.len() > MAX_PARTICIPANTS {
        violations.add("participants", format!("at most {MAX_PARTICIPANTS} participants are allowed"));
    }
    let mut participants: Vec<NewParticipant> = Vec::new();
    for (index, participant) in request.participants.into_iter().enumerate() {
        let field = format!("participants[{index}]");
        if let Some(parsed) = violations.check(parse_participant(&field, participant)) {
            if participants.iter().any(|p| p.user_id == parsed.user_id) {
                violations.add(format!("{field}.user_id"), format!("{} is listed twice", parsed.user_id));
            } else {
                participants.push(parsed);
            }
        }
    }
    let subject = request.subject.unwrap_or_default();
    let subject = violations.check(Subject::parse("subject", subject.kind, subject.external_id, subject.title));
    let metadata = violations.check(metadata::parse("metadata", request.metadata));
    let caller_label = violations.check(conversations::parse_label("caller_label", request.caller_label));
    let first_message = match request.first_message {
        Some(first) => violations.check(parse_new_message(first, state.limits, "first_message.")),
        None => None,
    };
    violations.check(check_request_id("request_id", &request.request_id));
    violations.finish()?;
    Ok(NewConversation {
        participants,
        subject: subject.unwrap_or_default(),
        metadata: metadata.unwrap_or_default(),
        first_message,
        request_id: Some(request.request_id).filter(|id| !id.is_empty()),
        caller_label: caller_label.unwrap_or_default(),
    })
}

fn parse_status(value: i32) -> Result<StatusFilter, Error> {
    match pb::ConversationStatus::try_from(value) {
        Ok(pb::ConversationStatus::Unspecified) => Ok(StatusFilter::Active),
        Ok(pb::ConversationStatus::All) => Ok(StatusFilter::All),
        Ok(pb::ConversationStatus::Unread) => Ok(StatusFilter::Unread),
        Ok(pb::ConversationStatus::Read) => Ok(StatusFilter::Read),
        Ok(pb::ConversationStatus::Archived) => Ok(StatusFilter::Archived),
        Err(_) => Err(Error::invalid("status", format!("{value} is not a ConversationStatus"))),
    }
}

fn parse_patch(conversation: pb::Conversation, paths: &[String]) -> Result<ConversationPatch, Error> {
    let subject = conversation.subject.unwrap_or_default();
    let subject = Subject::parse("conversation.subject", subject.kind, subject.external_id, subject.title)?;
    let mut patch = ConversationPatch::default();
    for path in paths {
        match path.as_str() {
            "subject" => {
                patch.subject_kind = Some(subject.kind.clone());
                patch.subject_external_id = Some(subject.external_id.clone());
                patch.subject_title = Some(subject.title.clone());
            }
            "subject.kind" => patch.subject_kind = Some(subject.kind.clone()),
            "subject.external_id" => patch.subject_external_id = Some(subject.external_id.clone()),
            "subject.title" => patch.subject_title = Some(subject.title.clone()),
            "metadata" => {
                patch.metadata = Some(metadata::parse("conversation.metadata", conversation.metadata.clone())?)
            }
            _ => {}
        }
    }
    Ok(patch)
}

/// An optional text filter: empty means unset.
fn filter_text(field: &str, value: String) -> Result<Option<String>, Error> {
    check_text(field, &value)?;
    Ok(Some(value).filter(|v| !v.is_empty()))
}

#[tonic::async_trait]
impl pb::conversation_service_server::ConversationService for ConversationApi {
    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Result<Response<pb::CreateConversationResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let new = parse_new_conversation(request.into_inner(), &self.state)?;
            self.state.store.create_conversation(&caller, new).await
        }
        .await;
        let (conversation, first_message) = result.map_err(to_status)?;
        Ok(Response::new(pb::CreateConversationResponse {
            conversation: Some(convert::conversation(conversation)),
            first_message: first_message.map(convert::message),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let id = ids::parse("id", &request.id, ids::CONVERSATION)?;
            let full = convert::full_view("view", request.view)?;
            self.state.store.get_conversation(&caller, &id, full).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let filter = ConversationFilter {
                status: parse_status(request.status)?,
                label: filter_text("label", request.label)?,
                subject_kind: filter_text("subject_kind", request.subject_kind)?,
                subject_external_id: filter_text("subject_external_id", request.subject_external_id)?,
                participating_only: request.participating_only,
            };
            let full = convert::full_view("view", request.view)?;
            let page = Page::parse(request.page_size, &request.page_token, &filter.fingerprint(&caller))?;
            self.state.store.list_conversations(&caller, &filter, &page, full).await
        }
        .await;
        let (conversations, next_page_token, counts) = result.map_err(to_status)?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: conversations.into_iter().map(convert::conversation).collect(),
            next_page_token,
            total_size: counts.matching,
            summary: Some(pb::ConversationSummary { total: counts.active, unread: counts.unread }),
        }))
    }

    async fn update_conversation(
        &self,
        request: Request<pb::UpdateConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let conversation = request.conversation.ok_or_else(|| Error::invalid("conversation", "is required"))?;
            let id = ids::parse("conversation.id", &conversation.id, ids::CONVERSATION)?;
            let paths = mask_paths(
                request.update_mask,
                &["subject", "subject.kind", "subject.external_id", "subject.title", "metadata"],
            )?;
            let patch = parse_patch(conversation, &paths)?;
            self.state.store.update_conversation(&caller, &id, patch).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn add_participant(
        &self,
        request: Request<pb::AddParticipantRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
            let participant = request.participant.ok_or_else(|| Error::invalid("participant", "is required"))?;
            let participant = parse_participant("participant", participant)?;
            self.state.store.add_participant(&caller, &id, participant).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn remove_participant(
        &self,
        request: Request<pb::RemoveParticipantRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
            let user_id = ids::parse("user_id", &request.user_id, ids::USER)?;
            self.state.store.remove_participant(&caller, &id, &user_id).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn archive_conversation(
        &self,
        request: Request<pb::ArchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
            self.state.store.set_archived(&caller, &id, true).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn unarchive_conversation(
        &self,
        request: Request<pb::UnarchiveConversationRequest>,
    ) -> Result<Response<pb::Conversation>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
            self.state.store.set_archived(&caller, &id, false).await
        }
        .await;
        result.map(|c| Response::new(convert::conversation(c))).map_err(to_status)
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let request = request.into_inner();
        let result = async {
            let id = ids::parse("conversation_id", &request.conversation_id, ids::CONVERSATION)?;
            if request.message_ids.len() > MAX_MARK_READ_IDS {
                return Err(Error::invalid("message_ids", format!("at most {MAX_MARK_READ_IDS} ids at a time")));
            }
            let mut violations = Violations::new();
            let message_ids: Vec<String> = request
                .message_ids
                .iter()
                .enumerate()
                .filter_map(|(index, value)| {
                    violations.check(ids::parse(&format!("message_ids[{index}]"), value, ids::MESSAGE))
                })
                .collect();
            violations.finish()?;
            self.state.store.mark_read(&caller, &id, &message_ids).await
        }
        .await;
        let (marked, unread_count) = result.map_err(to_status)?;
        Ok(Response::new(pb::MarkReadResponse { marked, unread_count }))
    }

    async fn get_unread_count(
        &self,
        request: Request<pb::GetUnreadCountRequest>,
    ) -> Result<Response<pb::GetUnreadCountResponse>, Status> {
        let caller = self.state.caller(&request).await?;
        let (unread_count, conversations_with_unread) =
            self.state.store.unread_count(&caller).await.map_err(to_status)?;
        Ok(Response::new(pb::GetUnreadCountResponse { unread_count, conversations_with_unread }))
    }

    async fn delete_conversation(
        &self,
        request: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = self.state.caller(&request).await?;
        let result = async {
            let id = ids::parse("id", &request.get_ref().id, ids::CONVERSATION)?;
            self.state.store.delete_conversation(&caller, &id).await
        }
        .await;
        result.map(Response::new).map_err(to_status)
    }
}
