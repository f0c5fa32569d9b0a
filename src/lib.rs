//! Missive: a gRPC messaging service. Conversations between the users of a host product
//! (buyer and seller about a listing, agent and lead about an offer), the messages in them,
//! read state and unread counts, and one `Subscribe` stream of every change that replaces
//! webhooks.
//!
//! # Layout
//!
//! Layers, lowest first; each module uses only those below it (`domain` < `store` <
//! `events` < `api` < the process):
//!
//! - [`domain`]: validated types and the rules of who may do what. No tonic, no sea-orm.
//! - [`store`]: sea-orm over SQLite or PostgreSQL; the use cases, by aggregate, each write
//!   a unit of work run by the one door, `Store::write`, which appends the unit's events
//!   to the log in its transaction and wakes subscribers after commit.
//! - [`events`]: the live side of the log: `Subscribe` streams and the PostgreSQL listener.
//! - [`auth`]: turns an `authorization: Bearer <key>` header into a [`domain::Caller`].
//! - [`api`]: one module per gRPC service; converts protobuf to domain types and domain
//!   errors to `tonic::Status`. Generated protobuf code lives in [`api::pb`] and nowhere
//!   else.
//! - The process: [`config`] (what the server needs, with explicit defaults), [`cli`] (the
//!   command line: flags and environment, `keys create`), [`server`] (builds and runs the
//!   tonic server), [`jobs`] (background work on a timer: event retention, the storage
//!   probe, planner statistics), [`health`] (the gRPC health statuses), [`prometheus`]
//!   (the metrics endpoint and the calls' meter), [`shutdown`] (the
//!   stop signal every long-running part watches), [`telemetry`] (the tracing subscriber
//!   and call trace), [`tls`] (the listener's certificate and key).

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
#[warn(missing_docs)]
pub mod domain;
pub mod events;
pub mod health;
pub mod jobs;
pub mod prometheus;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;
