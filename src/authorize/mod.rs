//! `Authorize`: one decision for a whole incoming HTTP request. Pure: the
//! edge runs the checks this module asks for and hands back their results.
//!
//! An Upstash Workflow failure callback is a signed QStash request that runs
//! the service's failure function; it must be authorized like the original
//! request, or anyone could trigger it. So a failure callback always needs a
//! valid signature, plus the ORIGINAL caller's bearer credential whenever the
//! policy checks bearer credentials: the forwarded `Authorization` header or,
//! without one, the `sourceHeader` of the callback body.

use serde_json::Value;

use crate::{
    bearer::{Decision, Require},
    verify::Verdict,
};

/// The outcome of a whole-request check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Every required check passed.
    Ok,
    /// The signature check failed.
    SignatureDenied,
    /// The bearer check failed.
    BearerDenied,
    /// Policy `either`: neither check passed.
    NoCheckPassed,
}

impl Reason {
    /// A fixed explanation that is safe to show a client.
    pub fn message(self) -> &'static str {
        match self {
            Self::Ok => "request authorized",
            Self::SignatureDenied => "QStash signature check failed",
            Self::BearerDenied => "bearer credential check failed",
            Self::NoCheckPassed => "neither the signature nor the bearer credential is valid",
        }
    }

    /// A stable snake_case name, for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::SignatureDenied => "signature_denied",
            Self::BearerDenied => "bearer_denied",
            Self::NoCheckPassed => "no_check_passed",
        }
    }
}

/// The first value of header `name` (case-insensitive).
pub fn header<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    name: &str,
) -> Option<&'a str> {
    headers
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `Upstash-Workflow-Is-Failure: true` or a non-empty
/// `Upstash-Workflow-Failure-Callback` marks a failure callback.
pub fn is_failure_callback<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    header(headers.clone(), "upstash-workflow-is-failure")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || header(headers, "upstash-workflow-failure-callback")
            .is_some_and(|v| !v.trim().is_empty())
}

/// The original request's `Authorization` from a failure callback body's
/// `sourceHeader`: `{name: [values]}` (SDK) or `{name: value}` (docs).
pub fn source_authorization(body: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(body).ok()?;
    let headers = doc.get("sourceHeader")?.as_object()?;
    let (_, value) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))?;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => a.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Which checks run: `(signature, bearer)`.
pub fn checks(require: Require, failure_callback: bool) -> (bool, bool) {
    if failure_callback {
        return (true, require.wants_bearer());
    }
    (require.wants_signature(), require.wants_bearer())
}

/// Combines the results of the checks that ran.
pub fn decide(
    require: Require,
    failure_callback: bool,
    signature: Option<&Verdict>,
    bearer: Option<&Decision>,
) -> Reason {
    let sig = signature.is_some_and(Verdict::is_valid);
    let bear = bearer.is_some_and(Decision::is_allowed);
    let (need_sig, need_bearer) = checks(require, failure_callback);
    if require == Require::Either && !failure_callback {
        return if sig || bear {
            Reason::Ok
        } else {
            Reason::NoCheckPassed
        };
    }
    if need_sig && !sig {
        Reason::SignatureDenied
    } else if need_bearer && !bear {
        Reason::BearerDenied
    } else {
        Reason::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{bearer, verify};

    fn sig(ok: bool) -> Verdict {
        Verdict {
            reason: if ok {
                verify::Reason::Ok
            } else {
                verify::Reason::NoKeyMatched
            },
            key_slot: None,
            claims: None,
        }
    }

    fn bear(ok: bool) -> Decision {
        Decision::denied(if ok {
            bearer::Reason::Ok
        } else {
            bearer::Reason::BadSignature
        })
    }

    #[test]
    fn headers_are_case_insensitive() {
        let h = [("Content-Type", "x"), ("AUTHORIZATION", "Bearer t")];
        assert_eq!(header(h, "authorization"), Some("Bearer t"));
        assert!(is_failure_callback([(
            "upstash-workflow-is-failure",
            "TRUE"
        )]));
        assert!(is_failure_callback([(
            "Upstash-Workflow-Failure-Callback",
            "https://x"
        )]));
        assert!(!is_failure_callback([(
            "Upstash-Workflow-Is-Failure",
            "false"
        )]));
        assert!(!is_failure_callback([(
            "Upstash-Workflow-Failure-Callback",
            " "
        )]));
    }

    #[test]
    fn source_header_in_both_shapes() {
        let sdk = br#"{"sourceHeader":{"Authorization":["Bearer a"]}}"#;
        let docs = br#"{"sourceHeader":{"authorization":"Bearer b"}}"#;
        assert_eq!(source_authorization(sdk).as_deref(), Some("Bearer a"));
        assert_eq!(source_authorization(docs).as_deref(), Some("Bearer b"));
        assert_eq!(source_authorization(b"{}"), None);
        assert_eq!(source_authorization(b"not json"), None);
    }

    #[test]
    fn requirements_combine() {
        use Require::*;
        let d = |r, fc, s: Option<bool>, b: Option<bool>| {
            decide(r, fc, s.map(sig).as_ref(), b.map(bear).as_ref())
        };
        assert_eq!(d(Signature, false, Some(true), None), Reason::Ok);
        assert_eq!(
            d(Signature, false, Some(false), None),
            Reason::SignatureDenied
        );
        assert_eq!(d(Bearer, false, None, Some(true)), Reason::Ok);
        assert_eq!(d(Bearer, false, None, Some(false)), Reason::BearerDenied);
        assert_eq!(
            d(Both, false, Some(true), Some(false)),
            Reason::BearerDenied
        );
        assert_eq!(
            d(Both, false, Some(false), Some(true)),
            Reason::SignatureDenied
        );
        assert_eq!(d(Either, false, Some(false), Some(true)), Reason::Ok);
        assert_eq!(
            d(Either, false, Some(false), Some(false)),
            Reason::NoCheckPassed
        );
        // Failure callbacks: signature always, bearer when the policy checks it.
        assert_eq!(checks(Bearer, true), (true, true));
        assert_eq!(checks(Signature, true), (true, false));
        assert_eq!(
            d(Either, true, Some(true), Some(false)),
            Reason::BearerDenied
        );
        assert_eq!(
            d(Bearer, true, Some(false), Some(true)),
            Reason::SignatureDenied
        );
        assert_eq!(d(Bearer, true, Some(true), Some(true)), Reason::Ok);
    }
}
