//! Key material: signing keys, key sets, the lock-free `KeyStore`, and the
//! sources that fill it; JWT verification keys and the JWKS cache.

mod jwks;
mod jwt_key;
mod key_set;
mod signing_key;
pub mod source;
mod store;

pub use jwks::{JwksCache, JwksConfig, JwksError, JwksLocation, JwksSourceId, LoadedKeys, max_age};
pub use jwt_key::{JwtKey, JwtKeyError, algorithm};
pub use key_set::{
    DEFAULT_KEY_SET, KeyLookupError, KeySet, KeySnapshot, KeySource, normalize_region,
};
pub use signing_key::{KeyPair, KeySlot, SigningKey};
pub use store::KeyStore;
