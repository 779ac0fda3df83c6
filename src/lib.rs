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
pub mod ext_authz;
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

/// Generated types of the wire-compatible subset of Envoy's ext_authz v3
/// protos (`proto/envoy`, `proto/google/rpc`); modules follow the packages.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod envoy_proto {
    /// `envoy.*`
    pub mod envoy {
        /// `envoy.service.*`
        pub mod service {
            /// `envoy.service.auth.*`
            pub mod auth {
                /// `envoy.service.auth.v3`: `Authorization/Check`.
                pub mod v3 {
                    tonic::include_proto!("envoy.service.auth.v3");
                }
            }
        }
        /// `envoy.config.*`
        pub mod config {
            /// `envoy.config.core.*`
            pub mod core {
                /// `envoy.config.core.v3`: header values.
                pub mod v3 {
                    tonic::include_proto!("envoy.config.core.v3");
                }
            }
        }
        /// `envoy.type.*`
        pub mod r#type {
            /// `envoy.type.v3`: HTTP status codes.
            pub mod v3 {
                tonic::include_proto!("envoy.r#type.v3");
            }
        }
    }
    /// `google.*`
    pub mod google {
        /// `google.rpc`: `Status`.
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
    }
}
