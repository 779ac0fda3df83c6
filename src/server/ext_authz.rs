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
    metrics::Outcome,
    proto,
};

/// Serves Envoy's external authorization API by asking the same decision
/// code as `signet.v1.Authorizer`.
#[derive(Clone, Debug)]
pub struct ExtAuthzService {
    state: Arc<AppState>,
    authorizer: AuthorizerService,
}

impl ExtAuthzService {
    /// A service answering from `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self {
            authorizer: AuthorizerService::new(Arc::clone(&state)),
            state,
        }
    }

    /// The one place a request is decided: the same whole-request core as
    /// `Authorize`, under the route's policy (`signet_policy`; `default` or
    /// none = the default policy). The url the signature's `sub` is compared
    /// with is the policy's `public_base_url` + the request path, when
    /// configured. An unknown policy is a 403 denial, never an RPC error, so
    /// a typo cannot reach Envoy's fail-open.
    async fn decide(&self, req: HttpRequest, now: u64) -> Result<(Decision, Outcome), ApiError> {
        let Ok(policy) = self.state.bearer.policy(&req.policy) else {
            let denied = Denied {
                kind: DenyKind::Forbidden,
                reason: "unknown_policy",
            };
            let outcome = Outcome {
                allowed: false,
                reason: denied.reason,
                key_slot: "",
            };
            return Ok((Decision::Deny(denied), outcome));
        };
        let url = if policy.public_base_url.is_empty() {
            String::new()
        } else {
            format!("{}{}", policy.public_base_url, req.path)
        };
        let authorize = proto::AuthorizeRequest {
            method: req.method,
            url,
            headers: req
                .headers
                .into_iter()
                .map(|(name, value)| proto::HttpHeader { name, value })
                .collect(),
            body: Some(req.body),
            ..Default::default()
        };
        let (response, outcome) = self
            .authorizer
            .authorize_request(&authorize, policy, now)
            .await?;
        let mut decision = Decision::from_authorize(&response);
        if let Decision::Allow(allowed) = &mut decision {
            allowed.remove_authorization = policy.remove_authorization;
        }
        Ok((decision, outcome))
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let req = HttpRequest::from_check(request.into_inner());
        // For the decision log: `decide` consumes the request.
        let (policy, method) = (req.policy.clone(), req.method.clone());
        let (decision, outcome) = self.decide(req, unix_now()).await.inspect_err(|e| {
            tracing::debug!(rpc = "ext_authz.Check", error = %e, "call refused");
        })?;
        tracing::debug!(
            rpc = "ext_authz.Check",
            policy = %policy,
            method = %method,
            decision = match &decision {
                Decision::Allow(_) => "allow",
                Decision::Deny(d) => d.reason,
            },
            "decision"
        );
        let mut response = Response::new(ext_authz::check_response(&decision));
        outcome.attach(&mut response);
        Ok(response)
    }
}
