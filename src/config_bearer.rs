//! Configuration of bearer checks: `[issuers.NAME]`, `[policies.NAME]`,
//! `[jwks]` and `[decision_cache]`, validated into a [`Bearer`].

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, jwk::Jwk};
use serde::Deserialize;

use crate::{
    bearer::{Bearer, DecisionCache, Issuer, Policy, ReplayGuard, Require, api_key::ApiKey},
    config::{ConfigError, Settings},
    keys::{JwksCache, JwksConfig, JwksLocation, JwtKey, algorithm, is_key_url},
    replay::ReplayStore,
    secret::Secret,
};

/// `[issuers.NAME]`: a JWT issuer.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values; empty = not checked.
    pub audiences: Vec<String>,
    /// Algorithm allowlist (`RS256`, `PS256`, `ES256`, `EdDSA`, `HS256`…).
    pub algorithms: Vec<String>,
    /// Leeway on `exp`/`nbf`, in seconds.
    pub leeway_secs: u64,
    /// Claims that must be present.
    pub required_claims: Vec<String>,
    /// The claim holding scopes.
    pub scope_claim: String,
    /// A JWKS URL.
    pub jwks_url: Option<String>,
    /// An OIDC discovery URL (the issuer's base URL or the full
    /// `/.well-known/openid-configuration` URL).
    pub discovery_url: Option<String>,
    /// Static keys.
    pub keys: Vec<StaticKeySettings>,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            audiences: Vec::new(),
            algorithms: Vec::new(),
            leeway_secs: 0,
            required_claims: vec!["exp".into()],
            scope_claim: "scope".into(),
            jwks_url: None,
            discovery_url: None,
            keys: Vec::new(),
        }
    }
}

/// One static key of an issuer: exactly one of `pem`, `pem_file`, `jwk`, `secret`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticKeySettings {
    /// Key id matched against the token's `kid`.
    pub kid: Option<String>,
    /// The algorithm the key is for; the key verifies only that family.
    pub algorithm: String,
    /// A PEM public key.
    pub pem: Option<String>,
    /// A file holding a PEM public key.
    pub pem_file: Option<PathBuf>,
    /// A public JWK (JSON).
    pub jwk: Option<String>,
    /// An HMAC secret (HS*).
    pub secret: Option<Secret>,
}

/// `[policies.NAME]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySettings {
    /// `signature`, `bearer`, `both` or `either`.
    pub require: String,
    /// Key set of the signature check (empty = default).
    pub key_set: String,
    /// Compare the signature's `sub` with the request url.
    pub check_url: bool,
    /// Names of accepted `[issuers.NAME]`.
    pub issuers: Vec<String>,
    /// Scopes every credential must carry.
    pub required_scopes: Vec<String>,
    /// Accepted API keys.
    pub api_keys: Vec<ApiKeySettings>,
    /// Replay protection of the signature: `off`, `memory` or `redis`.
    pub replay: String,
    /// When the replay store cannot answer: `deny` (no decision) or `allow`.
    pub replay_unavailable: String,
    /// Public base URL of the routes (Envoy: + request path = checked url).
    pub public_base_url: String,
    /// Strip `authorization` before forwarding (Envoy).
    pub remove_authorization: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            require: "signature".into(),
            key_set: String::new(),
            check_url: false,
            issuers: Vec::new(),
            required_scopes: Vec::new(),
            api_keys: Vec::new(),
            replay: "off".into(),
            replay_unavailable: "deny".into(),
            public_base_url: String::new(),
            remove_authorization: false,
        }
    }
}

/// `[replay]`: where replay protection keeps seen token ids.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplaySettings {
    /// Redis for `replay = "redis"` policies: `redis://[:password@]host:port/db`.
    pub redis_url: Option<Secret>,
    /// Upper bound on one Redis check, connecting included.
    pub redis_timeout: String,
    /// Most token ids the in-memory store keeps (per replica).
    pub max_entries: u64,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_timeout: "250ms".into(),
            max_entries: 1_000_000,
        }
    }
}

