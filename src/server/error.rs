//! The edge's error enum and its one mapping to `tonic::Status`.

use tonic::{Code, Status};

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
    /// The RPC exists in the contract but is not served by this build.
    #[error("not implemented")]
    Unimplemented,
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let code = match e {
            ApiError::BothBodies | ApiError::BadDigest | ApiError::UnknownKeySet => {
                Code::InvalidArgument
            }
            ApiError::NoKeys => Code::Unavailable,
            ApiError::Unimplemented => Code::Unimplemented,
        };
        Status::new(code, e.to_string())
    }
}
