//! Making QStash-format tokens, for tests and local development (`signet sign`).

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::token::B64URL;
use crate::keys::SigningKey;
use base64::Engine;

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
    /// `body`: filled in from the body by [`sign`].
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
    let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = Payload {
        options,
        body: B64URL.encode(Sha256::digest(options.body)),
    };
    let payload = B64URL.encode(serde_json::to_vec(&payload).expect("claims serialise"));
    let signing_input = format!("{header}.{payload}");
    let tag = B64URL.encode(key.sign(signing_input.as_bytes()));
    format!("{signing_input}.{tag}")
}
