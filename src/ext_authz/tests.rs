use std::collections::HashMap;

use super::*;
use crate::envoy_proto::envoy::{
    config::core::v3::HeaderMap,
    service::auth::v3::{AttributeContext, attribute_context::Request},
};

fn check(http: attribute_context::HttpRequest, extensions: &[(&str, &str)]) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request { http: Some(http) }),
            context_extensions: extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }),
    }
}

fn http(headers: &[(&str, &str)]) -> attribute_context::HttpRequest {
    attribute_context::HttpRequest {
        method: "POST".into(),
        path: "/api/workflow?x=1".into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    }
}

#[test]
fn maps_policy_method_path_and_headers() {
    let req = HttpRequest::from_check(check(
        http(&[("upstash-signature", "t"), ("Authorization", "Bearer x")]),
        &[(POLICY_EXTENSION, "workflows"), ("other", "y")],
    ));
    assert_eq!(req.policy, "workflows");
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/api/workflow?x=1");
    assert_eq!(req.header("upstash-signature"), Some("t"));
    assert_eq!(req.header("authorization"), Some("Bearer x"));
}

#[test]
fn an_empty_check_request_is_an_empty_request_with_the_default_policy() {
    let req = HttpRequest::from_check(CheckRequest::default());
    assert_eq!(req, HttpRequest::default());
}

#[test]
fn raw_body_wins_over_body() {
    let mut h = http(&[]);
    h.body = "as string".into();
    h.raw_body = Bytes::from_static(b"\xff raw");
    assert_eq!(
        HttpRequest::from_check(check(h.clone(), &[])).body,
        Bytes::from_static(b"\xff raw")
    );
    h.raw_body = Bytes::new();
    assert_eq!(
        HttpRequest::from_check(check(h, &[])).body,
        Bytes::from_static(b"as string")
    );
}

#[test]
fn raw_header_map_is_read_when_headers_are_empty() {
    let mut h = http(&[]);
    h.header_map = Some(HeaderMap {
        headers: vec![
            HeaderValue {
                key: "Upstash-Signature".into(),
                value: String::new(),
                raw_value: b"raw-token".to_vec(),
            },
            HeaderValue {
                key: "upstash-region".into(),
                value: "EU_CENTRAL_1".into(),
                raw_value: Vec::new(),
            },
        ],
    });
    let req = HttpRequest::from_check(check(h, &[]));
    assert_eq!(req.header("upstash-signature"), Some("raw-token"));
    assert_eq!(req.header("upstash-region"), Some("EU_CENTRAL_1"));
}

fn ok(resp: &CheckResponse) -> &OkHttpResponse {
    match &resp.http_response {
        Some(check_response::HttpResponse::OkResponse(ok)) => ok,
        other => panic!("not ok: {other:?}"),
    }
}

fn denied(resp: &CheckResponse) -> &DeniedHttpResponse {
    match &resp.http_response {
        Some(check_response::HttpResponse::DeniedResponse(d)) => d,
        other => panic!("not denied: {other:?}"),
    }
}

fn set_headers(ok: &OkHttpResponse) -> Vec<(String, String, i32)> {
    ok.headers
        .iter()
        .map(|o| {
            let h = o.header.as_ref().unwrap();
            (h.key.clone(), h.value.clone(), o.append_action)
        })
        .collect()
}

#[test]
fn allowed_sets_signet_headers_and_removes_the_others() {
    let resp = check_response(&Decision::Allow(Allowed {
        subject: None,
        key_slot: Some(KeySlot::Next),
        failure_callback: false,
        remove_authorization: false,
    }));
    assert_eq!(resp.status.as_ref().unwrap().code, 0);
    let ok = ok(&resp);
    let overwrite = header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    assert_eq!(
        set_headers(ok),
        vec![(KEY_SLOT_HEADER.to_owned(), "next".to_owned(), overwrite)]
    );
    assert_eq!(
        ok.headers_to_remove,
        vec![SUBJECT_HEADER, FAILURE_CALLBACK_HEADER]
    );
}

