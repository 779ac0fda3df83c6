//! Bearer credentials: JWTs from configured issuers and API keys, judged
//! against named policies. The checks themselves are pure (clock passed in);
//! [`Bearer`] adds key resolution (static keys, JWKS) and the decision cache.

pub mod api_key;
mod cache;
pub mod header;
pub mod jwt;
mod policy;
mod reason;

use std::{collections::HashMap, sync::Arc};

use serde_json::value::RawValue;

pub use cache::{DecisionCache, cache_key};
pub use policy::{Issuer, Policy, ReplayGuard, Require};
pub use reason::Reason;

use crate::keys::{JwksCache, JwksError};

/// Which kind of credential was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT.
    Jwt,
    /// An API key.
    ApiKey,
}

/// A bearer decision with what was learnt about the credential.
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// Why.
    pub reason: Reason,
    /// The kind of credential, once known.
    pub kind: Option<CredentialKind>,
    /// The principal (`sub`, or the API key's subject).
    pub subject: String,
    /// `iss` (JWT only).
    pub issuer: String,
    /// Scopes carried by the credential.
    pub scopes: Vec<String>,
    /// `exp`, unix seconds; 0 when it does not expire.
    pub expires_at: i64,
    /// The verified claims as one JSON object (JWT only, once the signature
    /// matched). Kept as text: a cached decision holds it in one allocation,
    /// where a parsed map costs a node per claim.
    pub claims: Option<Box<RawValue>>,
}

impl Decision {
    /// True only for an allowed credential.
    pub fn is_allowed(&self) -> bool {
        self.reason == Reason::Ok
    }

    /// A denial before anything was learnt.
    pub fn denied(reason: Reason) -> Self {
        Self {
            reason,
            ..Self::default()
        }
    }

    fn jwt_denied(reason: Reason) -> Self {
        Self {
            reason,
            kind: Some(CredentialKind::Jwt),
            ..Self::default()
        }
    }
}

/// Why a bearer call could not be decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// The request names a policy that is not configured.
    #[error("unknown policy")]
    UnknownPolicy,
    /// The issuer's keys could not be loaded and no usable last-known-good
    /// copy exists: signet cannot decide, and never allows.
    #[error("issuer keys unavailable")]
    IssuerUnavailable,
}

impl From<JwksError> for BearerError {
    fn from(_: JwksError) -> Self {
        Self::IssuerUnavailable
    }
}

/// Policies, issuers' keys and the decision cache.
#[derive(Debug)]
pub struct Bearer {
    policies: HashMap<String, Arc<Policy>>,
    jwks: Arc<JwksCache>,
    cache: DecisionCache,
}

/// The name of the policy used when a request names none.
pub const DEFAULT_POLICY: &str = "default";

impl Bearer {
    /// Serves `policies`; without one named `default`, the default policy
    /// requires a valid QStash signature only.
    pub fn new(policies: Vec<Policy>, jwks: Arc<JwksCache>, cache: DecisionCache) -> Self {
        let mut policies: HashMap<_, _> = policies
            .into_iter()
            .map(|p| (p.name.clone(), Arc::new(p)))
            .collect();
        policies
            .entry(DEFAULT_POLICY.to_owned())
            .or_insert_with(|| Arc::new(Policy::signature_only(DEFAULT_POLICY)));
        Self {
            policies,
            jwks,
            cache,
        }
    }

    /// The JWKS cache (for prefetch and background refresh).
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// The named policy (empty = default).
    pub fn policy(&self, name: &str) -> Result<&Arc<Policy>, BearerError> {
        let name = if name.is_empty() {
            DEFAULT_POLICY
        } else {
            name
        };
        self.policies.get(name).ok_or(BearerError::UnknownPolicy)
    }

    /// Judges an `Authorization` value (or bare token) under `policy` at unix
    /// time `now`.
    pub async fn authorize(
        &self,
        policy: &Policy,
        authorization: &str,
        now: u64,
    ) -> Result<Arc<Decision>, BearerError> {
        let token = match header::credential(authorization) {
            Ok(t) => t,
            Err(reason) => return Ok(Arc::new(Decision::denied(reason))),
        };
        let key = cache_key(&policy.name, token);
        if let Some(hit) = self.cache.get(&key, now) {
            return Ok(hit);
        }
        let decision = Arc::new(self.decide(policy, token, now).await?);
        self.cache.insert(key, Arc::clone(&decision), now);
        Ok(decision)
    }

    /// A cached decision only (no verification): for benchmarks and tests of
    /// the cache itself.
    pub fn cached(&self, policy: &Policy, token: &str, now: u64) -> Option<Arc<Decision>> {
        self.cache.get(&cache_key(&policy.name, token), now)
    }

    async fn decide(
        &self,
        policy: &Policy,
        token: &str,
        now: u64,
    ) -> Result<Decision, BearerError> {
        let mut decision = if !policy.issuers.is_empty() && jwt::looks_like_jwt(token) {
            self.decide_jwt(policy, token, now).await?
        } else if !policy.api_keys.is_empty() {
            match api_key::find(&policy.api_keys, token.as_bytes()) {
                Some(k) => Decision {
                    reason: Reason::Ok,
                    kind: Some(CredentialKind::ApiKey),
                    subject: k.subject.clone(),
                    scopes: k.scopes.clone(),
                    ..Decision::default()
                },
                None => Decision {
                    kind: Some(CredentialKind::ApiKey),
                    ..Decision::denied(Reason::UnknownApiKey)
                },
            }
        } else if policy.issuers.is_empty() {
            Decision::denied(Reason::KindNotAllowed)
        } else {
            Decision::denied(Reason::Malformed)
        };
        if decision.is_allowed()
            && !policy
                .required_scopes
                .iter()
                .all(|s| decision.scopes.contains(s))
        {
            decision.reason = Reason::MissingScope;
        }
        Ok(decision)
    }

    async fn decide_jwt(
        &self,
        policy: &Policy,
        token: &str,
        now: u64,
    ) -> Result<Decision, BearerError> {
        let inspected = match jwt::inspect(token, &policy.issuers) {
            Ok(i) => i,
            Err(reason) => return Ok(Decision::jwt_denied(reason)),
        };
        let issuer = inspected.issuer;
        let remote = match issuer.jwks {
            Some(id) => Some(self.jwks.keys(id, inspected.kid.as_deref()).await?),
            None => None,
        };
        let all = issuer
            .static_keys
            .iter()
            .chain(remote.iter().flat_map(|r| r.keys.iter()));
        match jwt::candidates(&inspected, all) {
            Ok(keys) => Ok(jwt::verify(token, &inspected, &keys, now)),
            Err(reason) => Ok(Decision::jwt_denied(reason)),
        }
    }
}

#[cfg(test)]
mod tests;
