//! Replay protection: the `jti` of every accepted token is remembered until
//! the token expires, so a captured request is allowed once. Per replica in
//! memory, or fleet-wide in Redis (`SET … NX EX`, one round trip).
//!
//! Ids are stored as SHA-256 digests of (scope, jti): entries have a fixed
//! size, and nothing a caller sent is written to Redis as it was.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use moka::{Expiry, sync::Cache};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::secret::Secret;

/// Why a replay check could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The shared store did not answer in time or answered with an error.
    #[error("replay store unavailable")]
    Unavailable,
    /// The Redis URL could not be parsed.
    #[error("invalid redis url")]
    InvalidUrl,
}

/// Whether a token id was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First use: recorded now.
    First,
    /// Already used: a replay.
    Again,
}

/// Where seen token ids are kept.
#[derive(Clone)]
pub enum ReplayStore {
    /// This replica only: bounded, entries expire with their tokens.
    Memory(Cache<[u8; 32], Duration>),
    /// Every replica sharing one Redis.
    Redis {
        /// The parsed URL (host, port, credentials).
        client: redis::Client,
        /// Made on first use, inside the runtime; reconnects by itself
        /// after Redis comes back.
        connection: Arc<OnceCell<ConnectionManager>>,
        /// Upper bound on one check, connecting included.
        timeout: Duration,
    },
}

impl std::fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(cache) => f
                .debug_struct("Memory")
                .field("entries", &cache.entry_count())
                .finish(),
            // The URL may carry a password: not shown.
            Self::Redis { timeout, .. } => {
                f.debug_struct("Redis").field("timeout", timeout).finish()
            }
        }
    }
}

/// Each entry lives as long as the value stored with it says.
struct UntilExpiry;

impl Expiry<[u8; 32], Duration> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        ttl: &Duration,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(*ttl)
    }
}

impl ReplayStore {
    /// An in-memory store holding at most `max_entries` ids.
    pub fn memory(max_entries: u64) -> Self {
        Self::Memory(
            Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
        )
    }

    /// A Redis store. Connects lazily, so signet starts while Redis is down
    /// and checks fail (fail closed by default) until it is back.
    pub fn redis(url: &Secret, timeout: Duration) -> Result<Self, ReplayError> {
        let url = std::str::from_utf8(url.expose()).map_err(|_| ReplayError::InvalidUrl)?;
        let client = redis::Client::open(url).map_err(|_| ReplayError::InvalidUrl)?;
        Ok(Self::Redis {
            client,
            connection: Arc::new(OnceCell::new()),
            timeout,
        })
    }

    /// Records `jti` within `scope` (a key set or issuer) as used for `ttl`
    /// (the token's remaining lifetime plus clock tolerance) and says whether
    /// it had been used before. Atomic: of two concurrent first uses, one
    /// sees [`Seen::Again`].
    pub async fn record(&self, scope: &str, jti: &str, ttl: Duration) -> Result<Seen, ReplayError> {
        let id = digest(scope, jti);
        // A token about to expire still needs a whole second: Redis's
        // smallest expiry, and no shorter than the clock's resolution.
        let ttl = ttl.max(Duration::from_secs(1));
        match self {
            Self::Memory(cache) => Ok(if cache.entry(id).or_insert(ttl).is_fresh() {
                Seen::First
            } else {
                Seen::Again
            }),
            Self::Redis {
                client,
                connection,
                timeout,
            } => {
                let mut connection = connection
                    .get_or_try_init(|| async {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(*timeout))
                            .set_response_timeout(Some(*timeout))
                            .set_number_of_retries(1);
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                    })
                    .await
                    .map_err(|_| ReplayError::Unavailable)?
                    .clone();
                let key = format!("signet:replay:{}", hex::encode(id));
                let mut command = redis::cmd("SET");
                command
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs());
                // A connection Redis dropped (a restart) is noticed on use;
                // the manager reconnects, so one more try gets through.
                let set = async {
                    match command.query_async::<Option<String>>(&mut connection).await {
                        Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                            command.query_async::<Option<String>>(&mut connection).await
                        }
                        other => other,
                    }
                };
                match tokio::time::timeout(*timeout, set).await {
                    Ok(Ok(Some(_))) => Ok(Seen::First),
                    Ok(Ok(None)) => Ok(Seen::Again),
                    Ok(Err(e)) => {
                        tracing::warn!(kind = ?e.kind(), "replay store: redis error");
                        Err(ReplayError::Unavailable)
                    }
                    Err(_) => {
                        tracing::warn!(timeout = ?timeout, "replay store: redis timed out");
                        Err(ReplayError::Unavailable)
                    }
                }
            }
        }
    }
}

fn digest(scope: &str, jti: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((scope.len() as u64).to_be_bytes());
    h.update(scope.as_bytes());
    h.update(jti.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_allows_each_id_once_per_scope() {
        let store = ReplayStore::memory(1000);
        let ttl = Duration::from_secs(60);
        assert_eq!(store.record("default", "jwt_1", ttl).await, Ok(Seen::First));
        assert_eq!(store.record("default", "jwt_1", ttl).await, Ok(Seen::Again));
        assert_eq!(store.record("default", "jwt_2", ttl).await, Ok(Seen::First));
        assert_eq!(store.record("other", "jwt_1", ttl).await, Ok(Seen::First));
    }

    #[test]
    fn scope_and_id_cannot_be_confused() {
        assert_ne!(digest("ab", "c"), digest("a", "bc"));
    }

    #[test]
    fn debug_hides_the_redis_url() {
        let store = ReplayStore::redis(
            &Secret::new("redis://:hunter2@127.0.0.1:1/"),
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(!format!("{store:?}").contains("hunter2"));
    }

    #[test]
    fn a_bad_url_is_refused() {
        assert!(ReplayStore::redis(&Secret::new("not a url"), Duration::from_secs(1)).is_err());
    }
}
