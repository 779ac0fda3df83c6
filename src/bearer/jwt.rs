//! JWT checks: pick the issuer and key without trusting the token, verify the
//! signature with `jsonwebtoken`, then judge the claims at a given clock.

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Decision, Issuer, Reason};
use crate::keys::JwtKey;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the unverified header and payload say: only used to choose the
/// issuer and key, never trusted for a decision.
#[derive(Debug)]
pub struct Inspected<'i> {
    /// The header's algorithm, already checked against the issuer's allowlist.
    pub alg: Algorithm,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The issuer named by `iss`.
    pub issuer: &'i Issuer,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct RawIss {
    iss: Option<Value>,
}

/// True when `token` has the shape of a compact JWS with a JSON header.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    B64URL
        .decode(h.trim_end_matches('='))
        .ok()
        .is_some_and(|b| b.first() == Some(&b'{'))
}

fn part<T: for<'de> Deserialize<'de>>(s: &str) -> Option<T> {
    let bytes = B64URL.decode(s.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Chooses the issuer (by `iss`) and checks the algorithm against its
/// allowlist. `alg: none` and unknown names are never allowed.
pub fn inspect<'i>(
    token: &str,
    issuers: &'i [std::sync::Arc<Issuer>],
) -> Result<Inspected<'i>, Reason> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p)) = (parts.next(), parts.next()) else {
        return Err(Reason::Malformed);
    };
    let header: RawHeader = part(h).ok_or(Reason::Malformed)?;
    let alg: Algorithm = header
        .alg
        .parse()
        .map_err(|_| Reason::AlgorithmNotAllowed)?;
    let iss = part::<RawIss>(p).ok_or(Reason::Malformed)?.iss;
    let issuer = issuers
        .iter()
        .find(|i| iss.as_ref().and_then(Value::as_str) == Some(i.issuer.as_str()))
        .ok_or(Reason::WrongIssuer)?;
    if !issuer.algorithms.contains(&alg) {
        return Err(Reason::AlgorithmNotAllowed);
    }
    Ok(Inspected {
        alg,
        kid: header.kid,
        issuer,
    })
}

/// The keys that may verify this token: those with its `kid` (when it has
/// one), restricted to keys bound to the token's algorithm family.
/// `Err(UnknownKeyId)` when the `kid` names no key at all.
pub fn candidates<'k>(
    inspected: &Inspected<'_>,
    keys: impl Iterator<Item = &'k JwtKey> + Clone,
) -> Result<Vec<&'k JwtKey>, Reason> {
    let named = |k: &&JwtKey| inspected.kid.is_none() || k.kid() == inspected.kid.as_deref();
    if !keys.clone().any(|k| named(&k)) {
        return Err(if inspected.kid.is_some() {
            Reason::UnknownKeyId
        } else {
            Reason::BadSignature
        });
    }
    Ok(keys
        .filter(named)
        .filter(|k| k.accepts(inspected.alg))
        .collect())
}

/// Verifies the signature with the candidate keys, then the claims at unix
/// time `now`. Scopes are read but not judged (the policy does that).
pub fn verify(token: &str, inspected: &Inspected<'_>, keys: &[&JwtKey], now: u64) -> Decision {
    let mut validation = Validation::new(inspected.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut claims = None;
    for key in keys {
        match jsonwebtoken::decode::<Map<String, Value>>(token, key.decoding_key(), &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm
                ) => {}
            Err(_) => return Decision::jwt_denied(Reason::Malformed),
        }
    }
    let Some(claims) = claims else {
        return Decision::jwt_denied(Reason::BadSignature);
    };
    judge(claims, inspected.issuer, now)
}

fn time(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Reason> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(Reason::Malformed),
    }
}

/// A scope claim: a space-separated string or an array of strings.
fn scopes(v: Option<&Value>) -> Vec<String> {
    // Exact capacity: a cached decision keeps this vector (collect() would
    // reserve room for four).
    let mut scopes: Vec<String> = match v {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    scopes.shrink_to_fit();
    scopes
}

/// The claim checks, in order: types, required claims, time, audience.
fn check_claims(claims: &Map<String, Value>, issuer: &Issuer, now: u64) -> Result<(), Reason> {
    let exp = time(claims, "exp")?;
    let nbf = time(claims, "nbf")?;
    if let Some(missing) = issuer
        .required_claims
        .iter()
        .find(|c| !claims.contains_key(*c))
    {
        tracing::debug!(claim = %missing, "required claim missing");
        return Err(Reason::MissingClaim);
    }
    let (now, leeway) = (now as f64, issuer.leeway as f64);
    if exp.is_some_and(|exp| exp <= now - leeway) {
        return Err(Reason::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Reason::NotYetValid);
    }
    if !issuer.audiences.is_empty() {
        let aud = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| issuer.audiences.iter().any(|x| x == a)) {
            return Err(Reason::WrongAudience);
        }
    }
    Ok(())
}

fn judge(claims: Map<String, Value>, issuer: &Issuer, now: u64) -> Decision {
    let reason = check_claims(&claims, issuer, now)
        .err()
        .unwrap_or(Reason::Ok);
    let str_claim = |n: &str| {
        claims
            .get(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let subject = str_claim("sub");
    let issuer_claim = str_claim("iss");
    Decision {
        reason,
        kind: Some(super::CredentialKind::Jwt),
        subject,
        issuer: issuer_claim,
        scopes: scopes(claims.get(&issuer.scope_claim)),
        expires_at: time(&claims, "exp").ok().flatten().map_or(0, |e| e as i64),
        // A map of JSON values always serialises.
        claims: serde_json::value::to_raw_value(&claims).ok(),
    }
}
