//! Operations, against the real binary: Prometheus metrics and probes on the
//! metrics port, request ids, redaction, TLS with certificate reload, mTLS
//! allowlists per service, and caller tokens.

mod bearer_support;
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
        .config(pki.config(extra))
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

/// The issue's secret-hygiene check: every flow once, valid and invalid,
/// against one server at `trace` level; no credential may come back in a log
/// line, a response, a status or a metric.
mod every_flow {
    use std::{fmt::Debug, fmt::Write as _};

    use crate::bearer_support::{HS_SECRET, Issuer, claims, fixture, fixture_path, jwk, sign};
    use crate::common::keys::{ADMIN_TOKEN, QSTASH_TOKEN, QstashStandIn, admin_digest};
    use jsonwebtoken::Algorithm::{ES256, HS256, RS256};
    use signet::{
        envoy_proto::envoy::service::auth::v3::authorization_client::AuthorizationClient,
        proto::{
            AuthorizeBearerRequest, AuthorizeRequest, HttpHeader, ReloadRequest,
            RotateSigningKeysRequest, SignatureReason,
        },
    };
    use tonic::{Response, Status};

    use super::*;

    const CALLER_TOKEN: &str = "caller-token-hygiene-5e4d3c2b1a";
    const WRONG_CALLER_TOKEN: &str = "caller-token-wrong-77aa66bb55";
    const WRONG_ADMIN_TOKEN: &str = "admin-token-wrong-0c1d2e3f4a";
    const API_KEY: &str = "sk_live_hygieneApiKey3f9a8b7c6d";
    const WRONG_API_KEY: &str = "sk_live_wrongApiKey1a2b3c4d5e";
    const HS_ISS: &str = "https://hs.example";
    const PK_ISS_PATH: &str = "pk.example";

    /// Everything a client sees of a call: the response message and
    /// metadata, or the status with its message, details and metadata.
    #[derive(Default)]
    struct Seen(String);

    impl Seen {
        fn record<T: Debug>(&mut self, result: Result<Response<T>, Status>) -> Result<T, Status> {
            match &result {
                Ok(r) => writeln!(self.0, "{:?} {:?}", r.metadata(), r.get_ref()),
                Err(s) => writeln!(
                    self.0,
                    "{s:?} {} {} {:?}",
                    s.message(),
                    String::from_utf8_lossy(s.details()),
                    s.metadata()
                ),
            }
            .unwrap();
            result.map(Response::into_inner)
        }
    }

