//! JWKS documents for JWT issuers, one cache per process.
//!
//! - prefetch at start (readiness waits for the first load or a timeout);
//! - a fresh copy lives in a moka cache for the document's TTL
//!   (`Cache-Control: max-age` within configured bounds) and is refreshed in
//!   the background before it runs out;
//! - a token with an unknown `kid` triggers a refetch: single-flight per
//!   source, at most one per cooldown, unknown kids negatively cached;
//! - when the issuer is down, the last-known-good keys are used up to a
//!   maximum staleness, after which signet answers UNAVAILABLE.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::Jwk;
use moka::Expiry;
use serde::Deserialize;
use serde_json::Value;
use tokio::{sync::Mutex, time::Instant};

use super::jwt_key::JwtKey;

/// How often the start-up prefetch retries a failing source.
const PREFETCH_RETRY: Duration = Duration::from_secs(1);

/// Index of a source in the [`JwksCache`].
pub type JwksSourceId = usize;

/// Where an issuer's keys are published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksLocation {
    /// A JWKS URL.
    Url(reqwest::Url),
    /// OIDC discovery: `<base>/.well-known/openid-configuration` names the
    /// `jwks_uri`; its `issuer` must equal the configured one.
    Discovery {
        /// The discovery document's URL.
        url: reqwest::Url,
        /// The `issuer` it must name.
        issuer: String,
    },
}

/// Fetch and cache tuning (`[jwks]`).
#[derive(Clone, Copy, Debug)]
pub struct JwksConfig {
    /// Per-request timeout.
    pub fetch_timeout: Duration,
    /// Largest document accepted.
    pub max_response_bytes: usize,
    /// TTL when the response has no `max-age`.
    pub default_ttl: Duration,
    /// Lower bound on a `max-age`.
    pub min_ttl: Duration,
    /// Upper bound on a `max-age`.
    pub max_ttl: Duration,
    /// Least time between two refetches for unknown kids (and between failed
    /// fetches); also how long an unknown kid stays negatively cached.
    pub refetch_cooldown: Duration,
    /// How long last-known-good keys are used while the issuer is down.
    pub max_staleness: Duration,
    /// How long readiness waits for the first load.
    pub prefetch_timeout: Duration,
}

/// One loaded document.
#[derive(Debug)]
pub struct LoadedKeys {
    /// The keys signet accepts from it.
    pub keys: Vec<JwtKey>,
    fetched_at: Instant,
    ttl: Duration,
}

impl LoadedKeys {
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid() == Some(kid))
    }
}

/// Why no keys could be produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Never loaded, or the last good copy is older than the maximum staleness.
    #[error("issuer keys unavailable")]
    Unavailable,
}

#[derive(Debug, Default)]
struct Flight {
    last_kid_refetch: Option<Instant>,
    last_failure: Option<Instant>,
}

#[derive(Debug)]
struct Source {
    name: String,
    location: JwksLocation,
    last_good: ArcSwapOption<LoadedKeys>,
    flight: Mutex<Flight>,
}

struct DocumentTtl;

