//! SearchMessages: its request as a domain search (every bad field named at once) and its
//! hits as protobuf.

use super::{direction_from, enum_field, message_kind_from, messages::channel_from, micros_from, pb};
use crate::{
    domain::{
        Error,
        error::Violations,
        ids,
        messages::MessageKind,
        search::{Hit, MessageSearch, SearchOrder, Snippet, Terms},
        text,
    },
    store::search::Counted,
};

/// The search a request asks for.
pub fn search_from(request: &pb::SearchMessagesRequest) -> Result<MessageSearch, Error> {
    let mut violations = Violations::new();
    let terms = violations.check(Terms::parse("query", &request.query));
    let order = violations.check(order_from("order", request.order));
    let optional_id = |field: &str, value: &str, prefix: &str| {
        if value.is_empty() { Ok(None) } else { ids::parse(field, value, prefix).map(Some) }
    };
    let conversation_id = violations.check(optional_id("conversation_id", &request.conversation_id, ids::CONVERSATION));
    let sender_id = violations.check(optional_id("sender_id", &request.sender_id, ids::USER));
    // Unspecified is no filter here, not the kind a send defaults to.
    let kind = violations.check(match request.kind {
        0 => Ok(None),
        value => message_kind_from("kind", value, MessageKind::Text).map(Some),
    });
    let direction = violations.check(direction_from("direction", request.direction));
    let channel = violations.check(match request.channel {
        0 => Ok(None),
        value => channel_from("channel", value).map(Some),
    });
    let after = violations.check(request.after.as_ref().map(|t| micros_from("after", t)).transpose());
    let before = violations.check(request.before.as_ref().map(|t| micros_from("before", t)).transpose());
    let subject_kind = violations.check(text::filter("subject_kind", request.subject_kind.clone()));
    let subject_external_id =
        violations.check(text::filter("subject_external_id", request.subject_external_id.clone()));
    violations.finish()?;
    let missing = || Error::Internal("a checked search field was lost".into());
    Ok(MessageSearch {
        terms: terms.ok_or_else(missing)?,
        order: order.ok_or_else(missing)?,
        conversation_id: conversation_id.flatten(),
        sender_id: sender_id.flatten(),
        kind: kind.flatten(),
        direction: direction.flatten(),
        channel: channel.flatten(),
        after: after.flatten(),
        before: before.flatten(),
        has_attachments: request.has_attachments,
        subject_kind: subject_kind.flatten(),
        subject_external_id: subject_external_id.flatten(),
    })
}

fn order_from(field: &str, value: i32) -> Result<SearchOrder, Error> {
    Ok(match enum_field::<pb::SearchOrder>(field, value, "SearchOrder")? {
        pb::SearchOrder::Unspecified | pb::SearchOrder::Newest => SearchOrder::Newest,
        pb::SearchOrder::Relevance => SearchOrder::Relevance,
    })
}

/// A page of hits.
pub fn hits(items: Vec<Hit>, next_page_token: String, counted: Counted) -> pb::SearchMessagesResponse {
    pb::SearchMessagesResponse {
        hits: items.into_iter().map(hit).collect(),
        next_page_token,
        total_size: counted.total as i64,
        total_size_capped: counted.capped,
    }
}

fn hit(hit: Hit) -> pb::SearchHit {
    pb::SearchHit { message: Some(hit.message.into()), snippet: snippet(hit.snippet) }
}

fn snippet(snippet: Snippet) -> Vec<pb::SnippetPart> {
    snippet.0.into_iter().map(|part| pb::SnippetPart { text: part.text, matched: part.matched }).collect()
}
