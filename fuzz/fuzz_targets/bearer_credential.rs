//! Bearer parsing on arbitrary input: the `Authorization` scheme, JWT
//! inspection (header, `alg`, `iss`), and JWK / JWKS documents turned into
//! keys. Never panics; a credential is never longer than its header value.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use signet::{
    bearer::{Issuer, header, jwt},
    keys::JwtKey,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(token) = header::credential(text) {
            assert!(token.len() <= text.len());
            assert!(!token.is_empty());
        }
        if jwt::looks_like_jwt(text) {
            let issuer = Arc::new(Issuer {
                name: "fuzz".into(),
                issuer: "https://issuer.example".into(),
                audiences: Vec::new(),
                algorithms: vec![
                    jsonwebtoken::Algorithm::RS256,
                    jsonwebtoken::Algorithm::HS256,
                ],
                leeway: 0,
                required_claims: vec!["exp".into()],
                scope_claim: "scope".into(),
                static_keys: Vec::new(),
                jwks: None,
            });
            let _ = jwt::inspect(text, std::slice::from_ref(&issuer));
        }
    }
    // A JWKS document: every key either loads or is refused, never a panic.
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        let keys = doc
            .get("keys")
            .and_then(|k| k.as_array())
            .cloned()
            .unwrap_or_else(|| vec![doc]);
        for key in keys {
            if let Ok(jwk) = serde_json::from_value(key) {
                let _ = JwtKey::from_jwk(&jwk, None);
            }
        }
    }
});
