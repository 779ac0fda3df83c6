//! QStash `Upstash-Signature` verification: a pure function of the token,
//! the body (or its digest), the url, a key pair and the clock.
//!
//! Semantics follow the published QStash Receiver, stricter where
//! `docs/qstash-signatures.md` says so: HS256 only (never read from the
//! header), `exp` required.

mod reason;
mod sign;
mod token;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use reason::Reason;
pub use sign::{SignOptions, sign, sign_payload};

use crate::keys::{KeyLookupError, KeyPair, KeySlot, KeySnapshot};
use token::{B64URL, CompactJws, Header, RawClaims, decode};

/// The body a signature is checked against.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    /// The raw bytes as received.
    Raw(&'a [u8]),
    /// SHA-256 of the raw bytes, computed by the caller.
    Sha256(&'a [u8; 32]),
}

impl Body<'_> {
    fn sha256(&self) -> [u8; 32] {
        match self {
            Self::Raw(bytes) => Sha256::digest(bytes).into(),
            Self::Sha256(digest) => **digest,
        }
    }
}

/// One signature to check.
#[derive(Clone, Copy, Debug)]
pub struct SignatureCheck<'a> {
    /// The `Upstash-Signature` header value.
    pub signature: &'a str,
    /// The request body.
    pub body: Body<'a>,
    /// The url QStash was asked to call; empty = `sub` not checked.
    pub url: &'a str,
    /// Seconds of leeway on `exp` and `nbf`.
    pub clock_tolerance: u64,
    /// Signatures longer than this are denied unparsed.
    pub max_signature_bytes: usize,
}

/// The verified claims of a token whose MAC matched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Claims {
    /// `iss`
    pub issuer: String,
    /// `sub`: the destination url.
    pub subject: String,
    /// `exp`, unix seconds (0 when absent).
    pub expires_at: i64,
    /// `nbf`, unix seconds (0 when absent).
    pub not_before: i64,
    /// `iat`, unix seconds (0 when absent).
    pub issued_at: i64,
    /// `jti`
    pub jwt_id: String,
    /// `body`: base64url SHA-256 of the body, as sent.
    pub body_hash: String,
}

/// The answer: a reason, the key that matched (only when valid), and the
/// claims (whenever the MAC matched, so they are authentic).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Why.
    pub reason: Reason,
    /// The key that verified a valid token.
    pub key_slot: Option<KeySlot>,
    /// Claims of a token whose MAC matched.
    pub claims: Option<Claims>,
}

impl Verdict {
    /// True only for a valid signature.
    pub fn is_valid(&self) -> bool {
        self.reason == Reason::Ok
    }

    fn denied(reason: Reason) -> Self {
        Self {
            reason,
            key_slot: None,
            claims: None,
        }
    }
}

/// base64url of `{"alg":"HS256","typ":"JWT"}`, the header every QStash signer
/// sends: accepted as is, without decoding and parsing it on each request.
const QSTASH_HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

// Room for the decoded payload of an ordinary QStash token (claims plus a url
// of up to ~700 bytes); larger ones are decoded onto the heap. Kept small
// because the buffer is zeroed on every call (a 6 KiB one cost 6% of a verify
// under callgrind).
const STACK_BUFFER: usize = 1024;

