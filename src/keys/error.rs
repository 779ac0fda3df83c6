//! The key layer's error: why a source could not produce keys.

use std::{io, path::PathBuf};

/// Why a key source could not produce keys. Shown to admins by key status
/// and logged; never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySourceError {
    /// The directory or a key file could not be read.
    #[error("cannot read {path}: {kind}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// What went wrong.
        kind: io::ErrorKind,
    },
    /// A key file is empty (e.g. half-written).
    #[error("{0} is empty")]
    EmptyFile(PathBuf),
    /// A key file holds something that is not a single key.
    #[error("{0} does not hold a single signing key")]
    Malformed(PathBuf),
    /// Only one of `current` and `next` exists.
    #[error("{0} has only one of `current` and `next`")]
    HalfPair(PathBuf),
    /// `current` and `next` are the same key (a half-finished roll).
    #[error("{0}: `current` and `next` are the same key")]
    SameKeys(PathBuf),
    /// The directory holds no keys at all.
    #[error("{0} holds no `current`/`next` files")]
    NoKeys(PathBuf),
    /// The keys API could not be reached or timed out.
    #[error("keys API request failed: {0}")]
    Request(String),
    /// The keys API answered with an error status.
    #[error("keys API answered HTTP {0}")]
    Status(u16),
    /// The keys API answered something that is not `{"current","next"}`.
    #[error("keys API answer is not a current/next key pair")]
    Decode,
    /// The keys API answered the same key as current and next.
    #[error("keys API answered the same key as current and next")]
    ApiSameKeys,
    /// The keys API answer is larger than any key pair.
    #[error("keys API answer is too large")]
    ApiTooLarge,
}
