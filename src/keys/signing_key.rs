//! One QStash signing key with its HMAC state prepared once.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// A QStash signing key. The HMAC key is the UTF-8 bytes of the key string,
/// used as is (QStash does not base64-decode it).
#[derive(Clone)]
pub struct SigningKey {
    secret: Secret,
    // Keyed once here: each verification clones this state instead of
    // re-deriving the inner and outer pads from the key.
    mac: HmacSha256,
    fingerprint: String,
}

/// Which of the two keys of a pair verified a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySlot {
    /// The key QStash signs with now.
    Current,
    /// The key QStash will sign with after the next roll.
    Next,
}

impl SigningKey {
    /// Prepares a key; `None` for an empty key, which must never verify anything.
    pub fn new(secret: Secret) -> Option<Self> {
        if secret.is_empty() {
            return None;
        }
        let mac = HmacSha256::new_from_slice(secret.expose()).ok()?;
        let fingerprint = secret.fingerprint();
        Some(Self {
            secret,
            mac,
            fingerprint,
        })
    }

    /// True when `tag` is the HMAC-SHA256 of `signing_input` under this key,
    /// compared in constant time.
    pub fn verifies(&self, signing_input: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(signing_input);
        mac.verify_slice(tag).is_ok()
    }

    /// HMAC-SHA256 of `input` under this key (for signing test and dev tokens).
    pub fn sign(&self, input: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// Identifies the key without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key material, for comparing two keys.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The current and next signing keys of one QStash account (or region).
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// Signs today's requests.
    pub current: SigningKey,
    /// Becomes current at the next roll; already valid for verification.
    pub next: SigningKey,
}

impl KeyPair {
    /// The slot whose key produced `tag`, trying the current key first.
    pub fn matching_slot(&self, signing_input: &[u8], tag: &[u8]) -> Option<KeySlot> {
        if self.current.verifies(signing_input, tag) {
            Some(KeySlot::Current)
        } else if self.next.verifies(signing_input, tag) {
            Some(KeySlot::Next)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_is_refused() {
        assert!(SigningKey::new(Secret::new("")).is_none());
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let key = SigningKey::new(Secret::new("sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r")).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("7kYjw48"), "{shown}");
        assert!(shown.contains(key.fingerprint()));
    }

    #[test]
    fn verifies_its_own_tag_only() {
        let key = SigningKey::new(Secret::new("k1")).unwrap();
        let other = SigningKey::new(Secret::new("k2")).unwrap();
        let tag = key.sign(b"input");
        assert!(key.verifies(b"input", &tag));
        assert!(!key.verifies(b"input2", &tag));
        assert!(!other.verifies(b"input", &tag));
        assert!(!key.verifies(b"input", &tag[..31]));
    }
}
