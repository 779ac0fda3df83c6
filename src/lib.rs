//! signet: a central gRPC authorization service for services that receive
//! Upstash QStash / Workflow requests. See the README for the architecture.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod bearer;
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod config_bearer;
pub mod keys;
pub mod metrics;
pub mod replay;
pub mod secret;
pub mod server;
pub mod telemetry;
pub mod verify;

/// Generated `signet.v1` protobuf and gRPC types.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("signet.v1");
}
