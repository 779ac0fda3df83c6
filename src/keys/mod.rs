//! Key material: signing keys, key sets, the lock-free `KeyStore`, and the
//! sources that fill it.

mod key_set;
mod signing_key;
pub mod source;
mod store;

pub use key_set::{
    DEFAULT_KEY_SET, KeyLookupError, KeySet, KeySnapshot, KeySource, normalize_region,
};
pub use signing_key::{KeyPair, KeySlot, SigningKey};
pub use store::KeyStore;
