//! Hostile input against the real server: malformed protobuf, oversized and
//! out-of-range fields, invalid UTF-8, deeply nested and duplicated claims.
//! Every call must be answered with a decision (never "allowed" unless the
//! request really is valid) or with INVALID_ARGUMENT / RESOURCE_EXHAUSTED;
//! afterwards the server is still SERVING, still decides correctly and its
//! memory stays bounded.

mod bearer_support;
mod common;
#[path = "hostile/wire.rs"]
mod wire;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use bytes::Bytes;
use common::*;
use prost::Message;
use sha2::{Digest, Sha256};
use signet::proto::{SignatureReason, VerifySignatureRequest, VerifySignatureResponse};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use wire::{Wire, call};

const VERIFY: &str = "/signet.v1.Authorizer/VerifySignature";

/// What a hostile call must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// A decision that allows: only for requests that are genuinely valid.
    Allowed,
    /// A denial with exactly this reason.
    Denied(SignatureReason),
    /// A denial, whatever the reason.
    AnyDenial,
    /// A decision either way (consistent: allowed iff the reason is OK).
    Decided,
    /// No decision: this status code.
    Refused(Code),
}

struct Case {
    name: &'static str,
    message: Bytes,
    expect: Expect,
}

fn case(name: &'static str, message: Bytes, expect: Expect) -> Case {
    Case {
        name,
        message,
        expect,
    }
}

fn typed(name: &'static str, req: VerifySignatureRequest, expect: Expect) -> Case {
    case(name, req.encode_to_vec().into(), expect)
}

fn request(signature: &str, body: &[u8], url: &str) -> VerifySignatureRequest {
    VerifySignatureRequest {
        signature: signature.into(),
        body: Some(Bytes::copy_from_slice(body)),
        url: url.into(),
        ..Default::default()
    }
}

/// A token MACed with the test key over any header and payload, so the
/// checks after the MAC see hostile claims.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let tag = B64.encode(key(TEST_CURRENT).sign(input.as_bytes()));
    format!("{input}.{tag}")
}

const HS256: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;

/// Valid claims for body `{}` and [`URL`] with one field replaced by `patch`
/// (a JSON fragment like `"exp":"soon"`), appended last so it wins or
/// duplicates.
fn claims_with(patch: &str) -> Vec<u8> {
    let now = now();
    let body = B64.encode(Sha256::digest(b"{}"));
    let mut c = format!(
        r#"{{"iss":"Upstash","sub":"{URL}","exp":{},"nbf":{now},"iat":{now},"jti":"j","body":"{body}""#,
        now + 300
    );
    if !patch.is_empty() {
        c.push(',');
        c.push_str(patch);
    }
    c.push('}');
    c.into_bytes()
}