#[test]
fn allowed_with_subject_failure_callback_and_authorization_removed() {
    let resp = check_response(&Decision::Allow(Allowed {
        subject: Some("user-1".into()),
        key_slot: Some(KeySlot::Current),
        failure_callback: true,
        remove_authorization: true,
    }));
    let ok = ok(&resp);
    let keys: Vec<_> = set_headers(ok)
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    assert_eq!(
        keys,
        vec![
            (SUBJECT_HEADER.to_owned(), "user-1".to_owned()),
            (KEY_SLOT_HEADER.to_owned(), "current".to_owned()),
            (FAILURE_CALLBACK_HEADER.to_owned(), "true".to_owned()),
        ]
    );
    assert_eq!(ok.headers_to_remove, vec!["authorization"]);
}

#[test]
fn denials_map_to_401_and_403_with_a_json_body() {
    for (kind, rpc, http, error) in [
        (DenyKind::Unauthenticated, 16, 401, "unauthenticated"),
        (DenyKind::Forbidden, 7, 403, "forbidden"),
    ] {
        let resp = check_response(&Decision::Deny(Denied {
            kind,
            reason: "signature_missing",
        }));
        assert_eq!(resp.status.as_ref().unwrap().code, rpc);
        let d = denied(&resp);
        assert_eq!(d.status.unwrap().code, http);
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": error, "reason": "signature_missing"})
        );
        assert_eq!(
            d.headers[0].header.as_ref().unwrap().value,
            "application/json"
        );
    }
}

fn denied_by(
    reason: AuthorizeReason,
    signature: Option<SignatureReason>,
    bearer: Option<BearerReason>,
) -> Decision {
    Decision::from_authorize(&proto::AuthorizeResponse {
        allowed: false,
        reason: reason as i32,
        signature: signature.map(|r| proto::VerifySignatureResponse {
            reason: r as i32,
            ..Default::default()
        }),
        bearer: bearer.map(|r| proto::AuthorizeBearerResponse {
            reason: r as i32,
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn deny(kind: DenyKind, reason: &'static str) -> Decision {
    Decision::Deny(Denied { kind, reason })
}

#[test]
fn allowed_responses_carry_subject_key_slot_and_failure_callback() {
    let allowed = proto::AuthorizeResponse {
        allowed: true,
        reason: AuthorizeReason::Ok as i32,
        failure_callback: true,
        signature: Some(proto::VerifySignatureResponse {
            valid: true,
            key_slot: proto::KeySlot::Next as i32,
            ..Default::default()
        }),
        subject: "svc-a".into(),
        ..Default::default()
    };
    assert_eq!(
        Decision::from_authorize(&allowed),
        Decision::Allow(Allowed {
            subject: Some("svc-a".into()),
            key_slot: Some(KeySlot::Next),
            failure_callback: true,
            remove_authorization: false,
        })
    );
    let bearer_only = proto::AuthorizeResponse {
        allowed: true,
        ..Default::default()
    };
    assert_eq!(
        Decision::from_authorize(&bearer_only),
        Decision::Allow(Allowed::default())
    );
}

#[test]
fn denied_responses_map_to_401_or_403_with_a_reason() {
    use DenyKind::{Forbidden, Unauthenticated};
    let cases = [
        (
            denied_by(
                AuthorizeReason::SignatureDenied,
                Some(SignatureReason::NoKeyMatched),
                None,
            ),
            deny(Unauthenticated, "signature_no_key_matched"),
        ),
        (
            denied_by(
                AuthorizeReason::BearerDenied,
                Some(SignatureReason::Ok),
                Some(BearerReason::Missing),
            ),
            deny(Unauthenticated, "bearer_missing"),
        ),
        (
            denied_by(
                AuthorizeReason::BearerDenied,
                None,
                Some(BearerReason::UnknownApiKey),
            ),
            deny(Unauthenticated, "bearer_unknown_api_key"),
        ),
        (
            denied_by(
                AuthorizeReason::BearerDenied,
                None,
                Some(BearerReason::MissingScope),
            ),
            deny(Forbidden, "bearer_missing_scope"),
        ),
        (
            denied_by(
                AuthorizeReason::BearerDenied,
                None,
                Some(BearerReason::KindNotAllowed),
            ),
            deny(Forbidden, "bearer_kind_not_allowed"),
        ),
        (
            denied_by(
                AuthorizeReason::NoCheckPassed,
                Some(SignatureReason::Missing),
                Some(BearerReason::Missing),
            ),
            deny(Unauthenticated, "no_check_passed"),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}
