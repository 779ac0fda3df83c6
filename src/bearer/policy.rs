//! Named policies and the JWT issuers they accept (validated configuration).

use std::sync::Arc;

use jsonwebtoken::Algorithm;

use super::api_key::ApiKey;
use crate::{
    keys::{JwksSourceId, JwtKey},
    replay::ReplayStore,
};

/// What a policy requires of a whole request (`Authorize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Require {
    /// A valid QStash signature (the built-in default).
    Signature,
    /// A valid bearer credential.
    Bearer,
    /// Both.
    Both,
    /// At least one of the two.
    Either,
}

impl Require {
    /// True when the bearer check is part of this requirement.
    pub fn wants_bearer(self) -> bool {
        self != Self::Signature
    }

    /// True when the signature check is part of this requirement.
    pub fn wants_signature(self) -> bool {
        self != Self::Bearer
    }
}

/// A named policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Its name (`default` for the default policy).
    pub name: String,
    /// What a whole request needs.
    pub require: Require,
    /// Key set for the signature check; empty = the default set.
    pub key_set: String,
    /// Compare the signature's `sub` with the request url.
    pub check_url: bool,
    /// JWT issuers accepted.
    pub issuers: Vec<Arc<Issuer>>,
    /// API keys accepted.
    pub api_keys: Vec<ApiKey>,
    /// Scopes every accepted credential must carry.
    pub required_scopes: Vec<String>,
    /// Replay protection of the QStash signature; `None` = off.
    pub replay: Option<ReplayGuard>,
    /// The public scheme://host\[:port\]\[/prefix\] of the routes, without a
    /// trailing `/`; empty = unknown. The Envoy edge appends the request path
    /// to build the url the signature's `sub` is compared with.
    pub public_base_url: String,
    /// Strip `authorization` before the request reaches the upstream (Envoy).
    pub remove_authorization: bool,
}

/// A policy's replay protection: where seen ids live, and what to do when
/// that store cannot answer.
#[derive(Clone, Debug)]
pub struct ReplayGuard {
    /// The store (shared by every policy using the same kind).
    pub store: ReplayStore,
    /// Decide without the replay check when the store is unavailable,
    /// instead of refusing to decide (the default).
    pub allow_when_unavailable: bool,
}

impl Policy {
    /// The built-in default: a valid QStash signature and nothing else.
    pub fn signature_only(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            require: Require::Signature,
            key_set: String::new(),
            check_url: false,
            issuers: Vec::new(),
            api_keys: Vec::new(),
            required_scopes: Vec::new(),
            replay: None,
            public_base_url: String::new(),
            remove_authorization: false,
        }
    }
}

/// A JWT issuer: what its tokens must say and where its keys come from.
#[derive(Debug)]
pub struct Issuer {
    /// Configuration name.
    pub name: String,
    /// The exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values; empty = `aud` not checked.
    pub audiences: Vec<String>,
    /// Algorithms accepted (never taken from the token alone).
    pub algorithms: Vec<Algorithm>,
    /// Seconds of leeway on `exp` and `nbf`.
    pub leeway: u64,
    /// Claims that must be present.
    pub required_claims: Vec<String>,
    /// The claim holding scopes (a space-separated string or an array).
    pub scope_claim: String,
    /// Keys from the configuration.
    pub static_keys: Vec<JwtKey>,
    /// A JWKS URL or OIDC discovery source.
    pub jwks: Option<JwksSourceId>,
}