/// Verifies a QStash signature at unix time `now` (seconds).
///
/// The MAC is checked first against the current key, then the next; claims
/// are judged only once a key matched, which gives the same verdict as the
/// reference Receiver (claims do not depend on the key) while never reporting
/// claim details of a forged token.
pub fn verify(check: &SignatureCheck<'_>, keys: &KeyPair, now: u64) -> Verdict {
    if check.signature.is_empty() {
        return Verdict::denied(Reason::Missing);
    }
    if check.signature.len() > check.max_signature_bytes {
        return Verdict::denied(Reason::TooLarge);
    }
    let Some(jws) = CompactJws::split(check.signature) else {
        return Verdict::denied(Reason::Malformed);
    };
    let mut buf = [0u8; STACK_BUFFER];
    if jws.header != QSTASH_HEADER {
        let Some(header) = decode(jws.header, &mut buf) else {
            return Verdict::denied(Reason::Malformed);
        };
        match serde_json::from_slice::<Header<'_>>(&header) {
            Ok(h) if h.alg == "HS256" => {}
            Ok(_) => return Verdict::denied(Reason::UnsupportedAlgorithm),
            Err(_) => return Verdict::denied(Reason::Malformed),
        }
    }
    let mut tag = [0u8; 64];
    let Ok(tag_len) = B64URL.decode_slice(jws.signature, &mut tag) else {
        return Verdict::denied(if jws.signature.is_empty() {
            Reason::NoKeyMatched
        } else {
            Reason::Malformed
        });
    };
    let Some(slot) = keys.matching_slot(jws.signing_input, &tag[..tag_len]) else {
        return Verdict::denied(Reason::NoKeyMatched);
    };
    let Some(payload) = decode(jws.payload, &mut buf) else {
        return Verdict::denied(Reason::Malformed);
    };
    let Ok(raw) = serde_json::from_slice::<RawClaims<'_>>(&payload) else {
        return Verdict::denied(Reason::Malformed);
    };
    let reason = judge(&raw, check, now);
    Verdict {
        reason,
        key_slot: (reason == Reason::Ok).then_some(slot),
        claims: Some(Claims {
            issuer: raw.iss.as_deref().unwrap_or_default().to_owned(),
            subject: raw.sub.as_deref().unwrap_or_default().to_owned(),
            expires_at: raw.exp.map_or(0, |t| t as i64),
            not_before: raw.nbf.map_or(0, |t| t as i64),
            issued_at: raw.iat.map_or(0, |t| t as i64),
            jwt_id: raw.jti.as_deref().unwrap_or_default().to_owned(),
            body_hash: raw.body.as_deref().unwrap_or_default().to_owned(),
        }),
    }
}

/// Verifies with the pair of `key_set` (empty = default) and `region` (the
/// `upstash-region` header as received) in `snapshot`. A region without keys
/// is a denial; a missing key set or keys are errors of the call.
pub fn verify_in(
    check: &SignatureCheck<'_>,
    snapshot: &KeySnapshot,
    key_set: &str,
    region: &str,
    now: u64,
) -> Result<Verdict, KeyLookupError> {
    match snapshot.pair(key_set, region) {
        Ok(pair) => Ok(verify(check, pair, now)),
        Err(KeyLookupError::UnknownRegion) => Ok(Verdict::denied(Reason::UnknownRegion)),
        Err(e) => Err(e),
    }
}

/// The claim checks, in the reference Receiver's order: issuer, time, then
/// url and body.
fn judge(claims: &RawClaims<'_>, check: &SignatureCheck<'_>, now: u64) -> Reason {
    if claims.iss.as_deref() != Some("Upstash") {
        return Reason::WrongIssuer;
    }
    let Some(exp) = claims.exp else {
        return Reason::MissingClaim;
    };
    let (now, tolerance) = (now as f64, check.clock_tolerance as f64);
    if exp <= now - tolerance {
        return Reason::Expired;
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + tolerance) {
        return Reason::NotYetValid;
    }
    if !check.url.is_empty() && claims.sub.as_deref() != Some(check.url) {
        return Reason::UrlMismatch;
    }
    let Some(body_claim) = claims.body.as_deref() else {
        return Reason::MissingClaim;
    };
    let mut expected = [0u8; 43];
    let n = B64URL
        .encode_slice(check.body.sha256(), &mut expected)
        .expect("43 bytes hold base64url of 32 bytes");
    // Signers differ on `=` padding; the SDKs strip it from both sides.
    let claimed = body_claim.trim_end_matches('=').as_bytes();
    if bool::from(claimed.ct_eq(&expected[..n])) {
        Reason::Ok
    } else {
        Reason::BodyMismatch
    }
}

#[cfg(test)]
mod tests;
