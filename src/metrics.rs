//! Prometheus metrics, served with plaintext `/livez` and `/readyz` on their
//! own port (`metrics.listen`).
//!
//! [`Metrics`] is a cheap-to-clone handle on every metric family. The gRPC
//! edge records calls through [`crate::server`]'s observe layer; other
//! components (JWKS, caches) take a clone and call [`Metrics::jwks_fetch`]
//! and [`Metrics::cache_lookup`]; the key refresher's own counters (key
//! directory reads, keys-API calls, key changes) are copied in at each scrape. Every label value is a `&'static str` chosen by
//! signet, so no request data (let alone a credential) can reach a label.

use std::{
    future::Future,
    sync::{Arc, atomic::AtomicU64},
    time::{Duration, SystemTime},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::server::AppState;

/// What a handler decided, put in the response extensions for the observe
/// layer to count. Handlers only describe their answer; they never record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the credential was accepted.
    pub allowed: bool,
    /// The decision reason, e.g. `ok`, `expired` (a fixed name).
    pub reason: &'static str,
    /// Which key slot verified it: `current`, `next`, or `""`.
    pub key_slot: &'static str,
}

impl Outcome {
    /// Attaches the outcome to a response, for the observe layer.
    pub fn attach<T>(self, response: &mut tonic::Response<T>) {
        response.extensions_mut().insert(self);
    }
}

/// Result of a fetch of remote key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Fetched and accepted.
    Ok,
    /// Not modified since the last fetch (HTTP 304 or same content).
    NotModified,
    /// Transport or HTTP failure.
    Error,
    /// Fetched but refused (unparsable, or a suspicious rotation).
    Rejected,
}