/// An API key as configured: its SHA-256 (`signet hash-token`), never the key.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// The principal it stands for.
    pub subject: String,
    /// Scopes granted.
    pub scopes: Vec<String>,
}

/// `[jwks]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwksSettings {
    /// Per-request timeout.
    pub fetch_timeout: String,
    /// Largest JWKS / discovery document, in bytes.
    pub max_response_bytes: usize,
    /// TTL without `Cache-Control: max-age`.
    pub default_ttl: String,
    /// Lower bound on `max-age`.
    pub min_ttl: String,
    /// Upper bound on `max-age`.
    pub max_ttl: String,
    /// Least time between refetches for unknown `kid`s.
    pub refetch_cooldown: String,
    /// How long last-known-good keys serve while the issuer is down.
    pub max_staleness: String,
    /// How long readiness waits for the first load.
    pub prefetch_timeout: String,
}

impl Default for JwksSettings {
    fn default() -> Self {
        Self {
            fetch_timeout: "5s".into(),
            max_response_bytes: 1024 * 1024,
            default_ttl: "5m".into(),
            min_ttl: "30s".into(),
            max_ttl: "24h".into(),
            refetch_cooldown: "30s".into(),
            max_staleness: "24h".into(),
            prefetch_timeout: "10s".into(),
        }
    }
}

/// `[decision_cache]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionCacheSettings {
    /// Most decisions kept; 0 disables the cache.
    pub max_entries: u64,
    /// Longest an entry lives (never past the credential's `exp`).
    pub ttl: String,
}

impl Default for DecisionCacheSettings {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            ttl: "60s".into(),
        }
    }
}

fn duration(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Duration {
    humantime::parse_duration(value).unwrap_or_else(|e| {
        errors.push(ConfigError::new(
            key,
            format!("not a duration ({e}); e.g. \"30s\""),
        ));
        Duration::ZERO
    })
}

/// JWKS over plain http only to this machine (tests, sidecars): anything
/// else must be https.
fn remote_url(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Option<reqwest::Url> {
    let url = match reqwest::Url::parse(value) {
        Ok(u) => u,
        Err(e) => {
            errors.push(ConfigError::new(key, format!("not a URL ({e})")));
            return None;
        }
    };
    if is_key_url(&url) {
        Some(url)
    } else {
        errors.push(ConfigError::new(
            key,
            "must be an https URL (plain http only for loopback)",
        ));
        None
    }
}

fn static_key(key: &str, k: &StaticKeySettings, errors: &mut Vec<ConfigError>) -> Option<JwtKey> {
    let alg: Algorithm = match algorithm(&k.algorithm) {
        Ok(a) => a,
        Err(e) => {
            errors.push(ConfigError::new(format!("{key}.algorithm"), e.to_string()));
            return None;
        }
    };
    let given = [
        k.pem.is_some(),
        k.pem_file.is_some(),
        k.jwk.is_some(),
        k.secret.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        errors.push(ConfigError::new(
            key,
            "set exactly one of pem, pem_file, jwk, secret",
        ));
        return None;
    }
    let built = if let Some(pem) = &k.pem {
        JwtKey::from_pem(k.kid.clone(), alg, pem.as_bytes())
    } else if let Some(path) = &k.pem_file {
        match std::fs::read(path) {
            Ok(pem) => JwtKey::from_pem(k.kid.clone(), alg, &pem),
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{key}.pem_file"),
                    format!("cannot read {}: {e}", path.display()),
                ));
                return None;
            }
        }
    } else if let Some(jwk) = &k.jwk {
        match serde_json::from_str::<Jwk>(jwk) {
            Ok(mut jwk) => {
                if jwk.common.key_id.is_none() {
                    jwk.common.key_id.clone_from(&k.kid);
                }
                JwtKey::from_jwk(&jwk, Some(alg))
            }
            Err(e) => {
                errors.push(ConfigError::new(
                    format!("{key}.jwk"),
                    format!("not a JWK ({e})"),
                ));
                return None;
            }
        }
    } else {
        JwtKey::from_secret(k.kid.clone(), alg, k.secret.as_ref()?)
    };
    built
        .map_err(|e| errors.push(ConfigError::new(key, e.to_string())))
        .ok()
}

