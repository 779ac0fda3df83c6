//! The `signet.v1.Authorizer` edge: request ↔ domain types, nothing more.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tonic::{Request, Response, Status};

use serde_json::Value;

use super::{AppState, error::ApiError};
use crate::{
    authorize,
    bearer::{self, CredentialKind, Decision, Policy, ReplayGuard},
    keys::{DEFAULT_KEY_SET, KeyLookupError, KeySlot},
    metrics::Outcome,
    proto::{self, authorizer_server::Authorizer},
    replay::Seen,
    verify::{self, Body, Reason, SignatureCheck, Verdict},
};

/// Serves `signet.v1.Authorizer`.
#[derive(Clone, Debug)]
pub struct AuthorizerService {
    state: Arc<AppState>,
}

impl AuthorizerService {
    /// A service answering from `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// Unix seconds now. The decision core takes time as a parameter; this is
/// the one place the edge reads the wall clock.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Picks the body mode: raw bytes, a 32-byte digest, or (neither) an empty body.
fn body<'a>(raw: Option<&'a [u8]>, digest: Option<&'a [u8]>) -> Result<Body<'a>, ApiError> {
    match (raw, digest) {
        (Some(_), Some(_)) => Err(ApiError::BothBodies),
        (None, Some(d)) => d
            .try_into()
            .map(Body::Sha256)
            .map_err(|_| ApiError::BadDigest),
        (raw, None) => Ok(Body::Raw(raw.unwrap_or_default())),
    }
}

/// A request's headers as `(name, value)` pairs.
fn pairs(headers: &[proto::HttpHeader]) -> impl Iterator<Item = (&str, &str)> + Clone {
    headers.iter().map(|h| (h.name.as_str(), h.value.as_str()))
}

fn lookup_error(e: KeyLookupError) -> ApiError {
    match e {
        KeyLookupError::UnknownKeySet => ApiError::UnknownKeySet,
        // A region without keys is a denial, answered by `verify_in`.
        KeyLookupError::NoKeys | KeyLookupError::UnknownRegion => ApiError::NoKeys,
    }
}

impl AuthorizerService {
    /// The `VerifySignature` decision.
    fn verify_signature(
        &self,
        req: &proto::VerifySignatureRequest,
        now: u64,
    ) -> Result<Verdict, ApiError> {
        let body = body(req.body.as_deref(), req.body_sha256.as_deref())?;
        let limits = &self.state.limits;
        let check = SignatureCheck {
            signature: &req.signature,
            body,
            url: &req.url,
            clock_tolerance: limits.tolerance(req.clock_tolerance_seconds),
            max_signature_bytes: limits.max_signature_bytes,
        };
        self.check_signature(&check, &req.key_set, &req.region, now)
    }

    /// The QStash signature check shared by `VerifySignature` and `Authorize`.
    fn check_signature(
        &self,
        check: &SignatureCheck<'_>,
        key_set: &str,
        region: &str,
        now: u64,
    ) -> Result<Verdict, ApiError> {
        let verdict = verify::verify_in(check, &self.state.keys.snapshot(), key_set, region, now)
            .map_err(lookup_error)?;
        if verdict.reason == Reason::NoKeyMatched {
            // Neither key: the account may have rolled; a refreshing source
            // re-fetches (single-flight, with a cooldown).
            self.state.keys.request_refetch();
        }
        Ok(verdict)
    }

