//! Overhead of the per-call operations layers, in process: the observe layer
//! (span, request id, call metrics) and the caller-token check, around a
//! handler that answers at once. The difference to the bare handler is what
//! every gRPC call pays for metrics and tracing.
//!
//! `cargo bench --bench observe`

use std::{hint::black_box, sync::Arc};

use criterion::Criterion;
use sha2::{Digest, Sha256};
use signet::{
    config::CallerPolicy,
    metrics::{Metrics, Outcome},
    server::{
        FILE_DESCRIPTOR_SET,
        caller::{CALLER_TOKEN, CallerLayer},
        observe::{ObserveLayer, RpcNames},
    },
};
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt, service_fn};

type Handler = fn(
    http::Request<Body>,
) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>>;

fn handler(
    _: http::Request<Body>,
) -> std::future::Ready<Result<http::Response<Body>, std::convert::Infallible>> {
    let mut response = http::Response::new(Body::empty());
    response.extensions_mut().insert(Outcome {
        allowed: true,
        reason: "ok",
        key_slot: "current",
    });
    std::future::ready(Ok(response))
}

fn request() -> http::Request<Body> {
    http::Request::post("/signet.v1.Authorizer/VerifySignature")
        .header("content-type", "application/grpc")
        .header(CALLER_TOKEN, "caller-one")
        .body(Body::empty())
        .unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    let bare = service_fn(handler as Handler);
    c.bench_function("bare handler", |b| {
        b.iter(|| rt.block_on(bare.oneshot(black_box(request()))).unwrap())
    });
    let rpcs = Arc::new(RpcNames::from_descriptor_sets(&[FILE_DESCRIPTOR_SET]));
    let observed = ObserveLayer::new(Metrics::new(), rpcs).layer(bare);
    c.bench_function("observe layer (span, request id, metrics)", |b| {
        b.iter(|| {
            rt.block_on(observed.clone().oneshot(black_box(request())))
                .unwrap()
        })
    });
    let policy = CallerPolicy {
        token_sha256: vec![Sha256::digest("caller-one").into()],
        ..CallerPolicy::default()
    };
    let mut guarded = CallerLayer::new(policy).layer(observed);
    c.bench_function("observe + caller token check", |b| {
        b.iter(|| {
            rt.block_on(async {
                guarded.ready().await.unwrap();
                guarded.call(black_box(request())).await.unwrap()
            })
        })
    });
    c.final_summary();
}
