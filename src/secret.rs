//! Key material and credentials: never printed, zeroized on drop, compared in constant time.

use std::fmt;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes (a signing key, a token). `Debug` is redacted, the bytes are
/// zeroized on drop, and there is deliberately no `Display` or `Serialize`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps bytes that must stay secret.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes, for the one place that needs them (a MAC key, a digest).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Identifies the secret without revealing it: hex of the first 8 bytes of its SHA-256.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

/// Hex of the first 8 bytes of SHA-256(bytes).
pub fn fingerprint(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(mut s: String) -> Self {
        let secret = Self(s.as_bytes().to_vec());
        s.zeroize();
        secret
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(deserializer)?);
        Ok(Self(s.as_bytes().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("sig_supersecret");
        let shown = format!("{s:?} {:?}", Some(&s));
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn equality_and_fingerprint() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
        let fp = Secret::new("sig_x").fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(!fp.contains("sig_x"));
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut s = Secret::new("sig_zero");
        s.zeroize();
        assert!(s.expose().iter().all(|b| *b == 0) || s.is_empty());
    }
}
