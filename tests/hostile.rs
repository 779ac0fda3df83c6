//! Hostile input against the real server: malformed protobuf, oversized and
//! out-of-range fields, invalid UTF-8, deeply nested and duplicated claims,
//! for `signet.v1.Authorizer`, Envoy's ext_authz `Check` and `KeyAdmin`.
//! Every call must be answered with a decision (never "allowed" unless the
//! request really is valid) or with INVALID_ARGUMENT / RESOURCE_EXHAUSTED
//! (`KeyAdmin`: a status, or the documented refusal); afterwards the server
//! is still SERVING, still decides correctly, its memory stays bounded, and
//! no refused `KeyAdmin` call changed the active keys.

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
    /// A denial with exactly this reason (the RPC's reason enum as a number;
    /// for Envoy `Check` the `google.rpc.Code` of the `CheckResponse`).
    Denied(i32),
    /// A denial, whatever the reason.
    AnyDenial,
    /// A decision either way (consistent: allowed iff the reason is OK).
    Decided,
    /// A response, for RPCs that report rather than decide (`KeyAdmin`).
    Answered,
    /// No decision: this status code.
    Refused(Code),
}

/// Changes the world before a call, e.g. what a key source serves.
type Arrange = Box<dyn Fn()>;

struct Case {
    name: &'static str,
    message: Bytes,
    /// Request headers, values as raw bytes.
    metadata: Vec<(&'static str, Vec<u8>)>,
    arrange: Option<Arrange>,
    expect: Expect,
}

fn case(name: &'static str, message: Bytes, expect: Expect) -> Case {
    Case {
        name,
        message,
        metadata: Vec::new(),
        arrange: None,
        expect,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.metadata.push((name, value.into()));
        self
    }

    fn arrange(mut self, f: impl Fn() + 'static) -> Self {
        self.arrange = Some(Box::new(f));
        self
    }
}

/// The only errors a hostile call to `signet.v1.Authorizer` or Envoy
/// `Check` may get instead of a decision.
const NO_DECISION: &[Code] = &[Code::InvalidArgument, Code::ResourceExhausted];

/// Protobuf that no message type can decode, whatever its fields: every
/// suite sends all of them, and each must be refused with INVALID_ARGUMENT.
/// There are two truncated varints because fields 7 and 2 are known varint
/// fields of some requests (`clock_tolerance_seconds`, `force`) and unknown
/// to others: between them they reach both the decoder's field path and its
/// skip path.
fn malformed_protobuf() -> Vec<Case> {
    let refused = Expect::Refused(Code::InvalidArgument);
    [
        (
            "truncated varint in field 7",
            Wire::new().raw(&[0x38, 0xff, 0xff]),
        ),
        (
            "truncated varint in field 2",
            Wire::new().raw(&[0x10, 0xff]),
        ),
        ("truncated length varint", Wire::new().raw(&[0x0a, 0x80])),
        (
            "length past the end",
            Wire::new().varint(1 << 3 | 2).varint(1000).raw(b"short"),
        ),
        (
            "ten-byte length varint",
            Wire::new().raw(&[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ]),
        ),
        ("invalid wire type 7", Wire::new().raw(&[0x0f, 0x00])),
        ("field number 0", Wire::new().raw(&[0x02, 0x00])),
        ("unmatched end-group", Wire::new().raw(&[0x0c])),
        (
            "unknown groups nested 500 deep",
            Wire::new()
                .raw(&[0x9b, 0x06].repeat(500))
                .raw(&[0x9c, 0x06].repeat(500)),
        ),
    ]
    .into_iter()
    .map(|(name, wire)| case(name, wire.build(), refused))
    .collect()
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
        case("empty message", Bytes::new(), Denied(R::Missing as i32)),
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
            Denied(R::BodyMismatch as i32),
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
            Denied(R::TooLarge as i32),
        ),
        typed(
            "signature of 1 MiB",
            request(&"e".repeat(1 << 20), b"{}", URL),
            Denied(R::TooLarge as i32),
        ),
        typed(
            "message over the size limit",
            request(&good, &vec![0; 9 << 20], URL),
            Refused(Code::ResourceExhausted),
        ),
        typed(
            "url of 1 MiB",
            request(&good, b"{}", &"u".repeat(1 << 20)),
            Denied(R::UrlMismatch as i32),
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
            Denied(R::Malformed as i32),
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
            Denied(R::Malformed as i32),
        ),
        typed(
            "NUL bytes in the token",
            request(&format!("{good}\0"), b"{}", URL),
            AnyDenial,
        ),
        typed(
            "padded base64",
            request(&format!("{}=", good.split('.').next().unwrap()), b"{}", URL),
            Denied(R::Malformed as i32),
        ),
        typed(
            "header is not JSON",
            request(&signed(b"not json", &claims_with("")), b"{}", URL),
            Denied(R::Malformed as i32),
        ),
        typed(
            "alg none",
            request(&signed(br#"{"alg":"none"}"#, &claims_with("")), b"{}", URL),
            Denied(R::UnsupportedAlgorithm as i32),
        ),
        typed(
            "alg HS512",
            request(&signed(br#"{"alg":"HS512"}"#, &claims_with("")), b"{}", URL),
            Denied(R::UnsupportedAlgorithm as i32),
        ),
        typed(
            "alg missing",
            request(&signed(br#"{"typ":"JWT"}"#, &claims_with("")), b"{}", URL),
            Denied(R::Malformed as i32),
        ),
        typed(
            "alg as a number",
            request(&signed(br#"{"alg":256}"#, &claims_with("")), b"{}", URL),
            Denied(R::Malformed as i32),
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
            Denied(R::Malformed as i32),
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
            Denied(R::NotYetValid as i32),
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
            Denied(R::Malformed as i32),
        ),
        typed(
            "claims are a bare string",
            request(&signed(HS256, b"\"Upstash\""), b"{}", URL),
            Denied(R::Malformed as i32),
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
            Denied(R::Malformed as i32),
        ),
        typed(
            "url with a trailing NUL",
            request(&good, b"{}", &format!("{URL}\0")),
            Denied(R::UrlMismatch as i32),
        ),
        typed(
            "body with one extra byte",
            request(&good, b"{} ", URL),
            Denied(R::BodyMismatch as i32),
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
    cases.extend(malformed_protobuf());
    cases
}

/// Runs every case, then returns a description of each mismatch. `outcome`
/// reads a response as (allowed, reason), `ok` is the reason of an allowed
/// call, and `codes` are the only status codes a case may be refused with.
async fn run<R: Message + Default>(
    channel: &Channel,
    path: &'static str,
    cases: Vec<Case>,
    outcome: impl Fn(&R) -> (bool, i32),
    ok: i32,
    codes: &[Code],
) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        if let Some(arrange) = &c.arrange {
            arrange();
        }
        let got = call(channel, path, c.message, &c.metadata).await;
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
            (Expect::Denied(want), Ok((false, reason))) => reason == want,
            (Expect::AnyDenial, Ok((false, _))) => true,
            (Expect::Decided | Expect::Answered, Ok(_)) => true,
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
                codes.contains(&code),
                "{}: answered {code:?}: a hostile call must get a decision or one of {codes:?}",
                c.name
            );
        }
    }
    failures
}

/// Memory after the repeated passes stays within `mib` MiB of the first.
fn assert_rss_bounded(warm: u64, after: u64, mib: u64) {
    assert!(
        after < warm + mib * 1024,
        "RSS grew from {warm} KiB to {after} KiB"
    );
}

async fn run_verify(channel: &Channel, cases: Vec<Case>) -> Vec<String> {
    run::<VerifySignatureResponse>(
        channel,
        VERIFY,
        cases,
        |r| (r.valid, r.reason),
        SignatureReason::Ok as i32,
        NO_DECISION,
    )
    .await
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
    println!("VerifySignature: {} hostile calls", cases.len());
    let before = rss_kib(server.pid());
    let failures = run_verify(&channel, cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The whole suite again, ten times: memory must not grow with traffic.
    let warm = rss_kib(server.pid());
    for _ in 0..10 {
        run_verify(&channel, verify_cases()).await;
    }
    let after = rss_kib(server.pid());
    println!("RSS: start {before} KiB, after one pass {warm} KiB, after eleven {after} KiB");
    assert_rss_bounded(warm, after, 32);
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

/// A server with the test keys and `bearer_config()`, and its config's
/// directory.
fn bearer_server() -> (tempfile::TempDir, Signet) {
    let (dir, path) = bearer_support::config_file(&bearer_config());
    (dir, Signet::builder().test_keys().config(path).start())
}

async fn run_bearer(channel: &Channel, cases: Vec<Case>) -> Vec<String> {
    run::<signet::proto::AuthorizeBearerResponse>(
        channel,
        BEARER,
        cases,
        |r| (r.allowed, r.reason),
        signet::proto::BearerReason::Ok as i32,
        NO_DECISION,
    )
    .await
}

async fn run_authorize(channel: &Channel, cases: Vec<Case>) -> Vec<String> {
    run::<signet::proto::AuthorizeResponse>(
        channel,
        AUTHORIZE,
        cases,
        |r| (r.allowed, r.reason),
        signet::proto::AuthorizeReason::Ok as i32,
        NO_DECISION,
    )
    .await
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
    .into_iter()
    .chain(malformed_protobuf())
    .collect()
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
    .into_iter()
    .chain(malformed_protobuf())
    .collect()
}

#[tokio::test]
async fn authorize_bearer_and_authorize_survive_hostile_calls() {
    let (_dir, server) = bearer_server();
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
    println!("AuthorizeBearer: {} hostile calls", bearer.len());
    println!("Authorize: {} hostile calls", authorize.len());
    let mut failures = run_bearer(&channel, bearer).await;
    failures.extend(run_authorize(&channel, authorize).await);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let warm = rss_kib(server.pid());
    for _ in 0..5 {
        run_bearer(&channel, bearer_cases()).await;
        run_authorize(&channel, authorize_cases()).await;
    }
    let after = rss_kib(server.pid());
    println!("RSS after one pass {warm} KiB, after six {after} KiB");
    assert_rss_bounded(warm, after, 64);
    assert_still_serving(&server, &channel).await;
}

// ---- Envoy ext_authz v3 `Check` ----

const CHECK: &str = "/envoy.service.auth.v3.Authorization/Check";
/// The `google.rpc.Code` of a `CheckResponse` that denies with 401.
const CHECK_401: i32 = Code::Unauthenticated as i32;
/// The `google.rpc.Code` of a `CheckResponse` that denies with 403.
const CHECK_403: i32 = Code::PermissionDenied as i32;

use signet::envoy_proto::envoy::{
    config::core::v3::{HeaderMap, HeaderValue},
    service::auth::v3::{
        AttributeContext, CheckRequest, CheckResponse, attribute_context, check_response,
    },
};

/// A `CheckRequest` for `http` under the route's `policy`.
fn check_req(http: attribute_context::HttpRequest, policy: Option<&str>) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request { http: Some(http) }),
            context_extensions: policy
                .map(|p| ("signet_policy".to_owned(), p.to_owned()))
                .into_iter()
                .collect(),
        }),
    }
}

/// A POST of `body` to the workflow path with these headers (as Envoy's
/// `headers` map).
fn envoy_http(headers: &[(&str, &str)], body: &[u8]) -> attribute_context::HttpRequest {
    attribute_context::HttpRequest {
        method: "POST".into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        path: "/api/workflow".into(),
        raw_body: Bytes::copy_from_slice(body),
        ..Default::default()
    }
}

/// `CheckRequest{attributes{request{http: <http bytes>}}}` by hand, so the
/// innermost message can be anything.
fn check_wire(http: &[u8]) -> Bytes {
    let request = Wire::new().bytes(2, http).build();
    let attributes = Wire::new().bytes(4, &request).build();
    Wire::new().bytes(1, &attributes).build()
}

/// One `map<string,string>` entry on the wire.
fn map_entry(key: &[u8], value: &[u8]) -> Bytes {
    Wire::new().bytes(1, key).bytes(2, value).build()
}

fn envoy_cases() -> Vec<Case> {
    use Expect::*;
    let sig = token(TEST_CURRENT, b"{}", URL);
    let good_http = || envoy_http(&[("upstash-signature", &sig)], b"{}");
    let good_bytes = || good_http().encode_to_vec();
    let t = |name, req: CheckRequest, expect| case(name, req.encode_to_vec().into(), expect);
    let h =
        |name, http: attribute_context::HttpRequest, expect| t(name, check_req(http, None), expect);
    let raw = |name, http: Bytes, expect| case(name, check_wire(&http), expect);
    let many_headers = |n: usize| {
        let mut http = good_http();
        for i in 0..n {
            http.headers.insert(format!("x-junk-{i}"), "v".repeat(8));
        }
        http
    };
    vec![
        // Controls: the suite must be able to tell allowed from denied.
        h("valid request", good_http(), Allowed),
        h(
            "valid request, body as a string",
            attribute_context::HttpRequest {
                raw_body: Bytes::new(),
                body: "{}".into(),
                ..good_http()
            },
            Allowed,
        ),
        h(
            "valid request, raw header map",
            attribute_context::HttpRequest {
                headers: Default::default(),
                header_map: Some(HeaderMap {
                    headers: vec![HeaderValue {
                        key: "upstash-signature".into(),
                        value: String::new(),
                        raw_value: sig.clone().into_bytes(),
                    }],
                }),
                ..good_http()
            },
            Allowed,
        ),
        h("no signature", envoy_http(&[], b"{}"), Denied(CHECK_401)),
        // Malformed protobuf.
        case("empty message", Bytes::new(), Denied(CHECK_401)),
        case(
            "attributes without a request",
            Wire::new().bytes(1, b"").build(),
            Denied(CHECK_401),
        ),
        raw(
            "invalid UTF-8 in method",
            Wire::new().raw(&good_bytes()).bytes(2, b"PO\xffST").build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "invalid UTF-8 in path",
            Wire::new()
                .raw(&good_bytes())
                .bytes(4, b"/api/\xc0\xaf")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "invalid UTF-8 in a header name",
            Wire::new()
                .raw(&good_bytes())
                .bytes(3, &map_entry(b"x-\xfe", b"v"))
                .build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "invalid UTF-8 in the signature header",
            Wire::new()
                .bytes(3, &map_entry(b"upstash-signature", b"ey\xff.a.b"))
                .bytes(12, b"{}")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "invalid UTF-8 in the body string",
            Wire::new()
                .bytes(3, &map_entry(b"upstash-signature", sig.as_bytes()))
                .bytes(11, b"{\xed\xa0\x80}")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "invalid UTF-8 in a raw header map name",
            Wire::new()
                .raw(&good_bytes())
                .bytes(
                    13,
                    &Wire::new()
                        .bytes(1, &Wire::new().bytes(1, b"\xff").build())
                        .build(),
                )
                .build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "signature as raw bytes that are not UTF-8",
            Wire::new()
                .bytes(
                    13,
                    &Wire::new()
                        .bytes(
                            1,
                            &Wire::new()
                                .bytes(1, b"upstash-signature")
                                .bytes(3, &[sig.as_bytes(), b"\xff"].concat())
                                .build(),
                        )
                        .build(),
                )
                .bytes(12, b"{}")
                .build(),
            AnyDenial,
        ),
        case(
            "invalid UTF-8 in the policy name",
            {
                let attributes = Wire::new()
                    .bytes(10, &map_entry(b"signet_policy", b"\xff\xfe"))
                    .build();
                Wire::new().bytes(1, &attributes).build()
            },
            Refused(Code::InvalidArgument),
        ),
        raw(
            "nested length past the end",
            Wire::new()
                .varint(3 << 3 | 2)
                .varint(50)
                .raw(b"abc")
                .build(),
            Refused(Code::InvalidArgument),
        ),
        case(
            "attributes sent as varint",
            Wire::new().int(1, 7).build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "headers sent as varint",
            Wire::new().int(3, 1).build(),
            Refused(Code::InvalidArgument),
        ),
        raw(
            "raw_body sent as fixed32",
            Wire::new().varint(12 << 3 | 5).raw(&[1, 2, 3, 4]).build(),
            Refused(Code::InvalidArgument),
        ),
        // Well-formed protobuf with odd content.
        raw(
            "unknown fields everywhere",
            Wire::new()
                .raw(&good_bytes())
                .bytes(99, b"x")
                .int(536_870_911, 1)
                .bytes(13, &Wire::new().int(7, 1).build())
                .build(),
            Allowed,
        ),
        raw(
            "map entry without a value",
            Wire::new()
                .raw(&good_bytes())
                .bytes(3, &Wire::new().bytes(1, b"x-empty").build())
                .build(),
            Allowed,
        ),
        raw(
            "map entry with neither key nor value",
            Wire::new().raw(&good_bytes()).bytes(3, b"").build(),
            Allowed,
        ),
        raw(
            "signature header given twice, forged last",
            Wire::new()
                .raw(&good_bytes())
                .bytes(3, &map_entry(b"upstash-signature", b"a.b.c"))
                .build(),
            AnyDenial,
        ),
        h(
            "signature headers differing in case, one forged",
            envoy_http(
                &[("upstash-signature", &sig), ("Upstash-Signature", "a.b.c")],
                b"{}",
            ),
            Decided,
        ),
        h(
            "forged signature in the header map, genuine one in the raw map",
            attribute_context::HttpRequest {
                header_map: Some(HeaderMap {
                    headers: vec![HeaderValue {
                        key: "upstash-signature".into(),
                        value: sig.clone(),
                        raw_value: Vec::new(),
                    }],
                }),
                ..envoy_http(&[("upstash-signature", "a.b.c")], b"{}")
            },
            AnyDenial,
        ),
        h(
            "upper-case header name",
            envoy_http(&[("UPSTASH-SIGNATURE", &sig)], b"{}"),
            Allowed,
        ),
        h(
            "CRLF in the signature header",
            envoy_http(
                &[("upstash-signature", &format!("{sig}\r\nx-evil: 1"))],
                b"{}",
            ),
            AnyDenial,
        ),
        h(
            "altered raw_body, genuine body string",
            attribute_context::HttpRequest {
                body: "{}".into(),
                raw_body: Bytes::from_static(b"{\"x\":1}"),
                ..good_http()
            },
            Denied(CHECK_401),
        ),
        h(
            "failure callback without a signature",
            envoy_http(&[("upstash-workflow-is-failure", "true")], b"{}"),
            Denied(CHECK_401),
        ),
        h(
            "client-supplied x-signet-subject",
            envoy_http(
                &[("upstash-signature", &sig), ("x-signet-subject", "admin")],
                b"{}",
            ),
            Allowed,
        ),
        h(
            "signature for another body",
            envoy_http(&[("upstash-signature", &sig)], b"{\"a\":1}"),
            Denied(CHECK_401),
        ),
        h(
            "signature made with an unknown key",
            envoy_http(
                &[("upstash-signature", &token("sig_notOurKey", b"{}", URL))],
                b"{}",
            ),
            Denied(CHECK_401),
        ),
        // Policies.
        t(
            "unknown policy",
            check_req(good_http(), Some("nope")),
            Denied(CHECK_403),
        ),
        t(
            "policy name of 64 KiB",
            check_req(good_http(), Some(&"p".repeat(64 << 10))),
            Denied(CHECK_403),
        ),
        t(
            "policy name with a NUL",
            check_req(good_http(), Some("both\0")),
            Denied(CHECK_403),
        ),
        t(
            "policy named default",
            check_req(good_http(), Some("default")),
            Allowed,
        ),
        t(
            "bearer policy without a credential",
            check_req(good_http(), Some("both")),
            Denied(CHECK_401),
        ),
        t(
            "bearer policy, authorization in other case twice",
            check_req(
                envoy_http(
                    &[
                        ("upstash-signature", &sig),
                        ("authorization", "Bearer nope"),
                        ("Authorization", &format!("Bearer {API_KEY}")),
                    ],
                    b"{}",
                ),
                Some("api"),
            ),
            Decided,
        ),
        // Sizes.
        h("ten thousand headers", many_headers(10_000), Allowed),
        h(
            "header value of 1 MiB",
            envoy_http(
                &[("upstash-signature", &sig), ("x-big", &"v".repeat(1 << 20))],
                b"{}",
            ),
            Allowed,
        ),
        h(
            "signature of 1 MiB",
            envoy_http(&[("upstash-signature", &"e".repeat(1 << 20))], b"{}"),
            Denied(CHECK_401),
        ),
        h(
            "body of 7 MiB",
            envoy_http(&[("upstash-signature", &sig)], &vec![b'x'; 7 << 20]),
            Denied(CHECK_401),
        ),
        h(
            "message over the size limit",
            envoy_http(&[("upstash-signature", &sig)], &vec![0; 9 << 20]),
            Refused(Code::ResourceExhausted),
        ),
        h(
            "headers over the size limit",
            {
                let mut http = good_http();
                for i in 0..100_000 {
                    http.headers.insert(format!("x-{i:08}"), "v".repeat(80));
                }
                http
            },
            Refused(Code::ResourceExhausted),
        ),
        h(
            "path and method of 1 MiB",
            attribute_context::HttpRequest {
                method: "M".repeat(1 << 20),
                path: format!("/{}", "p".repeat(1 << 20)),
                ..good_http()
            },
            Allowed,
        ),
        t(
            "ten thousand context extensions",
            {
                let mut req = check_req(good_http(), None);
                let attributes = req.attributes.as_mut().unwrap();
                for i in 0..10_000 {
                    attributes
                        .context_extensions
                        .insert(format!("ext-{i}"), "v".into());
                }
                req
            },
            Allowed,
        ),
        h(
            "ten thousand raw headers, signature last",
            attribute_context::HttpRequest {
                headers: Default::default(),
                header_map: Some(HeaderMap {
                    headers: (0..10_000)
                        .map(|i| HeaderValue {
                            key: format!("x-junk-{i}"),
                            value: "v".into(),
                            raw_value: Vec::new(),
                        })
                        .chain([HeaderValue {
                            key: "upstash-signature".into(),
                            value: sig.clone(),
                            raw_value: Vec::new(),
                        }])
                        .collect(),
                }),
                ..good_http()
            },
            Allowed,
        ),
    ]
    .into_iter()
    .chain(malformed_protobuf())
    .collect()
}

fn check_outcome(r: &CheckResponse) -> (bool, i32) {
    let allowed = matches!(
        r.http_response,
        Some(check_response::HttpResponse::OkResponse(_))
    );
    (allowed, r.status.as_ref().map_or(-1, |s| s.code))
}

#[tokio::test]
async fn envoy_check_survives_hostile_calls() {
    let (_dir, server) = bearer_server();
    let channel = server.channel().await;
    let cases = envoy_cases();
    assert!(cases.len() >= 40, "only {} Check cases", cases.len());
    println!("Check: {} hostile calls", cases.len());
    let before = rss_kib(server.pid());
    let failures = run(&channel, CHECK, cases, check_outcome, 0, NO_DECISION).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let warm = rss_kib(server.pid());
    for _ in 0..5 {
        run(
            &channel,
            CHECK,
            envoy_cases(),
            check_outcome,
            0,
            NO_DECISION,
        )
        .await;
    }
    let after = rss_kib(server.pid());
    println!("Check RSS: start {before} KiB, after one pass {warm} KiB, after six {after} KiB");
    assert_rss_bounded(warm, after, 64);
    assert_still_serving(&server, &channel).await;
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let answer = call(
        &channel,
        CHECK,
        check_req(
            envoy_http(
                &[("upstash-signature", &token(TEST_CURRENT, b"{}", URL))],
                b"{}",
            ),
            None,
        )
        .encode_to_vec()
        .into(),
        &[],
    )
    .await
    .expect("Check answers");
    let (allowed, _) = check_outcome(&CheckResponse::decode(answer).unwrap());
    assert!(allowed, "Check still decides correctly afterwards");
}

// ---- signet.v1.KeyAdmin ----

#[derive(Clone, Copy, Debug, PartialEq)]
enum AdminRpc {
    GetKeyStatus,
    Reload,
    Rotate,
}

impl AdminRpc {
    fn path(self) -> &'static str {
        match self {
            Self::GetKeyStatus => "/signet.v1.KeyAdmin/GetKeyStatus",
            Self::Reload => "/signet.v1.KeyAdmin/Reload",
            Self::Rotate => "/signet.v1.KeyAdmin/RotateSigningKeys",
        }
    }
}

/// The only errors a hostile `KeyAdmin` call may get: besides the
/// undecodable and the oversized, no or a wrong admin token, a key set that
/// signet does not rotate or a rotation inside the minimum interval, and a
/// key source that failed (`UNAVAILABLE`, documented for rotation).
const ADMIN_REFUSALS: &[Code] = &[
    Code::InvalidArgument,
    Code::ResourceExhausted,
    Code::Unauthenticated,
    Code::FailedPrecondition,
    Code::Unavailable,
];

/// A key directory file: path and contents.
type DirFile = (&'static str, Vec<u8>);

/// The named key set the key directory serves in the `KeyAdmin` suite.
const BILLING: &str = "billing";
const BILLING_CURRENT: &str = "sig_billingCurrentKey0001";
const BILLING_NEXT: &str = "sig_billingNextKey0000002";

/// `{key_set, force}` by hand (`force` is field 2 of RotateSigningKeys and
/// an unknown field of the other two requests).
fn admin_msg(key_set: &str, force: bool) -> Bytes {
    let w = Wire::new();
    let w = if key_set.is_empty() {
        w
    } else {
        w.bytes(1, key_set.as_bytes())
    };
    if force { w.int(2, 1) } else { w }.build()
}

fn bearer_value(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

/// Hostile calls of one `KeyAdmin` RPC. `source` is what the key sources
/// serve during some of them (the QStash keys API stand-in and the key
/// directory); the suite puts both back afterwards.
fn admin_cases(
    rpc: AdminRpc,
    api: &keys::QstashStandIn,
    dir: &std::rc::Rc<std::cell::RefCell<keys::SecretDir>>,
) -> Vec<Case> {
    use Expect::*;
    use keys::ADMIN_TOKEN;
    let unauth = Refused(Code::Unauthenticated);
    // A well-formed call with the admin token: a status, or for rotation
    // (which the suite only runs after a legitimate rotation) the minimum
    // interval's refusal; unforced, so it never rolls keys.
    let accepted = match rpc {
        AdminRpc::Rotate => Refused(Code::FailedPrecondition),
        _ => Answered,
    };
    // A forced call on the API's key set: rotation asks the keys API; the
    // others report.
    let forced = match rpc {
        AdminRpc::Rotate => Refused(Code::Unavailable),
        _ => Answered,
    };
    // The directory's key set is never rotated by signet.
    let directory_set = match rpc {
        AdminRpc::Rotate => Refused(Code::FailedPrecondition),
        _ => Answered,
    };
    let msg = || admin_msg("", false);
    let tok =
        |name, value: Vec<u8>, expect| case(name, msg(), expect).header("authorization", value);
    let admin = |name, message: Bytes, expect| {
        case(name, message, expect).header("authorization", bearer_value(ADMIN_TOKEN))
    };
    let mut cases = vec![
        // The admin token.
        case("no authorization", msg(), unauth),
        tok("empty authorization", Vec::new(), unauth),
        tok("scheme only", b"Bearer".to_vec(), unauth),
        tok("scheme and a space", b"Bearer ".to_vec(), unauth),
        tok(
            "lower-case scheme",
            format!("bearer {ADMIN_TOKEN}").into_bytes(),
            unauth,
        ),
        tok(
            "two spaces",
            format!("Bearer  {ADMIN_TOKEN}").into_bytes(),
            unauth,
        ),
        tok(
            "trailing space",
            format!("Bearer {ADMIN_TOKEN} ").into_bytes(),
            unauth,
        ),
        tok("tab", format!("Bearer\t{ADMIN_TOKEN}").into_bytes(), unauth),
        tok(
            "Basic scheme",
            format!("Basic {ADMIN_TOKEN}").into_bytes(),
            unauth,
        ),
        tok("bare token", ADMIN_TOKEN.as_bytes().to_vec(), unauth),
        tok(
            "token one byte short",
            bearer_value(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
            unauth,
        ),
        tok(
            "token one byte long",
            bearer_value(&format!("{ADMIN_TOKEN}x")),
            unauth,
        ),
        tok(
            "token upper-cased",
            bearer_value(&ADMIN_TOKEN.to_uppercase()),
            unauth,
        ),
        tok(
            "the configured digest as the token",
            bearer_value(&keys::admin_digest()),
            unauth,
        ),
        tok("token not UTF-8", b"Bearer \xff\xfe\xfd".to_vec(), unauth),
        tok(
            "token with a non-UTF-8 suffix",
            [bearer_value(ADMIN_TOKEN), b"\xc0\x80".to_vec()].concat(),
            unauth,
        ),
        tok("token of 8 KiB", bearer_value(&"t".repeat(8 << 10)), unauth),
        // Under the HTTP/2 layer's header limits: signet sees it.
        tok(
            "token of 15 KiB",
            bearer_value(&"t".repeat(15 << 10)),
            unauth,
        ),
        case("token in the caller-token header", msg(), unauth)
            .header("x-signet-caller-token", ADMIN_TOKEN),
        case("wrong token first, admin token second", msg(), unauth)
            .header("authorization", bearer_value("wrong"))
            .header("authorization", bearer_value(ADMIN_TOKEN)),
        {
            let mut c = case("a hundred wrong tokens", msg(), unauth);
            for i in 0..100 {
                c = c.header("authorization", bearer_value(&format!("wrong-{i}")));
            }
            c
        },
        case(
            "wrong token, unknown key set",
            admin_msg("nope", false),
            unauth,
        )
        .header("authorization", bearer_value("wrong")),
        case(
            "no token, the directory's key set",
            admin_msg(BILLING, true),
            unauth,
        ),
        // The admin token, odd requests.
        admin("admin token, empty request", msg(), accepted),
        admin(
            "unknown key set",
            admin_msg("nope", false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "unknown key set, forced",
            admin_msg("nope", true),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set of 64 KiB",
            admin_msg(&"k".repeat(64 << 10), false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set with a NUL",
            admin_msg("default\0", false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set with a leading space",
            admin_msg(" default", false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set in upper case",
            admin_msg("DEFAULT", false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set as a path",
            admin_msg("../billing", false),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "the directory's key set, forced",
            admin_msg(BILLING, true),
            directory_set,
        ),
        admin(
            "key set not UTF-8",
            Wire::new().bytes(1, b"def\xffault").build(),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "key set as a varint",
            Wire::new().int(1, 7).build(),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "force beyond bool, unknown key set",
            Wire::new().bytes(1, b"nope").int(2, u64::MAX).build(),
            Refused(Code::InvalidArgument),
        ),
        admin(
            "ten thousand unknown fields",
            {
                let mut w = Wire::new();
                for i in 0..10_000 {
                    w = w.int(100 + i, i);
                }
                w.build()
            },
            accepted,
        ),
        admin(
            "message over the size limit",
            admin_msg(&"k".repeat(9 << 20), false),
            Refused(Code::ResourceExhausted),
        ),
        // The token is checked before the message is decoded: nothing an
        // unauthenticated caller sends is parsed.
        case(
            "no token, undecodable message",
            Wire::new().raw(&[0x0f, 0x00]).build(),
            Refused(Code::Unauthenticated),
        ),
        case(
            "wrong token, undecodable message",
            Wire::new().raw(&[0x0f, 0x00]).build(),
            Refused(Code::Unauthenticated),
        )
        .header("authorization", bearer_value("not-the-admin-token")),
    ];
    // The generic malformations with the admin token, so it is the
    // message, not the caller, that gets them refused.
    cases.extend(
        malformed_protobuf()
            .into_iter()
            .map(|c| c.header("authorization", bearer_value(ADMIN_TOKEN))),
    );
    // Key sources serving hostile keys while the call runs: the keys API
    // (read by Reload, called by a forced rotation) and the key directory.
    let answers: [(&'static str, u16, Vec<u8>); 12] = [
        ("keys API answers 500", 500, b"boom".to_vec()),
        ("keys API answers non-JSON", 200, b"<html>".to_vec()),
        ("keys API answers a JSON array", 200, b"[]".to_vec()),
        (
            "keys API answers numbers",
            200,
            br#"{"current":1,"next":2}"#.to_vec(),
        ),
        (
            "keys API answers an empty key",
            200,
            br#"{"current":"","next":"sig_x"}"#.to_vec(),
        ),
        (
            "keys API answers no next key",
            200,
            br#"{"current":"sig_x"}"#.to_vec(),
        ),
        (
            "keys API answers current equal to next",
            200,
            br#"{"current":"sig_sameKey001","next":"sig_sameKey001"}"#.to_vec(),
        ),
        (
            "keys API answers a key with a space",
            200,
            br#"{"current":"sig_a b","next":"sig_c"}"#.to_vec(),
        ),
        (
            "keys API answers a key with a newline",
            200,
            br#"{"current":"sig_a\n","next":"sig_c"}"#.to_vec(),
        ),
        (
            "keys API answers a key that is not UTF-8",
            200,
            b"{\"current\":\"sig_\xff\xfe\",\"next\":\"sig_c\"}".to_vec(),
        ),
        (
            "keys API answers a 4 KiB key",
            200,
            format!(r#"{{"current":"sig_{}","next":"sig_c"}}"#, "k".repeat(4096)).into_bytes(),
        ),
        (
            "keys API answers 2 MiB",
            200,
            format!(
                r#"{{"current":"sig_a","next":"sig_c","pad":"{}"}}"#,
                "p".repeat(2 << 20)
            )
            .into_bytes(),
        ),
    ];
    for (name, status, body) in answers {
        let api = api.clone();
        cases.push(
            admin(name, admin_msg("default", true), forced)
                .arrange(move || api.set_answer(Some((status, &body)))),
        );
    }
    let files: [(&'static str, Vec<DirFile>); 6] = [
        (
            "directory key empty",
            vec![
                ("billing/current", Vec::new()),
                ("billing/next", BILLING_NEXT.into()),
            ],
        ),
        (
            "directory keys equal",
            vec![
                ("billing/current", BILLING_NEXT.into()),
                ("billing/next", BILLING_NEXT.into()),
            ],
        ),
        (
            "directory key not UTF-8",
            vec![
                ("billing/current", b"sig_\xff\xfe".to_vec()),
                ("billing/next", BILLING_NEXT.into()),
            ],
        ),
        (
            "directory key of 4 KiB",
            vec![
                ("billing/current", "k".repeat(4096).into_bytes()),
                ("billing/next", BILLING_NEXT.into()),
            ],
        ),
        (
            "directory key with a space inside",
            vec![
                ("billing/current", b"sig_a b".to_vec()),
                ("billing/next", BILLING_NEXT.into()),
            ],
        ),
        (
            "directory without next",
            vec![("billing/current", b"sig_onlyCurrent".to_vec())],
        ),
    ];
    for (name, files) in files {
        let dir = std::rc::Rc::clone(dir);
        cases.push(
            admin(name, admin_msg(BILLING, true), directory_set).arrange(move || {
                let files: Vec<(&str, &[u8])> =
                    files.iter().map(|(n, v)| (*n, v.as_slice())).collect();
                dir.borrow_mut().update_bytes(&files);
            }),
        );
    }
    cases
}

/// What the `KeyAdmin` suite checks after each RPC's hostile calls: the key
/// sources serve their good keys again, the active keys are `keys` for the
/// default set and the billing pair for the directory's set (by
/// fingerprint, and by verifying tokens signed with them), and health is
/// SERVING.
async fn assert_keys_unchanged(
    server: &Signet,
    api: &keys::QstashStandIn,
    dir: &std::rc::Rc<std::cell::RefCell<keys::SecretDir>>,
    (current, next): (&str, &str),
) {
    use keys::*;
    api.set_answer(None);
    dir.borrow_mut().update(&[
        ("billing/current", BILLING_CURRENT),
        ("billing/next", BILLING_NEXT),
    ]);
    let mut admin = admin(server).await;
    let row = status(&mut admin, "default").await;
    assert_eq!(
        (
            row.current_fingerprint.as_str(),
            row.next_fingerprint.as_str()
        ),
        (fp(current).as_str(), fp(next).as_str()),
        "default key set changed: {row:?}"
    );
    let row = status(&mut admin, BILLING).await;
    assert_eq!(
        (
            row.current_fingerprint.as_str(),
            row.next_fingerprint.as_str()
        ),
        (fp(BILLING_CURRENT).as_str(), fp(BILLING_NEXT).as_str()),
        "billing key set changed: {row:?}"
    );
    let mut client = server.client().await;
    for key in [current, next] {
        assert!(verify_with(&mut client, key, "", "").await.valid);
    }
    for key in [BILLING_CURRENT, BILLING_NEXT] {
        assert!(verify_with(&mut client, key, BILLING, "").await.valid);
    }
    assert_eq!(health(server).await, ServingStatus::Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_admin_survives_hostile_calls() {
    use keys::*;
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let dir = std::rc::Rc::new(std::cell::RefCell::new(SecretDir::new(&[
        ("billing/current", BILLING_CURRENT),
        ("billing/next", BILLING_NEXT),
    ])));
    let (_cfg, path) = config_file(&format!(
        "[keys]\ndirectory = {:?}\nreread_interval = \"1h\"\n\
         [keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = {QSTASH_TOKEN:?}\n\
         poll_interval = \"1h\"\nrefetch_cooldown = \"1h\"\nmin_rotation_interval = \"1h\"\n\
         [admin]\nenabled = true\ntoken_sha256 = [\"{}\"]\n",
        dir.borrow().path(),
        api.url(),
        admin_digest()
    ));
    let server = Signet::builder().config(path).start();
    let channel = server.channel().await;
    let rss = || rss_kib(server.pid());
    let start = rss();
    let mut active = (TEST_CURRENT.to_owned(), TEST_NEXT.to_owned());
    for rpc in [AdminRpc::GetKeyStatus, AdminRpc::Reload, AdminRpc::Rotate] {
        if rpc == AdminRpc::Rotate {
            // One legitimate rotation first, so that every unforced rotation
            // of the suite is inside the minimum interval and refused.
            let mut admin = admin(&server).await;
            let row = admin
                .rotate_signing_keys(with_token(
                    signet::proto::RotateSigningKeysRequest::default(),
                    Some(ADMIN_TOKEN),
                ))
                .await
                .expect("a legitimate rotation")
                .into_inner()
                .key_set
                .unwrap();
            assert_eq!(row.current_fingerprint, fp(TEST_NEXT));
            active = (api.current(), api.next());
            assert_eq!(api.rotates(), 1);
        }
        let cases = admin_cases(rpc, &api, &dir);
        assert!(cases.len() >= 40, "only {} {rpc:?} cases", cases.len());
        println!("{rpc:?}: {} hostile calls", cases.len());
        // A KeyAdmin response reports rather than decides: any well-formed
        // message counts as answered (`()` decodes every one of them).
        let failures = run(
            &channel,
            rpc.path(),
            cases,
            |_: &()| (true, 0),
            0,
            ADMIN_REFUSALS,
        )
        .await;
        assert!(failures.is_empty(), "{rpc:?}:\n{}", failures.join("\n"));
        // A token far past the HTTP/2 layer's header limits: it closes the
        // connection (GOAWAY, ENHANCE_YOUR_CALM) before signet
        // sees the call, so there is no gRPC answer, and the code the client
        // reports depends on when it notices. Its own connection, so the
        // suite's stays open.
        let e = call(
            &server.channel().await,
            rpc.path(),
            admin_msg("", false),
            &[("authorization", bearer_value(&"t".repeat(1 << 20)))],
        )
        .await
        .expect_err("a 1 MiB token is refused");
        assert!(
            matches!(e.code(), Code::ResourceExhausted | Code::Unknown),
            "{e:?}"
        );
        assert_keys_unchanged(&server, &api, &dir, (&active.0, &active.1)).await;
    }
    assert_eq!(api.rotates(), 1, "no hostile call rolled keys at the API");
    let warm = rss();
    for _ in 0..3 {
        for rpc in [AdminRpc::GetKeyStatus, AdminRpc::Reload, AdminRpc::Rotate] {
            run(
                &channel,
                rpc.path(),
                admin_cases(rpc, &api, &dir),
                |_: &()| (true, 0),
                0,
                ADMIN_REFUSALS,
            )
            .await;
        }
    }
    assert_keys_unchanged(&server, &api, &dir, (&active.0, &active.1)).await;
    let after = rss();
    println!("KeyAdmin RSS: start {start} KiB, after one pass {warm} KiB, after four {after} KiB");
    assert_rss_bounded(warm, after, 64);
}
