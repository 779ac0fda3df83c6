//! Operations, against the real binary: Prometheus metrics and probes on the
//! metrics port, request ids, redaction, TLS with certificate reload, mTLS
//! allowlists per service, and caller tokens.

mod common;

use std::{
    io::{Read, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use common::*;
use sha2::{Digest, Sha256};
use signet::proto::{
    GetKeyStatusRequest, VerifySignatureRequest, authorizer_client::AuthorizerClient,
    key_admin_client::KeyAdminClient,
};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

const BODY: &[u8] = b"{\"hello\":\"world\"}";

fn verify_request(signature: String) -> VerifySignatureRequest {
    VerifySignatureRequest {
        signature,
        body: Some(BODY.to_vec().into()),
        url: URL.into(),
        ..Default::default()
    }
}

/// The address in a JSON log line `{"message": "<message>", "addr": ...}`.
fn logged_addr(server: &Signet, message: &str) -> SocketAddr {
    let line = server.wait_for_log(message);
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    v["addr"].as_str().unwrap().parse().unwrap()
}

/// A plain HTTP/1.1 GET: (status, body).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: signet\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    tcp.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn metrics_server(builder: SignetBuilder) -> (Signet, SocketAddr) {
    let server = builder
        .env("SIGNET__METRICS__LISTEN", "127.0.0.1:0")
        .env("SIGNET__LOG__FORMAT", "json")
        .start();
    let addr = logged_addr(&server, "metrics listening");
    (server, addr)
}

#[tokio::test]
async fn metrics_count_calls_by_decision_reason_and_slot() {
    let (server, metrics) = metrics_server(Signet::builder().test_keys());
    let mut client = server.client().await;
    for signature in [
        token(TEST_CURRENT, BODY, URL),
        token(TEST_NEXT, BODY, URL),
        token(TEST_NEXT, BODY, URL),
        token(CURRENT, BODY, URL),
    ] {
        client
            .verify_signature(verify_request(signature))
            .await
            .unwrap();
    }
    let both = VerifySignatureRequest {
        body_sha256: Some(vec![0; 32].into()),
        ..verify_request(token(TEST_CURRENT, BODY, URL))
    };
    assert_eq!(
        client.verify_signature(both).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let (status, text) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    let rpc = r#"rpc="signet.v1.Authorizer/VerifySignature""#;
    for series in [
        format!(r#"signet_calls_total{{{rpc},decision="allow",reason="ok",key_slot="current"}} 1"#),
        format!(r#"signet_calls_total{{{rpc},decision="allow",reason="ok",key_slot="next"}} 2"#),
        format!(
            r#"signet_calls_total{{{rpc},decision="deny",reason="no_key_matched",key_slot=""}} 1"#
        ),
        format!(
            r#"signet_calls_total{{{rpc},decision="error",reason="INVALID_ARGUMENT",key_slot=""}} 1"#
        ),
        format!(r#"signet_call_duration_seconds_count{{{rpc}}} 5"#),
        r#"signet_key_set_age_seconds{key_set="default",source="env"}"#.to_owned(),
        "signet_keys_generation ".to_owned(),
        r#"signet_key_set_version{key_set="default",source="env"}"#.to_owned(),
        "signet_key_changes_total ".to_owned(),
    ] {
        assert!(text.contains(&series), "{series} missing from\n{text}");
    }
    assert_eq!(http_get(metrics, "/livez").0, 200);
    assert_eq!(http_get(metrics, "/readyz").0, 200);
}

#[tokio::test]
async fn readyz_mirrors_the_authorizer_health() {
    let (_server, metrics) = metrics_server(Signet::builder());
    assert_eq!(http_get(metrics, "/livez").0, 200);
    let (status, body) = http_get(metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made_and_carried_by_the_span() {
    let server = Signet::builder()
        .test_keys()
        .env("SIGNET__LOG__LEVEL", "signet=debug,info")
        .env("SIGNET__LOG__FORMAT", "json")
        .start();
    let mut client = server.client().await;
    let mut request = Request::new(verify_request(token(TEST_CURRENT, BODY, URL)));
    request
        .metadata_mut()
        .insert("x-request-id", "req-ops-4711".parse().unwrap());
    let response = client.verify_signature(request).await.unwrap();
    assert_eq!(
        response.metadata().get("x-request-id").unwrap(),
        "req-ops-4711"
    );
    let line = server.wait_for_log("call finished");
    assert!(line.contains("req-ops-4711"), "{line}");

    let mut bad = Request::new(verify_request(token(TEST_CURRENT, BODY, URL)));
    bad.metadata_mut()
        .insert("x-request-id", "no spaces allowed".parse().unwrap());
    let response = client.verify_signature(bad).await.unwrap();
    let made = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(made.len(), 36, "{made}");
}

#[tokio::test]
async fn trace_logs_and_metrics_never_carry_credentials() {
    let caller_token = "caller-token-9f8e7d6c5b4a";
    let (server, metrics) =
        metrics_server(Signet::builder().test_keys().env("RUST_LOG", "trace").env(
            "SIGNET__CALLERS__TOKEN_SHA256",
            hex::encode(Sha256::digest(caller_token)),
        ));
    let mut client = server.client().await;
    let signature = token(TEST_CURRENT, BODY, URL);
    let mut request = Request::new(verify_request(signature.clone()));
    let md = request.metadata_mut();
    md.insert("x-signet-caller-token", caller_token.parse().unwrap());
    md.insert(
        "authorization",
        "Bearer bearer-secret-0a1b2c".parse().unwrap(),
    );
    md.insert("upstash-signature", signature.parse().unwrap());
    assert!(
        client
            .verify_signature(request)
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    let (_, text) = http_get(metrics, "/metrics");
    server.wait_for_log("call finished");
    let logs = server.logs();
    assert!(logs.contains("<redacted>"), "metadata not logged at trace");
    let mac = signature.rsplit('.').next().unwrap();
    for secret in [
        caller_token,
        "bearer-secret-0a1b2c",
        mac,
        TEST_CURRENT,
        TEST_NEXT,
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        assert!(!text.contains(secret), "{secret} in the metrics");
    }
}

#[tokio::test]
async fn caller_tokens_guard_the_authorizer() {
    let digest = |t: &str| hex::encode(Sha256::digest(t));
    let (server, metrics) = metrics_server(Signet::builder().test_keys().env(
        "SIGNET__CALLERS__TOKEN_SHA256",
        format!("{},{}", digest("caller-one"), digest("caller-two")),
    ));
    let mut client = server.client().await;
    let call = |token: Option<&str>| {
        let mut request = Request::new(verify_request(common::token(TEST_CURRENT, BODY, URL)));
        if let Some(t) = token {
            request
                .metadata_mut()
                .insert("x-signet-caller-token", t.parse().unwrap());
        }
        request
    };
    for token in [None, Some("caller-three"), Some("")] {
        let e = client.verify_signature(call(token)).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}");
        assert_eq!(e.message(), "caller not authenticated");
    }
    for token in ["caller-one", "caller-two"] {
        let r = client.verify_signature(call(Some(token))).await.unwrap();
        assert!(r.into_inner().valid);
    }
    // Health stays open for probes.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "signet.v1.Authorizer".into(),
        })
        .await
        .unwrap();
    let (_, text) = http_get(metrics, "/metrics");
    assert!(
        text.contains(r#"decision="error",reason="UNAUTHENTICATED",key_slot=""} 3"#),
        "{text}"
    );
}

/// A CA and certificates it issues, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "signet test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
        let pki = Self {
            dir: tempfile::tempdir().unwrap(),
            ca,
        };
        std::fs::write(pki.path("ca.crt"), pki.ca.pem()).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (cert PEM, key PEM) for the SANs (DNS names, or URIs if they contain "://").
    fn issue(&self, sans: &[&str], client: bool) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        for san in sans {
            params.subject_alt_names.push(if san.contains("://") {
                rcgen::SanType::URI((*san).try_into().unwrap())
            } else {
                rcgen::SanType::DnsName((*san).try_into().unwrap())
            });
        }
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a server certificate for `localhost` as tls.crt / tls.key; returns its DER.
    fn server_cert(&self) -> Vec<u8> {
        let (cert, key) = self.issue(&["localhost"], false);
        // Replace atomically, as the kubelet does with a Secret.
        for (name, pem) in [("tls.key", &key), ("tls.crt", &cert)] {
            let tmp = self.path(&format!("{name}.tmp"));
            std::fs::write(&tmp, pem).unwrap();
            std::fs::rename(&tmp, self.path(name)).unwrap();
        }
        rustls_pki_types::pem::PemObject::from_pem_slice(cert.as_bytes())
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap()
    }

    fn config(&self, extra: &str) -> PathBuf {
        let path = self.path("signet.toml");
        std::fs::write(
            &path,
            format!(
                "[server.tls]\nenabled = true\ncert_file = {:?}\nkey_file = {:?}\nreload_interval = \"1s\"\n{extra}",
                self.path("tls.crt"),
                self.path("tls.key"),
            ),
        )
        .unwrap();
        path
    }

    async fn channel(
        &self,
        server: &Signet,
        identity: Option<(String, String)>,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.ca.pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Channel::from_shared(format!("https://{}", server.addr))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}

fn tls_server(pki: &Pki, extra: &str) -> Signet {
    Signet::builder()
        .test_keys()
        .env("SIGNET__LOG__LEVEL", "signet=debug,info")
        .arg("--config")
        .arg(pki.config(extra).to_str().unwrap())
        .start()
}

/// The certificate a fresh TLS connection is served.
async fn served_certificate(pki: &Pki, addr: SocketAddr) -> Vec<u8> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn verify_over(channel: Channel) -> Result<bool, tonic::Status> {
    AuthorizerClient::new(channel)
        .verify_signature(verify_request(token(TEST_CURRENT, BODY, URL)))
        .await
        .map(|r| r.into_inner().valid)
}

#[tokio::test]
async fn tls_is_required_and_certificates_reload_without_restart() {
    let pki = Pki::new();
    let first = pki.server_cert();
    let server = tls_server(&pki, "");
    assert!(
        verify_over(pki.channel(&server, None).await.unwrap())
            .await
            .unwrap()
    );
    // Plaintext is refused: the connection fails, never a decision.
    if let Ok(channel) = Channel::from_shared(server.url()).unwrap().connect().await {
        let e = verify_over(channel).await.unwrap_err();
        assert_ne!(e.code(), Code::Ok);
    }
    assert_eq!(served_certificate(&pki, server.addr).await, first);

    let second = pki.server_cert();
    assert_ne!(first, second);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while served_certificate(&pki, server.addr).await != second {
        assert!(
            std::time::Instant::now() < deadline,
            "certificate not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.wait_for_log("TLS certificate reloaded");
    assert!(
        verify_over(pki.channel(&server, None).await.unwrap())
            .await
            .unwrap()
    );

    // A broken replacement keeps the working certificate.
    std::fs::write(pki.path("tls.crt"), "not a certificate").unwrap();
    server.wait_for_log("keeping the previous certificate");
    assert_eq!(served_certificate(&pki, server.addr).await, second);
}

#[tokio::test]
async fn mtls_allowlists_are_per_service() {
    let pki = Pki::new();
    pki.server_cert();
    let server = tls_server(
        &pki,
        &format!(
            "client_ca_file = {:?}\n[server.tls.allowed_clients]\nauthorizer = [\"spiffe://test/ns/app/sa/web\", \"worker.app.svc\"]\nkey_admin = [\"spiffe://test/ns/platform/sa/rotator\"]\n",
            pki.path("ca.crt")
        ),
    );
    let web = pki.issue(&["spiffe://test/ns/app/sa/web"], true);
    let worker = pki.issue(&["worker.app.svc"], true);
    let rotator = pki.issue(&["spiffe://test/ns/platform/sa/rotator"], true);
    let stranger = pki.issue(&["spiffe://test/ns/app/sa/stranger"], true);

    for allowed in [web.clone(), worker] {
        let channel = pki.channel(&server, Some(allowed)).await.unwrap();
        assert!(verify_over(channel).await.unwrap());
    }
    for denied in [stranger, rotator.clone()] {
        let channel = pki.channel(&server, Some(denied)).await.unwrap();
        let e = verify_over(channel).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert_eq!(e.message(), "caller not allowed");
    }
    // KeyAdmin: web is refused; the rotator passes the caller check (this
    // build serves no KeyAdmin, so the router answers UNIMPLEMENTED).
    let key_status = |channel| async move {
        KeyAdminClient::new(channel)
            .get_key_status(GetKeyStatusRequest::default())
            .await
            .unwrap_err()
            .code()
    };
    let channel = pki.channel(&server, Some(web)).await.unwrap();
    assert_eq!(key_status(channel).await, Code::PermissionDenied);
    let channel = pki.channel(&server, Some(rotator)).await.unwrap();
    assert_eq!(key_status(channel).await, Code::Unimplemented);

    // No client certificate, or one from another CA: the server ends the
    // handshake (with TLS 1.3 the client may notice only at its first call).
    let other = Pki::new();
    let foreign = other.issue(&["spiffe://test/ns/app/sa/web"], true);
    for identity in [None, Some(foreign)] {
        if let Ok(channel) = pki.channel(&server, identity).await {
            assert!(verify_over(channel).await.is_err());
        }
    }
    server.wait_for_log("TLS handshake failed");
}

#[test]
fn check_config_reports_tls_and_caller_errors_together() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("signet.toml");
    std::fs::write(
        path,
        "[server.tls]\nenabled = true\n[callers]\ntoken_sha256 = [\"zz\"]\n[metrics]\nlisten = \"x\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env_remove("QSTASH_CURRENT_SIGNING_KEY")
        .env_remove("QSTASH_NEXT_SIGNING_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.tls.cert_file",
        "server.tls.key_file",
        "callers.token_sha256[0]",
        "metrics.listen",
    ] {
        assert!(err.contains(key), "{key} not reported: {err}");
    }
}
