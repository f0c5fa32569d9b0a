//! Missive: a gRPC messaging service. Conversations between the users of a host product
//! (buyer and seller about a listing, agent and lead about an offer), the messages in them,
//! read state and unread counts, and one `Subscribe` stream of every change that replaces
//! webhooks.
//!
//! # Layout
//!
//! - [`config`]: command-line flags with environment fallbacks, validated at start.
//! - [`server`]: builds and runs the tonic server (services, health, reflection, grpc-web,
//!   graceful shutdown). [`server::Application`] is what `main` and the tests start.
//! - [`health`]: the gRPC health statuses, following the database.
//! - [`auth`]: turns an `authorization: Bearer <key>` header into a [`domain::Caller`].
//! - [`api`]: one module per gRPC service; converts protobuf to domain types and domain
//!   errors to `tonic::Status`. Generated protobuf code lives in [`api::pb`] and nowhere
//!   else.
//! - [`domain`]: validated types and the rules of who may do what. No tonic, no sea-orm.
//! - [`store`]: sea-orm entities and queries; the one place that opens write transactions
//!   and appends their events to the log.
//! - [`events`]: the live side of the event log: wake-ups, `Subscribe` streams, retention.
//! - [`telemetry`]: the tracing subscriber.
//!
//! Data flows one way: `api` → `domain` → `store` for calls, `store` → `events` → `api`
//! for the stream.

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod events;
pub mod health;
pub mod server;
pub mod store;
pub mod telemetry;