impl Expiry<JwksSourceId, Arc<LoadedKeys>> for DocumentTtl {
    fn expire_after_create(
        &self,
        _key: &JwksSourceId,
        value: &Arc<LoadedKeys>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Every issuer's JWKS, for the whole process.
pub struct JwksCache {
    config: JwksConfig,
    client: reqwest::Client,
    sources: Vec<Source>,
    fresh: moka::sync::Cache<JwksSourceId, Arc<LoadedKeys>>,
    unknown_kids: moka::sync::Cache<(JwksSourceId, String), ()>,
    /// Set once the start-up prefetch finished or its timeout passed.
    settled: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("config", &self.config)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    #[error("status {0}")]
    Status(reqwest::StatusCode),
    #[error("response larger than the limit")]
    TooLarge,
    #[error(transparent)]
    Document(#[from] DocumentError),
}

/// Why a fetched JWKS or OIDC discovery document was refused.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON of the document's shape.
    #[error("not a JWKS / discovery document: {0}")]
    Json(#[from] serde_json::Error),
    /// The discovery document names another issuer than the configured one.
    #[error("discovery names issuer {0:?}")]
    IssuerMismatch(String),
    /// `jwks_uri` is not a URL signet fetches keys from (see [`is_key_url`]).
    #[error("jwks_uri is not an https URL (plain http only for loopback)")]
    BadJwksUri,
    /// The JWKS holds no key signet can use (all of a wrong type, or broken,
    /// or none at all).
    #[error("the JWKS holds no usable key")]
    NoUsableKeys,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<Value>,
}

/// True for a URL signet may fetch keys from: https, or plain http to this
/// machine (tests, sidecars). Anything else could be read or altered on the
/// way, and keys that arrive that way would let anyone sign.
pub fn is_key_url(url: &reqwest::Url) -> bool {
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// Parses an OIDC discovery document and returns its `jwks_uri`. The
/// document's `issuer` must be exactly `expected_issuer`, and the `jwks_uri`
/// must pass [`is_key_url`] (a discovery document fetched over https must not
/// send signet to fetch keys over plain http).
pub fn parse_discovery(body: &[u8], expected_issuer: &str) -> Result<reqwest::Url, DocumentError> {
    let doc: Discovery = serde_json::from_slice(body)?;
    if doc.issuer != expected_issuer {
        return Err(DocumentError::IssuerMismatch(doc.issuer));
    }
    reqwest::Url::parse(&doc.jwks_uri)
        .ok()
        .filter(is_key_url)
        .ok_or(DocumentError::BadJwksUri)
}

/// Parses a JWKS document (`{"keys": [...]}`) into the keys signet accepts
/// from it. An entry that is not a public key of a supported type, or whose
/// `alg` or curve disagrees with its type, is skipped rather than failing the
/// document, so one odd key does not take the issuer's other keys down;
/// symmetric (`oct`) keys are always skipped (see [`JwtKey::from_jwk`]).
/// A document left with no key at all is refused
/// ([`DocumentError::NoUsableKeys`]): as a failed fetch it never replaces
/// last-known-good keys, nor makes an issuer that never loaded count as
/// loaded.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<JwtKey>, DocumentError> {
    let doc: JwkSetDoc = serde_json::from_slice(body)?;
    let keys: Vec<JwtKey> = doc
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| JwtKey::from_jwk(&jwk, None).ok())
        .collect();
    if keys.is_empty() {
        return Err(DocumentError::NoUsableKeys);
    }
    Ok(keys)
}

/// `Cache-Control: max-age=N` → N seconds.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("max-age").then(|| {
            v.trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs)
        })?
    })
}

