//! Envoy ext_authz v3, as pure functions: a `CheckRequest` becomes the
//! whole-request shape signet's decision core takes ([`HttpRequest`]), and a
//! [`Decision`] becomes a `CheckResponse`. No I/O, no clock: the tonic edge
//! (`server::ext_authz`) does the deciding in between.

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::{
    envoy_proto::{
        envoy::{
            config::core::v3::{HeaderValue, HeaderValueOption, header_value_option},
            service::auth::v3::{
                CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse, attribute_context,
                check_response,
            },
            r#type::v3::{HttpStatus, StatusCode},
        },
        google::rpc,
    },
    keys::KeySlot,
    proto::{self, AuthorizeReason, BearerReason, SignatureReason},
};

/// The `context_extensions` key that names the policy for a route.
pub const POLICY_EXTENSION: &str = "signet_policy";
/// Header set for the upstream: who the request acts for.
pub const SUBJECT_HEADER: &str = "x-signet-subject";
/// Header set for the upstream: the signing key that verified the signature.
pub const KEY_SLOT_HEADER: &str = "x-signet-key-slot";
/// Header set for the upstream: `true` when the request is an Upstash
/// Workflow failure callback.
pub const FAILURE_CALLBACK_HEADER: &str = "x-signet-failure-callback";

/// The `google.rpc.Code` values signet answers with.
const RPC_OK: i32 = 0;
const RPC_PERMISSION_DENIED: i32 = 7;
const RPC_UNAUTHENTICATED: i32 = 16;

/// The HTTP request Envoy asks about, in the shape of signet's whole-request
/// check (`Authorize`): method, path, headers, exact body, policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpRequest {
    /// The HTTP method.
    pub method: String,
    /// Path and query, as Envoy saw them.
    pub path: String,
    /// Headers with lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes: `raw_body` (`pack_as_bytes: true`), else `body`.
    pub body: Bytes,
    /// The route's `signet_policy` context extension; empty = default policy.
    pub policy: String,
}

impl HttpRequest {
    /// Maps Envoy's attributes. Headers come from `headers`, or from
    /// `header_map` when Envoy sends raw headers (`encode_raw_headers`).
    pub fn from_check(request: CheckRequest) -> Self {
        let mut attributes = request.attributes.unwrap_or_default();
        let policy = attributes
            .context_extensions
            .remove(POLICY_EXTENSION)
            .unwrap_or_default();
        let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
        let headers = headers(&http);
        let body = if http.raw_body.is_empty() {
            Bytes::from(http.body)
        } else {
            http.raw_body
        };
        Self {
            method: http.method,
            path: http.path,
            headers,
            body,
            policy,
        }
    }

    /// The first value of a header (`name` in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn headers(http: &attribute_context::HttpRequest) -> Vec<(String, String)> {
    let lower = |k: &str| k.to_ascii_lowercase();
    if !http.headers.is_empty() {
        return http
            .headers
            .iter()
            .map(|(k, v)| (lower(k), v.clone()))
            .collect();
    }
    http.header_map
        .iter()
        .flat_map(|m| &m.headers)
        .map(|h| {
            let value = if h.raw_value.is_empty() {
                h.value.clone()
            } else {
                String::from_utf8_lossy(&h.raw_value).into_owned()
            };
            (lower(&h.key), value)
        })
        .collect()
}

/// What signet answers Envoy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request upstream.
    Allow(Allowed),
    /// Answer the client directly.
    Deny(Denied),
}

/// An allowed request and what the upstream is told about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Who the request acts for (the bearer's subject), when known.
    pub subject: Option<String>,
    /// The signing key that verified the signature, when one was checked.
    pub key_slot: Option<KeySlot>,
    /// The request is an Upstash Workflow failure callback.
    pub failure_callback: bool,
    /// Strip `authorization` before forwarding (per policy).
    pub remove_authorization: bool,
}

/// A denied request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denied {
    /// 401 or 403.
    pub kind: DenyKind,
    /// A stable snake_case reason, safe to show the client.
    pub reason: &'static str,
}

/// Why a request is denied, as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyKind {
    /// A credential (signature or bearer) is missing or invalid: 401.
    Unauthenticated,
    /// Credentials are valid but not enough for this route: 403.
    Forbidden,
}

impl DenyKind {
    fn http(self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::Unauthorized,
            Self::Forbidden => StatusCode::Forbidden,
        }
    }

    fn rpc(self) -> i32 {
        match self {
            Self::Unauthenticated => RPC_UNAUTHENTICATED,
            Self::Forbidden => RPC_PERMISSION_DENIED,
        }
    }

    fn error(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
        }
    }
}

impl Decision {
    /// The decision of the whole-request core (`Authorize`): allowed →
    /// forwarded with the subject, key slot and failure-callback flag; a
    /// failed signature → 401 `signature_<reason>`; a failed bearer → 403
    /// when the credential is valid but not enough (missing scope, kind not
    /// accepted), else 401 `bearer_<reason>`; policy `either` with neither →
    /// 401 `no_check_passed`.
    pub fn from_authorize(response: &proto::AuthorizeResponse) -> Self {
        if response.allowed {
            return Self::Allow(Allowed {
                subject: Some(response.subject.clone()).filter(|s| !s.is_empty()),
                key_slot: response
                    .signature
                    .as_ref()
                    .and_then(|s| key_slot(s.key_slot())),
                failure_callback: response.failure_callback,
                remove_authorization: false,
            });
        }
        let unauthenticated = |reason| {
            Self::Deny(Denied {
                kind: DenyKind::Unauthenticated,
                reason,
            })
        };
        match response.reason() {
            AuthorizeReason::SignatureDenied => unauthenticated(signature_reason(
                response
                    .signature
                    .as_ref()
                    .map_or(SignatureReason::Unspecified, |s| s.reason()),
            )),
            AuthorizeReason::BearerDenied => {
                let reason = response
                    .bearer
                    .as_ref()
                    .map_or(BearerReason::Unspecified, |b| b.reason());
                let kind = match reason {
                    BearerReason::MissingScope | BearerReason::KindNotAllowed => {
                        DenyKind::Forbidden
                    }
                    _ => DenyKind::Unauthenticated,
                };
                Self::Deny(Denied {
                    kind,
                    reason: bearer_reason(reason),
                })
            }
            AuthorizeReason::NoCheckPassed | AuthorizeReason::Ok | AuthorizeReason::Unspecified => {
                unauthenticated("no_check_passed")
            }
        }
    }
}

