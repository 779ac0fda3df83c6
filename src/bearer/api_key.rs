//! API keys, stored only as SHA-256 digests and found without a
//! timing-visible dependence on the presented bytes.

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// One accepted API key: its digest, who it stands for, what it may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// SHA-256 of the key.
    pub digest: [u8; 32],
    /// The principal the key authenticates.
    pub subject: String,
    /// Scopes granted to the key.
    pub scopes: Vec<String>,
}

/// SHA-256 of an API key, hex: what the configuration stores.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Finds the key whose digest equals SHA-256(`presented`). Every stored
/// digest is compared in constant time and the loop never exits early, so the
/// time taken depends only on how many keys are configured.
pub fn find<'a>(keys: &'a [ApiKey], presented: &[u8]) -> Option<&'a ApiKey> {
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let mut index = u64::MAX;
    for (i, key) in keys.iter().enumerate() {
        index.conditional_assign(&(i as u64), key.digest[..].ct_eq(&digest[..]));
    }
    usize::try_from(index).ok().and_then(|i| keys.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token: &str, subject: &str) -> ApiKey {
        ApiKey {
            digest: hex::decode(hash_token(token)).unwrap().try_into().unwrap(),
            subject: subject.into(),
            scopes: vec![],
        }
    }

    #[test]
    fn finds_only_the_exact_key() {
        let keys = [key("sk_live_one", "a"), key("sk_live_two", "b")];
        assert_eq!(find(&keys, b"sk_live_two").unwrap().subject, "b");
        assert_eq!(find(&keys, b"sk_live_one").unwrap().subject, "a");
        assert!(find(&keys, b"sk_live_twp").is_none());
        assert!(find(&keys, b"").is_none());
        assert!(find(&[], b"sk_live_one").is_none());
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
