//! In-process bearer checks: JWT verification per family (decision cache
//! off), a cached decision, and a whole `Authorize` call through the tonic
//! service (bearer policy, cached credential).
//!
//! `cargo bench --bench bearer`

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, SystemTime},
};

use criterion::Criterion;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use signet::{
    bearer::{Bearer, DecisionCache, Issuer, Policy, Require, header},
    config::{KeyRefreshConfig, VerifyLimits},
    keys::{JwksCache, JwksConfig, JwtKey, KeyRefresher, KeySnapshot, KeyStore},
    metrics::Metrics,
    proto::{AuthorizeRequest, HttpHeader, authorizer_server::Authorizer},
    server::{AppState, AuthorizerService},
};

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://bench.example";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn bearer(cache: DecisionCache) -> Bearer {
    let key = |kid: &str, alg, file: &str| {
        JwtKey::from_pem(Some(kid.into()), alg, &fixture(file)).unwrap()
    };
    let issuer = Arc::new(Issuer {
        name: "bench".into(),
        issuer: ISS.into(),
        audiences: vec!["api".into()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        leeway: 0,
        required_claims: vec!["exp".into()],
        scope_claim: "scope".into(),
        static_keys: vec![
            key("rsa", Algorithm::RS256, "rsa-1.pub.pem"),
            key("ec", Algorithm::ES256, "ec-p256.pub.pem"),
            key("ed", Algorithm::EdDSA, "ed25519.pub.pem"),
        ],
        jwks: None,
    });
    let d = Duration::from_secs(1);
    let jwks = JwksCache::new(JwksConfig {
        fetch_timeout: d,
        max_response_bytes: 1024,
        default_ttl: d,
        min_ttl: d,
        max_ttl: d,
        refetch_cooldown: d,
        max_staleness: d,
        prefetch_timeout: d,
    })
    .unwrap();
    let policy = Policy {
        require: Require::Bearer,
        issuers: vec![issuer],
        required_scopes: vec!["read".into()],
        ..Policy::signature_only("bench")
    };
    Bearer::new(vec![policy], Arc::new(jwks), cache)
}

fn token(alg: Algorithm, kid: &str, file: &str) -> String {
    let pem = fixture(file);
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        _ => EncodingKey::from_rsa_pem(&pem),
    }
    .unwrap();
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    let claims = json!({
        "iss": ISS, "sub": "user-1", "aud": "api", "scope": "read write",
        "exp": NOW + 3600, "iat": NOW,
    });
    format!(
        "Bearer {}",
        jsonwebtoken::encode(&h, &claims, &key).unwrap()
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));

    let uncached = bearer(DecisionCache::new(0, Duration::ZERO));
    let policy = Arc::clone(uncached.policy("bench").unwrap());
    let mut group = c.benchmark_group("jwt_verify");
    for (name, alg, kid, file) in [
        ("RS256", Algorithm::RS256, "rsa", "rsa-1.key.pem"),
        ("ES256", Algorithm::ES256, "ec", "ec-p256.key.pem"),
        ("EdDSA", Algorithm::EdDSA, "ed", "ed25519.key.pem"),
    ] {
        let t = token(alg, kid, file);
        assert!(
            rt.block_on(uncached.authorize(&policy, &t, NOW))
                .unwrap()
                .is_allowed()
        );
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(uncached.authorize(&policy, black_box(&t), NOW)))
        });
    }
    group.finish();

    let cached = bearer(DecisionCache::new(10_000, Duration::from_secs(60)));
    let policy = Arc::clone(cached.policy("bench").unwrap());
    let t = token(Algorithm::RS256, "rsa", "rsa-1.key.pem");
    assert!(
        rt.block_on(cached.authorize(&policy, &t, NOW))
            .unwrap()
            .is_allowed()
    );
    let mut group = c.benchmark_group("cached_decision");
    group.bench_function("header_and_lookup", |b| {
        b.iter(|| {
            let token = header::credential(black_box(&t)).unwrap();
            black_box(cached.cached(&policy, token, NOW)).unwrap()
        })
    });
    group.bench_function("authorize_bearer_async", |b| {
        b.iter(|| rt.block_on(cached.authorize(&policy, black_box(&t), NOW)))
    });
    group.finish();

    let keys = Arc::new(KeyStore::new(KeySnapshot::default()));
    let no_refresh = KeyRefreshConfig {
        directory: None,
        reread_interval: Duration::from_secs(30),
        max_staleness: Duration::from_secs(3600),
        qstash_api: None,
    };
    let state = Arc::new(AppState {
        key_refresher: Arc::new(
            KeyRefresher::new(Arc::clone(&keys), &no_refresh, SystemTime::now()).unwrap(),
        ),
        keys,
        limits: VerifyLimits::default(),
        admin: None,
        metrics: Metrics::new(),
        bearer: cached,
    });
    let service = AuthorizerService::new(state);
    let request = AuthorizeRequest {
        method: "POST".into(),
        url: "https://svc.example/api".into(),
        headers: vec![
            HttpHeader {
                name: "content-type".into(),
                value: "application/json".into(),
            },
            HttpHeader {
                name: "Authorization".into(),
                value: t.clone(),
            },
        ],
        body: Some(b"{}".to_vec().into()),
        policy: "bench".into(),
        ..Default::default()
    };
    let mut group = c.benchmark_group("authorize");
    group.bench_function("bearer_policy_cached", |b| {
        b.iter(|| {
            rt.block_on(service.authorize(tonic::Request::new(black_box(request.clone()))))
                .unwrap()
        })
    });
    group.finish();
    c.final_summary();
}
