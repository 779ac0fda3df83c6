//! Envoy `CheckRequest`s as arbitrary protobuf bytes: decoding and mapping
//! onto signet's whole-request shape never panic, and the mapped body is
//! exactly `raw_body` or `body`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use signet::{envoy_proto::envoy::service::auth::v3::CheckRequest, ext_authz::HttpRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(check) = CheckRequest::decode(data) else {
        return;
    };
    let http = check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .cloned()
        .unwrap_or_default();
    let mapped = HttpRequest::from_check(check);
    if http.raw_body.is_empty() {
        assert_eq!(mapped.body.as_ref(), http.body.as_bytes());
    } else {
        assert_eq!(mapped.body, http.raw_body);
    }
    let _ = mapped.header("upstash-signature");
});
