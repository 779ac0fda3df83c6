//! Process-level behaviour: SIGTERM drains in-flight calls, the grace period
//! bounds shutdown, logs never carry keys or tokens, JSON logs parse.

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::*;
use prost::Message;
use signet::proto::{VerifySignatureRequest, VerifySignatureResponse};

/// Opens a raw HTTP/2 VerifySignature call and sends only the first half of
/// the gRPC frame, so the call stays in flight until `finish` is called.
struct HalfSentCall {
    response: h2::client::ResponseFuture,
    stream: h2::SendStream<Bytes>,
    rest: Bytes,
}

async fn half_sent_call(server: &Signet, req: VerifySignatureRequest) -> HalfSentCall {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (h2, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping_pong = connection.ping_pong().unwrap();
    tokio::spawn(connection);
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/signet.v1.Authorizer/VerifySignature",
        server.addr
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut stream) = h2.send_request(request, false).unwrap();
    let msg = req.encode_to_vec();
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let mut frame = frame.freeze();
    let rest = frame.split_off(frame.len() / 2);
    stream.send_data(frame, false).unwrap();
    // Frames are handled in order: once the PONG is back, the server has
    // read the call's headers and first half.
    ping_pong.ping(h2::Ping::opaque()).await.unwrap();
    HalfSentCall {
        response,
        stream,
        rest,
    }
}

impl HalfSentCall {
    async fn finish(mut self) -> (String, VerifySignatureResponse) {
        self.stream.send_data(self.rest, true).unwrap();
        let response = self.response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.unwrap().unwrap_or_default();
        let status = trailers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let msg = VerifySignatureResponse::decode(&data[5..]).unwrap();
        (status, msg)
    }
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_call() {
    let mut server = Signet::builder().test_keys().start();
    let body = b"{\"step\":1}";
    let req = VerifySignatureRequest {
        signature: token(TEST_CURRENT, body, URL),
        body: Some(body.to_vec().into()),
        url: URL.into(),
        ..Default::default()
    };
    let call = half_sent_call(&server, req).await;
    server.terminate();
    server.wait_for_log("draining");
    // Draining has begun, and the call already in flight completes.
    let (status, resp) = call.finish().await;
    assert_eq!(status, "0");
    assert!(resp.valid, "{resp:?}");
    let exit = server.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn the_grace_period_bounds_shutdown() {
    let mut server = Signet::builder()
        .test_keys()
        .env("SIGNET__SERVER__SHUTDOWN_GRACE", "300ms")
        .start();
    let _stuck = half_sent_call(
        &server,
        VerifySignatureRequest {
            signature: "x".into(),
            ..Default::default()
        },
    )
    .await;
    server.terminate();
    let exit = server.wait_exit(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
    assert!(
        server.logs().contains("grace period over"),
        "{}",
        server.logs()
    );
}

#[tokio::test]
async fn trace_logs_never_contain_keys_or_signatures() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let mut server = Signet::builder()
        .test_keys()
        .env("RUST_LOG", "trace")
        .start();
    let mut client = server.client().await;
    let mut sent = Vec::new();
    for (key, body, url) in [
        (TEST_CURRENT, &b"a"[..], URL),
        (TEST_NEXT, b"b", URL),
        (TEST_CURRENT, b"c", "https://elsewhere.example/"),
        (CURRENT, b"d", URL),
    ] {
        let t = token(key, body, url);
        let resp = client
            .verify_signature(VerifySignatureRequest {
                signature: t.clone(),
                body: Some(b"a".to_vec().into()),
                url: URL.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        drop(resp);
        sent.push(t);
    }
    let bad = VerifySignatureRequest {
        signature: sent[0].clone(),
        body_sha256: Some(vec![1; 5].into()),
        ..Default::default()
    };
    assert!(client.verify_signature(bad).await.is_err());
    let unknown = VerifySignatureRequest {
        signature: sent[1].clone(),
        key_set: "other".into(),
        ..Default::default()
    };
    assert!(client.verify_signature(unknown).await.is_err());
    HealthClient::new(server.channel().await)
        .check(HealthCheckRequest {
            service: "signet.v1.Authorizer".into(),
        })
        .await
        .unwrap();
    drop(client);
    server.terminate();
    server.wait_exit(Duration::from_secs(10)).await;
    let logs = server.logs();
    assert!(logs.contains("TRACE"), "trace level was not applied");
    assert!(
        logs.contains("decision"),
        "decisions are not logged at trace level"
    );
    for secret in [TEST_CURRENT, TEST_NEXT, &TEST_CURRENT[4..], &TEST_NEXT[4..]] {
        assert!(!logs.contains(secret), "a signing key appears in the logs");
    }
    for t in &sent {
        let mac = t.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(t.as_str()),
            "a complete signature appears in the logs"
        );
        assert!(!logs.contains(mac), "a signature's MAC appears in the logs");
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let mut server = Signet::builder()
        .test_keys()
        .env("SIGNET__LOG__FORMAT", "json")
        .start();
    server.terminate();
    server.wait_exit(Duration::from_secs(10)).await;
    let logs = server.logs();
    let lines: Vec<_> = logs
        .lines()
        .filter(|l| !l.starts_with("signet listening on"))
        .collect();
    assert!(lines.len() >= 2, "{logs}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
}

#[tokio::test]
async fn idle_client_connections_do_not_hold_shutdown() {
    let mut server = Signet::builder().test_keys().start();
    let mut client = server.client().await;
    let _ = client
        .verify_signature(VerifySignatureRequest::default())
        .await;
    server.terminate();
    let exit = server.wait_exit(Duration::from_secs(20)).await;
    assert!(exit.success());
    assert!(
        !server.logs().contains("grace period over"),
        "an idle connection held shutdown"
    );
    drop(client);
}
