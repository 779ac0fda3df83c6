//! Properties of the QStash verification core: it never panics, any single
//! byte changed in a valid token or body invalidates it, and only a fully
//! valid token is reported valid.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use signet::{
    keys::{KeyPair, SigningKey},
    secret::Secret,
    verify::{Body, Reason, SignOptions, SignatureCheck, sign, verify},
};

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://svc.example/hook";

fn keys() -> KeyPair {
    KeyPair {
        current: SigningKey::new(Secret::new("sig_propCurrent")).unwrap(),
        next: SigningKey::new(Secret::new("sig_propNext")).unwrap(),
    }
}

fn token(key: &SigningKey, body: &[u8]) -> String {
    sign(
        key,
        &SignOptions {
            iss: "Upstash",
            sub: URL,
            exp: NOW + 300,
            nbf: NOW,
            iat: NOW,
            jti: "jwt_p",
            body,
        },
    )
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_panics_and_is_never_valid(signature in ".{0,600}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let v = verify(&check(&signature, Body::Raw(&body), URL), &keys(), NOW);
        prop_assert!(!v.is_valid());
        prop_assert!(v.key_slot.is_none());
    }

    #[test]
    fn jws_shaped_garbage_never_panics(parts in proptest::collection::vec("[A-Za-z0-9_=-]{0,80}", 0..5)) {
        let signature = parts.join(".");
        let v = verify(&check(&signature, Body::Raw(b""), ""), &keys(), NOW);
        prop_assert!(!v.is_valid());
    }

    #[test]
    fn any_single_byte_change_to_the_token_invalidates_it(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        use_next in any::<bool>(),
        index in any::<proptest::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let keys = keys();
        let key = if use_next { &keys.next } else { &keys.current };
        let t = token(key, &body);
        prop_assert!(verify(&check(&t, Body::Raw(&body), URL), &keys, NOW).is_valid());
        let mut bytes = t.into_bytes();
        let i = index.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        if let Ok(changed) = String::from_utf8(bytes) {
            let v = verify(&check(&changed, Body::Raw(&body), URL), &keys, NOW);
            prop_assert!(!v.is_valid(), "byte {} changed and still valid", i);
        }
    }

    #[test]
    fn any_single_byte_change_to_the_body_invalidates_it(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        index in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let keys = keys();
        let t = token(&keys.current, &body);
        let mut changed = body.clone();
        let i = index.index(changed.len());
        changed[i] = changed[i].wrapping_add(delta);
        let raw = verify(&check(&t, Body::Raw(&changed), URL), &keys, NOW);
        prop_assert_eq!(raw.reason, Reason::BodyMismatch);
        let digest: [u8; 32] = Sha256::digest(&changed).into();
        let hashed = verify(&check(&t, Body::Sha256(&digest), URL), &keys, NOW);
        prop_assert_eq!(hashed, raw);
    }

    #[test]
    fn valid_only_when_the_reason_is_ok(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        sent_body in proptest::collection::vec(any::<u8>(), 0..64),
        now in (NOW - 600)..(NOW + 600),
        url in prop_oneof![Just(URL.to_string()), Just(String::new()), Just(format!("{URL}/"))],
    ) {
        let keys = keys();
        let t = token(&keys.current, &body);
        let v = verify(&check(&t, Body::Raw(&sent_body), &url), &keys, now);
        prop_assert_eq!(v.is_valid(), v.reason == Reason::Ok);
        prop_assert_eq!(v.key_slot.is_some(), v.is_valid());
        let expect_valid = body == sent_body && (NOW..NOW + 300).contains(&now) && url != format!("{URL}/");
        prop_assert_eq!(v.is_valid(), expect_valid, "{:?}", v.reason);
    }
}
