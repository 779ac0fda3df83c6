//! QStash token parsing and verification on arbitrary input: never panics,
//! and only a token MACed with one of the keys can be valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet::{
    keys::{KeyPair, SigningKey},
    secret::Secret,
    verify::{Body, SignatureCheck, verify},
};

fuzz_target!(|data: &[u8]| {
    let keys = KeyPair {
        current: SigningKey::new(Secret::new("sig_fuzzCurrent")).unwrap(),
        next: SigningKey::new(Secret::new("sig_fuzzNext")).unwrap(),
    };
    // First byte splits the input into signature and body.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(rest.len());
    let (signature, body) = rest.split_at(rest.len() - at);
    let Ok(signature) = std::str::from_utf8(signature) else {
        return;
    };
    for url in ["", "https://svc.example/hook"] {
        let check = SignatureCheck {
            signature,
            body: Body::Raw(body),
            url,
            clock_tolerance: 5,
            max_signature_bytes: 8192,
        };
        let v = verify(&check, &keys, 1_800_000_000);
        assert_eq!(v.is_valid(), v.key_slot.is_some());
    }
});
