//! Caller authorization: who may ask signet anything.
//!
//! With mTLS, the client certificate's SAN identities (DNS names and URIs,
//! e.g. SPIFFE ids) must be on the service's allowlist (an empty allowlist
//! admits every client the CA verified). Without a client certificate and
//! with `callers.token_sha256` set, `signet.v1.Authorizer` (and Envoy's
//! `Authorization/Check`) callers must send the `x-signet-caller-token`
//! metadata, whose SHA-256 must match one of the digests. Health and
//! reflection stay open (probes). A refused call gets UNAUTHENTICATED or
//! PERMISSION_DENIED from [`ApiError`] and never reaches a handler.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::{Layer, Service};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use super::error::ApiError;
use crate::config::CallerPolicy;

/// Metadata carrying a caller token (not `authorization`, which belongs to
/// the requests signet judges and to the admin API).
pub const CALLER_TOKEN: &str = "x-signet-caller-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guarded {
    Authorizer,
    KeyAdmin,
}

fn guarded(path: &str) -> Option<Guarded> {
    let service = path.strip_prefix('/')?.split('/').next()?;
    match service {
        "signet.v1.Authorizer" | "envoy.service.auth.v3.Authorization" => Some(Guarded::Authorizer),
        "signet.v1.KeyAdmin" => Some(Guarded::KeyAdmin),
        _ => None,
    }
}

/// SAN DNS names and URIs of a DER certificate.
fn identities(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::URI(s) => Some((*s).to_owned()),
            _ => None,
        })
        .collect()
}

impl CallerPolicy {
    /// Decides whether a call may proceed.
    fn check(
        &self,
        path: &str,
        headers: &HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<(), ApiError> {
        let Some(service) = guarded(path) else {
            return Ok(());
        };
        let peer = extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs);
        if let Some(leaf) = peer.as_deref().and_then(|c| c.first()) {
            let allowed = match service {
                Guarded::Authorizer => &self.authorizer,
                Guarded::KeyAdmin => &self.key_admin,
            };
            if allowed.is_empty() {
                return Ok(());
            }
            let ids = identities(leaf);
            if ids.iter().any(|id| allowed.contains(id)) {
                return Ok(());
            }
            tracing::info!(client = ?ids, ?service, "caller not on the allowlist");
            return Err(ApiError::PermissionDenied);
        }
        if service != Guarded::Authorizer || self.token_sha256.is_empty() {
            return Ok(());
        }
        let Some(token) = headers.get(CALLER_TOKEN) else {
            tracing::info!("caller token missing");
            return Err(ApiError::Unauthenticated);
        };
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let known = self
            .token_sha256
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&digest));
        if bool::from(known) {
            Ok(())
        } else {
            tracing::info!("caller token unknown");
            Err(ApiError::Unauthenticated)
        }
    }
}

/// Tower layer enforcing a [`CallerPolicy`] before any handler runs.
#[derive(Clone, Debug)]
pub struct CallerLayer(Arc<CallerPolicy>);

impl CallerLayer {
    /// Enforces `policy`.
    pub fn new(policy: CallerPolicy) -> Self {
        Self(Arc::new(policy))
    }
}

impl<S> Layer<S> for CallerLayer {
    type Service = CallerCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerCheck {
            inner,
            policy: Arc::clone(&self.0),
        }
    }
}

/// The service made by [`CallerLayer`].
#[derive(Clone, Debug)]
pub struct CallerCheck<S> {
    inner: S,
    policy: Arc<CallerPolicy>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> Service<http::Request<B>> for CallerCheck<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.policy.check(
            request.uri().path(),
            request.headers(),
            request.extensions(),
        ) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(e) => {
                let refused = tonic::Status::from(e).into_http();
                Box::pin(std::future::ready(Ok(refused)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    #[test]
    fn tokens_guard_the_authorizer_only() {
        let policy = CallerPolicy {
            token_sha256: vec![digest("caller-one")],
            ..CallerPolicy::default()
        };
        let ext = http::Extensions::new();
        let mut h = HeaderMap::new();
        let verify = "/signet.v1.Authorizer/VerifySignature";
        assert_eq!(
            policy.check(verify, &h, &ext),
            Err(ApiError::Unauthenticated)
        );
        h.insert(CALLER_TOKEN, "caller-two".parse().unwrap());
        assert_eq!(
            policy.check(verify, &h, &ext),
            Err(ApiError::Unauthenticated)
        );
        h.insert(CALLER_TOKEN, "caller-one".parse().unwrap());
        assert_eq!(policy.check(verify, &h, &ext), Ok(()));
        let empty = HeaderMap::new();
        assert_eq!(
            policy.check("/grpc.health.v1.Health/Check", &empty, &ext),
            Ok(())
        );
    }

    #[test]
    fn identities_are_dns_and_uri_sans() {
        let mut params = rcgen::CertificateParams::new(vec!["web.app.svc".to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://cluster.local/ns/app/sa/web".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            identities(cert.der()),
            ["web.app.svc", "spiffe://cluster.local/ns/app/sa/web"]
        );
    }
}