fn issuer(
    name: &str,
    s: &IssuerSettings,
    jwks: &mut JwksCache,
    errors: &mut Vec<ConfigError>,
) -> Issuer {
    let key = format!("issuers.{name}");
    if s.issuer.is_empty() {
        errors.push(ConfigError::new(format!("{key}.issuer"), "missing"));
    }
    let mut algorithms = Vec::new();
    for a in &s.algorithms {
        match algorithm(a) {
            Ok(a) => algorithms.push(a),
            Err(e) => errors.push(ConfigError::new(format!("{key}.algorithms"), e.to_string())),
        }
    }
    if s.algorithms.is_empty() {
        errors.push(ConfigError::new(
            format!("{key}.algorithms"),
            "missing: list the algorithms this issuer signs with",
        ));
    }
    let static_keys: Vec<_> = s
        .keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| static_key(&format!("{key}.keys[{i}]"), k, errors))
        .collect();
    let location = match (&s.jwks_url, &s.discovery_url) {
        (Some(_), Some(_)) => {
            errors.push(ConfigError::new(
                key.clone(),
                "set jwks_url or discovery_url, not both",
            ));
            None
        }
        (Some(u), None) => remote_url(&format!("{key}.jwks_url"), u, errors).map(JwksLocation::Url),
        (None, Some(u)) => {
            let full = if u.ends_with("/.well-known/openid-configuration") {
                u.clone()
            } else {
                format!(
                    "{}/.well-known/openid-configuration",
                    u.trim_end_matches('/')
                )
            };
            remote_url(&format!("{key}.discovery_url"), &full, errors).map(|url| {
                JwksLocation::Discovery {
                    url,
                    issuer: s.issuer.clone(),
                }
            })
        }
        (None, None) => None,
    };
    if s.keys.is_empty() && s.jwks_url.is_none() && s.discovery_url.is_none() {
        errors.push(ConfigError::new(
            key.clone(),
            "no keys: set keys, jwks_url or discovery_url",
        ));
    }
    Issuer {
        name: name.to_owned(),
        issuer: s.issuer.clone(),
        audiences: s.audiences.clone(),
        algorithms,
        leeway: s.leeway_secs,
        required_claims: s.required_claims.clone(),
        scope_claim: s.scope_claim.clone(),
        static_keys,
        jwks: location.map(|l| jwks.add(name, l)),
    }
}

/// The process's replay stores, made once and shared by the policies.
struct ReplayStores {
    memory: ReplayStore,
    redis: Option<ReplayStore>,
}

impl ReplayStores {
    fn new(s: &ReplaySettings, errors: &mut Vec<ConfigError>) -> Self {
        let timeout = duration("replay.redis_timeout", &s.redis_timeout, errors);
        let redis = s.redis_url.as_ref().and_then(|url| {
            ReplayStore::redis(url, timeout)
                .map_err(|_| {
                    errors.push(ConfigError::new(
                        "replay.redis_url",
                        "not a redis:// or rediss:// URL",
                    ))
                })
                .ok()
        });
        if s.max_entries == 0 {
            errors.push(ConfigError::new("replay.max_entries", "must be at least 1"));
        }
        Self {
            memory: ReplayStore::memory(s.max_entries),
            redis,
        }
    }

