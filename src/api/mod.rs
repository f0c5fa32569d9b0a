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
mod events;
mod messages;
mod scheduled;
mod status;
mod templates;

use std::sync::Arc;

use tonic::server::NamedService;

pub use admin::AdminApi;
pub use conversations::ConversationApi;
pub use events::EventApi;
pub use messages::MessageApi;
pub use scheduled::ScheduledMessageApi;
pub use templates::TemplateApi;

use crate::{
    domain::{Caller, messages::MessageLimits},
    events::stream::StreamContext,
    store::Store,
};

/// The generated protobuf types, clients and servers of `missive.v1`.
pub mod pb {
    #![allow(clippy::all)]
    tonic::include_proto!("missive.v1");

    /// The encoded descriptors of every Missive proto, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/missive_descriptor.bin"));
}

use pb::{
    admin_service_server::AdminServiceServer, conversation_service_server::ConversationServiceServer,
    event_service_server::EventServiceServer, message_service_server::MessageServiceServer,
    scheduled_message_service_server::ScheduledMessageServiceServer, template_service_server::TemplateServiceServer,
};

/// The full names of Missive's services, for health reporting.
pub const SERVICES: [&str; 6] = [
    <AdminServiceServer<AdminApi> as NamedService>::NAME,
    <ConversationServiceServer<ConversationApi> as NamedService>::NAME,
    <MessageServiceServer<MessageApi> as NamedService>::NAME,
    <ScheduledMessageServiceServer<ScheduledMessageApi> as NamedService>::NAME,
    <TemplateServiceServer<TemplateApi> as NamedService>::NAME,
    <EventServiceServer<EventApi> as NamedService>::NAME,
];

/// Every Missive service, sharing `state`.
pub fn routes(state: ApiState) -> tonic::service::RoutesBuilder {
    // Room for the largest message: every attachment at its limit, plus the rest.
    let max_message_bytes = state
        .limits
        .max_attachment_bytes
        .saturating_mul(crate::domain::messages::MAX_ATTACHMENTS)
        .saturating_add(1024 * 1024);
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(AdminServiceServer::new(AdminApi::new(state.clone())).max_decoding_message_size(max_message_bytes))
        .add_service(
            ConversationServiceServer::new(ConversationApi::new(state.clone()))
                .max_decoding_message_size(max_message_bytes),
        )
        .add_service(
            MessageServiceServer::new(MessageApi::new(state.clone())).max_decoding_message_size(max_message_bytes),
        )
        .add_service(ScheduledMessageServiceServer::new(ScheduledMessageApi::new(state.clone())))
        .add_service(TemplateServiceServer::new(TemplateApi::new(state.clone())))
        .add_service(EventServiceServer::new(EventApi::new(state)));
    routes
}

/// What every service shares.
#[derive(Clone)]
pub struct ApiState {
    /// The database and its use cases.
    pub store: Arc<Store>,
    /// Limits on what a message may carry.
    pub limits: MessageLimits,
    /// What `Subscribe` streams need.
    pub streams: StreamContext,
}

impl ApiState {
    /// Authenticates the request's caller.
    async fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        Ok(crate::auth::authenticate(&self.store, request.metadata()).await?)
    }
}
