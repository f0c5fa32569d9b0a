//! The gRPC API: one module per service. Each handler authenticates, parses the request
//! into domain types, calls the store and converts the answer back. Generated protobuf
//! types live in [`pb`] and do not leave this module tree.

mod admin;
mod conversations;
mod convert;
mod events;
mod messages;
mod status;

use std::sync::Arc;

pub use admin::AdminApi;
pub use conversations::ConversationApi;
pub use events::EventApi;
pub use messages::MessageApi;

use crate::{
    domain::{Caller, messages::MessageLimits},
    events::stream::StreamContext,
    store::Store,
};

/// The generated protobuf types, clients and servers of `missive.v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("missive.v1");

    /// The encoded descriptors of every Missive proto, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/missive_descriptor.bin"));
}

/// What every service shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<Store>,
    pub limits: MessageLimits,
    pub streams: StreamContext,
}

impl ApiState {
    /// Authenticates the request's caller.
    async fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, tonic::Status> {
        crate::auth::authenticate(&self.store, request.metadata()).await.map_err(status::to_status)
    }
}
