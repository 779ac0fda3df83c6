//! Envoy ext_authz v3 over gRPC against the real binary, through the
//! generated client of signet's wire subset. (`tests/envoy/` does the same
//! with Envoy's real message definitions.)

mod common;

use common::{CURRENT, NEXT, Signet, TEST_CURRENT, check_request, keys::config_file, token};
use sha2::{Digest, Sha256};
use signet::envoy_proto::envoy::{
    config::core::v3::HeaderValueOption,
    service::auth::v3::{
        CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
        authorization_client::AuthorizationClient, check_response::HttpResponse,
    },
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const BODY: &[u8] = br#"{"hello":"world"}"#;
const URL: &str = "https://svc.example/api/workflow";

async fn client(server: &Signet) -> AuthorizationClient<Channel> {
    AuthorizationClient::new(server.channel().await)
}

async fn check(server: &Signet, req: CheckRequest) -> CheckResponse {
    client(server).await.check(req).await.unwrap().into_inner()
}

fn ok(resp: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(resp.status.as_ref().unwrap().code, 0, "{resp:?}");
    match &resp.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not allowed: {other:?}"),
    }
}

/// Asserts a denial with `http` status and `reason`; returns it.
fn denied(resp: &CheckResponse, http: i32, reason: &str) -> DeniedHttpResponse {
    assert_ne!(resp.status.as_ref().unwrap().code, 0, "{resp:?}");
    let Some(HttpResponse::DeniedResponse(d)) = &resp.http_response else {
        panic!("not denied: {resp:?}");
    };
    assert_eq!(d.status.unwrap().code, http, "{d:?}");
    let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["reason"], reason, "{body}");
    d.clone()
}

fn header<'a>(headers: &'a [HeaderValueOption], key: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter_map(|o| o.header.as_ref())
        .find(|h| h.key == key)
        .map(|h| h.value.as_str())
}

#[tokio::test]
async fn signed_requests_are_allowed_with_headers_for_the_upstream() {
    let server = Signet::builder().arg("--dev").start();
    for (key, slot) in [(CURRENT, "current"), (NEXT, "next")] {
        let sig = token(key, BODY, URL);
        let resp = check(
            &server,
            check_request(&[("upstash-signature", &sig)], BODY, None),
        )
        .await;
        let ok = ok(&resp);
        assert_eq!(header(&ok.headers, "x-signet-key-slot"), Some(slot));
        assert!(ok.headers_to_remove.contains(&"x-signet-subject".into()));
        assert!(
            ok.headers_to_remove
                .contains(&"x-signet-failure-callback".into())
        );
    }
}

#[tokio::test]
async fn the_body_string_is_used_without_raw_body_and_default_policy_is_named_default() {
    let server = Signet::builder().arg("--dev").start();
    let sig = token(CURRENT, BODY, URL);
    let mut req = check_request(&[("upstash-signature", &sig)], b"", Some("default"));
    let http = req
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
        .unwrap();
    http.body = String::from_utf8(BODY.to_vec()).unwrap();
    ok(&check(&server, req).await);
}

#[tokio::test]
async fn forged_altered_and_missing_signatures_are_401() {
    let server = Signet::builder().arg("--dev").start();
    let forged = token(TEST_CURRENT, BODY, URL);
    let resp = check(
        &server,
        check_request(&[("upstash-signature", &forged)], BODY, None),
    )
    .await;
    let d = denied(&resp, 401, "signature_no_key_matched");
    assert_eq!(resp.status.unwrap().code, Code::Unauthenticated as i32);
    assert_eq!(header(&d.headers, "content-type"), Some("application/json"));
    assert!(!d.body.contains(&forged));

    let sig = token(CURRENT, BODY, URL);
    let resp = check(
        &server,
        check_request(
            &[("upstash-signature", &sig)],
            br#"{"hello":"World"}"#,
            None,
        ),
    )
    .await;
    denied(&resp, 401, "signature_body_mismatch");

    let resp = check(&server, check_request(&[], BODY, None)).await;
    denied(&resp, 401, "signature_missing");
}

#[tokio::test]
async fn failure_callbacks_are_verified_and_flagged() {
    let server = Signet::builder().arg("--dev").start();
    let sig = token(CURRENT, BODY, URL);
    let resp = check(
        &server,
        check_request(
            &[
                ("upstash-signature", &sig),
                ("upstash-workflow-is-failure", "true"),
            ],
            BODY,
            None,
        ),
    )
    .await;
    assert_eq!(
        header(&ok(&resp).headers, "x-signet-failure-callback"),
        Some("true")
    );
    let resp = check(
        &server,
        check_request(&[("upstash-workflow-is-failure", "true")], BODY, None),
    )
    .await;
    denied(&resp, 401, "signature_missing");
}

#[tokio::test]
async fn an_unknown_policy_is_403() {
    let server = Signet::builder().arg("--dev").start();
    let sig = token(CURRENT, BODY, URL);
    let resp = check(
        &server,
        check_request(&[("upstash-signature", &sig)], BODY, Some("no-such-policy")),
    )
    .await;
    let d = denied(&resp, 403, "unknown_policy");
    assert_eq!(resp.status.unwrap().code, Code::PermissionDenied as i32);
    assert!(d.body.contains("forbidden"));
}

const API_KEY: &str = "sk-envoy-test-key";

