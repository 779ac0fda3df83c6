//! Upstash Workflow failure-callback bodies and headers on arbitrary input:
//! reading `sourceHeader` never panics and only ever yields a value that was
//! in the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet::authorize;

fuzz_target!(|data: &[u8]| {
    if let Some(authorization) = authorize::source_authorization(data) {
        // The value is a string of the (valid JSON) body's `sourceHeader`.
        let doc: serde_json::Value =
            serde_json::from_slice(data).expect("only JSON yields a value");
        let source = serde_json::to_string(&doc["sourceHeader"]).unwrap();
        let value = serde_json::to_string(&authorization).unwrap();
        assert!(source.contains(&value), "{value} not in {source}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let headers: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(':')).collect();
        let _ = authorize::is_failure_callback(headers.iter().copied());
        let _ = authorize::header(headers.iter().copied(), "authorization");
    }
});
