//! One JWT verification key, bound to the algorithm family it was configured
//! (or published) for, so it is never used with another family.

use std::fmt;

use jsonwebtoken::{
    Algorithm, DecodingKey, DecodingKeyKind,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk},
};

use crate::secret::Secret;

/// A verification key: an optional `kid`, the algorithms it may verify, and
/// the prepared key.
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Why a key could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtKeyError {
    /// The algorithm name is not one signet verifies.
    #[error("unknown algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// The key material does not parse as a key of the algorithm's family.
    #[error("not a valid {0} key")]
    BadKey(&'static str),
    /// A JWK of a type signet never accepts from a key set (`oct`, unknown curves).
    #[error("unsupported JWK type")]
    UnsupportedJwk,
}

/// Parses an algorithm name (`RS256`, `ES256`, `EdDSA`, `HS256`…).
pub fn algorithm(name: &str) -> Result<Algorithm, JwtKeyError> {
    name.parse()
        .map_err(|_| JwtKeyError::UnknownAlgorithm(name.to_owned()))
}

/// The algorithms of one family a key of that family may verify.
fn same_family(alg: Algorithm) -> Vec<Algorithm> {
    alg.family().algorithms().to_vec()
}

impl JwtKey {
    /// A PEM public key (RSA, EC or Ed25519) for the family of `alg`.
    pub fn from_pem(kid: Option<String>, alg: Algorithm, pem: &[u8]) -> Result<Self, JwtKeyError> {
        use jsonwebtoken::AlgorithmFamily as F;
        let (key, what) = match alg.family() {
            F::Rsa => (DecodingKey::from_rsa_pem(pem), "RSA"),
            F::Ec => (DecodingKey::from_ec_pem(pem), "EC"),
            F::Ed => (DecodingKey::from_ed_pem(pem), "Ed25519"),
            F::Hmac => return Err(JwtKeyError::BadKey("PEM (HMAC keys are secrets)")),
        };
        let key = key.map_err(|_| JwtKeyError::BadKey(what))?;
        if !point_fits(&key, alg) {
            return Err(JwtKeyError::BadKey(
                "PEM (its key is not on the algorithm's curve)",
            ));
        }
        Ok(Self {
            kid,
            algorithms: restrict_ec(alg),
            key,
        })
    }

    /// An HMAC secret (HS256/384/512).
    pub fn from_secret(
        kid: Option<String>,
        alg: Algorithm,
        secret: &Secret,
    ) -> Result<Self, JwtKeyError> {
        if alg.family() != jsonwebtoken::AlgorithmFamily::Hmac || secret.is_empty() {
            return Err(JwtKeyError::BadKey("HMAC secret"));
        }
        Ok(Self {
            kid,
            algorithms: same_family(alg),
            key: DecodingKey::from_secret(secret.expose())
                .map_err(|_| JwtKeyError::BadKey("HMAC secret"))?,
        })
    }

    /// A public JWK. Symmetric (`oct`) keys are refused: a key set is public,
    /// so an HMAC key in it would let anyone sign. With `alg` in the JWK the key
    /// verifies only that algorithm; `configured` (from the configuration)
    /// must then agree with it.
    pub fn from_jwk(jwk: &Jwk, configured: Option<Algorithm>) -> Result<Self, JwtKeyError> {
        let published = match jwk.common.key_algorithm {
            Some(a) => Some(
                a.to_string()
                    .parse::<Algorithm>()
                    .map_err(|_| JwtKeyError::UnsupportedJwk)?,
            ),
            None => None,
        };
        let algorithms = match (&jwk.algorithm, published.or(configured)) {
            (AlgorithmParameters::OctetKey(_), _) => return Err(JwtKeyError::UnsupportedJwk),
            (_, Some(alg)) => restrict_ec(alg),
            (AlgorithmParameters::RSA(_), None) => same_family(Algorithm::RS256),
            (AlgorithmParameters::EllipticCurve(p), None) => match p.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return Err(JwtKeyError::UnsupportedJwk),
            },
            (AlgorithmParameters::OctetKeyPair(_), None) => vec![Algorithm::EdDSA],
            _ => return Err(JwtKeyError::UnsupportedJwk),
        };
        if let (Some(p), Some(c)) = (published, configured)
            && p != c
        {
            return Err(JwtKeyError::BadKey(
                "JWK (its alg differs from the configured one)",
            ));
        }
        let family_matches = matches!(
            (&jwk.algorithm, algorithms[0].family()),
            (
                AlgorithmParameters::RSA(_),
                jsonwebtoken::AlgorithmFamily::Rsa
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                jsonwebtoken::AlgorithmFamily::Ec
            ) | (
                AlgorithmParameters::OctetKeyPair(_),
                jsonwebtoken::AlgorithmFamily::Ed
            )
        );
        if !family_matches || !curve_matches(&jwk.algorithm, algorithms[0]) {
            return Err(JwtKeyError::UnsupportedJwk);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|_| JwtKeyError::BadKey("JWK"))?;
        if !point_fits(&key, algorithms[0]) {
            return Err(JwtKeyError::BadKey(
                "JWK (its coordinates do not fit its curve)",
            ));
        }
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key,
        })
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Every algorithm this key may verify (one family; one curve's
    /// algorithm for EC keys).
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// True when this key may verify a token signed with `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// The prepared key.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

/// A JWK's curve must be the one its algorithm is defined on: a P-384 point
/// published as ES256, or an X25519 key as EdDSA, is not a key of that
/// algorithm.
fn curve_matches(params: &AlgorithmParameters, alg: Algorithm) -> bool {
    match params {
        AlgorithmParameters::EllipticCurve(p) => matches!(
            (&p.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(p) => p.curve == EllipticCurve::Ed25519,
        _ => true,
    }
}

/// The point jsonwebtoken holds has the size of the algorithm's curve (it
/// does not check): a SEC1 point for EC (uncompressed when built from a JWK's
/// coordinates, either form in a PEM), 32 bytes for Ed25519. A PEM of a P-384
/// key configured for ES256 fails here instead of verifying nothing. RSA keys
/// carry no fixed size.
fn point_fits(key: &DecodingKey, alg: Algorithm) -> bool {
    let DecodingKeyKind::SecretOrDer(bytes) = key.kind() else {
        return true;
    };
    let field = match alg {
        Algorithm::ES256 => 32,
        Algorithm::ES384 => 48,
        Algorithm::EdDSA => return bytes.len() == 32,
        _ => return true,
    };
    match bytes.first() {
        Some(0x04) => bytes.len() == 1 + 2 * field,
        Some(0x02 | 0x03) => bytes.len() == 1 + field,
        _ => false,
    }
}

/// An EC key is bound to its curve's one algorithm; other families accept
/// every algorithm of the family (RS256/PS256… share a key).
fn restrict_ec(alg: Algorithm) -> Vec<Algorithm> {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => vec![alg],
        other => same_family(other),
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_keys_are_bound_to_their_family() {
        let pem = include_bytes!("../../tests/fixtures/jwt/rsa-1.pub.pem");
        let k = JwtKey::from_pem(Some("r".into()), Algorithm::RS256, pem).unwrap();
        assert!(k.accepts(Algorithm::RS256) && k.accepts(Algorithm::PS256));
        assert!(!k.accepts(Algorithm::HS256));
        assert!(!k.accepts(Algorithm::ES256));
        assert!(JwtKey::from_pem(None, Algorithm::ES256, pem).is_err());
        assert!(JwtKey::from_pem(None, Algorithm::HS256, pem).is_err());
    }

    #[test]
    fn ec_pem_keys_must_be_on_their_algorithms_curve() {
        let p256 = include_bytes!("../../tests/fixtures/jwt/ec-p256.pub.pem");
        let p384 = include_bytes!("../../tests/fixtures/jwt/ec-p384.pub.pem");
        assert!(JwtKey::from_pem(None, Algorithm::ES256, p256).is_ok());
        assert!(JwtKey::from_pem(None, Algorithm::ES384, p384).is_ok());
        for (alg, pem) in [(Algorithm::ES384, &p256[..]), (Algorithm::ES256, &p384[..])] {
            assert_eq!(
                JwtKey::from_pem(None, alg, pem).unwrap_err(),
                JwtKeyError::BadKey("PEM (its key is not on the algorithm's curve)"),
                "{alg:?}"
            );
        }
        let ed = include_bytes!("../../tests/fixtures/jwt/ed25519.pub.pem");
        assert!(JwtKey::from_pem(None, Algorithm::EdDSA, ed).is_ok());
    }

    #[test]
    fn secrets_are_hmac_only() {
        let s = Secret::new("shh");
        assert!(JwtKey::from_secret(None, Algorithm::RS256, &s).is_err());
        let k = JwtKey::from_secret(None, Algorithm::HS256, &s).unwrap();
        assert!(k.accepts(Algorithm::HS512) && !k.accepts(Algorithm::RS256));
        assert!(!format!("{k:?}").contains("shh"));
    }

    #[test]
    fn jwks_whose_curve_or_size_does_not_fit_their_algorithm_are_refused() {
        // x and y of the RFC 7515 A.3 P-256 example key.
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let ec = |crv: &str, alg: &str, y: &str| -> Jwk {
            serde_json::from_str(&format!(
                r#"{{"kty":"EC","crv":"{crv}","alg":"{alg}","x":"{x}","y":"{y}"}}"#
            ))
            .unwrap()
        };
        let k = JwtKey::from_jwk(&ec("P-256", "ES256", y), None).unwrap();
        assert_eq!(k.algorithms(), [Algorithm::ES256]);
        assert_eq!(
            JwtKey::from_jwk(&ec("P-384", "ES256", y), None).unwrap_err(),
            JwtKeyError::UnsupportedJwk
        );
        assert!(JwtKey::from_jwk(&ec("P-256", "ES256", &y[..20]), None).is_err());
        let x25519: Jwk =
            serde_json::from_str(&format!(r#"{{"kty":"OKP","crv":"X25519","x":"{x}"}}"#)).unwrap();
        assert_eq!(
            JwtKey::from_jwk(&x25519, None).unwrap_err(),
            JwtKeyError::UnsupportedJwk
        );
        let ed: Jwk =
            serde_json::from_str(&format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#)).unwrap();
        assert_eq!(
            JwtKey::from_jwk(&ed, None).unwrap().algorithms(),
            [Algorithm::EdDSA]
        );
    }

    #[test]
    fn oct_jwks_are_refused() {
        let jwk: Jwk = serde_json::from_str(r#"{"kty":"oct","k":"c2ho","kid":"x"}"#).unwrap();
        assert_eq!(
            JwtKey::from_jwk(&jwk, None).unwrap_err(),
            JwtKeyError::UnsupportedJwk
        );
    }
}
