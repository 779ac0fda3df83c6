//! Properties of the decision cores. QStash signatures and bearer
//! credentials (JWTs and API keys) alike: verification never panics, any
//! single byte changed in a valid token (or signed body) invalidates it, and
//! only a fully valid credential is allowed, never with a non-OK reason.
//! `Authorize` combines the two and is OK only when every check its policy
//! (or a failure callback) requires passed.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use signet::{
    authorize,
    bearer::{self, Bearer, DecisionCache, Issuer, Policy, Require, api_key::ApiKey},
    keys::{JwksCache, JwksConfig, JwtKey, KeyPair, SigningKey},
    secret::Secret,
    verify::{Body, Reason, SignOptions, SignatureCheck, Verdict, sign, verify},
};

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://svc.example/hook";

fn keys() -> KeyPair {
    KeyPair {
        current: SigningKey::new(Secret::new("sig_propCurrent")).unwrap(),
        next: SigningKey::new(Secret::new("sig_propNext")).unwrap(),
    }
}

fn token(key: &SigningKey, body: &[u8]) -> String {
    sign(
        key,
        &SignOptions {
            iss: "Upstash",
            sub: URL,
            exp: NOW + 300,
            nbf: NOW,
            iat: NOW,
            jti: "jwt_p",
            body,
        },
    )
}

fn check<'a>(signature: &'a str, body: Body<'a>, url: &'a str) -> SignatureCheck<'a> {
    SignatureCheck {
        signature,
        body,
        url,
        clock_tolerance: 0,
        max_signature_bytes: 8192,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics_and_is_never_valid(signature in ".{0,600}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let v = verify(&check(&signature, Body::Raw(&body), URL), &keys(), NOW);
        prop_assert!(!v.is_valid());
        prop_assert!(v.key_slot.is_none());
    }

    #[test]
    fn jws_shaped_garbage_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,80}", 0..5)) {
        let signature = parts.join(".");
        let v = verify(&check(&signature, Body::Raw(b""), ""), &keys(), NOW);
        prop_assert!(!v.is_valid());
    }

    #[test]
    fn any_single_byte_change_to_the_token_invalidates_it(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        use_next in any::<bool>(),
        index in any::<proptest::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let keys = keys();
        let key = if use_next { &keys.next } else { &keys.current };
        let t = token(key, &body);
        prop_assert!(verify(&check(&t, Body::Raw(&body), URL), &keys, NOW).is_valid());
        let mut bytes = t.into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        if let Ok(changed) = String::from_utf8(bytes) {
            let v = verify(&check(&changed, Body::Raw(&body), URL), &keys, NOW);
            prop_assert!(!v.is_valid(), "byte {} changed and still valid", i);
        }
    }

    #[test]
    fn any_single_byte_change_to_the_body_invalidates_it(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        index in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let keys = keys();
        let t = token(&keys.current, &body);
        let mut changed = body.clone();
        let i = index.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        let raw = verify(&check(&t, Body::Raw(&changed), URL), &keys, NOW);
        prop_assert_eq!(raw.reason, Reason::BodyMismatch);
        let digest: [u8; 32] = Sha256::digest(&changed).into();
        let hashed = verify(&check(&t, Body::Sha256(&digest), URL), &keys, NOW);
        prop_assert_eq!(hashed, raw);
    }

    #[test]
    fn valid_only_when_the_reason_is_ok(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        sent_body in proptest::collection::vec(any::<u8>(), 0..64),
        now in (NOW - 600)..(NOW + 600),
        url in prop_oneof![Just(URL.to_string()), Just(String::new()), Just(format!("{URL}/"))],
    ) {
        let keys = keys();
        let t = token(&keys.current, &body);
        let v = verify(&check(&t, Body::Raw(&sent_body), &url), &keys, now);
        prop_assert_eq!(v.is_valid(), v.reason == Reason::Ok);
        prop_assert_eq!(v.key_slot.is_some(), v.is_valid());
        let expect_valid = body == sent_body && (NOW..NOW + 300).contains(&now) && url != format!("{URL}/");
        prop_assert_eq!(v.is_valid(), expect_valid, "{:?}", v.reason);
    }
}

// ---- bearer credentials ----

