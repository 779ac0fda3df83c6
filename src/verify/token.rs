//! Splitting and decoding a compact HS256 JWS without allocating for
//! ordinary (QStash-sized) tokens.

use std::borrow::Cow;

use base64::{
    Engine,
    alphabet::URL_SAFE,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde::Deserialize;

/// base64url as JWS uses it; padding is tolerated on input (it does not change
/// the decoded bytes and the MAC covers the text as sent).
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A compact JWS split into its parts; nothing verified yet.
pub(crate) struct CompactJws<'a> {
    /// `header.payload` as sent: what the MAC covers.
    pub signing_input: &'a [u8],
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
}

impl<'a> CompactJws<'a> {
    /// Exactly three dot-separated parts, or `None`.
    pub fn split(token: &'a str) -> Option<Self> {
        let (header, rest) = token.split_once('.')?;
        let (payload, signature) = rest.split_once('.')?;
        if signature.contains('.') {
            return None;
        }
        Some(Self {
            signing_input: &token.as_bytes()[..header.len() + 1 + payload.len()],
            header,
            payload,
            signature,
        })
    }
}

#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub alg: Cow<'a, str>,
}

/// The claims signet reads. Unknown claims are ignored; a known claim of the
/// wrong JSON type, or given twice, makes the token malformed.
#[derive(Deserialize)]
pub(crate) struct RawClaims<'a> {
    #[serde(borrow)]
    pub iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub sub: Option<Cow<'a, str>>,
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
    #[serde(borrow)]
    pub jti: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub body: Option<Cow<'a, str>>,
}

/// Decodes base64url `part` into `stack` when it fits, else onto the heap.
pub(crate) fn decode<'b>(part: &str, stack: &'b mut [u8]) -> Option<Cow<'b, [u8]>> {
    if base64::decoded_len_estimate(part.len()) <= stack.len() {
        let n = B64URL.decode_slice(part, stack).ok()?;
        Some(Cow::Borrowed(&stack[..n]))
    } else {
        B64URL.decode(part).ok().map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_needs_exactly_three_parts() {
        assert!(CompactJws::split("a.b.c").is_some());
        assert!(CompactJws::split("a.b").is_none());
        assert!(CompactJws::split("a.b.c.d").is_none());
        assert!(CompactJws::split("abc").is_none());
        let jws = CompactJws::split("hh.pp.ss").unwrap();
        assert_eq!(jws.signing_input, b"hh.pp");
        assert_eq!((jws.header, jws.payload, jws.signature), ("hh", "pp", "ss"));
    }

    #[test]
    fn decode_uses_the_heap_only_when_needed() {
        let mut small = [0u8; 4];
        assert!(matches!(
            decode("aGk", &mut small),
            Some(Cow::Borrowed(b"hi"))
        ));
        assert!(matches!(
            decode("aGVsbG8gd29ybGQ", &mut small),
            Some(Cow::Owned(_))
        ));
        assert!(decode("***", &mut small).is_none());
        assert_eq!(decode("aGk=", &mut small).as_deref(), Some(&b"hi"[..]));
    }
}