    /// The `Authorize` decision under `policy` (already resolved by the
    /// caller; `req.policy` is not looked at) and its metrics outcome; the
    /// Envoy edge asks it too.
    pub(super) async fn authorize_request(
        &self,
        req: &proto::AuthorizeRequest,
        policy: &Policy,
        now: u64,
    ) -> Result<(proto::AuthorizeResponse, Outcome), ApiError> {
        let body = body(req.body.as_deref(), req.body_sha256.as_deref())?;
        let headers = &req.headers;
        let header = |name| authorize::header(pairs(headers), name).unwrap_or_default();
        let failure_callback = authorize::is_failure_callback(pairs(headers));
        let (run_signature, run_bearer) = authorize::checks(policy.require, failure_callback);
        let signature = if run_signature {
            let limits = &self.state.limits;
            let check = SignatureCheck {
                signature: header("upstash-signature"),
                body,
                url: if policy.check_url { &req.url } else { "" },
                clock_tolerance: limits.tolerance(None),
                max_signature_bytes: limits.max_signature_bytes,
            };
            let key_set = if req.key_set.is_empty() {
                &policy.key_set
            } else {
                &req.key_set
            };
            let verdict = self.check_signature(&check, key_set, header("upstash-region"), now)?;
            Some(match &policy.replay {
                Some(guard) => {
                    let scope = if key_set.is_empty() {
                        DEFAULT_KEY_SET
                    } else {
                        key_set
                    };
                    check_replay(guard, scope, verdict, check.clock_tolerance, now).await?
                }
                None => verdict,
            })
        } else {
            None
        };
        let bearer = if run_bearer {
            let forwarded = authorize::header(pairs(headers), "authorization").map(str::to_owned);
            let credential = match (forwarded, body) {
                (Some(h), _) => h,
                (None, Body::Raw(raw)) if failure_callback => {
                    authorize::source_authorization(raw).unwrap_or_default()
                }
                (None, _) => String::new(),
            };
            Some(
                self.state
                    .bearer
                    .authorize(policy, &credential, now)
                    .await?,
            )
        } else {
            None
        };
        let reason = authorize::decide(
            policy.require,
            failure_callback,
            signature.as_ref(),
            bearer.as_deref(),
        );
        let subject = bearer
            .as_deref()
            .filter(|b| b.is_allowed())
            .map(|b| b.subject.clone())
            .unwrap_or_default();
        let outcome = Outcome {
            allowed: reason == authorize::Reason::Ok,
            reason: reason.as_str(),
            key_slot: key_slot_label(signature.as_ref().and_then(|v| v.key_slot)),
        };
        let response = proto::AuthorizeResponse {
            allowed: reason == authorize::Reason::Ok,
            reason: authorize_reason(reason) as i32,
            message: reason.message().to_owned(),
            failure_callback,
            signature: signature.map(signature_response),
            bearer: bearer.as_deref().map(bearer_response),
            subject,
        };
        Ok((response, outcome))
    }
}

#[tonic::async_trait]
impl Authorizer for AuthorizerService {
    async fn verify_signature(
        &self,
        request: Request<proto::VerifySignatureRequest>,
    ) -> Result<Response<proto::VerifySignatureResponse>, Status> {
        let req = request.into_inner();
        let verdict = self.verify_signature(&req, unix_now()).inspect_err(|e| {
            tracing::debug!(rpc = "VerifySignature", error = %e, "call refused");
        })?;
        tracing::debug!(
            rpc = "VerifySignature",
            key_set = %req.key_set,
            reason = verdict.reason.as_str(),
            "decision"
        );
        let outcome = Outcome {
            allowed: verdict.is_valid(),
            reason: verdict.reason.as_str(),
            key_slot: key_slot_label(verdict.key_slot),
        };
        let mut response = Response::new(signature_response(verdict));
        outcome.attach(&mut response);
        Ok(response)
    }

    async fn authorize_bearer(
        &self,
        request: Request<proto::AuthorizeBearerRequest>,
    ) -> Result<Response<proto::AuthorizeBearerResponse>, Status> {
        let req = request.into_inner();
        let bearer = &self.state.bearer;
        let decision = async {
            let policy = bearer.policy(&req.policy)?;
            bearer
                .authorize(policy, &req.authorization, unix_now())
                .await
        }
        .await
        .map_err(ApiError::from)
        .inspect_err(|e| tracing::debug!(rpc = "AuthorizeBearer", error = %e, "call refused"))?;
        tracing::debug!(
            rpc = "AuthorizeBearer",
            policy = %req.policy,
            reason = decision.reason.as_str(),
            "decision"
        );
        let outcome = Outcome {
            allowed: decision.is_allowed(),
            reason: decision.reason.as_str(),
            key_slot: "",
        };
        let mut response = Response::new(bearer_response(&decision));
        outcome.attach(&mut response);
        Ok(response)
    }

    async fn authorize(
        &self,
        request: Request<proto::AuthorizeRequest>,
    ) -> Result<Response<proto::AuthorizeResponse>, Status> {
        let req = request.into_inner();
        let (response, outcome) = async {
            let policy = self.state.bearer.policy(&req.policy)?;
            self.authorize_request(&req, policy, unix_now()).await
        }
        .await
        .inspect_err(|e| tracing::debug!(rpc = "Authorize", error = %e, "call refused"))?;
        tracing::debug!(
            rpc = "Authorize",
            policy = %req.policy,
            allowed = response.allowed,
            failure_callback = response.failure_callback,
            "decision"
        );
        let mut response = Response::new(response);
        outcome.attach(&mut response);
        Ok(response)
    }
}

/// Replay protection: a valid signature whose `jti` was already used within
/// `scope` is denied `REPLAYED`. The id is remembered until the token expires
/// (plus the clock tolerance, as long as the token could verify).
async fn check_replay(
    guard: &ReplayGuard,
    scope: &str,
    mut verdict: Verdict,
    tolerance: u64,
    now: u64,
) -> Result<Verdict, ApiError> {
    let Some(claims) = verdict.claims.as_ref().filter(|_| verdict.is_valid()) else {
        return Ok(verdict);
    };
    let seen = if claims.jwt_id.is_empty() {
        // Without an id a token cannot be told apart from its replay.
        Ok(Reason::MissingClaim)
    } else {
        let lifetime = u64::try_from(claims.expires_at)
            .unwrap_or(0)
            .saturating_sub(now);
        let ttl = Duration::from_secs(lifetime.saturating_add(tolerance));
        guard
            .store
            .record(scope, &claims.jwt_id, ttl)
            .await
            .map(|seen| match seen {
                Seen::First => Reason::Ok,
                Seen::Again => Reason::Replayed,
            })
    };
    match seen {
        Ok(Reason::Ok) => {}
        Ok(reason) => {
            verdict.reason = reason;
            verdict.key_slot = None;
        }
        Err(_) if guard.allow_when_unavailable => {
            tracing::warn!(
                "replay store unavailable: deciding without the replay check (policy allows it)"
            );
        }
        Err(_) => return Err(ApiError::ReplayStoreUnavailable),
    }
    Ok(verdict)
}

/// The `key_slot` metrics label.
fn key_slot_label(slot: Option<KeySlot>) -> &'static str {
    match slot {
        None => "",
        Some(KeySlot::Current) => "current",
        Some(KeySlot::Next) => "next",
    }
}