    fn guard(
        &self,
        key: &str,
        s: &PolicySettings,
        require: Require,
        errors: &mut Vec<ConfigError>,
    ) -> Option<ReplayGuard> {
        let allow_when_unavailable = match s.replay_unavailable.as_str() {
            "deny" => false,
            "allow" => true,
            other => {
                errors.push(ConfigError::new(
                    format!("{key}.replay_unavailable"),
                    format!("must be deny or allow, not {other:?}"),
                ));
                false
            }
        };
        let store = match s.replay.as_str() {
            "off" => return None,
            "memory" => self.memory.clone(),
            "redis" => match &self.redis {
                Some(store) => store.clone(),
                None => {
                    errors.push(ConfigError::new(
                        format!("{key}.replay"),
                        "is redis but replay.redis_url is not set",
                    ));
                    return None;
                }
            },
            other => {
                errors.push(ConfigError::new(
                    format!("{key}.replay"),
                    format!("must be off, memory or redis, not {other:?}"),
                ));
                return None;
            }
        };
        if !require.wants_signature() {
            errors.push(ConfigError::new(
                format!("{key}.replay"),
                "protects the QStash signature, but this policy does not check one",
            ));
        }
        Some(ReplayGuard {
            store,
            allow_when_unavailable,
        })
    }
}

fn policy(
    name: &str,
    s: &PolicySettings,
    issuers: &BTreeMap<String, Arc<Issuer>>,
    known_sets: &dyn Fn(&str) -> bool,
    replays: &ReplayStores,
    errors: &mut Vec<ConfigError>,
) -> Policy {
    let key = format!("policies.{name}");
    let require = match s.require.as_str() {
        "signature" => Require::Signature,
        "bearer" => Require::Bearer,
        "both" => Require::Both,
        "either" => Require::Either,
        other => {
            errors.push(ConfigError::new(
                format!("{key}.require"),
                format!("must be signature, bearer, both or either, not {other:?}"),
            ));
            Require::Signature
        }
    };
    let replay = replays.guard(&key, s, require, errors);
    if !s.key_set.is_empty() && !known_sets(&s.key_set) {
        errors.push(ConfigError::new(
            format!("{key}.key_set"),
            format!("no key set {:?} (keys.sets.NAME)", s.key_set),
        ));
    }
    let mut policy_issuers = Vec::new();
    for i in &s.issuers {
        match issuers.get(i) {
            Some(i) => policy_issuers.push(Arc::clone(i)),
            None => errors.push(ConfigError::new(
                format!("{key}.issuers"),
                format!("no issuer {i:?} (issuers.NAME)"),
            )),
        }
    }
    let mut api_keys = Vec::new();
    for (n, k) in s.api_keys.iter().enumerate() {
        match crate::config::sha256_hex(&k.sha256) {
            Some(digest) => api_keys.push(ApiKey {
                digest,
                subject: k.subject.clone(),
                scopes: k.scopes.clone(),
            }),
            None => errors.push(ConfigError::new(
                format!("{key}.api_keys[{n}].sha256"),
                "must be 64 hex digits (signet hash-token prints it)",
            )),
        }
    }
    let public_base_url = base_url(&format!("{key}.public_base_url"), s, errors);
    if require.wants_bearer() && policy_issuers.is_empty() && api_keys.is_empty() {
        errors.push(ConfigError::new(
            key,
            "requires a bearer credential but accepts no issuer and no API key",
        ));
    }
    Policy {
        public_base_url,
        remove_authorization: s.remove_authorization,
        name: name.to_owned(),
        require,
        key_set: s.key_set.clone(),
        check_url: s.check_url,
        issuers: policy_issuers,
        api_keys,
        required_scopes: s.required_scopes.clone(),
        replay,
    }
}

/// `public_base_url`: an absolute http(s) URL without query or fragment,
/// meaningful only with `check_url`; returned without its trailing `/`.
fn base_url(key: &str, s: &PolicySettings, errors: &mut Vec<ConfigError>) -> String {
    if s.public_base_url.is_empty() {
        return String::new();
    }
    let problem = match reqwest::Url::parse(&s.public_base_url) {
        Err(e) => Some(format!("not a URL ({e})")),
        Ok(u) if !matches!(u.scheme(), "http" | "https") || !u.has_host() => {
            Some("must be an http(s) URL with a host".to_owned())
        }
        Ok(u) if u.query().is_some() || u.fragment().is_some() => {
            Some("must not have a query or fragment".to_owned())
        }
        Ok(_) if !s.check_url => Some("is only used with check_url = true".to_owned()),
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        errors.push(ConfigError::new(key, problem));
    }
    s.public_base_url.trim_end_matches('/').to_owned()
}

