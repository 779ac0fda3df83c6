//! The `signet.v1.KeyAdmin` edge: admin authentication (before the message
//! is decoded), then key status, reload and rotation from the
//! `KeyRefresher`. Served only when enabled.

use std::{sync::Arc, time::SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status, metadata::MetadataMap, service::Interceptor};
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::{
    config::AdminConfig,
    keys::{KeyRefresher, KeySetStatus, KeySource, RefreshError},
    proto::{self, key_admin_server::KeyAdmin},
};

/// Serves `signet.v1.KeyAdmin`, behind [`AdminAuth`].
#[derive(Debug, Clone)]
pub struct KeyAdminService {
    refresher: Arc<KeyRefresher>,
}

impl KeyAdminService {
    /// A service over `refresher`.
    pub fn new(refresher: Arc<KeyRefresher>) -> Self {
        Self { refresher }
    }
}

/// The admin credential check, run as a tonic interceptor: it sees the
/// metadata before the message is decoded, so nothing an unauthenticated
/// caller sends is parsed.
#[derive(Debug, Clone)]
pub struct AdminAuth {
    admin: Arc<AdminConfig>,
}

impl AdminAuth {
    /// Accepts the tokens `admin` names.
    pub fn new(admin: AdminConfig) -> Self {
        Self {
            admin: Arc::new(admin),
        }
    }

    /// Checks `authorization: Bearer <token>` against the configured
    /// digests, in constant time and over every digest. The token itself is
    /// never logged.
    fn authenticate(&self, metadata: &MetadataMap) -> Result<(), ApiError> {
        let header = metadata
            .get("authorization")
            .ok_or(ApiError::AdminCredentialMissing)?;
        let token = header
            .as_bytes()
            .strip_prefix(b"Bearer ")
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::AdminCredentialRejected)?;
        let digest = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(token)));
        let accepted = self
            .admin
            .token_digests
            .iter()
            .fold(subtle::Choice::from(0), |acc, d| {
                acc | d.as_slice().ct_eq(digest.as_slice())
            });
        if bool::from(accepted) {
            Ok(())
        } else {
            Err(ApiError::AdminCredentialRejected)
        }
    }
}

impl Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        // The call's span (see `observe`) names the RPC.
        self.authenticate(request.metadata()).map_err(|e| {
            tracing::warn!(error = %e, "admin call refused");
            Status::from(e)
        })?;
        Ok(request)
    }
}

fn refresh_error(e: RefreshError) -> ApiError {
    match e {
        RefreshError::UnknownKeySet => ApiError::UnknownKeySet,
        RefreshError::NotRotatable(KeySource::Directory) => ApiError::RotateDirectory,
        RefreshError::NotRotatable(KeySource::Dev) => ApiError::RotateDev,
        RefreshError::NotRotatable(_) => ApiError::RotateStatic,
        RefreshError::TooSoon => ApiError::RotationTooSoon,
        RefreshError::Source(e) => {
            tracing::warn!(error = %e, "key source call failed");
            ApiError::KeySourceFailed
        }
    }
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Domain status → wire status.
fn status_row(s: KeySetStatus) -> proto::KeySetStatus {
    proto::KeySetStatus {
        key_set: s.key_set,
        region: s.region,
        source: s.source.as_str().to_owned(),
        current_fingerprint: s.current_fingerprint,
        next_fingerprint: s.next_fingerprint,
        loaded_at_unix: unix(s.loaded_at),
        version: s.version,
        last_refresh_error: s.last_refresh_error.unwrap_or_default(),
        staleness_seconds: s.staleness.as_secs(),
    }
}

impl KeyAdminService {
    fn rows(&self, key_set: &str) -> Result<Vec<proto::KeySetStatus>, Status> {
        let rows = self
            .refresher
            .status(key_set, SystemTime::now())
            .map_err(refresh_error)?;
        Ok(rows.into_iter().map(status_row).collect())
    }
}

#[tonic::async_trait]
impl KeyAdmin for KeyAdminService {
    async fn get_key_status(
        &self,
        request: Request<proto::GetKeyStatusRequest>,
    ) -> Result<Response<proto::GetKeyStatusResponse>, Status> {
        let key_sets = self.rows(&request.get_ref().key_set)?;
        Ok(Response::new(proto::GetKeyStatusResponse { key_sets }))
    }

    async fn reload(
        &self,
        request: Request<proto::ReloadRequest>,
    ) -> Result<Response<proto::ReloadResponse>, Status> {
        let key_set = &request.get_ref().key_set;
        // An unknown key set is refused before any source is called.
        self.rows(key_set)?;
        self.refresher.reload_all().await;
        tracing::info!(rpc = "Reload", "key sources reloaded");
        let key_sets = self.rows(key_set)?;
        Ok(Response::new(proto::ReloadResponse { key_sets }))
    }

    async fn rotate_signing_keys(
        &self,
        request: Request<proto::RotateSigningKeysRequest>,
    ) -> Result<Response<proto::RotateSigningKeysResponse>, Status> {
        let req = request.into_inner();
        self.refresher
            .rotate(&req.key_set, req.force, tokio::time::Instant::now())
            .await
            .map_err(refresh_error)?;
        let name = if req.key_set.is_empty() {
            crate::keys::DEFAULT_KEY_SET
        } else {
            &req.key_set
        };
        let key_set = self.rows(name)?.into_iter().next();
        Ok(Response::new(proto::RotateSigningKeysResponse { key_set }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(tokens: &[&str]) -> AdminAuth {
        let token_digests = tokens.iter().map(|t| Sha256::digest(t).into()).collect();
        AdminAuth::new(AdminConfig { token_digests })
    }

    fn metadata(value: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn admin_tokens_are_checked_by_digest() {
        let s = auth(&["first-admin", "second-admin"]);
        assert_eq!(
            s.authenticate(&metadata(None)),
            Err(ApiError::AdminCredentialMissing)
        );
        for bad in [
            "first-admin",
            "Bearer ",
            "Bearer first",
            "Basic first-admin",
        ] {
            assert_eq!(
                s.authenticate(&metadata(Some(bad))),
                Err(ApiError::AdminCredentialRejected),
                "{bad}"
            );
        }
        assert_eq!(
            s.authenticate(&metadata(Some("Bearer first-admin"))),
            Ok(())
        );
        assert_eq!(
            s.authenticate(&metadata(Some("Bearer second-admin"))),
            Ok(())
        );
    }

    #[test]
    fn the_interceptor_refuses_before_the_handler() {
        let mut s = auth(&["first-admin"]);
        let refused = s.call(Request::new(())).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let mut request = Request::new(());
        *request.metadata_mut() = metadata(Some("Bearer first-admin"));
        assert!(s.call(request).is_ok());
    }
}