impl FetchOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NotModified => "not_modified",
            Self::Error => "error",
            Self::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    rpc: &'static str,
    decision: &'static str,
    reason: &'static str,
    key_slot: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeySetLabels {
    key_set: String,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    source: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RpcLabels, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 50µs … ~1.6s: verification takes microseconds, fetches take milliseconds.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// Every metric signet exports. Clone it freely: clones share the families
/// (one reference count per clone; the observe layer clones it per call).
#[derive(Clone, Debug)]
pub struct Metrics {
    families: Arc<Families>,
}

#[derive(Debug)]
struct Families {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily,
    keys_generation: Gauge,
    key_age: Family<KeySetLabels, FloatGauge>,
    key_loaded_at: Family<KeySetLabels, FloatGauge>,
    cache: Family<CacheLabels, Counter>,
    fetches: Family<FetchLabels, Counter>,
    tls_reloads: Family<OutcomeLabels, Counter>,
    key_changes: Counter,
    key_set_version: Family<KeySetLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family in a fresh registry (prefix `signet_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("signet");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "gRPC calls by rpc, decision (allow, deny, error, none), reason and key slot",
            calls.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "call_duration_seconds",
            "Time from request to response headers, by rpc",
            latency.clone(),
        );
        let keys_generation = Gauge::default();
        registry.register(
            "keys_generation",
            "Version of the key store: increases with every key change",
            keys_generation.clone(),
        );
        let key_age = Family::<KeySetLabels, FloatGauge>::default();
        registry.register(
            "key_set_age_seconds",
            "Seconds since the key set's keys were loaded",
            key_age.clone(),
        );
        let key_loaded_at = Family::<KeySetLabels, FloatGauge>::default();
        registry.register(
            "key_set_loaded_timestamp_seconds",
            "Unix time the key set's keys were loaded",
            key_loaded_at.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Cache lookups by cache and result (hit, miss)",
            cache.clone(),
        );
        let fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "key_fetches",
            "Fetches of key material by source (jwks, qstash_api, directory) and outcome",
            fetches.clone(),
        );
        let tls_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tls_reloads",
            "Reloads of the TLS certificate files by outcome (ok, error)",
            tls_reloads.clone(),
        );
        let key_changes = Counter::default();
        registry.register(
            "key_changes",
            "Key set changes applied by the key refresher (directory, keys API, rotation)",
            key_changes.clone(),
        );
        let key_set_version = Family::<KeySetLabels, Gauge>::default();
        registry.register(
            "key_set_version",
            "Version of the key set's keys: +1 on every change",
            key_set_version.clone(),
        );
        let families = Families {
            registry,
            key_changes,
            key_set_version,
            calls,
            latency,
            keys_generation,
            key_age,
            key_loaded_at,
            cache,
            fetches,
            tls_reloads,
        };
        Self {
            families: Arc::new(families),
        }
    }

    /// Counts one finished call. `decision` is `allow`/`deny` for a decision,
    /// `error` for a gRPC error (then `reason` is the status code name), and
    /// `none` for calls that decide nothing (health, reflection).
    pub(crate) fn record_call(
        &self,
        rpc: &'static str,
        decision: &'static str,
        reason: &'static str,
        key_slot: &'static str,
        elapsed: Duration,
    ) {
        self.families
            .calls
            .get_or_create(&CallLabels {
                rpc,
                decision,
                reason,
                key_slot,
            })
            .inc();
        self.families
            .latency
            .get_or_create(&RpcLabels { rpc })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a cache lookup, e.g. `cache_lookup("jwks", true)` for a hit.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.families
            .cache
            .get_or_create(&CacheLabels { cache, result })
            .inc();
    }

    /// Counts a fetch of a JWKS document.
    pub fn jwks_fetch(&self, outcome: FetchOutcome) {
        self.fetch("jwks", outcome);
    }

    fn fetch(&self, source: &'static str, outcome: FetchOutcome) {
        self.families
            .fetches
            .get_or_create(&FetchLabels {
                source,
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Counts a TLS certificate reload attempt.
    pub(crate) fn tls_reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.families
            .tls_reloads
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// Sets the key gauges from the store (called at each scrape, so ages are current).
    fn observe_keys(&self, state: &AppState, now: SystemTime) {
        let generation = *state.keys.subscribe().borrow();
        self.families
            .keys_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
        self.families.key_age.clear();
        self.families.key_loaded_at.clear();
        let counters = state.key_refresher.counters();
        catch_up(&self.families.key_changes, counters.key_changes);
        for (source, outcome, total) in [
            ("directory", FetchOutcome::Ok, counters.directory_reads),
            (
                "directory",
                FetchOutcome::Error,
                counters.directory_failures,
            ),
            ("qstash_api", FetchOutcome::Ok, counters.api_calls),
            ("qstash_api", FetchOutcome::Error, counters.api_failures),
        ] {
            if total > 0 {
                let labels = FetchLabels {
                    source,
                    outcome: outcome.as_str(),
                };
                catch_up(&self.families.fetches.get_or_create(&labels), total);
            }
        }
        self.families.key_set_version.clear();
        for row in state.key_refresher.status("", now).unwrap_or_default() {
            let labels = KeySetLabels {
                key_set: row.key_set,
                source: row.source.as_str(),
            };
            let version = i64::try_from(row.version).unwrap_or(i64::MAX);
            let gauge = self.families.key_set_version.get_or_create(&labels);
            gauge.set(gauge.get().max(version));
        }
        for (name, set) in state.keys.snapshot().sets() {
            if !set.has_keys() {
                continue;
            }
            let labels = KeySetLabels {
                key_set: name.to_owned(),
                source: set.source.as_str(),
            };
            let age = now.duration_since(set.loaded_at).unwrap_or_default();
            let loaded = set
                .loaded_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            self.families
                .key_age
                .get_or_create(&labels)
                .set(age.as_secs_f64());
            self.families
                .key_loaded_at
                .get_or_create(&labels)
                .set(loaded.as_secs_f64());
        }
    }

    /// The Prometheus text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.families.registry);
        out
    }
}

/// Raises `counter` to `total` (a count kept elsewhere; never decreases).
fn catch_up(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

async fn scrape(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state.metrics.observe_keys(&state, SystemTime::now());
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn livez() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if crate::server::authorizer_serving(&state) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no signing keys, or keys stale\n",
        )
    }
}

/// Serves `/metrics`, `/livez` and `/readyz` (plaintext HTTP/1.1) until
/// `shutdown` resolves. `/readyz` answers 200 exactly when the
/// `signet.v1.Authorizer` health status is SERVING, so probes work even
/// when the gRPC port speaks TLS.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_exported_with_their_labels() {
        let m = Metrics::new();
        m.record_call(
            "signet.v1.Authorizer/VerifySignature",
            "allow",
            "ok",
            "current",
            Duration::from_micros(80),
        );
        m.cache_lookup("jwks", true);
        m.jwks_fetch(FetchOutcome::Error);
        let text = m.encode();
        for needle in [
            r#"signet_calls_total{rpc="signet.v1.Authorizer/VerifySignature",decision="allow",reason="ok",key_slot="current"} 1"#,
            r#"signet_call_duration_seconds_count{rpc="signet.v1.Authorizer/VerifySignature"} 1"#,
            r#"signet_cache_lookups_total{cache="jwks",result="hit"} 1"#,
            r#"signet_key_fetches_total{source="jwks",outcome="error"} 1"#,
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
    }
}