/// `--dev` plus a `signature-and-bearer` policy (signature and an API key,
/// url checked against `public_base_url` + path, `authorization` removed)
/// and an `admin-only` policy the same key lacks the scope for.
fn policy_server() -> (tempfile::TempDir, Signet) {
    let digest = hex::encode(Sha256::digest(API_KEY.as_bytes()));
    let api_keys =
        format!(r#"api_keys = [{{ sha256 = "{digest}", subject = "svc-a", scopes = [] }}]"#);
    let (dir, path) = config_file(&format!(
        r#"
[policies.signature-and-bearer]
require = "both"
check_url = true
public_base_url = "https://svc.example"
remove_authorization = true
{api_keys}

[policies.admin-only]
require = "both"
required_scopes = ["admin"]
{api_keys}
"#
    ));
    let server = Signet::builder().arg("--dev").config(path).start();
    (dir, server)
}

const BOTH: Option<&str> = Some("signature-and-bearer");

/// `Check` of `BODY` under the policy that needs a signature and a bearer.
async fn check_both(server: &Signet, headers: &[(&str, &str)]) -> CheckResponse {
    check(server, check_request(headers, BODY, BOTH)).await
}

#[tokio::test]
async fn a_policy_needing_signature_and_bearer_decides_with_both() {
    let (_dir, server) = policy_server();
    let sig = token(CURRENT, BODY, URL);
    let bearer = format!("Bearer {API_KEY}");

    let resp = check_both(&server, &[("upstash-signature", &sig)]).await;
    denied(&resp, 401, "bearer_missing");

    let resp = check_both(
        &server,
        &[
            ("upstash-signature", &sig),
            ("upstash-workflow-is-failure", "true"),
        ],
    )
    .await;
    denied(&resp, 401, "bearer_missing");

    let resp = check_both(
        &server,
        &[
            ("upstash-signature", &sig),
            ("authorization", "Bearer not-a-key"),
        ],
    )
    .await;
    let d = denied(&resp, 401, "bearer_unknown_api_key");
    assert!(!d.body.contains("not-a-key"));

    let resp = check_both(
        &server,
        &[("upstash-signature", &sig), ("authorization", &bearer)],
    )
    .await;
    let ok = ok(&resp);
    assert_eq!(header(&ok.headers, "x-signet-subject"), Some("svc-a"));
    assert_eq!(header(&ok.headers, "x-signet-key-slot"), Some("current"));
    assert!(ok.headers_to_remove.contains(&"authorization".into()));

    let other = token(CURRENT, BODY, "https://svc.example/other");
    let resp = check_both(
        &server,
        &[("upstash-signature", &other), ("authorization", &bearer)],
    )
    .await;
    denied(&resp, 401, "signature_url_mismatch");

    let resp = check(
        &server,
        check_request(
            &[("upstash-signature", &sig), ("authorization", &bearer)],
            BODY,
            Some("admin-only"),
        ),
    )
    .await;
    denied(&resp, 403, "bearer_missing_scope");
    assert_eq!(resp.status.unwrap().code, Code::PermissionDenied as i32);
}

#[tokio::test]
async fn a_failure_callback_is_authorized_with_the_forwarded_credential() {
    let (_dir, server) = policy_server();
    let body = serde_json::json!({
        "status": 500,
        "body": "ZXJy",
        "sourceHeader": { "Authorization": [format!("Bearer {API_KEY}")] },
    })
    .to_string();
    let sig = token(CURRENT, body.as_bytes(), URL);
    let resp = check(
        &server,
        check_request(
            &[
                ("upstash-signature", &sig),
                ("upstash-workflow-is-failure", "true"),
            ],
            body.as_bytes(),
            BOTH,
        ),
    )
    .await;
    let ok = ok(&resp);
    assert_eq!(header(&ok.headers, "x-signet-subject"), Some("svc-a"));
    assert_eq!(
        header(&ok.headers, "x-signet-failure-callback"),
        Some("true")
    );
}

#[tokio::test]
async fn no_keys_is_unavailable_so_envoys_failure_mode_applies() {
    let server = Signet::builder().start();
    let sig = token(CURRENT, BODY, URL);
    let status = client(&server)
        .await
        .check(check_request(&[("upstash-signature", &sig)], BODY, None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let mut health = HealthClient::new(server.channel().await);
    let resp = health
        .check(HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.status(), ServingStatus::NotServing);
}

#[tokio::test]
async fn health_and_reflection_know_the_ext_authz_service() {
    let server = Signet::builder().arg("--dev").start();
    let mut health = HealthClient::new(server.channel().await);
    let resp = health
        .check(HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resp.status(), ServingStatus::Serving);

    let names = common::reflection_v1_services(server.channel().await).await;
    assert!(
        names.contains(&"envoy.service.auth.v3.Authorization".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn logs_never_carry_the_signature() {
    let server = Signet::builder()
        .arg("--dev")
        .env("RUST_LOG", "trace")
        .start();
    let sig = token(CURRENT, BODY, URL);
    ok(&check(
        &server,
        check_request(&[("upstash-signature", &sig)], BODY, None),
    )
    .await);
    let forged = token(TEST_CURRENT, BODY, URL);
    check(
        &server,
        check_request(&[("upstash-signature", &forged)], BODY, None),
    )
    .await;
    let logs = server.logs();
    assert!(logs.contains("ext_authz.Check"), "{logs}");
    for secret in [sig.as_str(), forged.as_str(), CURRENT] {
        assert!(!logs.contains(secret), "{logs}");
    }
}
