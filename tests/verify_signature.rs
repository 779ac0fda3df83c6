//! VerifySignature over gRPC against the real binary: every reason, both body
//! modes, bad calls, no keys, --dev, health and reflection.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use signet::{
    proto::{KeySlot, SignatureReason, VerifySignatureRequest},
    verify::{SignOptions, sign, sign_payload},
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn request(signature: &str, body: &[u8], url: &str) -> VerifySignatureRequest {
    VerifySignatureRequest {
        signature: signature.into(),
        body: Some(body.to_vec().into()),
        url: url.into(),
        ..Default::default()
    }
}

/// Claims of a fresh token for the body `{}`, with the given issuer.
fn claims(iss: &str) -> Vec<u8> {
    let body = base64_url(&Sha256::digest(b"{}"));
    let now = now();
    format!(r#"{{"iss":"{iss}","sub":"{URL}","exp":{},"nbf":{now},"iat":{now},"jti":"j","body":"{body}"}}"#, now + 300)
        .into_bytes()
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn timed(key: &str, exp: u64, nbf: u64) -> String {
    sign(
        &common::key(key),
        &SignOptions {
            iss: "Upstash",
            sub: URL,
            exp,
            nbf,
            iat: nbf,
            jti: "j",
            body: b"{}",
        },
    )
}

#[tokio::test]
async fn every_reason_over_grpc() {
    let server = Signet::builder().test_keys().start();
    let mut client = server.client().await;
    let now = now();
    let hs512 = {
        let t = token(TEST_CURRENT, b"{}", URL);
        let (_, rest) = t.split_once('.').unwrap();
        format!("{}.{rest}", base64_url(br#"{"alg":"HS512","typ":"JWT"}"#))
    };
    let cases: Vec<(&str, String, &[u8], &str, SignatureReason)> = vec![
        (
            "current key",
            token(TEST_CURRENT, b"{}", URL),
            b"{}",
            URL,
            SignatureReason::Ok,
        ),
        (
            "next key",
            token(TEST_NEXT, b"{}", URL),
            b"{}",
            URL,
            SignatureReason::Ok,
        ),
        (
            "missing",
            String::new(),
            b"{}",
            URL,
            SignatureReason::Missing,
        ),
        (
            "malformed",
            "not-a-jwt".into(),
            b"{}",
            URL,
            SignatureReason::Malformed,
        ),
        (
            "algorithm",
            hs512,
            b"{}",
            URL,
            SignatureReason::UnsupportedAlgorithm,
        ),
        (
            "unknown key",
            token(CURRENT, b"{}", URL),
            b"{}",
            URL,
            SignatureReason::NoKeyMatched,
        ),
        (
            "expired",
            timed(TEST_CURRENT, now - 1, now - 301),
            b"{}",
            URL,
            SignatureReason::Expired,
        ),
        (
            "early",
            timed(TEST_CURRENT, now + 600, now + 300),
            b"{}",
            URL,
            SignatureReason::NotYetValid,
        ),
        (
            "issuer",
            sign_payload(&common::key(TEST_CURRENT), &claims("upstash")),
            b"{}",
            URL,
            SignatureReason::WrongIssuer,
        ),
        (
            "url",
            token(TEST_CURRENT, b"{}", URL),
            b"{}",
            "https://svc.example/other",
            SignatureReason::UrlMismatch,
        ),
        (
            "body",
            token(TEST_CURRENT, b"{}", URL),
            b"{ }",
            URL,
            SignatureReason::BodyMismatch,
        ),
        (
            "no exp",
            sign_payload(
                &common::key(TEST_CURRENT),
                format!(r#"{{"iss":"Upstash","sub":"{URL}","body":"x"}}"#).as_bytes(),
            ),
            b"{}",
            URL,
            SignatureReason::MissingClaim,
        ),
        (
            "too large",
            "a".repeat(9000),
            b"{}",
            URL,
            SignatureReason::TooLarge,
        ),
    ];
    for (name, signature, body, url, reason) in cases {
        let resp = client
            .verify_signature(request(&signature, body, url))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.reason(), reason, "{name}: {resp:?}");
        assert_eq!(resp.valid, reason == SignatureReason::Ok, "{name}");
        assert!(!resp.message.is_empty(), "{name}");
        if resp.valid {
            let slot = if name == "next key" {
                KeySlot::Next
            } else {
                KeySlot::Current
            };
            assert_eq!(resp.key_slot(), slot, "{name}");
            assert_eq!(resp.claims.as_ref().unwrap().subject, URL);
        } else {
            assert_eq!(resp.key_slot(), KeySlot::Unspecified, "{name}");
        }
    }
}

#[tokio::test]
async fn body_and_digest_give_the_same_verdict() {
    let server = Signet::builder().test_keys().start();
    let mut client = server.client().await;
    let body = vec![7u8; 4096];
    let good = token(TEST_NEXT, &body, URL);
    for (signature, sent) in [(&good, &body[..]), (&good, &body[..4095])] {
        let raw = client
            .verify_signature(request(signature, sent, URL))
            .await
            .unwrap()
            .into_inner();
        let hashed = client
            .verify_signature(VerifySignatureRequest {
                signature: signature.clone(),
                body_sha256: Some(Sha256::digest(sent).to_vec().into()),
                url: URL.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(raw, hashed);
    }
    // Neither body field: an empty body.
    let empty = token(TEST_CURRENT, b"", URL);
    let resp = client
        .verify_signature(VerifySignatureRequest {
            signature: empty,
            url: URL.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(resp.valid, "{resp:?}");
}

#[tokio::test]
async fn bad_calls_are_errors_not_decisions() {
    let server = Signet::builder().test_keys().start();
    let mut client = server.client().await;
    let t = token(TEST_CURRENT, b"x", URL);
    let both = VerifySignatureRequest {
        signature: t.clone(),
        body: Some(b"x".to_vec().into()),
        body_sha256: Some(Sha256::digest(b"x").to_vec().into()),
        ..Default::default()
    };
    let short = VerifySignatureRequest {
        signature: t.clone(),
        body_sha256: Some(vec![0; 31].into()),
        ..Default::default()
    };
    let unknown_set = VerifySignatureRequest {
        key_set: "nope".into(),
        ..request(&t, b"x", URL)
    };
    for req in [both, short, unknown_set] {
        let status = client.verify_signature(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}

async fn health(server: &Signet, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(server.channel().await);
    let resp = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    resp.status()
}

#[tokio::test]
async fn no_keys_is_not_serving_and_unavailable() {
    let server = Signet::builder().start();
    assert_eq!(
        health(&server, "signet.v1.Authorizer").await,
        ServingStatus::NotServing
    );
    assert_eq!(health(&server, "").await, ServingStatus::Serving);
    let mut client = server.client().await;
    let status = client
        .verify_signature(request(&token(TEST_CURRENT, b"", URL), b"", URL))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(server.logs().contains("no signing keys configured"));
}

#[tokio::test]
async fn dev_mode_uses_the_dev_keys_and_says_so() {
    let server = Signet::builder().arg("--dev").start();
    assert_eq!(
        health(&server, "signet.v1.Authorizer").await,
        ServingStatus::Serving
    );
    let mut client = server.client().await;
    let resp = client
        .verify_signature(request(&token(NEXT, b"{}", URL), b"{}", URL))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.valid);
    assert_eq!(resp.key_slot(), KeySlot::Next);
    assert!(server.logs().contains("DEV MODE"), "{}", server.logs());
}

#[tokio::test]
async fn health_reports_serving_with_keys() {
    let server = Signet::builder().test_keys().start();
    assert_eq!(
        health(&server, "signet.v1.Authorizer").await,
        ServingStatus::Serving
    );
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_list_the_services() {
    use tokio_stream::StreamExt;
    let server = Signet::builder().test_keys().start();
    let channel = server.channel().await;
    {
        let names = reflection_v1_services(channel.clone()).await;
        assert!(
            names.contains(&"signet.v1.Authorizer".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_string()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel);
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "signet.v1.VerifySignatureRequest".into(),
            )),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream
            .next()
            .await
            .unwrap()
            .unwrap()
            .message_response
            .unwrap();
        assert!(
            matches!(resp, MessageResponse::FileDescriptorResponse(f) if !f.file_descriptor_proto.is_empty())
        );
    }
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted() {
    let server = Signet::builder()
        .test_keys()
        .env("SIGNET__SERVER__MAX_MESSAGE_BYTES", "4096")
        .start();
    let mut client = server.client().await;
    let body = vec![0u8; 8192];
    let status = client
        .verify_signature(request(&token(TEST_CURRENT, &body, URL), &body, URL))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The server is still serving afterwards.
    let ok = client
        .verify_signature(request(&token(TEST_CURRENT, b"", URL), b"", URL))
        .await
        .unwrap();
    assert!(ok.into_inner().valid);
}