/// Domain verdict → wire response.
pub fn signature_response(v: Verdict) -> proto::VerifySignatureResponse {
    proto::VerifySignatureResponse {
        valid: v.is_valid(),
        reason: signature_reason(v.reason) as i32,
        key_slot: match v.key_slot {
            None => proto::KeySlot::Unspecified,
            Some(KeySlot::Current) => proto::KeySlot::Current,
            Some(KeySlot::Next) => proto::KeySlot::Next,
        } as i32,
        message: v.reason.message().to_owned(),
        claims: v.claims.map(|c| proto::SignatureClaims {
            issuer: c.issuer,
            subject: c.subject,
            expires_at: c.expires_at,
            not_before: c.not_before,
            issued_at: c.issued_at,
            jwt_id: c.jwt_id,
            body_hash: c.body_hash,
        }),
    }
}

fn signature_reason(r: Reason) -> proto::SignatureReason {
    use proto::SignatureReason as P;
    match r {
        Reason::Ok => P::Ok,
        Reason::Missing => P::Missing,
        Reason::Malformed => P::Malformed,
        Reason::UnsupportedAlgorithm => P::UnsupportedAlgorithm,
        Reason::NoKeyMatched => P::NoKeyMatched,
        Reason::Expired => P::Expired,
        Reason::NotYetValid => P::NotYetValid,
        Reason::WrongIssuer => P::WrongIssuer,
        Reason::UrlMismatch => P::UrlMismatch,
        Reason::BodyMismatch => P::BodyMismatch,
        Reason::MissingClaim => P::MissingClaim,
        Reason::TooLarge => P::TooLarge,
        Reason::UnknownRegion => P::UnknownRegion,
        Reason::Replayed => P::Replayed,
    }
}

/// Bearer decision → wire response.
pub fn bearer_response(d: &Decision) -> proto::AuthorizeBearerResponse {
    proto::AuthorizeBearerResponse {
        allowed: d.is_allowed(),
        reason: bearer_reason(d.reason) as i32,
        message: d.reason.message().to_owned(),
        subject: d.subject.clone(),
        issuer: d.issuer.clone(),
        scopes: d.scopes.clone(),
        expires_at: d.expires_at,
        // The text was serialised from a JSON object, so it parses back.
        claims: d
            .claims
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .map(to_struct),
        credential_kind: match d.kind {
            None => proto::CredentialKind::Unspecified,
            Some(CredentialKind::Jwt) => proto::CredentialKind::Jwt,
            Some(CredentialKind::ApiKey) => proto::CredentialKind::ApiKey,
        } as i32,
    }
}

fn bearer_reason(r: bearer::Reason) -> proto::BearerReason {
    use bearer::Reason as R;
    use proto::BearerReason as P;
    match r {
        R::Ok => P::Ok,
        R::Missing => P::Missing,
        R::Malformed => P::Malformed,
        R::Expired => P::Expired,
        R::NotYetValid => P::NotYetValid,
        R::BadSignature => P::BadSignature,
        R::UnknownKeyId => P::UnknownKeyId,
        R::WrongIssuer => P::WrongIssuer,
        R::WrongAudience => P::WrongAudience,
        R::MissingScope => P::MissingScope,
        R::UnknownApiKey => P::UnknownApiKey,
        R::MissingClaim => P::MissingClaim,
        R::AlgorithmNotAllowed => P::AlgorithmNotAllowed,
        R::KindNotAllowed => P::KindNotAllowed,
    }
}

fn authorize_reason(r: authorize::Reason) -> proto::AuthorizeReason {
    use authorize::Reason as R;
    use proto::AuthorizeReason as P;
    match r {
        R::Ok => P::Ok,
        R::SignatureDenied => P::SignatureDenied,
        R::BearerDenied => P::BearerDenied,
        R::NoCheckPassed => P::NoCheckPassed,
    }
}

fn to_struct(map: serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(v: Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}