fn verify_cases() -> Vec<Case> {
    use Expect::*;
    use SignatureReason as R;
    let good = token(TEST_CURRENT, b"{}", URL);
    let good_req = || request(&good, b"{}", URL);
    let mut cases = vec![
        // Control: the hostile suite must be able to tell allowed from denied.
        typed("valid request", good_req(), Allowed),
        // Malformed protobuf.
        case(
            "invalid UTF-8 in signature",
            Wire::new().bytes(1, b"ey\xff\xfe.a.b").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 in url",
            Wire::new()
                .bytes(1, good.as_bytes())
                .bytes(4, b"https://\xc0\x80/")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 in key_set",
            Wire::new().bytes(5, b"\xed\xa0\x80").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 in region",
            Wire::new().bytes(6, b"us\xffeast").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "truncated varint",
            Wire::new().raw(&[0x38, 0xff, 0xff]).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "length past the end",
            Wire::new()
                .varint(1 << 3 | 2)
                .varint(1000)
                .raw(b"short")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "ten-byte length varint",
            Wire::new()
                .raw(&[
                    0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ])
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid wire type 7",
            Wire::new().raw(&[0x0f, 0x00]).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "field number 0",
            Wire::new().raw(&[0x02, 0x00]).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "unmatched end-group",
            Wire::new().raw(&[0x0c]).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "signature sent as varint",
            Wire::new().int(1, 42).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "body sent as varint",
            Wire::new().bytes(1, good.as_bytes()).int(2, 7).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "tolerance sent as bytes",
            Wire::new()
                .bytes(1, good.as_bytes())
                .bytes(7, b"60")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        // Well-formed protobuf with odd content.
        case("empty message", Bytes::new(), Denied(R::Missing)),
        case(
            "unknown fields are ignored",
            Wire::new()
                .raw(&good_req().encode_to_vec())
                .bytes(99, b"x")
                .int(1000, 1)
                .build(),
            Allowed,
        ),
        case(
            "ten thousand unknown fields",
            {
                let mut w = Wire::new().raw(&good_req().encode_to_vec());
                for i in 0..10_000 {
                    w = w.int(100 + i, i);
                }
                w.build()
            },
            Allowed,
        ),
        case(
            "duplicate signature field, forged one last",
            Wire::new()
                .raw(&good_req().encode_to_vec())
                .bytes(1, b"a.b.c")
                .build(),
            AnyDenial,
        ),
        case(
            "duplicate body field, altered one last",
            Wire::new()
                .raw(&good_req().encode_to_vec())
                .bytes(2, b"{\"x\":1}")
                .build(),
            Denied(R::BodyMismatch),
        ),
        case(
            "tolerance beyond u32",
            Wire::new()
                .raw(&good_req().encode_to_vec())
                .int(7, u64::MAX)
                .build(),
            Allowed,
        ),
        // Sizes.
        typed(
            "signature one byte over the limit",
            request(&"a".repeat(8 * 1024 + 1), b"{}", URL),
            Denied(R::TooLarge),
        ),
        typed(
            "signature of 1 MiB",
            request(&"e".repeat(1 << 20), b"{}", URL),
            Denied(R::TooLarge),
        ),
        typed(
            "message over the size limit",
            request(&good, &vec![0; 9 << 20], URL),
            Refused(Code::ResourceExhausted),
        ),
        typed(
            "url of 1 MiB",
            request(&good, b"{}", &"u".repeat(1 << 20)),
            Denied(R::UrlMismatch),
        ),
        typed(
            "key_set of 64 KiB",
            VerifySignatureRequest {
                key_set: "k".repeat(64 << 10),
                ..good_req()
            },
            Refused(Code::InvalidArgument),
        ),
        typed(
            "digest of 31 bytes",
            VerifySignatureRequest {
                body: None,
                body_sha256: Some(Bytes::from(vec![0; 31])),
                ..good_req()
            },
            Refused(Code::InvalidArgument),
        ),
        typed(
            "digest of 33 bytes",
            VerifySignatureRequest {
                body: None,
                body_sha256: Some(Bytes::from(vec![0; 33])),
                ..good_req()
            },
            Refused(Code::InvalidArgument),
        ),
        typed(
            "empty digest",
            VerifySignatureRequest {
                body: None,
                body_sha256: Some(Bytes::new()),
                ..good_req()
            },
            Refused(Code::InvalidArgument),
        ),
        typed(
            "body and digest both",
            VerifySignatureRequest {
                body_sha256: Some(Bytes::from(Sha256::digest(b"{}").to_vec())),
                ..good_req()
            },
            Refused(Code::InvalidArgument),
        ),
        // Token shapes.
        typed("two dots only", request("..", b"{}", URL), AnyDenial),
        typed(
            "four parts",
            request(&format!("{good}.x"), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "ten thousand dots",
            request(&".".repeat(8000), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "whitespace around the token",
            request(&format!(" {good}\n"), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "non-ASCII token",
            request("ëÿ.ü.ß", b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "NUL bytes in the token",
            request(&format!("{good}\0"), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "padded base64",
            request(&format!("{}=", good.split('.').next().unwrap()), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "header is not JSON",
            request(&signed(b"not json", &claims_with("")), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "alg none",
            request(&signed(br#"{"alg":"none"}"#, &claims_with("")), b"{}", URL),
            Denied(R::UnsupportedAlgorithm),
        ),
        typed(
            "alg HS512",
            request(&signed(br#"{"alg":"HS512"}"#, &claims_with("")), b"{}", URL),
            Denied(R::UnsupportedAlgorithm),
        ),
        typed(
            "alg missing",
            request(&signed(br#"{"typ":"JWT"}"#, &claims_with("")), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "alg as a number",
            request(&signed(br#"{"alg":256}"#, &claims_with("")), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "tag of 1000 bytes",
            request(&format!("{}{}", good, "A".repeat(1300)), b"{}", URL),
            AnyDenial,
        ),
        // Claims behind a valid MAC.
        // An unknown claim is ignored however deep it nests: the MAC is genuine.
        typed(
            "claims nested 2000 deep",
            request(
                &signed(
                    HS256,
                    &claims_with(&format!("\"x\":{}{}", "[".repeat(2000), "]".repeat(2000))),
                ),
                b"{}",
                URL,
            ),
            Allowed,
        ),
        typed(
            "duplicate exp claim",
            request(&signed(HS256, &claims_with("\"exp\":1")), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "duplicate iss claim",
            request(&signed(HS256, &claims_with("\"iss\":\"Evil\"")), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "exp as a string",
            request(
                &signed(HS256, &claims_with("\"exp\":\"tomorrow\"")),
                b"{}",
                URL,
            ),
            AnyDenial,
        ),
        typed(
            "exp beyond f64",
            request(
                &signed(HS256, br#"{"iss":"Upstash","exp":1e400}"#),
                b"{}",
                URL,
            ),
            AnyDenial,
        ),
        typed(
            "exp negative",
            request(&signed(HS256, br#"{"iss":"Upstash","exp":-1}"#), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "exp NaN-like",
            request(
                &signed(HS256, br#"{"iss":"Upstash","exp":NaN}"#),
                b"{}",
                URL,
            ),
            Denied(R::Malformed),
        ),
        typed(
            "nbf at u64::MAX",
            request(
                &signed(
                    HS256,
                    format!(
                        r#"{{"iss":"Upstash","exp":{},"nbf":18446744073709551615}}"#,
                        now() + 300
                    )
                    .as_bytes(),
                ),
                b"{}",
                URL,
            ),
            Denied(R::NotYetValid),
        ),
        typed(
            "iss as a number",
            request(
                &signed(HS256, br#"{"iss":1,"exp":99999999999}"#),
                b"{}",
                URL,
            ),
            AnyDenial,
        ),
        typed(
            "claims are an array",
            request(&signed(HS256, b"[1,2,3]"), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "claims are a bare string",
            request(&signed(HS256, b"\"Upstash\""), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "body claim is not base64",
            request(&signed(HS256, &claims_with("\"body\":\"!!!\"")), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "body claim of 5 KiB",
            request(
                &signed(
                    HS256,
                    &claims_with(&format!("\"body\":\"{}\"", "A".repeat(5000))),
                ),
                b"{}",
                URL,
            ),
            AnyDenial,
        ),
        typed(
            "invalid UTF-8 inside the claims",
            request(&signed(HS256, b"{\"iss\":\"Ups\xfftash\"}"), b"{}", URL),
            Denied(R::Malformed),
        ),
        typed(
            "url with a trailing NUL",
            request(&good, b"{}", &format!("{URL}\0")),
            Denied(R::UrlMismatch),
        ),
        typed(
            "body with one extra byte",
            request(&good, b"{} ", URL),
            Denied(R::BodyMismatch),
        ),
    ];
    cases.push(typed(
        "unknown region",
        VerifySignatureRequest {
            region: "MARS-NORTH-1".into(),
            ..good_req()
        },
        Allowed,
    ));
    cases
}

/// Runs every case, then returns a description of each mismatch.
async fn run<R: Message + Default>(
    channel: &Channel,
    path: &'static str,
    cases: Vec<Case>,
    outcome: impl Fn(&R) -> (bool, i32),
    ok: i32,
) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let got = call(channel, path, c.message).await;
        let verdict = match &got {
            Ok(bytes) => match R::decode(bytes.clone()) {
                Ok(response) => {
                    let (allowed, reason) = outcome(&response);
                    if allowed != (reason == ok) {
                        failures.push(format!(
                            "{}: allowed={allowed} with reason {reason}",
                            c.name
                        ));
                    }
                    Ok((allowed, reason))
                }
                Err(e) => {
                    failures.push(format!("{}: undecodable response: {e}", c.name));
                    continue;
                }
            },
            Err(status) => Err(status.code()),
        };
        let fine = match (c.expect, verdict) {
            (Expect::Allowed, Ok((true, _))) => true,
            (Expect::Denied(want), Ok((false, reason))) => reason == want as i32,
            (Expect::AnyDenial, Ok((false, _))) => true,
            (Expect::Decided, Ok(_)) => true,
            (Expect::Refused(want), Err(code)) => code == want,
            _ => false,
        };
        if !fine {
            failures.push(format!(
                "{}: expected {:?}, got {verdict:?}",
                c.name, c.expect
            ));
        }
        if let Err(code) = verdict {
            assert!(
                matches!(code, Code::InvalidArgument | Code::ResourceExhausted),
                "{}: answered {code:?}: a hostile call must get a decision, INVALID_ARGUMENT or RESOURCE_EXHAUSTED",
                c.name
            );
        }
    }
    failures
}

async fn assert_still_serving(server: &Signet, channel: &Channel) {
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "signet.v1.Authorizer".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let mut client = server.client().await;
    let good = token(TEST_CURRENT, b"{}", URL);
    let answer = client
        .verify_signature(request(&good, b"{}", URL))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.valid, "still decides correctly afterwards");
}

#[tokio::test]
async fn verify_signature_survives_hostile_calls() {
    let server = Signet::builder().test_keys().start();
    let channel = server.channel().await;
    let cases = verify_cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let before = rss_kib(server.pid());
    let failures = run::<VerifySignatureResponse>(
        &channel,
        VERIFY,
        cases,
        |r| (r.valid, r.reason),
        SignatureReason::Ok as i32,
    )
    .await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The whole suite again, ten times: memory must not grow with traffic.
    let warm = rss_kib(server.pid());
    for _ in 0..10 {
        run::<VerifySignatureResponse>(
            &channel,
            VERIFY,
            verify_cases(),
            |r| (r.valid, r.reason),
            SignatureReason::Ok as i32,
        )
        .await;
    }
    let after = rss_kib(server.pid());
    println!("RSS: start {before} KiB, after one pass {warm} KiB, after eleven {after} KiB");
    assert!(
        after < warm + 32 * 1024,
        "RSS grew from {warm} KiB to {after} KiB"
    );
    assert_still_serving(&server, &channel).await;
}

const BEARER: &str = "/signet.v1.Authorizer/AuthorizeBearer";
const AUTHORIZE: &str = "/signet.v1.Authorizer/Authorize";
const ISS: &str = "https://auth.example";
const API_KEY: &str = "sk_hostile_0123456789";

fn bearer_config() -> String {
    let digest = hex::encode(Sha256::digest(API_KEY));
    format!(
        r#"
[issuers.auth]
issuer = "{ISS}"
algorithms = ["HS256"]
keys = [{{ algorithm = "HS256", secret = "{secret}" }}]

[policies.api]
require = "bearer"
issuers = ["auth"]
api_keys = [{{ sha256 = "{digest}", subject = "svc", scopes = [] }}]

[policies.both]
require = "both"
issuers = ["auth"]
check_url = true
"#,
        secret = bearer_support::HS_SECRET
    )
}

/// An HS256 JWT over exactly these header and payload bytes, MACed with the
/// issuer's secret: hostile claims behind a genuine signature.
fn jwt_raw(header: &[u8], payload: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(bearer_support::HS_SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn jwt_claims(extra: &str) -> Vec<u8> {
    let now = now();
    format!(
        r#"{{"iss":"{ISS}","sub":"alice","exp":{},"iat":{now}{}{extra}}}"#,
        now + 300,
        if extra.is_empty() { "" } else { "," }
    )
    .into_bytes()
}

fn good_jwt() -> String {
    jwt_raw(br#"{"alg":"HS256","typ":"JWT"}"#, &jwt_claims(""))
}

fn bearer_req(authorization: &str, policy: &str) -> Bytes {
    signet::proto::AuthorizeBearerRequest {
        authorization: authorization.into(),
        policy: policy.into(),
    }
    .encode_to_vec()
    .into()
}

fn bearer_cases() -> Vec<Case> {
    use Expect::*;
    let good = good_jwt();
    let hs = br#"{"alg":"HS256","typ":"JWT"}"#;
    let b = |name, auth: &str, expect| case(name, bearer_req(auth, "api"), expect);
    let signed = |name, header: &[u8], claims: &[u8], expect| {
        case(
            name,
            bearer_req(&format!("Bearer {}", jwt_raw(header, claims)), "api"),
            expect,
        )
    };
    vec![
        b("valid JWT", &format!("Bearer {good}"), Allowed),
        b("valid API key", &format!("Bearer {API_KEY}"), Allowed),
        b("bare API key", API_KEY, Allowed),
        b(
            "lower-case scheme, many spaces",
            &format!("bearer     {good}"),
            Allowed,
        ),
        b("empty", "", AnyDenial),
        b("scheme only", "Bearer", AnyDenial),
        b("scheme and a space", "Bearer ", AnyDenial),
        b("Basic credentials", "Basic dXNlcjpwYXNz", AnyDenial),
        b("two tokens", &format!("Bearer {good} {good}"), AnyDenial),
        b(
            "tab instead of space",
            &format!("Bearer\t{good}"),
            AnyDenial,
        ),
        b(
            "CRLF injection",
            &format!("Bearer {API_KEY}\r\nX-Evil: 1"),
            AnyDenial,
        ),
        b(
            "NUL inside the key",
            &format!("Bearer {API_KEY}\0"),
            AnyDenial,
        ),
        b(
            "API key one byte off",
            &format!("Bearer {}x", &API_KEY[..API_KEY.len() - 1]),
            AnyDenial,
        ),
        b("non-ASCII key", "Bearer ключ", AnyDenial),
        b(
            "credential of 1 MiB",
            &format!("Bearer {}", "a".repeat(1 << 20)),
            AnyDenial,
        ),
        b("only dots", "Bearer .....", AnyDenial),
        b("four JWT parts", &format!("Bearer {good}.x"), AnyDenial),
        b(
            "tampered payload",
            &format!("Bearer {}", {
                let mut p: Vec<&str> = good.split('.').collect();
                let c = B64.encode(jwt_claims("\"admin\":true"));
                p[1] = &c;
                p.join(".")
            }),
            AnyDenial,
        ),
        b(
            "empty JWT signature",
            &format!("Bearer {}.", good.rsplit_once('.').unwrap().0),
            AnyDenial,
        ),
        signed("alg none", br#"{"alg":"none"}"#, &jwt_claims(""), AnyDenial),
        signed(
            "alg HS512 not allowed",
            br#"{"alg":"HS512"}"#,
            &jwt_claims(""),
            AnyDenial,
        ),
        signed(
            "alg as a number",
            br#"{"alg":256}"#,
            &jwt_claims(""),
            AnyDenial,
        ),
        signed("header not JSON", b"not json", &jwt_claims(""), AnyDenial),
        signed(
            "kid of 10 KiB",
            format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(10 << 10)).as_bytes(),
            &jwt_claims(""),
            AnyDenial,
        ),
        signed(
            "wrong issuer",
            hs,
            br#"{"iss":"https://evil.example","exp":99999999999}"#,
            AnyDenial,
        ),
        signed(
            "issuer as a number",
            hs,
            br#"{"iss":1,"exp":99999999999}"#,
            AnyDenial,
        ),
        signed(
            "expired",
            hs,
            format!(r#"{{"iss":"{ISS}","exp":1}}"#).as_bytes(),
            AnyDenial,
        ),
        signed(
            "exp as a string",
            hs,
            &jwt_claims("\"exp\":\"later\""),
            AnyDenial,
        ),
        signed(
            "exp beyond f64",
            hs,
            format!(r#"{{"iss":"{ISS}","exp":1e400}}"#).as_bytes(),
            AnyDenial,
        ),
        signed(
            "exp negative",
            hs,
            format!(r#"{{"iss":"{ISS}","exp":-5}}"#).as_bytes(),
            AnyDenial,
        ),
        signed(
            "exp missing",
            hs,
            format!(r#"{{"iss":"{ISS}"}}"#).as_bytes(),
            AnyDenial,
        ),
        signed(
            "nbf at u64::MAX",
            hs,
            &jwt_claims("\"nbf\":18446744073709551615"),
            AnyDenial,
        ),
        signed(
            "duplicate exp, expired last",
            hs,
            &jwt_claims("\"exp\":1"),
            AnyDenial,
        ),
        signed(
            "claims nested 2000 deep",
            hs,
            &jwt_claims(&format!("\"x\":{}{}", "[".repeat(2000), "]".repeat(2000))),
            Decided,
        ),
        signed("claims are an array", hs, b"[1,2,3]", AnyDenial),
        signed("claims are not UTF-8", hs, b"{\"iss\":\"\xff\"}", AnyDenial),
        signed(
            "scope as a number",
            hs,
            &jwt_claims("\"scope\":42"),
            Decided,
        ),
        signed(
            "audience list of 10k",
            hs,
            &jwt_claims(&format!("\"aud\":[{}]", vec!["\"a\""; 10_000].join(","))),
            Decided,
        ),
        case(
            "signed with another secret",
            bearer_req(
                &format!("Bearer {}", {
                    use hmac::{KeyInit, Mac};
                    let input = format!("{}.{}", B64.encode(hs), B64.encode(jwt_claims("")));
                    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(b"another-secret").unwrap();
                    mac.update(input.as_bytes());
                    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
                }),
                "api",
            ),
            AnyDenial,
        ),
        case(
            "default policy accepts no bearer",
            bearer_req(&format!("Bearer {good}"), ""),
            AnyDenial,
        ),
        case(
            "unknown policy",
            bearer_req(API_KEY, "nope"),
            Refused(Code::InvalidArgument),
        ),
        case(
            "policy of 64 KiB",
            bearer_req(API_KEY, &"p".repeat(64 << 10)),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 credential",
            Wire::new()
                .bytes(1, b"Bearer \xff\xfe")
                .bytes(2, b"api")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 policy",
            Wire::new()
                .bytes(1, API_KEY.as_bytes())
                .bytes(2, b"a\xc3")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "credential as varint",
            Wire::new().int(1, 7).bytes(2, b"api").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "truncated message",
            Wire::new().raw(&[0x0a, 0x50, b'B']).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "unknown fields",
            Wire::new()
                .raw(&bearer_req(API_KEY, "api"))
                .bytes(77, b"x")
                .int(78, 1)
                .build(),
            Allowed,
        ),
        case(
            "duplicate credential, garbage last",
            Wire::new()
                .raw(&bearer_req(API_KEY, "api"))
                .bytes(1, b"Bearer nope")
                .build(),
            AnyDenial,
        ),
        case(
            "message over the size limit",
            bearer_req(&"a".repeat(9 << 20), "api"),
            Refused(Code::ResourceExhausted),
        ),
    ]
}

fn header(name: &str, value: &str) -> signet::proto::HttpHeader {
    signet::proto::HttpHeader {
        name: name.into(),
        value: value.into(),
    }
}

fn authorize_req(
    policy: &str,
    headers: Vec<signet::proto::HttpHeader>,
    body: &[u8],
) -> signet::proto::AuthorizeRequest {
    signet::proto::AuthorizeRequest {
        method: "POST".into(),
        url: URL.into(),
        headers,
        body: Some(Bytes::copy_from_slice(body)),
        policy: policy.into(),
        ..Default::default()
    }
}

fn authorize_cases() -> Vec<Case> {
    use Expect::*;
    let sig = token(TEST_CURRENT, b"{}", URL);
    let jwt = format!("Bearer {}", good_jwt());
    let good = || {
        vec![
            header("Upstash-Signature", &sig),
            header("Authorization", &jwt),
        ]
    };
    let t = |name, req: signet::proto::AuthorizeRequest, expect| {
        case(name, req.encode_to_vec().into(), expect)
    };
    let callback = |body: &[u8]| {
        let cb = token(TEST_CURRENT, body, URL);
        authorize_req(
            "both",
            vec![
                header("upstash-signature", &cb),
                header("Upstash-Workflow-Is-Failure", "true"),
            ],
            body,
        )
    };
    let mut many = good();
    many.extend((0..10_000).map(|i| header(&format!("x-h{i}"), "v")));
    vec![
        t(
            "valid signature and bearer",
            authorize_req("both", good(), b"{}"),
            Allowed,
        ),
        t(
            "header names in upper case",
            authorize_req(
                "both",
                vec![
                    header("UPSTASH-SIGNATURE", &sig),
                    header("AUTHORIZATION", &jwt),
                ],
                b"{}",
            ),
            Allowed,
        ),
        t(
            "ten thousand extra headers",
            authorize_req("both", many, b"{}"),
            Allowed,
        ),
        t(
            "no headers",
            authorize_req("both", vec![], b"{}"),
            AnyDenial,
        ),
        t(
            "empty request, default policy",
            signet::proto::AuthorizeRequest::default(),
            AnyDenial,
        ),
        t(
            "signature only on a both policy",
            authorize_req("both", vec![header("upstash-signature", &sig)], b"{}"),
            AnyDenial,
        ),
        t(
            "bearer only on a both policy",
            authorize_req("both", vec![header("authorization", &jwt)], b"{}"),
            AnyDenial,
        ),
        t(
            "body altered",
            authorize_req("both", good(), b"{ }"),
            AnyDenial,
        ),
        t(
            "url altered",
            signet::proto::AuthorizeRequest {
                url: format!("{URL}/x"),
                ..authorize_req("both", good(), b"{}")
            },
            AnyDenial,
        ),
        t(
            "url of 1 MiB",
            signet::proto::AuthorizeRequest {
                url: "u".repeat(1 << 20),
                ..authorize_req("both", good(), b"{}")
            },
            AnyDenial,
        ),
        t(
            "method of 64 KiB",
            signet::proto::AuthorizeRequest {
                method: "M".repeat(64 << 10),
                ..authorize_req("both", good(), b"{}")
            },
            Decided,
        ),
        t(
            "duplicate signature headers, forged first",
            authorize_req(
                "both",
                vec![
                    header("upstash-signature", "a.b.c"),
                    header("upstash-signature", &sig),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            Decided,
        ),
        t(
            "duplicate authorization headers, bad first",
            authorize_req(
                "both",
                vec![
                    header("upstash-signature", &sig),
                    header("authorization", "Bearer nope"),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            Decided,
        ),
        t(
            "empty header name",
            authorize_req(
                "both",
                vec![header("", &sig), header("authorization", &jwt)],
                b"{}",
            ),
            AnyDenial,
        ),
        t(
            "header name with spaces",
            authorize_req(
                "both",
                vec![
                    header("upstash signature", &sig),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            AnyDenial,
        ),
        t(
            "header value of 1 MiB",
            authorize_req(
                "both",
                vec![
                    header("upstash-signature", &"s".repeat(1 << 20)),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            AnyDenial,
        ),
        t(
            "signature header with CRLF",
            authorize_req(
                "both",
                vec![
                    header("upstash-signature", &format!("{sig}\r\nx: y")),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            AnyDenial,
        ),
        t(
            "body and digest both",
            signet::proto::AuthorizeRequest {
                body_sha256: Some(Bytes::from(Sha256::digest(b"{}").to_vec())),
                ..authorize_req("both", good(), b"{}")
            },
            Refused(Code::InvalidArgument),
        ),
        t(
            "digest of 31 bytes",
            signet::proto::AuthorizeRequest {
                body: None,
                body_sha256: Some(Bytes::from(vec![0; 31])),
                ..authorize_req("both", good(), b"{}")
            },
            Refused(Code::InvalidArgument),
        ),
        t(
            "digest instead of body",
            signet::proto::AuthorizeRequest {
                body: None,
                body_sha256: Some(Bytes::from(Sha256::digest(b"{}").to_vec())),
                ..authorize_req("both", good(), b"{}")
            },
            Allowed,
        ),
        t(
            "unknown policy",
            authorize_req("nope", good(), b"{}"),
            Refused(Code::InvalidArgument),
        ),
        t(
            "unknown key set",
            signet::proto::AuthorizeRequest {
                key_set: "nope".into(),
                ..authorize_req("both", good(), b"{}")
            },
            Refused(Code::InvalidArgument),
        ),
        t(
            "unknown region header",
            authorize_req(
                "both",
                {
                    let mut h = good();
                    h.push(header("upstash-region", "MARS-1"));
                    h
                },
                b"{}",
            ),
            Decided,
        ),
        t(
            "message over the size limit",
            authorize_req("both", good(), &vec![0; 9 << 20]),
            Refused(Code::ResourceExhausted),
        ),
        // Failure callbacks.
        t(
            "unsigned failure callback",
            authorize_req(
                "both",
                vec![
                    header("Upstash-Workflow-Is-Failure", "true"),
                    header("authorization", &jwt),
                ],
                b"{}",
            ),
            AnyDenial,
        ),
        t(
            "failure callback without credential",
            callback(b"{}"),
            AnyDenial,
        ),
        t(
            "failure callback, body not JSON",
            callback(b"\xff\xfe not json"),
            AnyDenial,
        ),
        t(
            "failure callback, sourceHeader a string",
            callback(br#"{"sourceHeader":"Bearer x"}"#),
            AnyDenial,
        ),
        t(
            "failure callback, authorization a number",
            callback(br#"{"sourceHeader":{"Authorization":42}}"#),
            AnyDenial,
        ),
        t(
            "failure callback, empty array",
            callback(br#"{"sourceHeader":{"Authorization":[]}}"#),
            AnyDenial,
        ),
        t(
            "failure callback, wrong credential in body",
            callback(br#"{"sourceHeader":{"Authorization":["Bearer nope"]}}"#),
            AnyDenial,
        ),
        t(
            "failure callback, credential in body",
            callback(format!(r#"{{"sourceHeader":{{"Authorization":["{jwt}"]}}}}"#).as_bytes()),
            Allowed,
        ),
        t(
            "failure callback, body nested 5000 deep",
            callback(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).as_bytes()),
            AnyDenial,
        ),
        t(
            "failure callback, 100k-entry sourceHeader",
            callback(
                format!(
                    r#"{{"sourceHeader":{{{}}}}}"#,
                    (0..100_000)
                        .map(|i| format!("\"h{i}\":[\"v\"]"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
                .as_bytes(),
            ),
            AnyDenial,
        ),
        t(
            "failure-callback header not true",
            authorize_req(
                "both",
                {
                    let mut h = good();
                    h.push(header("Upstash-Workflow-Is-Failure", "yes"));
                    h
                },
                b"{}",
            ),
            Allowed,
        ),
        // Malformed protobuf.
        case(
            "invalid UTF-8 header name",
            Wire::new()
                .bytes(3, &Wire::new().bytes(1, b"\xff").bytes(2, b"v").build())
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 header value",
            Wire::new()
                .bytes(
                    3,
                    &Wire::new()
                        .bytes(1, b"authorization")
                        .bytes(2, b"Bearer \xc0")
                        .build(),
                )
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 method",
            Wire::new().bytes(1, b"P\xffST").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 url",
            Wire::new().bytes(2, b"https://\xfe").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "invalid UTF-8 policy",
            Wire::new().bytes(6, b"\xe2\x28").build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "header sent as varint",
            Wire::new().int(3, 1).build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "header message truncated",
            Wire::new()
                .raw(&[0x1a, 0x05, 0x0a, 0x10])
                .raw(b"abc")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "unknown fields everywhere",
            Wire::new()
                .raw(&authorize_req("both", good(), b"{}").encode_to_vec())
                .bytes(3, &Wire::new().bytes(9, b"x").build())
                .int(99, 1)
                .build(),
            Decided,
        ),
    ]
}

#[tokio::test]
async fn authorize_bearer_and_authorize_survive_hostile_calls() {
    let (_dir, path) = bearer_support::config_file(&bearer_config());
    let server = Signet::builder()
        .test_keys()
        .arg("--config")
        .arg(path)
        .start();
    let channel = server.channel().await;
    let (bearer, authorize) = (bearer_cases(), authorize_cases());
    assert!(
        bearer.len() >= 40,
        "only {} AuthorizeBearer cases",
        bearer.len()
    );
    assert!(
        authorize.len() >= 40,
        "only {} Authorize cases",
        authorize.len()
    );
    let mut failures = run::<signet::proto::AuthorizeBearerResponse>(
        &channel,
        BEARER,
        bearer,
        |r| (r.allowed, r.reason),
        signet::proto::BearerReason::Ok as i32,
    )
    .await;
    failures.extend(
        run::<signet::proto::AuthorizeResponse>(
            &channel,
            AUTHORIZE,
            authorize,
            |r| (r.allowed, r.reason),
            signet::proto::AuthorizeReason::Ok as i32,
        )
        .await,
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let warm = rss_kib(server.pid());
    for _ in 0..5 {
        run::<signet::proto::AuthorizeBearerResponse>(
            &channel,
            BEARER,
            bearer_cases(),
            |r| (r.allowed, r.reason),
            signet::proto::BearerReason::Ok as i32,
        )
        .await;
        run::<signet::proto::AuthorizeResponse>(
            &channel,
            AUTHORIZE,
            authorize_cases(),
            |r| (r.allowed, r.reason),
            signet::proto::AuthorizeReason::Ok as i32,
        )
        .await;
    }
    let after = rss_kib(server.pid());
    println!("RSS after one pass {warm} KiB, after six {after} KiB");
    assert!(
        after < warm + 64 * 1024,
        "RSS grew from {warm} KiB to {after} KiB"
    );
    assert_still_serving(&server, &channel).await;
}
