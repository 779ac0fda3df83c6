//! The `signet.v1.Authorizer` edge: request ↔ domain types, nothing more.

use std::{sync::Arc, time::SystemTime};

use tonic::{Request, Response, Status};

use super::{AppState, error::ApiError};
use crate::{
    keys::{KeyLookupError, KeySlot},
    metrics::Outcome,
    proto::{self, authorizer_server::Authorizer},
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
fn unix_now() -> u64 {
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

impl AuthorizerService {
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
        let snapshot = self.state.keys.snapshot();
        match snapshot.pair(&req.key_set, &req.region) {
            Ok(pair) => {
                let verdict = verify::verify(&check, pair, now);
                if verdict.reason == Reason::NoKeyMatched {
                    // Neither key: the account may have rolled; a refreshing
                    // source re-fetches (single-flight, with a cooldown).
                    self.state.keys.request_refetch();
                }
                Ok(verdict)
            }
            Err(KeyLookupError::UnknownRegion) => Ok(Verdict {
                reason: Reason::UnknownRegion,
                key_slot: None,
                claims: None,
            }),
            Err(KeyLookupError::UnknownKeySet) => Err(ApiError::UnknownKeySet),
            Err(KeyLookupError::NoKeys) => Err(ApiError::NoKeys),
        }
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
        _request: Request<proto::AuthorizeBearerRequest>,
    ) -> Result<Response<proto::AuthorizeBearerResponse>, Status> {
        Err(ApiError::Unimplemented.into())
    }

    async fn authorize(
        &self,
        _request: Request<proto::AuthorizeRequest>,
    ) -> Result<Response<proto::AuthorizeResponse>, Status> {
        Err(ApiError::Unimplemented.into())
    }
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
