//! The edge's error enum and its one mapping to `tonic::Status`.

use tonic::{Code, Status};

use crate::bearer::BearerError;

/// Why a call could not be answered with a decision. Client-facing messages
/// are fixed strings; nothing from the request is echoed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Both `body` and `body_sha256` were given.
    #[error("set body or body_sha256, not both")]
    BothBodies,
    /// `body_sha256` is not 32 bytes.
    #[error("body_sha256 must be 32 bytes")]
    BadDigest,
    /// The request names a key set that is not configured.
    #[error("unknown key set")]
    UnknownKeySet,
    /// The key set has no keys loaded: signet cannot decide, and never allows.
    #[error("no signing keys loaded for this key set")]
    NoKeys,
    /// The caller presented no valid credential (caller token).
    #[error("caller not authenticated")]
    Unauthenticated,
    /// The caller's identity is not allowed to call this service.
    #[error("caller not allowed")]
    PermissionDenied,
    /// A `KeyAdmin` call came without an admin credential.
    #[error("admin credential required: authorization: Bearer <admin token>")]
    AdminCredentialMissing,
    /// A `KeyAdmin` call came with a credential that is not an admin token.
    #[error("admin credential not accepted")]
    AdminCredentialRejected,
    /// Rotation asked for keys that come from a key directory.
    #[error(
        "keys from a key directory are rotated by updating the Secret: roll the keys in QStash, then write the new current and next"
    )]
    RotateDirectory,
    /// Rotation asked for keys that come from the environment or the file.
    #[error(
        "keys from the environment or configuration file are rotated by changing them and restarting; use a key directory or the QStash keys API to rotate without restarts"
    )]
    RotateStatic,
    /// Rotation asked for the public dev-server keys.
    #[error("the public dev-server keys cannot be rotated")]
    RotateDev,
    /// A second rotation inside the configured minimum interval, unforced.
    #[error(
        "keys were rotated less than the minimum interval ago; wait until every replica has the new pair, or set force"
    )]
    RotationTooSoon,
    /// The key source could not be reached (details in the logs and key status).
    #[error("the key source failed; see GetKeyStatus")]
    KeySourceFailed,
    /// The policy's replay store did not answer and the policy fails closed.
    #[error("replay protection store unavailable")]
    ReplayStoreUnavailable,
    /// The request names a policy that is not configured.
    #[error("unknown policy")]
    UnknownPolicy,
    /// An issuer's keys could not be loaded (and no last-known-good copy is
    /// fresh enough): signet cannot decide, and never allows.
    #[error("issuer keys unavailable")]
    IssuerUnavailable,
}

impl From<BearerError> for ApiError {
    fn from(e: BearerError) -> Self {
        match e {
            BearerError::UnknownPolicy => Self::UnknownPolicy,
            BearerError::IssuerUnavailable => Self::IssuerUnavailable,
        }
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let code = match e {
            ApiError::Unauthenticated => Code::Unauthenticated,
            ApiError::PermissionDenied => Code::PermissionDenied,
            ApiError::AdminCredentialMissing | ApiError::AdminCredentialRejected => {
                Code::Unauthenticated
            }
            ApiError::RotateDirectory
            | ApiError::RotateStatic
            | ApiError::RotateDev
            | ApiError::RotationTooSoon => Code::FailedPrecondition,
            ApiError::BothBodies
            | ApiError::BadDigest
            | ApiError::UnknownKeySet
            | ApiError::UnknownPolicy => Code::InvalidArgument,
            ApiError::NoKeys
            | ApiError::KeySourceFailed
            | ApiError::IssuerUnavailable
            | ApiError::ReplayStoreUnavailable => Code::Unavailable,
        };
        Status::new(code, e.to_string())
    }
}

/// tonic reports a request message over the decoding limit as `OUT_OF_RANGE`;
/// the gRPC convention (and signet's contract) is `RESOURCE_EXHAUSTED`. signet
/// itself never answers `OUT_OF_RANGE`, so the rewrite cannot hide another error.
pub fn oversized_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let out_of_range = http::HeaderValue::from(Code::OutOfRange as i32);
    if response.headers().get("grpc-status") == Some(&out_of_range) {
        response.headers_mut().insert(
            "grpc-status",
            http::HeaderValue::from(Code::ResourceExhausted as i32),
        );
        response.headers_mut().insert(
            "grpc-message",
            http::HeaderValue::from_static("request message too large"),
        );
    }
    response
}
