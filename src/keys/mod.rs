//! Key material: signing keys, key sets, the lock-free `KeyStore`, and the
//! sources that fill it (environment, configuration file, a watched key
//! directory, the QStash keys API), kept fresh by the `KeyRefresher`; JWT
//! verification keys and the JWKS cache.

pub mod directory;
mod error;
mod jwks;
mod jwt_key;
mod key_set;
pub mod qstash_api;
pub mod refresh;
mod signing_key;
pub mod source;
mod store;

pub use error::KeySourceError;
pub use jwks::{
    DocumentError, JwksCache, JwksConfig, JwksError, JwksLocation, JwksSourceId, LoadedKeys,
    is_key_url, max_age, parse_discovery, parse_jwks,
};
pub use jwt_key::{JwtKey, JwtKeyError, algorithm};
pub use key_set::{
    DEFAULT_KEY_SET, KeyLookupError, KeySet, KeySnapshot, KeySource, normalize_region,
};
pub use refresh::{KeyRefresher, KeySetStatus, RefreshCounters, RefreshError};
pub use signing_key::{KeyPair, KeySlot, SigningKey};
pub use store::KeyStore;