fn key_slot(slot: proto::KeySlot) -> Option<KeySlot> {
    match slot {
        proto::KeySlot::Unspecified => None,
        proto::KeySlot::Current => Some(KeySlot::Current),
        proto::KeySlot::Next => Some(KeySlot::Next),
    }
}

/// The reason a denied signature gives the client: `signature_` + the
/// verification reason.
fn signature_reason(reason: SignatureReason) -> &'static str {
    use SignatureReason as R;
    match reason {
        R::Unspecified => "signature_invalid",
        R::Ok => "signature_ok",
        R::Missing => "signature_missing",
        R::Malformed => "signature_malformed",
        R::UnsupportedAlgorithm => "signature_unsupported_algorithm",
        R::NoKeyMatched => "signature_no_key_matched",
        R::Expired => "signature_expired",
        R::NotYetValid => "signature_not_yet_valid",
        R::WrongIssuer => "signature_wrong_issuer",
        R::UrlMismatch => "signature_url_mismatch",
        R::BodyMismatch => "signature_body_mismatch",
        R::MissingClaim => "signature_missing_claim",
        R::TooLarge => "signature_too_large",
        R::UnknownRegion => "signature_unknown_region",
        R::Replayed => "signature_replayed",
    }
}

/// The reason a denied bearer credential gives the client: `bearer_` + the
/// bearer reason.
fn bearer_reason(reason: BearerReason) -> &'static str {
    use BearerReason as R;
    match reason {
        R::Unspecified => "bearer_invalid",
        R::Ok => "bearer_ok",
        R::Missing => "bearer_missing",
        R::Malformed => "bearer_malformed",
        R::Expired => "bearer_expired",
        R::NotYetValid => "bearer_not_yet_valid",
        R::BadSignature => "bearer_bad_signature",
        R::UnknownKeyId => "bearer_unknown_key_id",
        R::WrongIssuer => "bearer_wrong_issuer",
        R::WrongAudience => "bearer_wrong_audience",
        R::MissingScope => "bearer_missing_scope",
        R::UnknownApiKey => "bearer_unknown_api_key",
        R::MissingClaim => "bearer_missing_claim",
        R::AlgorithmNotAllowed => "bearer_algorithm_not_allowed",
        R::KindNotAllowed => "bearer_kind_not_allowed",
        R::Replayed => "bearer_replayed",
    }
}

/// The headers signet sets for the upstream. Every one of them the decision
/// does not set is removed, so a client cannot pass its own.
const SIGNET_HEADERS: [&str; 3] = [SUBJECT_HEADER, KEY_SLOT_HEADER, FAILURE_CALLBACK_HEADER];

fn overwrite(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append_action: header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
    }
}

fn key_slot_name(slot: KeySlot) -> &'static str {
    match slot {
        KeySlot::Current => "current",
        KeySlot::Next => "next",
    }
}

/// The `CheckResponse` for a decision.
pub fn check_response(decision: &Decision) -> CheckResponse {
    match decision {
        Decision::Allow(allowed) => allow_response(allowed),
        Decision::Deny(denied) => deny_response(*denied),
    }
}

fn allow_response(allowed: &Allowed) -> CheckResponse {
    let set: Vec<(&str, &str)> = [
        allowed.subject.as_deref().map(|s| (SUBJECT_HEADER, s)),
        allowed
            .key_slot
            .map(|k| (KEY_SLOT_HEADER, key_slot_name(k))),
        allowed
            .failure_callback
            .then_some((FAILURE_CALLBACK_HEADER, "true")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut headers_to_remove: Vec<String> = SIGNET_HEADERS
        .iter()
        .filter(|h| !set.iter().any(|(k, _)| k == *h))
        .map(|h| (*h).to_owned())
        .collect();
    if allowed.remove_authorization {
        headers_to_remove.push("authorization".to_owned());
    }
    CheckResponse {
        status: Some(rpc::Status {
            code: RPC_OK,
            message: String::new(),
        }),
        http_response: Some(check_response::HttpResponse::OkResponse(OkHttpResponse {
            headers: set.iter().map(|(k, v)| overwrite(k, v)).collect(),
            headers_to_remove,
        })),
    }
}

fn deny_response(denied: Denied) -> CheckResponse {
    let body = serde_json::json!({
        "error": denied.kind.error(),
        "reason": denied.reason,
    })
    .to_string();
    CheckResponse {
        status: Some(rpc::Status {
            code: denied.kind.rpc(),
            message: denied.kind.error().to_owned(),
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(
            DeniedHttpResponse {
                status: Some(HttpStatus {
                    code: denied.kind.http() as i32,
                }),
                headers: vec![overwrite("content-type", "application/json")],
                body,
            },
        )),
    }
}
