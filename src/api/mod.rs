//! The gRPC API: one module per service. Each handler authenticates, parses the request
//! into domain types, calls a store use case and converts the answer back, in straight
//! lines: domain errors become statuses through `From` (`status.rs`, the one mapping), and
//! protobuf ⇄ domain conversions are `From` impls per resource (`convert/`). Generated
//! protobuf types live in [`pb`] and do not leave this module tree.
//!
//! A new service: its proto in `build.rs`, a module here, and one line each in
//! [`SERVICES`] and [`routes`].

mod admin;
mod codec;
mod conversations;
mod convert;
pub mod cors;
mod cursors;
mod events;
mod fingerprint;
mod gate;
mod memory;
mod messages;
mod notifications;
mod rates;
mod relays;
mod reports;
mod scheduled;
mod status;
mod templates;
mod typing;

use std::sync::Arc;

use tonic::server::NamedService;

pub use admin::AdminApi;
pub use conversations::ConversationApi;
pub use events::EventApi;
pub use gate::{Gate, GateLayer, KeyLimits};
pub use messages::MessageApi;
pub use notifications::NotificationApi;
pub use relays::RelayApi;
pub use reports::ReportApi;
pub use scheduled::ScheduledMessageApi;
pub use status::shutting_down;
pub use templates::TemplateApi;

use crate::{
    domain::{Caller, messages::MessageLimits, text},
    events::stream::StreamContext,
    store::Store,
};

/// The generated protobuf types, clients and servers of `missive.v1`.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("missive.v1");

    /// The encoded descriptors of every Missive proto, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/missive_descriptor.bin"));

    /// The encoded descriptors of `google/rpc/error_details.proto` (and what it imports), so
    /// that reflection clients decode the details of every error.
    pub const ERROR_DETAILS_FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/error_details_descriptor.bin"));
}

use pb::{
    admin_service_server::AdminServiceServer, conversation_service_server::ConversationServiceServer,
    event_service_server::EventServiceServer, message_service_server::MessageServiceServer,
    notification_service_server::NotificationServiceServer, relay_service_server::RelayServiceServer,
    report_service_server::ReportServiceServer, scheduled_message_service_server::ScheduledMessageServiceServer,
    template_service_server::TemplateServiceServer,
};

/// The full names of Missive's services, for health reporting.
pub const SERVICES: [&str; 9] = [
    <AdminServiceServer<AdminApi> as NamedService>::NAME,
    <ConversationServiceServer<ConversationApi> as NamedService>::NAME,
    <MessageServiceServer<MessageApi> as NamedService>::NAME,
    <ScheduledMessageServiceServer<ScheduledMessageApi> as NamedService>::NAME,
    <TemplateServiceServer<TemplateApi> as NamedService>::NAME,
    <ReportServiceServer<ReportApi> as NamedService>::NAME,
    <RelayServiceServer<RelayApi> as NamedService>::NAME,
    <NotificationServiceServer<NotificationApi> as NamedService>::NAME,
    <EventServiceServer<EventApi> as NamedService>::NAME,
];

/// Every Missive service, sharing `state`.
pub fn routes(state: ApiState) -> tonic::service::RoutesBuilder {
    let limits = DecodeLimits::new(&state.limits);
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(AdminServiceServer::new(AdminApi::new(state.clone())).max_decoding_message_size(limits.small))
        .add_service(
            ConversationServiceServer::new(ConversationApi::new(state.clone()))
                .max_decoding_message_size(limits.with_files),
        )
        .add_service(
            MessageServiceServer::new(MessageApi::new(state.clone())).max_decoding_message_size(limits.with_files),
        )
        .add_service(
            ScheduledMessageServiceServer::new(ScheduledMessageApi::new(state.clone()))
                .max_decoding_message_size(limits.with_text),
        )
        .add_service(
            TemplateServiceServer::new(TemplateApi::new(state.clone())).max_decoding_message_size(limits.with_text),
        )
        .add_service(ReportServiceServer::new(ReportApi::new(state.clone())).max_decoding_message_size(limits.small))
        // A report carries the channel's payload (64 KiB at most) and the channel's error.
        .add_service(RelayServiceServer::new(RelayApi::new(state.clone())).max_decoding_message_size(limits.with_text))
        .add_service(
            NotificationServiceServer::new(NotificationApi::new(state.clone())).max_decoding_message_size(limits.small),
        )
        .add_service(EventServiceServer::new(EventApi::new(state)).max_decoding_message_size(limits.small));
    routes
}

/// The largest request body each service reads (its decode limit), sized to the largest
/// valid request it can receive: a bigger one is refused (RESOURCE_EXHAUSTED) from its
/// length prefix, before it is read.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Requests of ids, names and filters (admin, events).
    pub small: usize,
    /// Requests that carry a message's text but no files (templates, scheduled messages).
    pub with_text: usize,
    /// Requests that carry a message with its files (conversations, messages).
    pub with_files: usize,
}

impl DecodeLimits {
    /// The limits for messages bounded by `limits`.
    pub fn new(limits: &MessageLimits) -> Self {
        // Text is at most 4 bytes a character. The rest of a message fits in 2 MiB with room
        // to spare: metadata (64 entries of 64 + 1,024 characters, 279 KiB at 4 bytes each),
        // content_attributes (64 KiB of JSON, which a protobuf Struct may encode in several
        // times that), template values, participants and ids.
        let with_text = text::MAX_CONTENT_CHARS * 4 + 2 * 1024 * 1024;
        let files = limits.max_attachment_bytes.saturating_mul(crate::domain::messages::MAX_ATTACHMENTS);
        Self { small: 64 * 1024, with_text, with_files: files.saturating_add(with_text) }
    }
}

/// What every service shares.
#[derive(Clone)]
pub struct ApiState {
    /// The database and its use cases.
    pub store: Arc<Store>,
    /// Limits on what a message may carry.
    pub limits: MessageLimits,
    /// The longest a user token may work.
    pub max_token_ttl: std::time::Duration,
    /// What `Subscribe` streams need.
    pub streams: StreamContext,
    /// Each user's allowance of typing indicators.
    pub typing: Arc<typing::TypingLimits>,
}

impl ApiState {
    /// The request's caller, as the gate (`gate.rs`), which every service is served behind,
    /// authenticated and admitted it.
    fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        request.extensions().get::<Caller>().cloned().ok_or_else(|| {
            crate::domain::Error::Internal("a call reached a service without passing the gate".into()).into()
        })
    }
}
