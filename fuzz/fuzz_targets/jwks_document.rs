//! JWKS and OIDC discovery documents on arbitrary bytes, through the parsers
//! the JWKS cache runs on every fetched document. Never panics; every key a
//! JWKS yields is a public key whose type fits each algorithm it may verify;
//! a discovery document only ever yields a `jwks_uri` signet may fetch keys
//! from.
#![no_main]

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKeyKind};
use libfuzzer_sys::fuzz_target;
use signet::keys::{DocumentError, is_key_url, parse_discovery, parse_jwks};

const ISSUER: &str = "https://issuer.example";

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = parse_jwks(data) {
        for key in keys {
            let algorithms = key.algorithms();
            let decoding = key.decoding_key();
            let family = decoding.family();
            assert!(!algorithms.is_empty(), "{key:?} verifies nothing");
            assert!(
                algorithms.iter().all(|a| a.family() == family),
                "{key:?} is a {family:?} key"
            );
            match (family, decoding.kind()) {
                (AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { .. }) => {}
                (AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
                    // One curve, one algorithm, a point of that curve's size.
                    let size = match algorithms {
                        [Algorithm::ES256] => 65,
                        [Algorithm::ES384] => 97,
                        other => panic!("EC key for {other:?}"),
                    };
                    assert_eq!(point.len(), size, "{key:?}");
                }
                (AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(x)) => {
                    assert_eq!(x.len(), 32, "{key:?}");
                }
                // A key set is public: an HMAC key from it would let anyone sign.
                (family, _) => panic!("{key:?} is a {family:?} key of the wrong kind"),
            }
        }
    }
    // Discovery: against a fixed issuer, and again against the issuer the
    // document names, so documents that get past the issuer check are
    // reached too.
    let named = match parse_discovery(data, ISSUER) {
        Err(DocumentError::IssuerMismatch(named)) => parse_discovery(data, &named),
        other => other,
    };
    if let Ok(url) = named {
        assert!(is_key_url(&url), "jwks_uri {url}");
    }
});
