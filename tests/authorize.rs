//! `Authorize` against the real server: policies requiring signature, bearer,
//! both or either, and Upstash Workflow failure callbacks authorized with the
//! original caller's credential.

mod bearer_support;
mod common;

use bearer_support::{HS_SECRET, claims, config_file, sign};
use common::{Signet, TEST_CURRENT, URL};
use jsonwebtoken::Algorithm::HS256;
use sha2::{Digest, Sha256};
use signet::proto::{
    AuthorizeReason, AuthorizeRequest, AuthorizeResponse, BearerReason, HttpHeader, SignatureReason,
};
use tonic::Code;

const ISS: &str = "https://auth.example";

fn config() -> String {
    format!(
        r#"
[issuers.auth]
issuer = "{ISS}"
algorithms = ["HS256"]
keys = [{{ algorithm = "HS256", secret = "{HS_SECRET}" }}]

[policies.bearer]
require = "bearer"
issuers = ["auth"]

[policies.both]
require = "both"
check_url = true
issuers = ["auth"]

[policies.either]
require = "either"
issuers = ["auth"]
"#
    )
}

fn start() -> (tempfile::TempDir, Signet) {
    let (dir, path) = config_file(&config());
    let signet = Signet::builder().test_keys().config(path).start();
    (dir, signet)
}

fn bearer(sub: &str) -> String {
    format!("Bearer {}", sign(HS256, HS_SECRET, None, &claims(ISS, sub)))
}

fn h(name: &str, value: &str) -> HttpHeader {
    HttpHeader {
        name: name.into(),
        value: value.into(),
    }
}

