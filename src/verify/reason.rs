//! Why a signature was accepted or denied.

/// The outcome of a signature check, one value per cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Valid.
    Ok,
    /// No signature was given.
    Missing,
    /// Not a compact JWS, bad base64url, or badly typed claims.
    Malformed,
    /// The header names an algorithm other than HS256.
    UnsupportedAlgorithm,
    /// Neither the current nor the next key produced the MAC.
    NoKeyMatched,
    /// `exp` has passed.
    Expired,
    /// `nbf` is still ahead.
    NotYetValid,
    /// `iss` is missing or not exactly `Upstash`.
    WrongIssuer,
    /// `sub` differs from the given url.
    UrlMismatch,
    /// The `body` claim differs from the body's SHA-256.
    BodyMismatch,
    /// `exp` or `body` is missing.
    MissingClaim,
    /// Longer than the configured limit.
    TooLarge,
    /// The request names a region with no keys.
    UnknownRegion,
    /// The `jti` was seen before.
    Replayed,
}

impl Reason {
    /// A fixed explanation that is safe to show a client.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ok => "signature valid",
            Self::Missing => "no Upstash-Signature given",
            Self::Malformed => "signature is not a well-formed QStash JWT",
            Self::UnsupportedAlgorithm => "signature algorithm must be HS256",
            Self::NoKeyMatched => "signature does not match the current or next signing key",
            Self::Expired => "signature has expired",
            Self::NotYetValid => "signature is not valid yet",
            Self::WrongIssuer => "signature issuer is not Upstash",
            Self::UrlMismatch => "signature was made for another url",
            Self::BodyMismatch => "body does not match the signature's body hash",
            Self::MissingClaim => "signature lacks a required claim (exp or body)",
            Self::TooLarge => "signature is larger than allowed",
            Self::UnknownRegion => "no signing keys for the request's region",
            Self::Replayed => "signature was already used",
        }
    }

    /// A stable snake_case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::NoKeyMatched => "no_key_matched",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::UrlMismatch => "url_mismatch",
            Self::BodyMismatch => "body_mismatch",
            Self::MissingClaim => "missing_claim",
            Self::TooLarge => "too_large",
            Self::UnknownRegion => "unknown_region",
            Self::Replayed => "replayed",
        }
    }
}
