//! `AuthorizeBearer` against the real server: every reason, JWTs of each
//! family, algorithm confusion, API keys, and JWKS/OIDC from a local issuer
//! (rotation, the unknown-kid stampede, issuer down, broken, slow or
//! unresolvable).

mod bearer_support;
mod common;

use bearer_support::{HS_SECRET, Issuer, claims, config_file, fixture_path, jwk, raw_jws, sign};
use common::Signet;
use jsonwebtoken::Algorithm::{self, *};
use serde_json::{Value, json};
use signet::{
    bearer::api_key::hash_token,
    proto::{AuthorizeBearerRequest, AuthorizeBearerResponse, BearerReason, CredentialKind},
};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

const STATIC_ISS: &str = "https://static.example";
const RSA_ONLY_ISS: &str = "https://rsa-only.example";

fn static_config() -> String {
    format!(
        r#"
[issuers.static]
issuer = "{STATIC_ISS}"
audiences = ["orders-api"]
algorithms = ["RS256", "ES256", "EdDSA", "HS256"]
required_claims = ["exp", "sub"]
keys = [
  {{ kid = "rsa", algorithm = "RS256", pem_file = "{rsa}" }},
  {{ kid = "ec", algorithm = "ES256", pem_file = "{ec}" }},
  {{ kid = "ed", algorithm = "EdDSA", pem_file = "{ed}" }},
  {{ kid = "hs", algorithm = "HS256", secret = "{HS_SECRET}" }},
]

[issuers.rsaonly]
issuer = "{RSA_ONLY_ISS}"
algorithms = ["RS256"]
keys = [{{ kid = "rsa", algorithm = "RS256", pem_file = "{rsa}" }}]

[policies.jwt]
require = "bearer"
issuers = ["static", "rsaonly"]
required_scopes = ["orders:read"]
api_keys = [{{ sha256 = "{alpha}", subject = "billing", scopes = ["orders:read"] }}]

[policies.keys]
require = "bearer"
required_scopes = ["orders:read"]
api_keys = [
  {{ sha256 = "{alpha}", subject = "billing", scopes = ["orders:read"] }},
  {{ sha256 = "{beta}", subject = "reporting", scopes = [] }},
]
"#,
        rsa = fixture_path("rsa-1.pub.pem"),
        ec = fixture_path("ec-p256.pub.pem"),
        ed = fixture_path("ed25519.pub.pem"),
        alpha = hash_token("sk_test_alpha_7Hq2"),
        beta = hash_token("sk_test_beta_9Kd4"),
    )
}