async fn authorize(
    signet: &Signet,
    policy: &str,
    headers: Vec<HttpHeader>,
    body: &[u8],
) -> Result<AuthorizeResponse, tonic::Status> {
    signet
        .client()
        .await
        .authorize(AuthorizeRequest {
            method: "POST".into(),
            url: URL.into(),
            headers,
            body: Some(body.to_vec().into()),
            policy: policy.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

fn signed(body: &[u8]) -> HttpHeader {
    h("Upstash-Signature", &common::token(TEST_CURRENT, body, URL))
}

#[tokio::test]
async fn default_policy_requires_the_signature_only() {
    let (_d, signet) = start();
    let body = br#"{"order":1}"#;
    let r = authorize(&signet, "", vec![signed(body)], body)
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.reason(), AuthorizeReason::Ok);
    assert_eq!(r.signature.unwrap().reason(), SignatureReason::Ok);
    assert!(r.bearer.is_none(), "the bearer check did not run");
    assert!(!r.failure_callback);

    let r = authorize(&signet, "", vec![h("authorization", &bearer("u"))], body)
        .await
        .unwrap();
    assert!(!r.allowed);
    assert_eq!(r.reason(), AuthorizeReason::SignatureDenied);
    assert_eq!(r.signature.unwrap().reason(), SignatureReason::Missing);
}

#[tokio::test]
async fn route_requests_under_each_requirement() {
    let (_d, signet) = start();
    let body = b"{}";
    // bearer: header names are case-insensitive.
    let r = authorize(
        &signet,
        "bearer",
        vec![h("AUTHORIZATION", &bearer("alice"))],
        body,
    )
    .await
    .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.subject, "alice");
    assert!(r.signature.is_none());
    let r = authorize(
        &signet,
        "bearer",
        vec![h("Authorization", "Bearer nope")],
        body,
    )
    .await
    .unwrap();
    assert_eq!(r.reason(), AuthorizeReason::BearerDenied);
    assert_eq!(r.bearer.unwrap().reason(), BearerReason::Malformed);

    // both: each check must pass; the url is compared with `sub`.
    let both = vec![signed(body), h("authorization", &bearer("bob"))];
    let r = authorize(&signet, "both", both.clone(), body)
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.subject, "bob");
    let r = authorize(&signet, "both", vec![both[1].clone()], body)
        .await
        .unwrap();
    assert_eq!(r.reason(), AuthorizeReason::SignatureDenied);
    let r = authorize(&signet, "both", vec![both[0].clone()], body)
        .await
        .unwrap();
    assert_eq!(r.reason(), AuthorizeReason::BearerDenied);
    assert_eq!(r.bearer.unwrap().reason(), BearerReason::Missing);
    let wrong_url = h(
        "upstash-signature",
        &common::token(TEST_CURRENT, body, "https://other.example/"),
    );
    let r = authorize(&signet, "both", vec![wrong_url, both[1].clone()], body)
        .await
        .unwrap();
    assert_eq!(r.signature.unwrap().reason(), SignatureReason::UrlMismatch);

    // either: one is enough; none is NoCheckPassed.
    let r = authorize(&signet, "either", vec![both[1].clone()], body)
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    let r = authorize(&signet, "either", vec![both[0].clone()], body)
        .await
        .unwrap();
    assert!(r.allowed, "{r:?}");
    let r = authorize(&signet, "either", vec![], body).await.unwrap();
    assert_eq!(r.reason(), AuthorizeReason::NoCheckPassed);
    assert!(r.signature.is_some() && r.bearer.is_some());

    // The body may be sent as its digest.
    let digest = Sha256::digest(body).to_vec();
    let r = signet
        .client()
        .await
        .authorize(AuthorizeRequest {
            url: URL.into(),
            headers: both,
            body_sha256: Some(digest.into()),
            policy: "both".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.allowed, "{r:?}");
}

#[tokio::test]
async fn failure_callbacks_need_the_original_callers_credential() {
    let (_d, signet) = start();
    let body = br#"{"status":500,"body":"ZXJy","sourceHeader":{}}"#;
    let fail = h("Upstash-Workflow-Is-Failure", "true");

    // Signed callback + valid forwarded credential → allowed.
    let r = authorize(
        &signet,
        "bearer",
        vec![
            fail.clone(),
            signed(body),
            h("Authorization", &bearer("carol")),
        ],
        body,
    )
    .await
    .unwrap();
    assert!(r.allowed, "{r:?}");
    assert!(r.failure_callback);
    assert_eq!(r.subject, "carol");
    assert_eq!(r.signature.unwrap().reason(), SignatureReason::Ok);

    // Signed callback + invalid or missing credential → denied.
    for headers in [
        vec![
            fail.clone(),
            signed(body),
            h("Authorization", "Bearer a.b.c"),
        ],
        vec![fail.clone(), signed(body)],
    ] {
        let r = authorize(&signet, "bearer", headers, body).await.unwrap();
        assert!(!r.allowed, "{r:?}");
        assert_eq!(r.reason(), AuthorizeReason::BearerDenied);
    }

    // Unsigned callback, even with a valid credential → denied (policy
    // `bearer` and `either` alike: a callback must come from QStash).
    for policy in ["bearer", "either"] {
        let r = authorize(
            &signet,
            policy,
            vec![
                h("upstash-workflow-failure-callback", URL),
                h("authorization", &bearer("carol")),
            ],
            body,
        )
        .await
        .unwrap();
        assert!(!r.allowed, "{policy}: {r:?}");
        assert!(r.failure_callback);
        assert_eq!(r.reason(), AuthorizeReason::SignatureDenied);
    }

    // Credential only in the body's sourceHeader, in both shapes → used.
    for source in [
        serde_json::json!({ "Authorization": [bearer("dave")] }),
        serde_json::json!({ "authorization": bearer("dave") }),
    ] {
        let body = serde_json::json!({ "status": 500, "sourceHeader": source })
            .to_string()
            .into_bytes();
        let r = authorize(&signet, "bearer", vec![fail.clone(), signed(&body)], &body)
            .await
            .unwrap();
        assert!(r.allowed, "{r:?}");
        assert_eq!(r.subject, "dave");
    }
}

#[tokio::test]
async fn bad_calls_are_errors() {
    let (_d, signet) = start();
    let e = authorize(&signet, "nope", vec![], b"").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = signet
        .client()
        .await
        .authorize(AuthorizeRequest {
            body: Some(Vec::new().into()),
            body_sha256: Some(vec![0; 32].into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}