const ISS: &str = "https://props.example";
const HS_SECRET: &str = "props-hs256-secret-0123456789abcdef";
const API_KEY: &str = "sk_props_0123456789abcdef";
const RSA_PUB: &[u8] = include_bytes!("fixtures/jwt/rsa-1.pub.pem");
const RSA_KEY: &[u8] = include_bytes!("fixtures/jwt/rsa-1.key.pem");

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    })
}

/// A bearer policy accepting HS256 and RS256 tokens of `ISS` (static keys)
/// and `API_KEY`, and requiring `required_scopes`.
fn bearer(cache: DecisionCache, required_scopes: &[&str]) -> (Bearer, Arc<Policy>) {
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
    let issuer = Issuer {
        name: "props".into(),
        issuer: ISS.into(),
        audiences: vec!["orders-api".into()],
        algorithms: vec![Algorithm::HS256, Algorithm::RS256],
        leeway: 0,
        required_claims: vec!["exp".into()],
        scope_claim: "scope".into(),
        static_keys: vec![
            JwtKey::from_secret(Some("hs".into()), Algorithm::HS256, &Secret::new(HS_SECRET))
                .unwrap(),
            JwtKey::from_pem(Some("rsa".into()), Algorithm::RS256, RSA_PUB).unwrap(),
        ],
        jwks: None,
    };
    let policy = Policy {
        issuers: vec![Arc::new(issuer)],
        api_keys: vec![ApiKey {
            digest: Sha256::digest(API_KEY).into(),
            subject: "batch".into(),
            scopes: vec!["orders:read".into()],
        }],
        required_scopes: required_scopes.iter().map(|s| (*s).to_owned()).collect(),
        require: Require::Bearer,
        ..Policy::signature_only("props")
    };
    let b = Bearer::new(vec![policy], Arc::new(jwks), cache);
    let p = Arc::clone(b.policy("props").unwrap());
    (b, p)
}

/// One shared policy with a decision cache, as the server runs it.
fn cached_bearer() -> &'static (Bearer, Arc<Policy>) {
    static B: OnceLock<(Bearer, Arc<Policy>)> = OnceLock::new();
    B.get_or_init(|| bearer(DecisionCache::new(10_000, Duration::from_secs(60)), &[]))
}

fn authorize_bearer(b: &Bearer, p: &Policy, authorization: &str, now: u64) -> bearer::Decision {
    let d = runtime()
        .block_on(b.authorize(p, authorization, now))
        .expect("static keys always decide");
    (*d).clone()
}

fn jwt(alg: Algorithm, kid: &str, iss: &str, scope: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let claims = json!({
        "iss": iss, "sub": "alice", "aud": "orders-api",
        "nbf": NOW, "iat": NOW, "exp": NOW + 300, "scope": scope,
    });
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_KEY).unwrap(),
        _ => EncodingKey::from_secret(HS_SECRET.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// The valid credentials: an HS256 JWT, an RS256 JWT (signed once: RSA
/// signing is slow), the API key.
fn valid_credentials() -> &'static [String; 3] {
    static C: OnceLock<[String; 3]> = OnceLock::new();
    C.get_or_init(|| {
        [
            jwt(Algorithm::HS256, "hs", ISS, "orders:read"),
            jwt(Algorithm::RS256, "rsa", ISS, "orders:read"),
            API_KEY.to_owned(),
        ]
    })
}

