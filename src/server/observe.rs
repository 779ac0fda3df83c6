//! One tracing span per call, a request id, and the call metrics.
//!
//! The [`ObserveLayer`] wraps every gRPC call: it takes the caller's
//! `x-request-id` (or makes one), opens a `call` span carrying it, echoes it
//! in the response headers, and counts the call with the [`Outcome`] the
//! handler attached (or the gRPC status of an error). It never reads message
//! bodies; at `trace` level it logs the request metadata with credentials
//! replaced by `<redacted>`.

use std::{
    collections::HashMap,
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use http::{HeaderMap, HeaderValue};
use prost::Message;
use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{Metrics, Outcome};

/// The request id header, read from callers and echoed in responses.
pub const REQUEST_ID: &str = "x-request-id";

/// Metadata whose values are credentials: never logged.
const REDACTED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "upstash-signature",
    "x-api-key",
    super::caller::CALLER_TOKEN,
];

/// Maps request paths to the `rpc` label: every method of the services
/// signet serves, anything else is `other` (so a caller cannot grow the
/// label set by inventing paths).
#[derive(Debug, Default)]
pub struct RpcNames(HashMap<String, &'static str>);

impl RpcNames {
    /// The methods of every service in the given encoded descriptor sets.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Self {
        let mut names = HashMap::new();
        for set in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else {
                continue;
            };
            for file in set.file {
                let package = file.package().to_owned();
                for service in file.service {
                    let full = format!("{package}.{}", service.name());
                    for method in service.method {
                        let label = format!("{full}/{}", method.name());
                        let path = format!("/{label}");
                        // Leaked once at start-up: a bounded set of label values.
                        names.insert(path, &*Box::leak(label.into_boxed_str()));
                    }
                }
            }
        }
        Self(names)
    }

    fn get(&self, path: &str) -> &'static str {
        self.0.get(path).copied().unwrap_or("other")
    }
}

/// Tower layer adding a span, a request id and metrics to every call.
#[derive(Clone, Debug)]
pub struct ObserveLayer {
    metrics: Metrics,
    rpcs: Arc<RpcNames>,
}

impl ObserveLayer {
    /// Records into `metrics`, naming calls with `rpcs`.
    pub fn new(metrics: Metrics, rpcs: Arc<RpcNames>) -> Self {
        Self { metrics, rpcs }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`ObserveLayer`].
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, R> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let start = Instant::now();
        let id = request_id(request.headers());
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let rpc = self.layer.rpcs.get(request.uri().path());
        let span = tracing::info_span!("call", rpc, request_id = id.to_str().unwrap_or_default());
        tracing::trace!(parent: &span, metadata = %Redacted(request.headers()), "request");
        // The clone is ready only if polled; swap in the one that was.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.layer.metrics.clone();
        Box::pin(
            async move {
                let mut response = inner.call(request).await?;
                let elapsed = start.elapsed();
                let (decision, reason, key_slot) = classify(&response);
                metrics.record_call(rpc, decision, reason, key_slot, elapsed);
                tracing::debug!(
                    decision,
                    reason,
                    key_slot,
                    elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                    "call finished"
                );
                response.headers_mut().insert(REQUEST_ID, id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The caller's request id when it is a sane token (up to 128 characters of
/// `[A-Za-z0-9._:-]`), else a fresh UUID.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty()
                && b.len() <= 128
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(c))
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        })
}

/// `(decision, reason, key_slot)` labels for a finished call.
fn classify<R>(response: &http::Response<R>) -> (&'static str, &'static str, &'static str) {
    if let Some(o) = response.extensions().get::<Outcome>() {
        let decision = if o.allowed { "allow" } else { "deny" };
        return (decision, o.reason, o.key_slot);
    }
    // Errors are trailers-only responses: the status is in the headers.
    match response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    {
        Some(code) if code != 0 => ("error", code_name(Code::from_i32(code)), ""),
        _ => ("none", "OK", ""),
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Request metadata for a `trace` log, with credential values replaced.
struct Redacted<'a>(&'a HeaderMap);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            let name = name.as_str();
            if i > 0 {
                f.write_str(" ")?;
            }
            if REDACTED.contains(&name) {
                write!(f, "{name}=<redacted>")?;
            } else if name.ends_with("-bin") {
                write!(f, "{name}=<{} bytes>", value.len())?;
            } else {
                write!(f, "{name}={:?}", value.to_str().unwrap_or("<binary>"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("req-123.a:b_c"));
        assert_eq!(request_id(&h), "req-123.a:b_c");
        h.insert(REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        let made = request_id(&h);
        assert_eq!(made.len(), 36, "{made:?}");
        assert_ne!(request_id(&HeaderMap::new()), made);
    }

    #[test]
    fn credentials_are_redacted() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sekrit"));
        h.insert(
            super::super::caller::CALLER_TOKEN,
            HeaderValue::from_static("tok"),
        );
        h.insert("user-agent", HeaderValue::from_static("grpc-test"));
        let shown = Redacted(&h).to_string();
        assert!(
            !shown.contains("sekrit") && !shown.contains("tok\""),
            "{shown}"
        );
        assert!(shown.contains("grpc-test"), "{shown}");
    }

    #[test]
    fn rpc_names_come_from_the_descriptors() {
        let names = RpcNames::from_descriptor_sets(&[super::super::FILE_DESCRIPTOR_SET]);
        assert_eq!(
            names.get("/signet.v1.Authorizer/VerifySignature"),
            "signet.v1.Authorizer/VerifySignature"
        );
        assert_eq!(names.get("/signet.v1.Authorizer/Nope"), "other");
    }
}
