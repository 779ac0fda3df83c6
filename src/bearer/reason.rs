//! Why a bearer credential was accepted or denied.

/// The outcome of a bearer check, one value per cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Valid, and the policy's requirements are met.
    Ok,
    /// No credential was given.
    #[default]
    Missing,
    /// Not `Bearer <token>` (or a bare token), not a JWT, or badly typed claims.
    Malformed,
    /// `exp` has passed.
    Expired,
    /// `nbf` is still ahead.
    NotYetValid,
    /// No key of the issuer produced this signature.
    BadSignature,
    /// The token's `kid` names no key of the issuer (after a refetch).
    UnknownKeyId,
    /// `iss` names no issuer the policy accepts.
    WrongIssuer,
    /// `aud` names none of the issuer's audiences.
    WrongAudience,
    /// A scope the policy requires is missing.
    MissingScope,
    /// The API key is not one the policy knows.
    UnknownApiKey,
    /// A claim the issuer requires is missing.
    MissingClaim,
    /// The token's algorithm is not in the issuer's allowlist (or is `none`).
    AlgorithmNotAllowed,
    /// The policy accepts no credential of this kind.
    KindNotAllowed,
}

impl Reason {
    /// A fixed explanation that is safe to show a client.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ok => "credential valid",
            Self::Missing => "no bearer credential given",
            Self::Malformed => "credential is not a well-formed bearer token",
            Self::Expired => "token has expired",
            Self::NotYetValid => "token is not valid yet",
            Self::BadSignature => "token signature is not valid",
            Self::UnknownKeyId => "token names an unknown key id",
            Self::WrongIssuer => "token issuer is not accepted",
            Self::WrongAudience => "token audience is not accepted",
            Self::MissingScope => "credential lacks a required scope",
            Self::UnknownApiKey => "API key is not known",
            Self::MissingClaim => "token lacks a required claim",
            Self::AlgorithmNotAllowed => "token algorithm is not allowed",
            Self::KindNotAllowed => "this kind of credential is not accepted here",
        }
    }

    /// A stable snake_case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::UnknownKeyId => "unknown_key_id",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MissingScope => "missing_scope",
            Self::UnknownApiKey => "unknown_api_key",
            Self::MissingClaim => "missing_claim",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::KindNotAllowed => "kind_not_allowed",
        }
    }
}
