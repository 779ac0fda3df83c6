use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::{
    keys::{JwksConfig, JwtKey},
    secret::Secret,
};

const NOW: u64 = 1_800_000_000;
const RSA_PUB: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-1.pub.pem");
const RSA_KEY: &[u8] = include_bytes!("../../tests/fixtures/jwt/rsa-1.key.pem");

fn jwks() -> Arc<JwksCache> {
    let d = Duration::from_secs(1);
    Arc::new(
        JwksCache::new(JwksConfig {
            fetch_timeout: d,
            max_response_bytes: 1024,
            default_ttl: d,
            min_ttl: d,
            max_ttl: d,
            refetch_cooldown: d,
            max_staleness: d,
            prefetch_timeout: d,
        })
        .unwrap(),
    )
}

fn bearer(cache: DecisionCache) -> (Bearer, Arc<Policy>) {
    let issuer = Arc::new(Issuer {
        name: "t".into(),
        issuer: "https://t.example".into(),
        audiences: vec![],
        algorithms: vec![Algorithm::RS256, Algorithm::HS256],
        leeway: 5,
        required_claims: vec!["exp".into()],
        scope_claim: "scope".into(),
        static_keys: vec![
            JwtKey::from_pem(Some("rsa".into()), Algorithm::RS256, RSA_PUB).unwrap(),
            JwtKey::from_secret(Some("hs".into()), Algorithm::HS256, &Secret::new("s3cret"))
                .unwrap(),
        ],
        jwks: None,
    });
    let policy = Policy {
        issuers: vec![issuer],
        require: Require::Bearer,
        ..Policy::signature_only("p")
    };
    let b = Bearer::new(vec![policy], jwks(), cache);
    let p = Arc::clone(b.policy("p").unwrap());
    (b, p)
}

fn rs256(kid: &str, exp: u64) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    let claims = json!({"iss": "https://t.example", "sub": "u", "exp": exp});
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(RSA_KEY).unwrap()).unwrap()
}

#[tokio::test]
async fn leeway_applies_at_the_given_clock() {
    let (b, p) = bearer(DecisionCache::new(0, Duration::ZERO));
    let t = rs256("rsa", NOW);
    assert_eq!(
        b.authorize(&p, &t, NOW + 4).await.unwrap().reason,
        Reason::Ok
    );
    assert_eq!(
        b.authorize(&p, &t, NOW + 5).await.unwrap().reason,
        Reason::Expired
    );
}

#[tokio::test]
async fn rsa_public_key_as_hmac_secret_is_a_bad_signature() {
    let (b, p) = bearer(DecisionCache::new(0, Duration::ZERO));
    for kid in ["rsa", "hs"] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid.into());
        let claims = json!({"iss": "https://t.example", "sub": "u", "exp": NOW + 60});
        let t =
            jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(RSA_PUB).unwrap()).unwrap();
        let d = b.authorize(&p, &t, NOW).await.unwrap();
        assert_eq!(d.reason, Reason::BadSignature, "kid {kid}");
        assert!(d.claims.is_none());
    }
}

#[tokio::test]
async fn cached_decisions_never_outlive_the_credential() {
    let (b, p) = bearer(DecisionCache::new(100, Duration::from_secs(3600)));
    let t = rs256("rsa", NOW + 10);
    assert!(b.cached(&p, &t, NOW).is_none());
    assert!(b.authorize(&p, &t, NOW).await.unwrap().is_allowed());
    assert!(b.cached(&p, &t, NOW + 9).is_some());
    assert!(b.cached(&p, &t, NOW + 10).is_none(), "expired at exp");
    // Denials are not cached.
    let other = rs256("nope", NOW + 10);
    assert_eq!(
        b.authorize(&p, &other, NOW).await.unwrap().reason,
        Reason::UnknownKeyId
    );
    assert!(b.cached(&p, &other, NOW).is_none());
}

#[tokio::test]
async fn cached_decisions_never_outlive_the_configured_ttl() {
    let (b, p) = bearer(DecisionCache::new(100, Duration::from_millis(4500)));
    let t = rs256("rsa", NOW + 3600);
    assert!(b.authorize(&p, &t, NOW).await.unwrap().is_allowed());
    assert!(b.cached(&p, &t, NOW + 4).is_some());
    assert!(
        b.cached(&p, &t, NOW + 5).is_none(),
        "4.5 s rounds up to 5 s"
    );
}

#[test]
fn cache_keys_depend_on_policy_and_never_hold_the_token() {
    let a = cache_key("p", "tok");
    assert_ne!(a, cache_key("q", "tok"));
    assert_ne!(cache_key("p", "tok"), cache_key("pt", "ok"));
    assert!(!a.windows(3).any(|w| w == b"tok"));
}