impl JwksCache {
    /// An empty cache; add sources with [`JwksCache::add`].
    pub fn new(config: JwksConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("signet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            config,
            client,
            sources: Vec::new(),
            fresh: moka::sync::Cache::builder()
                .expire_after(DocumentTtl)
                .build(),
            unknown_kids: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(config.refetch_cooldown.max(Duration::from_millis(1)))
                .build(),
            settled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Registers a source (at configuration time).
    pub fn add(&mut self, name: &str, location: JwksLocation) -> JwksSourceId {
        self.sources.push(Source {
            name: name.to_owned(),
            location,
            last_good: ArcSwapOption::empty(),
            flight: Mutex::new(Flight::default()),
        });
        self.sources.len() - 1
    }

    /// True when no source is configured.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The configured prefetch timeout.
    pub fn prefetch_timeout(&self) -> Duration {
        self.config.prefetch_timeout
    }

    /// Loads every source once, retrying a failing source every second
    /// (the failure cooldown does not apply here); the caller bounds the wait
    /// with [`JwksCache::prefetch_timeout`].
    pub async fn prefetch(&self) {
        for id in 0..self.sources.len() {
            loop {
                let mut flight = self.sources[id].flight.lock().await;
                if self.fresh.contains_key(&id)
                    || self.fetch_locked(id, &mut flight).await.is_some()
                {
                    break;
                }
                drop(flight);
                tokio::time::sleep(PREFETCH_RETRY).await;
            }
        }
    }

    /// Marks the start-up prefetch as over (done or timed out).
    pub fn settle(&self) {
        self.settled
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// True when no source is configured or the start-up prefetch is over:
    /// until then signet reports itself not ready.
    pub fn settled(&self) -> bool {
        self.is_empty() || self.settled.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps each source fresh in the background until the process ends.
    pub fn spawn_refresh(self: &Arc<Self>) {
        for id in 0..self.sources.len() {
            let cache = Arc::clone(self);
            tokio::spawn(async move {
                loop {
                    let wait = match cache.sources[id].last_good.load_full() {
                        Some(l) if cache.fresh.contains_key(&id) => {
                            (l.fetched_at + l.ttl).saturating_duration_since(Instant::now())
                        }
                        _ => cache.config.refetch_cooldown,
                    };
                    tokio::time::sleep(wait.max(Duration::from_secs(1))).await;
                    let _ = cache.refresh(id).await;
                }
            });
        }
    }

    /// The keys of source `id`, refetched (within limits) when `kid` names
    /// none of them.
    pub async fn keys(
        &self,
        id: JwksSourceId,
        kid: Option<&str>,
    ) -> Result<Arc<LoadedKeys>, JwksError> {
        let loaded = match self.fresh.get(&id) {
            Some(l) => l,
            None => self.refresh(id).await?,
        };
        let Some(kid) = kid else { return Ok(loaded) };
        if loaded.has_kid(kid) || self.unknown_kids.contains_key(&(id, kid.to_owned())) {
            return Ok(loaded);
        }
        let refetched = self.refetch_for_kid(id, kid).await.unwrap_or(loaded);
        if !refetched.has_kid(kid) {
            self.unknown_kids.insert((id, kid.to_owned()), ());
        }
        Ok(refetched)
    }

    async fn refetch_for_kid(&self, id: JwksSourceId, kid: &str) -> Option<Arc<LoadedKeys>> {
        let source = &self.sources[id];
        let mut flight = source.flight.lock().await;
        let current = source.last_good.load_full();
        if let Some(c) = current.as_ref().filter(|c| c.has_kid(kid)) {
            return Some(Arc::clone(c));
        }
        let now = Instant::now();
        if flight
            .last_kid_refetch
            .is_some_and(|t| now < t + self.config.refetch_cooldown)
        {
            return current;
        }
        flight.last_kid_refetch = Some(now);
        tracing::info!(issuer = %source.name, "unknown key id: refetching the JWKS");
        self.fetch_locked(id, &mut flight).await.or(current)
    }

    /// Fetches source `id` (single-flight). On failure the last-known-good
    /// copy is returned while it is within the maximum staleness.
    async fn refresh(&self, id: JwksSourceId) -> Result<Arc<LoadedKeys>, JwksError> {
        let source = &self.sources[id];
        let mut flight = source.flight.lock().await;
        if let Some(fresh) = self.fresh.get(&id) {
            return Ok(fresh);
        }
        let cooling = flight
            .last_failure
            .is_some_and(|t| Instant::now() < t + self.config.refetch_cooldown);
        let fetched = if cooling {
            None
        } else {
            self.fetch_locked(id, &mut flight).await
        };
        fetched
            .or_else(|| self.last_known_good(id))
            .ok_or(JwksError::Unavailable)
    }

    fn last_known_good(&self, id: JwksSourceId) -> Option<Arc<LoadedKeys>> {
        let lkg = self.sources[id].last_good.load_full()?;
        usable(lkg.fetched_at, Instant::now(), self.config.max_staleness).then_some(lkg)
    }

    async fn fetch_locked(&self, id: JwksSourceId, flight: &mut Flight) -> Option<Arc<LoadedKeys>> {
        let source = &self.sources[id];
        match self.fetch(&source.location).await {
            Ok((keys, ttl)) => {
                tracing::info!(issuer = %source.name, keys = keys.len(), ?ttl, "JWKS loaded");
                let loaded = Arc::new(LoadedKeys {
                    keys,
                    fetched_at: Instant::now(),
                    ttl,
                });
                source.last_good.store(Some(Arc::clone(&loaded)));
                self.fresh.insert(id, Arc::clone(&loaded));
                flight.last_failure = None;
                Some(loaded)
            }
            Err(e) => {
                tracing::warn!(issuer = %source.name, error = %e, "JWKS fetch failed; keeping the last known good keys");
                flight.last_failure = Some(Instant::now());
                None
            }
        }
    }

    async fn get(&self, url: reqwest::Url) -> Result<(Vec<u8>, Option<Duration>), FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        let limit = self.config.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(FetchError::TooLarge);
        }
        let age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, age))
    }

