//! The `signet.v1.KeyAdmin` edge: admin authentication, then key status,
//! reload and rotation from the `KeyRefresher`. Served only when enabled.

use std::{sync::Arc, time::SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Response, Status, metadata::MetadataMap};
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::{
    config::AdminConfig,
    keys::{KeyRefresher, KeySetStatus, KeySource, RefreshError},
    proto::{self, key_admin_server::KeyAdmin},
};

/// Serves `signet.v1.KeyAdmin`.
#[derive(Debug, Clone)]
pub struct KeyAdminService {
    refresher: Arc<KeyRefresher>,
    admin: Arc<AdminConfig>,
}

impl KeyAdminService {
    /// A service over `refresher`, accepting the tokens `admin` names.
    pub fn new(refresher: Arc<KeyRefresher>, admin: AdminConfig) -> Self {
        Self {
            refresher,
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

    fn guard<T>(&self, rpc: &'static str, request: &Request<T>) -> Result<(), Status> {
        self.authenticate(request.metadata()).map_err(|e| {
            tracing::warn!(rpc, error = %e, "admin call refused");
            Status::from(e)
        })
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
        self.guard("GetKeyStatus", &request)?;
        let key_sets = self.rows(&request.get_ref().key_set)?;
        Ok(Response::new(proto::GetKeyStatusResponse { key_sets }))
    }

    async fn reload(
        &self,
        request: Request<proto::ReloadRequest>,
    ) -> Result<Response<proto::ReloadResponse>, Status> {
        self.guard("Reload", &request)?;
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
        self.guard("RotateSigningKeys", &request)?;
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
    use std::time::Duration;

    use crate::{
        config::KeyRefreshConfig,
        keys::{KeySnapshot, KeyStore},
    };

    fn service(tokens: &[&str]) -> KeyAdminService {
        let store = Arc::new(KeyStore::new(KeySnapshot::default()));
        let config = KeyRefreshConfig {
            directory: None,
            reread_interval: Duration::from_secs(30),
            max_staleness: Duration::from_secs(60),
            qstash_api: None,
        };
        let refresher = Arc::new(KeyRefresher::new(store, &config, SystemTime::now()).unwrap());
        let token_digests = tokens.iter().map(|t| Sha256::digest(t).into()).collect();
        KeyAdminService::new(refresher, AdminConfig { token_digests })
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
        let s = service(&["first-admin", "second-admin"]);
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
}
