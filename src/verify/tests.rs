use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;

use super::*;
use crate::{keys::SigningKey, secret::Secret};

#[derive(Deserialize)]
struct Conformance {
    current_signing_key: String,
    next_signing_key: String,
    now: u64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    signature: String,
    body_b64: String,
    url: String,
    expect_valid: bool,
    slot: String,
}

fn conformance() -> Conformance {
    let text = include_str!("../../tests/fixtures/qstash-signatures.json");
    serde_json::from_str(text).unwrap()
}

fn pair(current: &str, next: &str) -> KeyPair {
    KeyPair {
        current: SigningKey::new(Secret::new(current)).unwrap(),
        next: SigningKey::new(Secret::new(next)).unwrap(),
    }
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

#[test]
fn conformance_cases_in_both_body_modes() {
    let c = conformance();
    let keys = pair(&c.current_signing_key, &c.next_signing_key);
    assert_eq!(c.cases.len(), 19);
    for case in &c.cases {
        let body = STANDARD.decode(&case.body_b64).unwrap();
        let digest: [u8; 32] = Sha256::digest(&body).into();
        for body in [Body::Raw(&body), Body::Sha256(&digest)] {
            let verdict = verify(&check(&case.signature, body, &case.url), &keys, c.now);
            assert_eq!(
                verdict.is_valid(),
                case.expect_valid,
                "{}: {verdict:?}",
                case.name
            );
            let slot = match verdict.key_slot {
                Some(KeySlot::Current) => "current",
                Some(KeySlot::Next) => "next",
                None => "",
            };
            assert_eq!(slot, case.slot, "{}", case.name);
        }
    }
}

#[test]
fn conformance_reasons() {
    let c = conformance();
    let keys = pair(&c.current_signing_key, &c.next_signing_key);
    let expected = [
        ("url with extra trailing slash", Reason::UrlMismatch),
        ("body changed by one byte", Reason::BodyMismatch),
        ("body re-serialised with spaces", Reason::BodyMismatch),
        ("signed with an unknown key", Reason::NoKeyMatched),
        ("expired", Reason::Expired),
        ("not yet valid", Reason::NotYetValid),
        ("issuer lower-case", Reason::WrongIssuer),
        ("issuer missing", Reason::WrongIssuer),
        ("alg none", Reason::UnsupportedAlgorithm),
        ("HS512 with the current key", Reason::UnsupportedAlgorithm),
        ("exp missing", Reason::MissingClaim),
        ("not a JWT", Reason::Malformed),
        ("empty signature", Reason::Missing),
        ("next key, body mismatch", Reason::BodyMismatch),
    ];
    for (name, reason) in expected {
        let case = c.cases.iter().find(|k| k.name == name).unwrap();
        let body = STANDARD.decode(&case.body_b64).unwrap();
        let verdict = verify(
            &check(&case.signature, Body::Raw(&body), &case.url),
            &keys,
            c.now,
        );
        assert_eq!(verdict.reason, reason, "{name}");
    }
}

#[test]
fn the_shared_conformance_file_is_the_fixture() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/qstash-signatures.json");
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text,
            include_str!("../../tests/fixtures/qstash-signatures.json"),
            "tests/fixtures/qstash-signatures.json is out of date"
        );
    }
}

const NOW: u64 = 1_800_000_000;

fn token(key: &str, body: &[u8], exp: u64, nbf: u64) -> String {
    let key = SigningKey::new(Secret::new(key)).unwrap();
    sign(
        &key,
        &SignOptions {
            iss: "Upstash",
            sub: "https://svc.test/hook",
            exp,
            nbf,
            iat: nbf,
            jti: "jwt_test",
            body,
        },
    )
}

#[test]
fn signed_tokens_verify_and_report_claims() {
    let keys = pair("k_current", "k_next");
    let t = token("k_next", b"{}", NOW + 300, NOW);
    let v = verify(
        &check(&t, Body::Raw(b"{}"), "https://svc.test/hook"),
        &keys,
        NOW,
    );
    assert_eq!(v.reason, Reason::Ok);
    assert_eq!(v.key_slot, Some(KeySlot::Next));
    let claims = v.claims.unwrap();
    assert_eq!(claims.subject, "https://svc.test/hook");
    assert_eq!(claims.expires_at, (NOW + 300) as i64);
    assert_eq!(claims.jwt_id, "jwt_test");
}

#[test]
fn clock_tolerance_applies_to_exp_and_nbf() {
    let keys = pair("k", "n");
    let expired = token("k", b"", NOW - 5, NOW - 300);
    let early = token("k", b"", NOW + 300, NOW + 5);
    for (t, reason) in [(&expired, Reason::Expired), (&early, Reason::NotYetValid)] {
        let mut c = check(t, Body::Raw(b""), "");
        assert_eq!(verify(&c, &keys, NOW).reason, reason);
        c.clock_tolerance = 5;
        assert_eq!(
            verify(&c, &keys, NOW).reason,
            if reason == Reason::Expired {
                Reason::Expired
            } else {
                Reason::Ok
            }
        );
        c.clock_tolerance = 6;
        assert_eq!(verify(&c, &keys, NOW).reason, Reason::Ok);
    }
    // exp is exclusive: a token is dead at its exp second.
    let at_exp = token("k", b"", NOW, NOW - 300);
    assert_eq!(
        verify(&check(&at_exp, Body::Raw(b""), ""), &keys, NOW).reason,
        Reason::Expired
    );
}