    async fn fetch(&self, location: &JwksLocation) -> Result<(Vec<JwtKey>, Duration), FetchError> {
        let jwks_url = match location {
            JwksLocation::Url(u) => u.clone(),
            JwksLocation::Discovery { url, issuer } => {
                let (body, _) = self.get(url.clone()).await?;
                parse_discovery(&body, issuer)?
            }
        };
        let (body, age) = self.get(jwks_url).await?;
        let keys = parse_jwks(&body)?;
        let c = &self.config;
        let ttl = age.map_or(c.default_ttl, |a| a.clamp(c.min_ttl, c.max_ttl));
        Ok((keys, ttl))
    }
}

/// Last-known-good keys are usable while younger than `max_staleness`.
fn usable(fetched_at: Instant, now: Instant, max_staleness: Duration) -> bool {
    now.saturating_duration_since(fetched_at) <= max_staleness
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age("MAX-AGE=\"60\", must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn discovery_names_the_issuer_and_a_key_url() {
        let doc = |iss: &str, uri: &str| format!(r#"{{"issuer":"{iss}","jwks_uri":"{uri}"}}"#);
        let iss = "https://idp.example";
        let url = parse_discovery(doc(iss, "https://idp.example/jwks").as_bytes(), iss).unwrap();
        assert_eq!(url.as_str(), "https://idp.example/jwks");
        assert!(parse_discovery(doc(iss, "http://127.0.0.1:8080/jwks").as_bytes(), iss).is_ok());
        assert!(matches!(
            parse_discovery(
                doc("https://other", "https://idp.example/jwks").as_bytes(),
                iss
            ),
            Err(DocumentError::IssuerMismatch(_))
        ));
        for uri in ["http://idp.example/jwks", "ftp://idp.example/jwks", "jwks"] {
            assert!(
                matches!(
                    parse_discovery(doc(iss, uri).as_bytes(), iss),
                    Err(DocumentError::BadJwksUri)
                ),
                "{uri}"
            );
        }
        assert!(matches!(
            parse_discovery(b"{}", iss),
            Err(DocumentError::Json(_))
        ));
    }

    #[test]
    fn jwks_keep_the_usable_keys_only() {
        let doc = br#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"hmac"},
            {"kty":"EC","crv":"P-256","kid":"ec","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"RSA","kid":"bad-alg","alg":"ES256","n":"sXch","e":"AQAB"},
            {"kty":"nonsense"}
        ]}"#;
        let keys = parse_jwks(doc).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid()).collect();
        assert_eq!(kids, [Some("ec")]);
        assert!(matches!(
            parse_jwks(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
            Err(DocumentError::NoUsableKeys)
        ));
        assert!(matches!(
            parse_jwks(br#"{"keys":[]}"#),
            Err(DocumentError::NoUsableKeys)
        ));
        assert!(parse_jwks(br#"{"keys":{}}"#).is_err());
        assert!(parse_jwks(b"").is_err());
    }

    #[test]
    fn staleness_is_bounded() {
        let t0 = Instant::now();
        let max = Duration::from_secs(60);
        assert!(usable(t0, t0 + max, max));
        assert!(!usable(t0, t0 + max + Duration::from_secs(1), max));
    }
}