async fn ask(
    signet: &Signet,
    policy: &str,
    authorization: &str,
) -> Result<AuthorizeBearerResponse, tonic::Status> {
    signet
        .client()
        .await
        .authorize_bearer(AuthorizeBearerRequest {
            authorization: authorization.into(),
            policy: policy.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn reason(signet: &Signet, policy: &str, authorization: &str) -> BearerReason {
    ask(signet, policy, authorization).await.unwrap().reason()
}

fn token(alg: Algorithm, key: &str, kid: &str, c: &Value) -> String {
    format!("Bearer {}", sign(alg, key, Some(kid), c))
}

#[tokio::test]
async fn jwts_of_every_family_are_accepted_where_configured() {
    let (_dir, path) = config_file(&static_config());
    let signet = Signet::builder().config(path).start();
    let c = claims(STATIC_ISS, "user-1");
    for (alg, key, kid) in [
        (RS256, "rsa-1", "rsa"),
        (ES256, "ec-p256", "ec"),
        (EdDSA, "ed25519", "ed"),
        (HS256, HS_SECRET, "hs"),
    ] {
        let r = ask(&signet, "jwt", &token(alg, key, kid, &c))
            .await
            .unwrap();
        assert!(r.allowed, "{alg:?}: {r:?}");
        assert_eq!(r.reason(), BearerReason::Ok);
        assert_eq!(r.credential_kind(), CredentialKind::Jwt);
        assert_eq!(r.subject, "user-1");
        assert_eq!(r.issuer, STATIC_ISS);
        assert_eq!(r.scopes, ["orders:read", "orders:write"]);
        assert_eq!(r.expires_at, c["exp"].as_i64().unwrap());
        let claims = r.claims.unwrap();
        assert!(claims.fields.contains_key("aud"), "{claims:?}");
    }
    // Scheme parsing: any case, several spaces, or a bare token.
    let bare = sign(RS256, "rsa-1", Some("rsa"), &c);
    for value in [
        bare.clone(),
        format!("bearer    {bare}"),
        format!("BEARER {bare}"),
    ] {
        assert_eq!(
            reason(&signet, "jwt", &value).await,
            BearerReason::Ok,
            "{value}"
        );
    }
    assert_eq!(
        reason(&signet, "jwt", &format!("Token {bare}")).await,
        BearerReason::Malformed
    );
    assert_eq!(
        reason(&signet, "jwt", &format!("Bearer\t{bare}")).await,
        BearerReason::Malformed
    );
}

#[tokio::test]
async fn every_denial_has_its_reason() {
    let (_dir, path) = config_file(&static_config());
    let signet = Signet::builder()
        .env("RUST_LOG", "trace")
        .config(path)
        .start();
    let now = bearer_support::now();
    let good = claims(STATIC_ISS, "user-1");
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let rs = |c: &Value| token(RS256, "rsa-1", "rsa", c);
    let cases = [
        ("missing", String::new(), BearerReason::Missing),
        ("only the scheme", "Bearer ".into(), BearerReason::Malformed),
        (
            "basic",
            "Basic dXNlcjpwYXNz".into(),
            BearerReason::Malformed,
        ),
        (
            "expired",
            rs(&with("exp", json!(now - 5))),
            BearerReason::Expired,
        ),
        (
            "not yet valid",
            rs(&with("nbf", json!(now + 600))),
            BearerReason::NotYetValid,
        ),
        (
            "wrong issuer",
            rs(&with("iss", json!("https://evil.example"))),
            BearerReason::WrongIssuer,
        ),
        (
            "wrong audience",
            rs(&with("aud", json!("other-api"))),
            BearerReason::WrongAudience,
        ),
        (
            "missing scope",
            rs(&with("scope", json!("orders:write"))),
            BearerReason::MissingScope,
        ),
        (
            "missing sub",
            rs(&without("sub")),
            BearerReason::MissingClaim,
        ),
        (
            "missing exp",
            rs(&without("exp")),
            BearerReason::MissingClaim,
        ),
        (
            "unknown kid",
            token(RS256, "rsa-1", "nope", &good),
            BearerReason::UnknownKeyId,
        ),
        (
            "other key",
            token(RS256, "rsa-2", "rsa", &good),
            BearerReason::BadSignature,
        ),
        (
            "unknown API key",
            "Bearer sk_test_gamma".into(),
            BearerReason::UnknownApiKey,
        ),
    ];
    for (name, value, want) in cases {
        let r = ask(&signet, "jwt", &value).await.unwrap();
        assert_eq!(r.reason(), want, "{name}: {r:?}");
        assert!(!r.allowed, "{name}");
        assert!(!r.message.is_empty());
    }

    // alg: none, with and without a signature part.
    let none = raw_jws(&json!({"alg": "none", "typ": "JWT"}), &good, b"");
    assert_eq!(
        reason(&signet, "jwt", &none).await,
        BearerReason::AlgorithmNotAllowed
    );
    let none = raw_jws(&json!({"alg": "none", "kid": "rsa"}), &good, b"x");
    assert_eq!(
        reason(&signet, "jwt", &none).await,
        BearerReason::AlgorithmNotAllowed
    );

    // Tampered payload: a valid token with the claims swapped for others.
    let valid = sign(RS256, "rsa-1", Some("rsa"), &good);
    let forged_claims = raw_jws(&json!({}), &with("sub", json!("admin")), b"");
    let mut parts: Vec<&str> = valid.split('.').collect();
    parts[1] = forged_claims.split('.').nth(1).unwrap();
    assert_eq!(
        reason(&signet, "jwt", &parts.join(".")).await,
        BearerReason::BadSignature
    );

    // The policy takes no credential of any kind: the built-in default.
    assert_eq!(
        reason(&signet, "", &rs(&good)).await,
        BearerReason::KindNotAllowed
    );

    // Even at trace level, no token or API key reaches the logs.
    assert_eq!(
        reason(&signet, "keys", "sk_test_alpha_7Hq2").await,
        BearerReason::Ok
    );
    let logs = signet.logs();
    assert!(logs.contains("decision"), "trace level was not applied");
    let signature = valid.rsplit('.').next().unwrap();
    for secret in [
        "sk_test_alpha_7Hq2",
        "sk_test_gamma",
        signature,
        &valid[..40],
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test]
async fn readiness_waits_for_the_first_jwks_load() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    issuer.set_down(true);
    let (_dir, path) = config_file(&oidc_config(&issuer, r#"prefetch_timeout = "1h""#));
    let signet = Signet::builder().test_keys().config(path).start();
    let mut health = HealthClient::new(signet.channel().await);
    let mut updates = health
        .watch(HealthCheckRequest {
            service: "signet.v1.Authorizer".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let limit = std::time::Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout(limit, updates.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if m.status() == ServingStatus::NotServing {
            break;
        }
        assert_ne!(
            m.status(),
            ServingStatus::Serving,
            "serving before the JWKS loaded"
        );
    }
    issuer.set_down(false);
    loop {
        let m = tokio::time::timeout(limit, updates.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if m.status() == ServingStatus::Serving {
            break;
        }
    }
    assert!(issuer.jwks_fetches() >= 1);
    let t = token(RS256, "rsa-1", "k1", &claims(&issuer.url(), "u"));
    assert_eq!(reason(&signet, "oidc", &t).await, BearerReason::Ok);
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let (_dir, path) = config_file(&static_config());
    let signet = Signet::builder().config(path).start();
    let public_pem = String::from_utf8(bearer_support::fixture("rsa-1.pub.pem")).unwrap();
    for iss in [STATIC_ISS, RSA_ONLY_ISS] {
        let c = claims(iss, "attacker");
        for kid in [Some("rsa"), None] {
            let forged = sign(HS256, &public_pem, kid, &c);
            let r = ask(&signet, "jwt", &forged).await.unwrap();
            assert!(!r.allowed, "{iss} {kid:?}");
            let want = if iss == RSA_ONLY_ISS {
                BearerReason::AlgorithmNotAllowed
            } else {
                BearerReason::BadSignature
            };
            assert_eq!(r.reason(), want, "{iss} {kid:?}");
        }
    }
}

#[tokio::test]
async fn api_keys_valid_unknown_and_one_byte_off() {
    let (_dir, path) = config_file(&static_config());
    let signet = Signet::builder().config(path).start();
    let r = ask(&signet, "keys", "Bearer sk_test_alpha_7Hq2")
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.credential_kind(), CredentialKind::ApiKey);
    assert_eq!(r.subject, "billing");
    assert_eq!(r.scopes, ["orders:read"]);
    assert_eq!(r.expires_at, 0);
    assert!(r.claims.is_none());
    // Cached the second time: same answer.
    assert_eq!(ask(&signet, "keys", "sk_test_alpha_7Hq2").await.unwrap(), r);

    for other in ["sk_test_alpha_7Hq3", "sk_test_unknown", "sk_test_alpha_7Hq"] {
        let r = ask(&signet, "keys", other).await.unwrap();
        assert_eq!(r.reason(), BearerReason::UnknownApiKey, "{other}");
        assert_eq!(r.credential_kind(), CredentialKind::ApiKey);
        assert!(r.subject.is_empty());
    }
    assert_eq!(
        reason(&signet, "keys", "sk_test_beta_9Kd4").await,
        BearerReason::MissingScope
    );
    // A JWT on a policy without issuers is judged as an API key.
    let jwt = token(RS256, "rsa-1", "rsa", &claims(STATIC_ISS, "u"));
    assert_eq!(
        reason(&signet, "keys", &jwt).await,
        BearerReason::UnknownApiKey
    );
}

#[tokio::test]
async fn unknown_policy_is_invalid_argument() {
    let (_dir, path) = config_file(&static_config());
    let signet = Signet::builder().config(path).start();
    let e = ask(&signet, "nope", "Bearer x").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(e.message(), "unknown policy");
}

#[test]
fn hash_token_prints_the_digest() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["hash-token", "sk_test_alpha_7Hq2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        hash_token("sk_test_alpha_7Hq2")
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sk_test_alpha_7Hq2\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        hash_token("sk_test_alpha_7Hq2")
    );
}

fn oidc_config(issuer: &Issuer, jwks: &str) -> String {
    format!(
        r#"
[issuers.oidc]
issuer = "{url}"
algorithms = ["RS256"]
discovery_url = "{url}"

[policies.oidc]
require = "bearer"
issuers = ["oidc"]

[jwks]
{jwks}
"#,
        url = issuer.url()
    )
}

/// The config of the last-known-good tests, `jwks` (settings ending in a
/// newline, or empty) added to its `[jwks]` section. The issuer answers with
/// max-age=0 and signet's lower bound and cooldown are zero, so every request
/// finds signet's copy expired and asks the issuer again: each one runs the
/// last-known-good path when the issuer fails.
fn refetching_every_request(issuer: &Issuer, jwks: &str) -> (tempfile::TempDir, String) {
    issuer.set_max_age(Some(0));
    config_file(&oidc_config(
        issuer,
        &format!("{jwks}min_ttl = \"0s\"\nrefetch_cooldown = \"0s\"\nmax_staleness = \"1h\""),
    ))
}

#[tokio::test]
async fn rotation_at_the_issuer_is_followed_without_restart() {
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    let (_dir, path) = config_file(&oidc_config(&issuer, ""));
    let signet = Signet::builder().config(path).start();
    let c = claims(&issuer.url(), "user-1");
    assert_eq!(
        reason(&signet, "oidc", &token(RS256, "rsa-1", "k1", &c)).await,
        BearerReason::Ok
    );
    let before = issuer.jwks_fetches();

    issuer.set_keys(vec![jwk(RS256, "rsa-2", "k2")]);
    let r = ask(&signet, "oidc", &token(RS256, "rsa-2", "k2", &c))
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(
        issuer.jwks_fetches(),
        before + 1,
        "one refetch for the new kid"
    );
    // The old key is gone from the issuer's set now.
    let old = token(RS256, "rsa-1", "k1", &claims(&issuer.url(), "user-2"));
    assert_eq!(
        reason(&signet, "oidc", &old).await,
        BearerReason::UnknownKeyId
    );
}

#[tokio::test]
async fn unknown_kid_stampede_causes_at_most_one_fetch_per_cooldown() {
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    let (_dir, path) = config_file(&oidc_config(&issuer, r#"refetch_cooldown = "1h""#));
    let signet = Signet::builder().config(path).start();
    let c = claims(&issuer.url(), "user-1");
    assert_eq!(
        reason(&signet, "oidc", &token(RS256, "rsa-1", "k1", &c)).await,
        BearerReason::Ok
    );
    let before = issuer.jwks_fetches();

    let client = signet.client().await;
    let ghost = token(RS256, "rsa-1", "ghost", &c);
    let calls = (0..200).map(|i| {
        let mut client = client.clone();
        let ghost = if i % 2 == 0 {
            ghost.clone()
        } else {
            token(RS256, "rsa-2", "ghost", &c)
        };
        async move {
            client
                .authorize_bearer(AuthorizeBearerRequest {
                    authorization: ghost,
                    policy: "oidc".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .reason()
        }
    });
    let reasons: Vec<_> = tokio_stream_join(calls).await;
    assert!(
        reasons.iter().all(|r| *r == BearerReason::UnknownKeyId),
        "{reasons:?}"
    );
    let fetched = issuer.jwks_fetches() - before;
    assert!(
        fetched <= 1,
        "{fetched} JWKS fetches for 200 unknown-kid requests"
    );

    // Within the cooldown a new unknown kid does not fetch either.
    let other = token(RS256, "rsa-1", "ghost-2", &c);
    assert_eq!(
        reason(&signet, "oidc", &other).await,
        BearerReason::UnknownKeyId
    );
    assert_eq!(issuer.jwks_fetches() - before, fetched);
}

/// Runs futures concurrently on this task and collects their outputs in order.
async fn tokio_stream_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn issuer_down_after_the_first_load_keeps_known_kids_working() {
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    let (_dir, path) = refetching_every_request(&issuer, "");
    let signet = Signet::builder().config(path).start();
    let url = issuer.url();
    assert_first_request_allowed(&signet, &url).await;
    issuer.set_down(true);
    for i in 1..=3 {
        let t = token(RS256, "rsa-1", "k1", &claims(&url, &format!("u{i}")));
        assert_eq!(
            reason(&signet, "oidc", &t).await,
            BearerReason::Ok,
            "request {i}"
        );
    }
    assert_jwks_fetch_failed_logged(&signet);
}

#[tokio::test]
async fn issuer_never_loaded_is_unavailable() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"
[issuers.gone]
issuer = "https://gone.example"
algorithms = ["RS256"]
jwks_url = "http://127.0.0.1:{port}/jwks"

[policies.gone]
require = "bearer"
issuers = ["gone"]

[jwks]
fetch_timeout = "1s"
prefetch_timeout = "2s"
"#
    );
    let (_dir, path) = config_file(&config);
    let signet = Signet::builder().config(path).start();
    let t = token(RS256, "rsa-1", "k1", &claims("https://gone.example", "u"));
    let e = ask(&signet, "gone", &t).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(e.message(), "issuer keys unavailable");
    // Denials that need no keys are still answered.
    assert_eq!(reason(&signet, "gone", "").await, BearerReason::Missing);
}

/// A first RS256 request under kid `k1` is allowed: the issuer's keys are
/// loaded.
async fn assert_first_request_allowed(signet: &Signet, url: &str) {
    assert_eq!(
        reason(
            signet,
            "oidc",
            &token(RS256, "rsa-1", "k1", &claims(url, "u0"))
        )
        .await,
        BearerReason::Ok
    );
}

fn assert_jwks_fetch_failed_logged(signet: &Signet) {
    assert!(
        signet.logs().contains("JWKS fetch failed"),
        "{}",
        signet.logs()
    );
}

/// Health of `signet.v1.Authorizer` (what `/readyz` reports too).
async fn authorizer_health(
    signet: &Signet,
) -> tonic_health::pb::health_check_response::ServingStatus {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    HealthClient::new(signet.channel().await)
        .check(HealthCheckRequest {
            service: "signet.v1.Authorizer".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

/// JWKS answers that are not a usable key set: not JSON, JSON of the wrong
/// shape, keys whose type does not fit their algorithm, a document over
/// `jwks.max_response_bytes`, server errors.
fn broken_jwks_answers() -> Vec<(&'static str, u16, Vec<u8>)> {
    let mut rsa_as_ec = jwk(RS256, "rsa-1", "k1");
    rsa_as_ec["kty"] = json!("EC");
    let mut rsa_for_es256 = jwk(RS256, "rsa-1", "k1");
    rsa_for_es256["alg"] = json!("ES256");
    let mut ec_for_rs256 = jwk(ES256, "ec-p256", "k1");
    ec_for_rs256["alg"] = json!("RS256");
    let keys = |k: Value| json!({ "keys": [k] }).to_string().into_bytes();
    vec![
        ("not JSON", 200, b"<html>gateway</html>".to_vec()),
        ("truncated JSON", 200, br#"{"keys":[{"kty":"RSA""#.to_vec()),
        ("keys not a list", 200, br#"{"keys":"k1"}"#.to_vec()),
        ("no keys member", 200, br#"{"jwks":[]}"#.to_vec()),
        ("a bare list", 200, b"[]".to_vec()),
        ("an empty key set", 200, br#"{"keys":[]}"#.to_vec()),
        ("RSA key labelled EC", 200, keys(rsa_as_ec)),
        ("RSA key for ES256", 200, keys(rsa_for_es256)),
        ("EC key for RS256", 200, keys(ec_for_rs256)),
        (
            "a 2 MiB document",
            200,
            json!({ "keys": [jwk(RS256, "rsa-1", "k1")], "pad": "p".repeat(2 << 20) })
                .to_string()
                .into_bytes(),
        ),
        ("HTTP 500", 500, b"{}".to_vec()),
        ("HTTP 502", 502, b"<html>bad gateway</html>".to_vec()),
        ("HTTP 503", 503, Vec::new()),
    ]
}

#[tokio::test]
async fn broken_jwks_after_a_good_load_keeps_the_last_known_good_keys() {
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    let (_dir, path) = refetching_every_request(&issuer, "");
    let signet = Signet::builder().test_keys().config(path).start();
    let url = issuer.url();
    let t = |sub: &str, key: &str, kid: &str| token(RS256, key, kid, &claims(&url, sub));
    assert_eq!(
        reason(&signet, "oidc", &t("first", "rsa-1", "k1")).await,
        BearerReason::Ok
    );
    for (i, (name, status, body)) in broken_jwks_answers().into_iter().enumerate() {
        issuer.set_answer(Some((status, &body)));
        let fetches = issuer.jwks_fetches();
        // A fresh subject each time (never the first request's): no cached
        // decision answers for the JWKS.
        let r = reason(&signet, "oidc", &t(&format!("u{i}"), "rsa-1", "k1")).await;
        assert!(issuer.jwks_fetches() > fetches, "{name}: not fetched");
        assert_eq!(r, BearerReason::Ok, "{name}: last-known-good key");
        assert_eq!(
            reason(&signet, "oidc", &t(&format!("v{i}"), "rsa-2", "k1")).await,
            BearerReason::BadSignature,
            "{name}: another key under a known kid"
        );
        assert_eq!(
            reason(&signet, "oidc", &t(&format!("w{i}"), "rsa-1", "ghost")).await,
            BearerReason::UnknownKeyId,
            "{name}: unknown kid"
        );
        assert_eq!(
            authorizer_health(&signet).await,
            ServingStatus::Serving,
            "{name}"
        );
    }
    assert_jwks_fetch_failed_logged(&signet);
}

#[tokio::test]
async fn broken_jwks_never_loaded_allows_nothing_and_is_not_ready() {
    for (name, status, body) in broken_jwks_answers() {
        let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
        issuer.set_answer(Some((status, &body)));
        let (_dir, path) = config_file(&oidc_config(&issuer, "prefetch_timeout = \"1h\""));
        let signet = Signet::builder().test_keys().config(path).start();
        let t = token(RS256, "rsa-1", "k1", &claims(&issuer.url(), "u"));
        let e = ask(&signet, "oidc", &t).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{name}: {e:?}");
        assert_eq!(
            authorizer_health(&signet).await,
            ServingStatus::NotServing,
            "{name}"
        );
        assert!(issuer.jwks_fetches() >= 1, "{name}: never fetched");
    }
}

#[tokio::test]
async fn slow_issuer_times_out_and_last_known_good_keeps_serving() {
    use std::time::{Duration, Instant};
    const FETCH_TIMEOUT: Duration = Duration::from_millis(300);
    const DELAY: Duration = Duration::from_secs(3);
    let issuer = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    let (_dir, path) = refetching_every_request(
        &issuer,
        &format!("fetch_timeout = \"{}ms\"\n", FETCH_TIMEOUT.as_millis()),
    );
    let signet = Signet::builder().test_keys().config(path).start();
    let url = issuer.url();
    assert_first_request_allowed(&signet, &url).await;
    issuer.set_delay(DELAY);
    let fetches = issuer.jwks_fetches();
    let start = Instant::now();
    let r = reason(
        &signet,
        "oidc",
        &token(RS256, "rsa-1", "k1", &claims(&url, "u1")),
    )
    .await;
    let took = start.elapsed();
    assert_eq!(r, BearerReason::Ok, "last-known-good key");
    assert!(issuer.jwks_fetches() > fetches, "not fetched");
    assert!(took < DELAY, "waited {took:?} for the slow issuer");
    println!("slow issuer: answered from last-known-good after {took:?}");
    assert_eq!(
        reason(
            &signet,
            "oidc",
            &token(RS256, "rsa-1", "ghost", &claims(&url, "u2"))
        )
        .await,
        BearerReason::UnknownKeyId
    );
    assert_eq!(authorizer_health(&signet).await, ServingStatus::Serving);
    assert_jwks_fetch_failed_logged(&signet);

    // Slow from the start: nothing to fall back on, nothing allowed.
    let slow = Issuer::start(vec![jwk(RS256, "rsa-1", "k1")]).await;
    slow.set_delay(DELAY);
    let (_dir, path) = config_file(&oidc_config(
        &slow,
        &format!(
            "fetch_timeout = \"{}ms\"\nprefetch_timeout = \"1h\"",
            FETCH_TIMEOUT.as_millis()
        ),
    ));
    let signet = Signet::builder().test_keys().config(path).start();
    let t = token(RS256, "rsa-1", "k1", &claims(&slow.url(), "u"));
    let e = ask(&signet, "oidc", &t).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(authorizer_health(&signet).await, ServingStatus::NotServing);
}

#[tokio::test]
async fn unresolvable_issuer_allows_nothing_and_is_not_ready() {
    // `.invalid` never resolves (RFC 2606).
    let config = r#"
[issuers.nowhere]
issuer = "https://signet-test.invalid/"
algorithms = ["RS256"]
jwks_url = "https://signet-test.invalid/jwks"

[issuers.nodiscovery]
issuer = "https://signet-test.invalid/oidc"
algorithms = ["RS256"]
discovery_url = "https://signet-test.invalid/oidc"

[policies.nowhere]
require = "bearer"
issuers = ["nowhere", "nodiscovery"]

[jwks]
fetch_timeout = "1s"
prefetch_timeout = "1h"
"#;
    let (_dir, path) = config_file(config);
    let signet = Signet::builder().test_keys().config(path).start();
    for iss in [
        "https://signet-test.invalid/",
        "https://signet-test.invalid/oidc",
    ] {
        let t = token(RS256, "rsa-1", "k1", &claims(iss, "u"));
        let e = ask(&signet, "nowhere", &t).await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{iss}: {e:?}");
    }
    assert_eq!(authorizer_health(&signet).await, ServingStatus::NotServing);
    // Still up and answering what needs no issuer keys.
    assert_eq!(reason(&signet, "nowhere", "").await, BearerReason::Missing);
    assert_jwks_fetch_failed_logged(&signet);
}