#[test]
fn too_large_and_malformed_are_decisions() {
    let keys = pair("k", "n");
    let huge = "a".repeat(9000);
    assert_eq!(
        verify(&check(&huge, Body::Raw(b""), ""), &keys, NOW).reason,
        Reason::TooLarge
    );
    for bad in [
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        "e30.e30.",
        "bm90IGpzb24.e30.xx",
        "eyJhbGciOjF9.e30.xx",
    ] {
        let v = verify(&check(bad, Body::Raw(b""), ""), &keys, NOW);
        assert!(
            matches!(v.reason, Reason::Malformed | Reason::NoKeyMatched),
            "{bad}: {v:?}"
        );
        assert!(v.claims.is_none());
    }
}

fn signed_with_payload(key: &str, payload: &str) -> String {
    let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = B64URL.encode(payload);
    let input = format!("{header}.{payload}");
    let tag = SigningKey::new(Secret::new(key))
        .unwrap()
        .sign(input.as_bytes());
    format!("{input}.{}", B64URL.encode(tag))
}

#[test]
fn badly_typed_or_duplicate_claims_are_malformed() {
    let keys = pair("k", "n");
    let body = B64URL.encode(Sha256::digest(b""));
    for payload in [
        format!(
            r#"{{"iss":"Upstash","exp":"{}","body":"{body}"}}"#,
            NOW + 60
        ),
        format!(
            r#"{{"iss":"Upstash","exp":{},"exp":{},"body":"{body}"}}"#,
            NOW + 60,
            NOW + 60
        ),
        format!(
            r#"{{"iss":["Upstash"],"exp":{},"body":"{body}"}}"#,
            NOW + 60
        ),
        "[]".to_string(),
        "null".to_string(),
    ] {
        let t = signed_with_payload("k", &payload);
        assert_eq!(
            verify(&check(&t, Body::Raw(b""), ""), &keys, NOW).reason,
            Reason::Malformed,
            "{payload}"
        );
    }
    let ok = signed_with_payload(
        "k",
        &format!(
            r#"{{"iss":"Upstash","exp":{},"body":"{body}","extra":{{"a":[1]}}}}"#,
            NOW + 60
        ),
    );
    assert_eq!(
        verify(&check(&ok, Body::Raw(b""), ""), &keys, NOW).reason,
        Reason::Ok
    );
    let no_body = signed_with_payload("k", &format!(r#"{{"iss":"Upstash","exp":{}}}"#, NOW + 60));
    assert_eq!(
        verify(&check(&no_body, Body::Raw(b""), ""), &keys, NOW).reason,
        Reason::MissingClaim
    );
    let std_b64 = signed_with_payload(
        "k",
        &format!(
            r#"{{"iss":"Upstash","exp":{},"body":"{}"}}"#,
            NOW + 60,
            STANDARD.encode(Sha256::digest(b"\xfb\xff"))
        ),
    );
    let v = verify(&check(&std_b64, Body::Raw(b"\xfb\xff"), ""), &keys, NOW);
    assert_eq!(
        v.reason,
        Reason::BodyMismatch,
        "standard base64 must not match"
    );
}

#[test]
fn any_single_byte_change_to_the_token_is_rejected() {
    let keys = pair("k", "n");
    let t = token("k", b"payload", NOW + 60, NOW);
    let bytes = t.as_bytes();
    for i in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).unwrap();
        let v = verify(&check(&changed, Body::Raw(b"payload"), ""), &keys, NOW);
        assert!(!v.is_valid(), "byte {i} changed but still valid");
    }
}

#[test]
fn the_header_fast_path_is_the_hs256_header() {
    let decoded = B64URL.decode(QSTASH_HEADER).unwrap();
    let header: Header<'_> = serde_json::from_slice(&decoded).unwrap();
    assert_eq!(header.alg, "HS256");
    // Any other spelling of the same header still goes through the parser.
    let keys = pair("k1", "k2");
    let spaced = B64URL.encode(br#"{"alg": "HS256", "typ": "JWT"}"#);
    let token = sign(
        &keys.current,
        &SignOptions {
            iss: "Upstash",
            sub: "",
            exp: 200,
            nbf: 0,
            iat: 0,
            jti: "j",
            body: b"",
        },
    );
    let payload = token.split('.').nth(1).unwrap();
    let input = format!("{spaced}.{payload}");
    let tag = B64URL.encode(keys.current.sign(input.as_bytes()));
    let other = format!("{input}.{tag}");
    assert!(verify(&check(&other, Body::Raw(b""), ""), &keys, 100).is_valid());
}

#[test]
fn a_payload_larger_than_the_stack_buffer_still_verifies() {
    let keys = pair("k", "n");
    let url = format!("https://svc.test/{}", "a".repeat(3000));
    let token = sign(
        &keys.current,
        &SignOptions {
            iss: "Upstash",
            sub: &url,
            exp: NOW + 60,
            nbf: NOW,
            iat: NOW,
            jti: "jwt_long",
            body: b"b",
        },
    );
    let v = verify(&check(&token, Body::Raw(b"b"), &url), &keys, NOW);
    assert!(v.is_valid(), "{v:?}");
    assert_eq!(v.claims.unwrap().subject, url);
}