    /// A request carrying the caller token (and, for KeyAdmin, an admin token).
    fn call<T>(msg: T, caller: &str, admin: Option<&str>) -> Request<T> {
        let mut r = Request::new(msg);
        let md = r.metadata_mut();
        md.insert("x-signet-caller-token", caller.parse().unwrap());
        if let Some(t) = admin {
            md.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    fn h(name: &str, value: &str) -> HttpHeader {
        HttpHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    fn qstash(key: &str, body: &[u8], jti: &str) -> String {
        common::token_with_jti(key, body, URL, jti)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_flow_leaks_a_credential_at_trace_level() {
        let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
        let oidc = Issuer::start(vec![jwk(RS256, "rsa-2", "oidc-1")]).await;
        let digest = |t: &str| hex::encode(Sha256::digest(t));
        let config = format!(
            r#"
[admin]
enabled = true
token_sha256 = ["{admin}"]

[callers]
token_sha256 = ["{caller}"]

[keys.qstash_api]
enabled = true
url = "{api}"
token = "{QSTASH_TOKEN}"
poll_interval = "1h"

[issuers.hs]
issuer = "{HS_ISS}"
algorithms = ["HS256"]
keys = [{{ algorithm = "HS256", secret = "{HS_SECRET}" }}]

[issuers.pk]
issuer = "https://{PK_ISS_PATH}"
algorithms = ["RS256", "ES256"]
keys = [
  {{ kid = "rsa-1", algorithm = "RS256", pem_file = "{rsa_pub}" }},
  {{ kid = "ec-1", algorithm = "ES256", pem_file = "{ec_pub}" }},
]

[issuers.oidc]
issuer = "{oidc}"
algorithms = ["RS256"]
discovery_url = "{oidc}"

[policies.bearer]
require = "bearer"
issuers = ["hs", "pk", "oidc"]
api_keys = [{{ sha256 = "{api_key}", subject = "batch" }}]

[policies.replay]
require = "signature"
replay = "memory"

[policies.callback]
require = "both"
issuers = ["hs", "pk", "oidc"]
api_keys = [{{ sha256 = "{api_key}", subject = "batch" }}]
"#,
            admin = admin_digest(),
            caller = digest(CALLER_TOKEN),
            api = api.url(),
            rsa_pub = fixture_path("rsa-1.pub.pem"),
            ec_pub = fixture_path("ec-p256.pub.pem"),
            oidc = oidc.url(),
            api_key = digest(API_KEY),
        );
        let (_cfg, path) = common::keys::config_file(&config);
        let (server, metrics) =
            metrics_server(Signet::builder().env("RUST_LOG", "trace").config(path));
        let channel = server.channel().await;
        let mut authorizer = AuthorizerClient::new(channel.clone());
        let mut envoy = AuthorizationClient::new(channel.clone());
        let mut admin = KeyAdminClient::new(channel);
        let mut seen = Seen::default();
        let c = CALLER_TOKEN;

        let pk_iss = format!("https://{PK_ISS_PATH}");
        let hs_jwt = sign(HS256, HS_SECRET, None, &claims(HS_ISS, "alice"));
        let rs_jwt = sign(RS256, "rsa-1", Some("rsa-1"), &claims(&pk_iss, "bob"));
        let es_jwt = sign(ES256, "ec-p256", Some("ec-1"), &claims(&pk_iss, "carol"));
        let oidc_jwt = sign(RS256, "rsa-2", Some("oidc-1"), &claims(&oidc.url(), "dave"));
        // Signed with a key the issuer does not have (rsa-2 under rsa-1's kid).
        let forged_jwt = sign(RS256, "rsa-2", Some("rsa-1"), &claims(&pk_iss, "eve"));
        let mut expired_claims = claims(HS_ISS, "frank");
        expired_claims["exp"] = (bearer_support::now() - 60).into();
        let expired_jwt = sign(HS256, HS_SECRET, None, &expired_claims);
        let body = BODY;
        let qstash_ok = qstash(TEST_CURRENT, body, "jwt_hygiene_ok");
        let qstash_forged = qstash("sig_forgedHygieneKey9x8y7z", body, "jwt_hygiene_forged");

        // VerifySignature: valid, forged, and over a different body.
        for (signature, valid) in [(&qstash_ok, true), (&qstash_forged, false)] {
            let r = seen
                .record(
                    authorizer
                        .verify_signature(call(verify_request(signature.clone()), c, None))
                        .await,
                )
                .unwrap();
            assert_eq!(r.valid, valid, "{r:?}");
        }
        let mut altered = verify_request(qstash_ok.clone());
        altered.body = Some(b"{}".to_vec().into());
        let r = seen.record(authorizer.verify_signature(call(altered, c, None)).await);
        assert!(!r.unwrap().valid);

        // AuthorizeBearer: every issuer and the API key, then wrong credentials.
        for (credential, allowed) in [
            (&hs_jwt, true),
            (&rs_jwt, true),
            (&es_jwt, true),
            (&oidc_jwt, true),
            (&API_KEY.to_owned(), true),
            (&forged_jwt, false),
            (&expired_jwt, false),
            (&WRONG_API_KEY.to_owned(), false),
        ] {
            let request = AuthorizeBearerRequest {
                authorization: format!("Bearer {credential}"),
                policy: "bearer".into(),
            };
            let r = seen
                .record(authorizer.authorize_bearer(call(request, c, None)).await)
                .unwrap();
            assert_eq!(r.allowed, allowed, "{r:?}");
        }

        // Authorize: a route request, then failure callbacks carrying the
        // original caller's credential in a header or in the body.
        let authorize = |policy: &str, headers: Vec<HttpHeader>, body: &[u8]| AuthorizeRequest {
            method: "POST".into(),
            url: URL.into(),
            headers,
            body: Some(body.to_vec().into()),
            policy: policy.into(),
            ..Default::default()
        };
        let route = authorize(
            "callback",
            vec![
                h("upstash-signature", &qstash_ok),
                h("authorization", &format!("Bearer {rs_jwt}")),
            ],
            body,
        );
        let r = seen.record(authorizer.authorize(call(route, c, None)).await);
        assert!(r.unwrap().allowed);
        let callback_body = serde_json::json!({
            "status": 500,
            "body": "ZXJy",
            "sourceHeader": { "Authorization": [format!("Bearer {es_jwt}")] },
        })
        .to_string()
        .into_bytes();
        let callback_sig = qstash(TEST_CURRENT, &callback_body, "jwt_hygiene_callback");
        // The credential in the body's sourceHeader is used, until a forged
        // forwarded Authorization header takes its place.
        for forwarded in [None, Some(&forged_jwt)] {
            let allowed = forwarded.is_none();
            let mut headers = vec![
                h("upstash-workflow-is-failure", "true"),
                h("upstash-signature", &callback_sig),
            ];
            if let Some(credential) = forwarded {
                headers.push(h("authorization", &format!("Bearer {credential}")));
            }
            let r = seen
                .record(
                    authorizer
                        .authorize(call(
                            authorize("callback", headers, &callback_body),
                            c,
                            None,
                        ))
                        .await,
                )
                .unwrap();
            assert!(r.failure_callback, "{r:?}");
            assert_eq!(r.allowed, allowed, "{r:?}");
        }

        // A replayed signature under `replay = "memory"`.
        let once = qstash(TEST_CURRENT, body, "jwt_hygiene_replay");
        for reason in [SignatureReason::Ok, SignatureReason::Replayed] {
            let request = authorize("replay", vec![h("upstash-signature", &once)], body);
            let r = seen
                .record(authorizer.authorize(call(request, c, None)).await)
                .unwrap();
            assert_eq!(r.signature.unwrap().reason(), reason);
        }

        // Envoy ext_authz with both headers, valid and forged.
        for (signature, bearer, allowed) in [
            (&qstash_ok, &hs_jwt, true),
            (&qstash_forged, &forged_jwt, false),
            (&qstash_ok, &WRONG_API_KEY.to_owned(), false),
        ] {
            let request = check_request(
                &[
                    ("upstash-signature", signature),
                    ("authorization", &format!("Bearer {bearer}")),
                ],
                body,
                Some("callback"),
            );
            let r = seen
                .record(envoy.check(call(request, c, None)).await)
                .unwrap();
            assert_eq!(r.status.as_ref().unwrap().code == 0, allowed, "{r:?}");
        }

        // KeyAdmin: status, a rotation that brings new key material, reload.
        let r = seen.record(
            admin
                .get_key_status(call(GetKeyStatusRequest::default(), c, Some(ADMIN_TOKEN)))
                .await,
        );
        assert_eq!(r.unwrap().key_sets[0].source, "qstash-api");
        let rotate = RotateSigningKeysRequest {
            key_set: String::new(),
            force: true,
        };
        let r = seen.record(
            admin
                .rotate_signing_keys(call(rotate.clone(), c, Some(ADMIN_TOKEN)))
                .await,
        );
        let rotated_next = api.next();
        assert_eq!(
            r.unwrap().key_set.unwrap().next_fingerprint,
            common::keys::fp(&rotated_next)
        );
        let r = seen.record(
            admin
                .reload(call(ReloadRequest::default(), c, Some(ADMIN_TOKEN)))
                .await,
        );
        assert!(!r.unwrap().key_sets.is_empty());
        let r = seen
            .record(
                authorizer
                    .verify_signature(call(
                        verify_request(qstash(&rotated_next, body, "jwt_hygiene_rotated")),
                        c,
                        None,
                    ))
                    .await,
            )
            .unwrap();
        assert!(r.valid, "the rotated-in key verifies: {r:?}");

        // Wrong admin token, no admin token, wrong caller token.
        for token in [Some(WRONG_ADMIN_TOKEN), None] {
            let e = seen
                .record(
                    admin
                        .rotate_signing_keys(call(rotate.clone(), c, token))
                        .await,
                )
                .unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated);
        }
        let e = seen
            .record(
                authorizer
                    .verify_signature(call(
                        verify_request(qstash_ok.clone()),
                        WRONG_CALLER_TOKEN,
                        None,
                    ))
                    .await,
            )
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let request = check_request(&[("upstash-signature", &qstash_ok)], body, Some("callback"));
        let e = seen
            .record(envoy.check(call(request, WRONG_CALLER_TOKEN, None)).await)
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);

        let (_, text) = http_get(metrics, "/metrics");
        assert!(
            text.contains("signet.v1.KeyAdmin/RotateSigningKeys"),
            "metrics missing calls:\n{text}"
        );
        server.wait_for_log("key sources reloaded");
        let logs = server.logs();
        // The logs really are at trace level: the per-call metadata line is
        // trace-only, and shows the credentials it hides.
        assert!(
            logs.lines()
                .any(|l| l.contains(r#""level":"TRACE""#) && l.contains("<redacted>")),
            "no trace-level metadata line:\n{logs}"
        );

        let private_pem = String::from_utf8(fixture("rsa-1.key.pem")).unwrap();
        let ec_private_pem = String::from_utf8(fixture("ec-p256.key.pem")).unwrap();
        let pem_body =
            |pem: &str| -> String { pem.lines().filter(|l| !l.starts_with("-----")).collect() };
        let rsa_body = pem_body(&private_pem);
        let ec_body = pem_body(&ec_private_pem);
        let rsa_line = private_pem.lines().nth(5).unwrap().to_owned();
        let mut secrets: Vec<(String, String)> = vec![
            ("current signing key".into(), TEST_CURRENT.into()),
            ("next signing key".into(), TEST_NEXT.into()),
            ("rotated-in signing key".into(), rotated_next.clone()),
            ("QStash API token".into(), QSTASH_TOKEN.into()),
            ("admin token".into(), ADMIN_TOKEN.into()),
            ("wrong admin token".into(), WRONG_ADMIN_TOKEN.into()),
            ("caller token".into(), CALLER_TOKEN.into()),
            ("wrong caller token".into(), WRONG_CALLER_TOKEN.into()),
            ("API key".into(), API_KEY.into()),
            ("wrong API key".into(), WRONG_API_KEY.into()),
            ("HS256 secret".into(), HS_SECRET.into()),
            ("RSA private key body".into(), rsa_body.clone()),
            (
                "RSA private key chunk".into(),
                rsa_body[200..248].to_owned(),
            ),
            ("RSA private key line".into(), rsa_line),
            ("EC private key body".into(), ec_body.clone()),
            ("EC private key chunk".into(), ec_body[40..80].to_owned()),
        ];
        for (name, jwt) in [
            ("HS256 JWT", &hs_jwt),
            ("RS256 JWT", &rs_jwt),
            ("ES256 JWT", &es_jwt),
            ("OIDC JWT", &oidc_jwt),
            ("forged JWT", &forged_jwt),
            ("expired JWT", &expired_jwt),
            ("QStash signature", &qstash_ok),
            ("forged QStash signature", &qstash_forged),
            ("callback signature", &callback_sig),
            ("replayed signature", &once),
        ] {
            secrets.push((name.into(), jwt.clone()));
            let mac = jwt.rsplit('.').next().unwrap();
            secrets.push((format!("{name} signature part"), mac.to_owned()));
        }
        for (name, secret) in &secrets {
            assert!(secret.len() >= 16, "{name} too short to mean anything");
            assert!(!logs.contains(secret.as_str()), "{name} in the logs");
            assert!(
                !seen.0.contains(secret.as_str()),
                "{name} in a response or status"
            );
            assert!(!text.contains(secret.as_str()), "{name} in the metrics");
        }
    }
}