/// Without a decision cache (the model test moves the clock backwards, which
/// a cache never sees in production), with or without a required scope.
fn uncached_bearer(require_read: bool) -> &'static (Bearer, Arc<Policy>) {
    static B: [OnceLock<(Bearer, Arc<Policy>)>; 2] = [OnceLock::new(), OnceLock::new()];
    B[usize::from(require_read)].get_or_init(|| {
        let required: &[&str] = if require_read { &["orders:read"] } else { &[] };
        bearer(DecisionCache::new(0, Duration::ZERO), required)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_never_panics_and_is_never_allowed(header in ".{0,600}") {
        let (b, p) = cached_bearer();
        let d = authorize_bearer(b, p, &header, NOW);
        prop_assert!(!d.is_allowed(), "{:?}", d);
        prop_assert_ne!(d.reason, bearer::Reason::Ok);
    }

    #[test]
    fn jwt_shaped_garbage_never_panics_and_is_never_allowed(
        parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,120}", 0..5),
        bearer_prefix in any::<bool>(),
    ) {
        let (b, p) = cached_bearer();
        let token = parts.join(".");
        let header = if bearer_prefix { format!("Bearer {token}") } else { token };
        let d = authorize_bearer(b, p, &header, NOW);
        prop_assert!(!d.is_allowed(), "{:?}", d);
    }

    #[test]
    fn any_single_byte_change_to_a_bearer_credential_denies_it(
        which in 0usize..3,
        index in any::<proptest::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let (b, p) = cached_bearer();
        let valid = &valid_credentials()[which];
        // Allowed first, so a decision for it sits in the cache.
        let first = authorize_bearer(b, p, &format!("Bearer {valid}"), NOW);
        prop_assert!(first.is_allowed(), "{:?}", first);
        let mut bytes = valid.clone().into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        if let Ok(changed) = String::from_utf8(bytes) {
            let d = authorize_bearer(b, p, &format!("Bearer {changed}"), NOW);
            prop_assert!(!d.is_allowed(), "byte {} changed and still allowed: {:?}", i, d);
            prop_assert_ne!(d.reason, bearer::Reason::Ok);
        }
    }

    #[test]
    fn bearer_allowed_only_when_everything_holds(
        now in (NOW - 600)..(NOW + 600),
        alg in prop_oneof![Just(Algorithm::HS256), Just(Algorithm::RS256)],
        right_issuer in any::<bool>(),
        kid in prop_oneof![Just("hs"), Just("rsa"), Just("other")],
        scope in prop_oneof![Just("orders:read"), Just("orders:write"), Just("")],
        require_read in any::<bool>(),
    ) {
        let (b, p) = uncached_bearer(require_read);
        let iss = if right_issuer { ISS } else { "https://elsewhere.example" };
        let token = jwt(alg, kid, iss, scope);
        let d = authorize_bearer(b, p, &format!("Bearer {token}"), now);
        let right_key = matches!((alg, kid), (Algorithm::HS256, "hs") | (Algorithm::RS256, "rsa"));
        let expect = (NOW..NOW + 300).contains(&now)
            && right_issuer
            && right_key
            && (!require_read || scope == "orders:read");
        prop_assert_eq!(d.is_allowed(), expect, "{:?}", d.reason);
        prop_assert_eq!(d.reason == bearer::Reason::Ok, expect);
        if d.is_allowed() {
            prop_assert_eq!(d.subject.as_str(), "alice");
            prop_assert!(d.claims.is_some());
        }
    }

    #[test]
    fn authorize_is_ok_only_when_every_required_check_passed(
        require in prop_oneof![
            Just(Require::Signature), Just(Require::Bearer), Just(Require::Both), Just(Require::Either)
        ],
        failure_callback in any::<bool>(),
        signature in prop_oneof![
            Just(None), Just(Some(Reason::Ok)), Just(Some(Reason::NoKeyMatched)),
            Just(Some(Reason::Expired)), Just(Some(Reason::Replayed)),
        ],
        credential in prop_oneof![
            Just(None), Just(Some(bearer::Reason::Ok)), Just(Some(bearer::Reason::BadSignature)),
            Just(Some(bearer::Reason::MissingScope)), Just(Some(bearer::Reason::Missing)),
        ],
    ) {
        let verdict = signature.map(|reason| Verdict { reason, key_slot: None, claims: None });
        let decision = credential.map(bearer::Decision::denied);
        let reason = authorize::decide(require, failure_callback, verdict.as_ref(), decision.as_ref());
        let sig = signature == Some(Reason::Ok);
        let bear = credential == Some(bearer::Reason::Ok);
        let wants_bearer = matches!(require, Require::Bearer | Require::Both | Require::Either);
        // A failure callback must come from QStash, and carry the original
        // caller's credential whenever the policy checks credentials.
        let expect = if failure_callback {
            sig && (!wants_bearer || bear)
        } else {
            match require {
                Require::Signature => sig,
                Require::Bearer => bear,
                Require::Both => sig && bear,
                Require::Either => sig || bear,
            }
        };
        prop_assert_eq!(reason == authorize::Reason::Ok, expect, "{:?}", reason);
    }
}
