//! Cached bearer decisions: keyed by SHA-256 of policy and credential (never
//! the raw token), bounded in entries, each living no longer than the
//! credential's own expiry.
//!
//! quick_cache rather than moka (which the JWKS and replay stores use): moka
//! keeps deque and timer-wheel nodes per entry and buffers every read, while
//! an entry here is a slot in a hash table. With the claims kept as text this
//! took a server holding 100k cached decisions from 179 to 59 MiB peak RSS
//! (`bench/bearer-rss.sh`). Expiry is judged on read against the caller's
//! clock, so an expired entry is never served; it waits for eviction in a
//! cache bounded by entries.

use std::{sync::Arc, time::Duration};

use quick_cache::sync::Cache;
use sha2::{Digest, Sha256};

use super::Decision;

#[derive(Clone)]
struct Entry {
    decision: Arc<Decision>,
    /// Unix seconds from which the entry is no longer served.
    until: u64,
}

/// Allowed decisions, cached. Denials and service errors are never cached.
#[derive(Clone)]
pub struct DecisionCache {
    cache: Option<Arc<Cache<[u8; 32], Entry>>>,
    ttl_secs: u64,
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("enabled", &self.cache.is_some())
            .field("ttl_secs", &self.ttl_secs)
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
    /// A cache of at most `max_entries` decisions, each kept at most `ttl`
    /// (whole seconds, rounded up); `max_entries == 0` or a zero `ttl`
    /// disables it.
    pub fn new(max_entries: u64, ttl: Duration) -> Self {
        let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let cache = (max_entries > 0 && ttl_secs > 0).then(|| {
            let capacity = usize::try_from(max_entries).unwrap_or(usize::MAX);
            Arc::new(Cache::new(capacity))
        });
        Self { cache, ttl_secs }
    }

    /// The cached decision, if still valid at unix time `now`.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<Arc<Decision>> {
        let entry = self.cache.as_ref()?.get(key)?;
        (now < entry.until).then_some(entry.decision)
    }

    /// Caches an allowed decision until its credential expires (or the
    /// configured TTL, whichever is sooner).
    pub fn insert(&self, key: [u8; 32], decision: Arc<Decision>, now: u64) {
        let Some(cache) = &self.cache else { return };
        if decision.reason != super::Reason::Ok {
            return;
        }
        let mut until = now.saturating_add(self.ttl_secs);
        match u64::try_from(decision.expires_at) {
            Ok(0) => {}
            Ok(exp) if exp > now => until = until.min(exp),
            _ => return,
        }
        cache.insert(key, Entry { decision, until });
    }
}
