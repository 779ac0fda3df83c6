//! The `envoy.service.auth.v3.Authorization` edge: `CheckRequest` →
//! [`HttpRequest`] → decision → `CheckResponse`. A denial is a
//! `CheckResponse`; an RPC error (`UNAVAILABLE`) means signet cannot decide,
//! so Envoy's own `failure_mode_allow` / `status_on_error` applies.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    AppState,
    authorizer::{AuthorizerService, unix_now},
    error::ApiError,
};
use crate::{
    envoy_proto::envoy::service::auth::v3::{
        CheckRequest, CheckResponse, authorization_server::Authorization,
    },
    ext_authz::{self, Decision, Denied, DenyKind, HttpRequest},
    proto,
};

/// The policy name that means the default policy, besides an empty one.
const DEFAULT_POLICY: &str = "default";

/// Serves Envoy's external authorization API by asking the same decision
/// code as `signet.v1.Authorizer`.
#[derive(Clone, Debug)]
pub struct ExtAuthzService {
    authorizer: AuthorizerService,
}

impl ExtAuthzService {
    /// A service answering from `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            authorizer: AuthorizerService::new(state),
        }
    }

    /// The one place a request is decided.
    ///
    /// Until policies exist, every route has the default policy: a valid
    /// QStash signature (default key set, `sub` unchecked, the body as
    /// received), asked exactly as `VerifySignature` is; a route naming any
    /// other policy is denied. With the `Authorize` core this becomes: build
    /// a `proto::AuthorizeRequest` from `req` (policy, method, headers, body,
    /// url = the policy's public base URL + `req.path`), ask
    /// `authorize_request`, and map its response onto a [`Decision`].
    fn decide(&self, req: &HttpRequest, now: u64) -> Result<Decision, ApiError> {
        if !req.policy.is_empty() && req.policy != DEFAULT_POLICY {
            return Ok(Decision::Deny(Denied {
                kind: DenyKind::Forbidden,
                reason: "unknown_policy",
            }));
        }
        let header = |name| req.header(name).unwrap_or_default().to_owned();
        let check = proto::VerifySignatureRequest {
            signature: header("upstash-signature"),
            body: Some(req.body.clone()),
            body_sha256: None,
            url: String::new(),
            key_set: String::new(),
            region: header("upstash-region"),
            clock_tolerance_seconds: None,
        };
        let verdict = self.authorizer.verify_signature(&check, now)?;
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
