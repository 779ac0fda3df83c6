//! OpenTelemetry export (feature `otel`): the real binary sends its call
//! spans over OTLP/gRPC to a stand-in collector running in the test.
#![cfg(feature = "otel")]

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use signet::proto::VerifySignatureRequest;
use tonic::{Request, Response, Status};

/// Keeps every export request it receives.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

fn string(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<&str> {
    match v.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

#[tokio::test]
async fn call_spans_reach_the_collector_with_the_request_id() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let collector = Collector::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let mut server = Signet::builder()
        .test_keys()
        .env("SIGNET__OTEL__ENABLED", "true")
        .env("SIGNET__OTEL__ENDPOINT", format!("http://{collector_addr}"))
        .env("SIGNET__OTEL__SERVICE_NAME", "signet-test")
        .start();
    let body = b"otel";
    let mut request = Request::new(VerifySignatureRequest {
        signature: token(TEST_CURRENT, body, URL),
        body: Some(body.to_vec().into()),
        url: URL.into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "req-otel-1".parse().unwrap());
    let mut client = server.client().await;
    assert!(
        client
            .verify_signature(request)
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    drop(client);
    // Shutdown flushes the batch.
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(15)).await.success());

    let exports = collector.0.lock().unwrap().clone();
    let spans: Vec<_> = exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .filter(|rs| {
            rs.resource.as_ref().is_some_and(|r| {
                r.attributes
                    .iter()
                    .any(|kv| kv.key == "service.name" && string(&kv.value) == Some("signet-test"))
            })
        })
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .collect();
    let call = spans
        .iter()
        .find(|s| {
            s.name == "call"
                && s.attributes
                    .iter()
                    .any(|kv| kv.key == "request_id" && string(&kv.value) == Some("req-otel-1"))
        })
        .unwrap_or_else(|| panic!("no call span with the request id in {spans:#?}"));
    assert!(
        call.attributes.iter().any(|kv| kv.key == "rpc"
            && string(&kv.value) == Some("signet.v1.Authorizer/VerifySignature"))
    );
    let shown = format!("{exports:?}");
    assert!(!shown.contains(TEST_CURRENT));
}
