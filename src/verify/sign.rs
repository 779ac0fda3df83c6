//! Making QStash-format tokens, for tests and local development (`signet sign`).

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::token::B64URL;
use crate::keys::SigningKey;

/// The claims of a token to sign.
#[derive(Clone, Debug, Serialize)]
pub struct SignOptions<'a> {
    /// `iss`; QStash uses `Upstash`.
    pub iss: &'a str,
    /// `sub`: the destination url.
    pub sub: &'a str,
    /// `exp`, unix seconds.
    pub exp: u64,
    /// `nbf`, unix seconds.
    pub nbf: u64,
    /// `iat`, unix seconds.
    pub iat: u64,
    /// `jti`
    pub jti: &'a str,
    /// The body; its base64url SHA-256 becomes the `body` claim.
    #[serde(skip)]
    pub body: &'a [u8],
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(flatten)]
    options: &'a SignOptions<'a>,
    body: String,
}

/// An HS256 `Upstash-Signature` token, as QStash makes it.
pub fn sign(key: &SigningKey, options: &SignOptions<'_>) -> String {
    let payload = Payload {
        options,
        body: B64URL.encode(Sha256::digest(options.body)),
    };
    sign_payload(
        key,
        &serde_json::to_vec(&payload).expect("claims serialise"),
    )
}

/// An HS256 token over an arbitrary payload: for tests that need claims a
/// real signer would never produce.
pub fn sign_payload(key: &SigningKey, payload: &[u8]) -> String {
    let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let signing_input = format!("{header}.{}", B64URL.encode(payload));
    let tag = B64URL.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{tag}")
}
