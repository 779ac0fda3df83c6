//! Cached bearer decisions: keyed by SHA-256 of policy and credential (never
//! the raw token), bounded in entries, each living no longer than the
//! credential's own expiry.

use std::{sync::Arc, time::Duration};

use moka::{Expiry, sync::Cache};
use sha2::{Digest, Sha256};

use super::Decision;

struct Entry {
    decision: Arc<Decision>,
    ttl: Duration,
}

struct EntryTtl;

impl Expiry<[u8; 32], Arc<Entry>> for EntryTtl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Allowed decisions, cached. Denials and service errors are never cached.
#[derive(Clone)]
pub struct DecisionCache {
    cache: Option<Cache<[u8; 32], Arc<Entry>>>,
    ttl: Duration,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("enabled", &self.cache.is_some())
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The cache key: SHA-256(policy ‖ 0 ‖ credential).
pub fn cache_key(policy: &str, credential: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(policy.as_bytes());
    h.update([0]);
    h.update(credential.as_bytes());
    h.finalize().into()
}

impl DecisionCache {
    /// A cache of at most `max_entries` decisions, each kept at most `ttl`;
    /// `max_entries == 0` or a zero `ttl` disables it.
    pub fn new(max_entries: u64, ttl: Duration) -> Self {
        let cache = (max_entries > 0 && !ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryTtl)
                .build()
        });
        Self { cache, ttl }
    }

    /// The cached decision, if still valid at unix time `now`.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Arc<Decision>> {
        let entry = self.cache.as_ref()?.get(key)?;
        let live = entry.decision.expires_at == 0 || (now as i64) < entry.decision.expires_at;
        live.then(|| Arc::clone(&entry.decision))
    }

    /// Caches an allowed decision until its credential expires (or the
    /// configured TTL, whichever is sooner).
    pub fn insert(&self, key: [u8; 32], decision: Arc<Decision>, now: u64) {
        let Some(cache) = &self.cache else { return };
        if decision.reason != super::Reason::Ok {
            return;
        }
        let ttl = match u64::try_from(decision.expires_at) {
            Ok(0) => self.ttl,
            Ok(exp) if exp > now => self.ttl.min(Duration::from_secs(exp - now)),
            _ => return,
        };
        cache.insert(key, Arc::new(Entry { decision, ttl }));
    }
}