/// Builds the bearer side of the configuration, reporting every problem.
pub fn build(settings: &Settings) -> Result<Bearer, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let j = &settings.jwks;
    let config = JwksConfig {
        fetch_timeout: duration("jwks.fetch_timeout", &j.fetch_timeout, &mut errors),
        max_response_bytes: j.max_response_bytes,
        default_ttl: duration("jwks.default_ttl", &j.default_ttl, &mut errors),
        min_ttl: duration("jwks.min_ttl", &j.min_ttl, &mut errors),
        max_ttl: duration("jwks.max_ttl", &j.max_ttl, &mut errors),
        refetch_cooldown: duration("jwks.refetch_cooldown", &j.refetch_cooldown, &mut errors),
        max_staleness: duration("jwks.max_staleness", &j.max_staleness, &mut errors),
        prefetch_timeout: duration("jwks.prefetch_timeout", &j.prefetch_timeout, &mut errors),
    };
    if config.min_ttl > config.max_ttl {
        errors.push(ConfigError::new(
            "jwks.min_ttl",
            "is larger than jwks.max_ttl",
        ));
    }
    let cache_ttl = duration(
        "decision_cache.ttl",
        &settings.decision_cache.ttl,
        &mut errors,
    );
    let mut jwks = match JwksCache::new(config) {
        Ok(c) => c,
        Err(e) => {
            errors.push(ConfigError::new("jwks", format!("HTTP client: {e}")));
            return Err(errors);
        }
    };
    let issuers: BTreeMap<_, _> = settings
        .issuers
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                Arc::new(issuer(name, s, &mut jwks, &mut errors)),
            )
        })
        .collect();
    let known_sets =
        |name: &str| settings.keys.sets.contains_key(name) || name == crate::keys::DEFAULT_KEY_SET;
    let replay = ReplayStores::new(&settings.replay, &mut errors);
    let policies = settings
        .policies
        .iter()
        .map(|(name, s)| policy(name, s, &issuers, &known_sets, &replay, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Bearer::new(
        policies,
        Arc::new(jwks),
        DecisionCache::new(settings.decision_cache.max_entries, cache_ttl),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn settings(toml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, toml).unwrap();
        config::load(Some(&path), Vec::new()).unwrap()
    }

    #[test]
    fn no_policy_means_signature_only() {
        let bearer = build(&settings("")).unwrap();
        let p = bearer.policy("").unwrap();
        assert_eq!(p.require, Require::Signature);
        assert!(p.issuers.is_empty() && p.api_keys.is_empty());
        assert!(bearer.policy("other").is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let errors = build(&settings(
            r#"
[issuers.a]
algorithms = ["none", "RS256"]
jwks_url = "http://idp.example/jwks"
keys = [{ algorithm = "HS256", pem = "x", secret = "y" }]

[issuers.b]
issuer = "https://b"
algorithms = ["RS256"]

[policies.p]
require = "sometimes"
issuers = ["zzz"]
key_set = "nope"
api_keys = [{ sha256 = "abc", subject = "s" }]
public_base_url = "https://svc.example/?q=1"

[policies.q]
require = "bearer"

[jwks]
refetch_cooldown = "soon"
"#,
        ))
        .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "jwks.refetch_cooldown",
                "issuers.a.issuer",
                "issuers.a.algorithms",
                "issuers.a.keys[0]",
                "issuers.a.jwks_url",
                "issuers.b",
                "policies.p.require",
                "policies.p.key_set",
                "policies.p.issuers",
                "policies.p.api_keys[0].sha256",
                "policies.p.public_base_url",
                "policies.q",
            ]
        );
        assert!(errors.iter().all(|e| !e.problem.contains("\"y\"")));
    }
}
