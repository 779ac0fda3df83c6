//! Key material: signing keys, key sets, the lock-free `KeyStore`, and the
//! sources that fill it (environment, configuration file, a watched key
//! directory, the QStash keys API), kept fresh by the `KeyRefresher`.

pub mod directory;
mod error;
mod key_set;
pub mod qstash_api;
pub mod refresh;
mod signing_key;
pub mod source;
mod store;

pub use error::KeySourceError;
pub use key_set::{
    DEFAULT_KEY_SET, KeyLookupError, KeySet, KeySnapshot, KeySource, normalize_region,
};
pub use refresh::{KeyRefresher, KeySetStatus, RefreshCounters, RefreshError};
pub use signing_key::{KeyPair, KeySlot, SigningKey};
pub use store::KeyStore;
