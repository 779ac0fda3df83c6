//! The `envoy.service.auth.v3.Authorization` edge: `CheckRequest` →
//! [`HttpRequest`] → decision → `CheckResponse`. A denial is a
//! `CheckResponse`; an RPC error (`UNAVAILABLE`) means signet cannot decide,
//! so Envoy's own `failure_mode_allow` / `status_on_error` applies.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{AppState, authorizer::unix_now, error::ApiError};
use crate::{
    envoy_proto::envoy::service::auth::v3::{
        CheckRequest, CheckResponse, authorization_server::Authorization,
    },
    ext_authz::{self, Decision, Denied, DenyKind, HttpRequest},
    keys::KeyLookupError,
    verify::{self, Body, Reason, SignatureCheck, Verdict},
};

/// The policy name that means the default policy, besides an empty one.
const DEFAULT_POLICY: &str = "default";

/// Serves Envoy's external authorization API.
#[derive(Clone, Debug)]
pub struct ExtAuthzService {
    state: Arc<AppState>,
}

impl ExtAuthzService {
    /// A service answering from `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// The one place a request is decided.
    ///
    /// Until policies exist, every route has the default policy: a valid
    /// QStash signature (default key set, `sub` unchecked, the body as
    /// received) is required; a route naming any other policy is denied.
    /// With the `Authorize` core this becomes: build its request from `req`
    /// (policy, method, headers, body, url = policy base URL + `req.path`),
    /// call it, and map its outcome onto a [`Decision`].
    fn decide(&self, req: &HttpRequest, now: u64) -> Result<Decision, ApiError> {
        if !req.policy.is_empty() && req.policy != DEFAULT_POLICY {
            return Ok(Decision::Deny(Denied {
                kind: DenyKind::Forbidden,
                reason: "unknown_policy",
            }));
        }
        let limits = &self.state.limits;
        let check = SignatureCheck {
            signature: req.header("upstash-signature").unwrap_or_default(),
            body: Body::Raw(&req.body),
            url: "",
            clock_tolerance: limits.tolerance(None),
            max_signature_bytes: limits.max_signature_bytes,
        };
        let region = req.header("upstash-region").unwrap_or_default();
        let snapshot = self.state.keys.snapshot();
        let verdict = match snapshot.pair("", region) {
            Ok(pair) => verify::verify(&check, pair, now),
            Err(KeyLookupError::UnknownRegion) => Verdict {
                reason: Reason::UnknownRegion,
                key_slot: None,
                claims: None,
            },
            Err(KeyLookupError::UnknownKeySet) => return Err(ApiError::UnknownKeySet),
            Err(KeyLookupError::NoKeys) => return Err(ApiError::NoKeys),
        };
        Ok(Decision::from_signature(
            &verdict,
            req.is_failure_callback(),
        ))
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let req = HttpRequest::from_check(request.into_inner());
        let decision = self.decide(&req, unix_now()).inspect_err(|e| {
            tracing::debug!(rpc = "ext_authz.Check", error = %e, "call refused");
        })?;
        tracing::debug!(
            rpc = "ext_authz.Check",
            policy = %req.policy,
            method = %req.method,
            decision = match &decision {
                Decision::Allow(_) => "allow",
                Decision::Deny(d) => d.reason,
            },
            "decision"
        );
        Ok(Response::new(ext_authz::check_response(&decision)))
    }
}
