//! Test harness: runs the real `signet` binary on 127.0.0.1:0 and talks to it
//! over gRPC.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, SystemTime},
};

use signet::{
    keys::SigningKey,
    proto::authorizer_client::AuthorizerClient,
    secret::Secret,
    verify::{SignOptions, sign},
};
use tonic::transport::Channel;

/// The services the server lists over gRPC reflection v1.
pub async fn reflection_v1_services(channel: Channel) -> Vec<String> {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.next().await.unwrap().unwrap().message_response
    else {
        panic!("no list")
    };
    list.service.into_iter().map(|s| s.name).collect()
}

/// An Envoy `CheckRequest` for a POST to `/api/workflow` with these headers
/// and raw body, naming `policy` in the context extensions if given.
pub fn check_request(
    headers: &[(&str, &str)],
    raw_body: &[u8],
    policy: Option<&str>,
) -> signet::envoy_proto::envoy::service::auth::v3::CheckRequest {
    use signet::envoy_proto::envoy::service::auth::v3::{
        AttributeContext, CheckRequest,
        attribute_context::{HttpRequest, Request},
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "POST".into(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    path: "/api/workflow".into(),
                    raw_body: bytes::Bytes::copy_from_slice(raw_body),
                    ..Default::default()
                }),
            }),
            context_extensions: policy
                .map(|p| ("signet_policy".to_owned(), p.to_owned()))
                .into_iter()
                .collect(),
        }),
    }
}

/// The dev-server keys, as in the conformance file.
pub const CURRENT: &str = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
pub const NEXT: &str = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";
/// Test keys that no public document knows.
pub const TEST_CURRENT: &str = "sig_testCurrent4b9Qx7LmN2pR8sT1v";
pub const TEST_NEXT: &str = "sig_testNext6hJ3kW9zY5cE2aF7gD0q";
pub const URL: &str = "https://svc.example/api/workflow";

/// A running `signet serve` process. Killed on drop.
pub struct Signet {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

/// Builder for a server process.
pub struct SignetBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Default for SignetBuilder {
    fn default() -> Self {
        Self {
            args: vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()],
            env: Vec::new(),
        }
    }
}

impl SignetBuilder {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// `--config <path>`.
    pub fn config(self, path: impl AsRef<std::path::Path>) -> Self {
        self.arg("--config").arg(path.as_ref().to_str().unwrap())
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// The test keys in `QSTASH_*`.
    pub fn test_keys(self) -> Self {
        self.env("QSTASH_CURRENT_SIGNING_KEY", TEST_CURRENT)
            .env("QSTASH_NEXT_SIGNING_KEY", TEST_NEXT)
    }

    pub fn start(self) -> Signet {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_signet"));
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("QSTASH")
                || k.starts_with("SIGNET")
                || k == "RUST_LOG"
                || k.contains("_QSTASH_")
            {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("start signet");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).expect("read stdout");
        let addr = first
            .trim()
            .strip_prefix("signet listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {first:?}; logs: {}",
                    logs.lock().unwrap()
                )
            })
            .parse()
            .unwrap();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Signet {
            child,
            addr,
            logs,
            lines,
        }
    }
}

impl Signet {
    pub fn builder() -> SignetBuilder {
        SignetBuilder::default()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn client(&self) -> AuthorizerClient<Channel> {
        AuthorizerClient::new(self.channel().await)
    }

    /// Everything the process wrote so far (stderr and stdout).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?} ({e}); logs: {}", self.logs()),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits (bounded) for the process to exit, leaving the runtime free to
    /// drive client connections meanwhile (they must answer the server's
    /// GOAWAY/PING for a graceful close).
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "signet did not exit within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Signet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process in KiB, from /proc (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn key(k: &str) -> SigningKey {
    SigningKey::new(Secret::new(k)).unwrap()
}

/// A QStash-format token valid for five minutes from now.
pub fn token(k: &str, body: &[u8], url: &str) -> String {
    token_with_jti(k, body, url, "jwt_test")
}

/// `token` with its own `jti`.
pub fn token_with_jti(k: &str, body: &[u8], url: &str, jti: &str) -> String {
    let now = now();
    sign(
        &key(k),
        &SignOptions {
            iss: "Upstash",
            sub: url,
            exp: now + 300,
            nbf: now,
            iat: now,
            jti,
            body,
        },
    )
}

// ---- key management helpers (issue 4) ----

pub mod keys {
    use std::{
        net::SocketAddr,
        path::{Path, PathBuf},
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };

    use axum::{
        Router,
        extract::State,
        http::{HeaderMap, StatusCode, header},
        response::IntoResponse,
        routing::{get, post},
    };
    use sha2::{Digest, Sha256};
    use signet::{
        proto::{
            GetKeyStatusRequest, KeySetStatus, VerifySignatureRequest, VerifySignatureResponse,
            authorizer_client::AuthorizerClient, key_admin_client::KeyAdminClient,
        },
        secret::Secret,
    };
    use tonic::{Request, transport::Channel};
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    use super::Signet;

    /// The admin token the tests configure (as its SHA-256 digest).
    pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0f3c9a";

    pub fn admin_digest() -> String {
        hex::encode(Sha256::digest(ADMIN_TOKEN))
    }

    /// Fingerprint of a key as key status shows it.
    pub fn fp(key: &str) -> String {
        Secret::new(key).fingerprint()
    }

    /// A request carrying `authorization: Bearer <token>`.
    pub fn with_token<T>(msg: T, token: Option<&str>) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    pub async fn admin(server: &Signet) -> KeyAdminClient<Channel> {
        KeyAdminClient::new(server.channel().await)
    }

    /// Every status row, as an admin sees it.
    pub async fn all_status(client: &mut KeyAdminClient<Channel>) -> Vec<KeySetStatus> {
        client
            .get_key_status(with_token(
                GetKeyStatusRequest::default(),
                Some(ADMIN_TOKEN),
            ))
            .await
            .unwrap()
            .into_inner()
            .key_sets
    }

    /// The default pair's status row of `key_set`.
    pub async fn status(client: &mut KeyAdminClient<Channel>, key_set: &str) -> KeySetStatus {
        let rows = client
            .get_key_status(with_token(
                GetKeyStatusRequest {
                    key_set: key_set.into(),
                },
                Some(ADMIN_TOKEN),
            ))
            .await
            .expect("GetKeyStatus")
            .into_inner()
            .key_sets;
        rows.into_iter()
            .find(|r| r.region.is_empty())
            .expect("a default row")
    }

    /// Polls key status (bounded, 20 s) until `done` holds; returns the row
    /// and how long it took.
    pub async fn wait_status(
        client: &mut KeyAdminClient<Channel>,
        key_set: &str,
        done: impl Fn(&KeySetStatus) -> bool,
    ) -> (KeySetStatus, Duration) {
        let start = Instant::now();
        loop {
            let row = status(client, key_set).await;
            if done(&row) {
                return (row, start.elapsed());
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "status never reached the expected state: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn health(server: &Signet) -> ServingStatus {
        let status = HealthClient::new(server.channel().await)
            .check(HealthCheckRequest {
                service: "signet.v1.Authorizer".into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        ServingStatus::try_from(status).unwrap()
    }

    /// Polls health (bounded, 20 s) until it reports `want`.
    pub async fn wait_health(server: &Signet, want: ServingStatus) -> Duration {
        let start = Instant::now();
        loop {
            if health(server).await == want {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "health never became {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A key directory written the way the kubelet writes a Secret volume:
    /// the files live in a timestamped folder, `..data` points at it, and
    /// each visible name is a symlink through `..data`. An update writes a
    /// new folder and swaps `..data` with one atomic rename.
    pub struct SecretDir {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        generation: u32,
    }

    impl SecretDir {
        /// `files`: `("current", key)`, `("billing/current", key)`…
        pub fn new(files: &[(&str, &str)]) -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("keys");
            let mut dir = Self {
                _tmp: tmp,
                root,
                generation: 0,
            };
            dir.create(files);
            dir
        }

        pub fn path(&self) -> &Path {
            &self.root
        }

        fn create(&mut self, files: &[(&str, &str)]) {
            std::fs::create_dir_all(&self.root).unwrap();
            self.update(files);
            for (name, _) in files {
                let top = name.split('/').next().unwrap();
                let link = self.root.join(top);
                if std::fs::symlink_metadata(&link).is_err() {
                    std::os::unix::fs::symlink(Path::new("..data").join(top), &link).unwrap();
                }
            }
        }

        /// The kubelet's atomic update.
        pub fn update(&mut self, files: &[(&str, &str)]) {
            let files: Vec<(&str, &[u8])> = files.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            self.update_bytes(&files);
        }

        /// [`SecretDir::update`] with file contents as bytes (not UTF-8, say).
        pub fn update_bytes(&mut self, files: &[(&str, &[u8])]) {
            self.generation += 1;
            let old = std::fs::read_link(self.root.join("..data")).ok();
            let ts = format!("..2026_11_30_00_00_00.{:09}", self.generation);
            let data = self.root.join(&ts);
            for (name, value) in files {
                let path = data.join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, value).unwrap();
            }
            let tmp_link = self.root.join("..data_tmp");
            std::os::unix::fs::symlink(&ts, &tmp_link).unwrap();
            std::fs::rename(&tmp_link, self.root.join("..data")).unwrap();
            if let Some(old) = old {
                std::fs::remove_dir_all(self.root.join(old)).unwrap();
            }
        }

        /// The whole directory goes away (volume unmounted, deleted).
        pub fn remove(&self) {
            std::fs::remove_dir_all(&self.root).unwrap();
        }

        /// The directory comes back with `files`.
        pub fn restore(&mut self, files: &[(&str, &str)]) {
            self.create(files);
        }
    }

    /// The stand-in for the QStash keys API: a real HTTP server on
    /// 127.0.0.1:0 with `GET /v2/keys` and `POST /v2/keys/rotate`, bearer
    /// auth, and the ability to fail on demand. It signs requests the way
    /// QStash would, with whatever its current key is.
    #[derive(Clone)]
    pub struct QstashStandIn {
        pub addr: SocketAddr,
        state: Arc<Mutex<ApiState>>,
    }

    pub const QSTASH_TOKEN: &str = "qstash-token-for-tests";

    struct ApiState {
        current: String,
        next: String,
        generation: u32,
        failing: bool,
        /// Answered instead of the keys (status, body) while set.
        answer: Option<(StatusCode, Vec<u8>)>,
        /// How long `GET /v2/keys` waits before answering.
        delay: Duration,
        gets: u32,
        rotates: u32,
    }

    fn keys_json(s: &ApiState) -> String {
        serde_json::json!({ "current": s.current, "next": s.next }).to_string()
    }

    type Shared = State<Arc<Mutex<ApiState>>>;

    /// What the stand-in answers instead of the keys: 401 without the
    /// token, 500 while failing, or the answer set on demand.
    fn refusal(s: &ApiState, headers: &HeaderMap) -> Option<(StatusCode, Vec<u8>)> {
        if !authorized(headers) {
            return Some((StatusCode::UNAUTHORIZED, Vec::new()));
        }
        if s.failing {
            return Some((StatusCode::INTERNAL_SERVER_ERROR, "boom".into()));
        }
        s.answer.clone()
    }

    fn authorized(headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(&format!("Bearer {QSTASH_TOKEN}"))
    }

    async fn get_keys(State(state): Shared, headers: HeaderMap) -> impl IntoResponse {
        // Counted on arrival: a caller that gives up still made the request.
        let delay = {
            let mut s = state.lock().unwrap();
            s.gets += 1;
            s.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let s = state.lock().unwrap();
        if let Some(refusal) = refusal(&s, &headers) {
            return refusal;
        }
        (StatusCode::OK, keys_json(&s).into_bytes())
    }

    async fn rotate_keys(State(state): Shared, headers: HeaderMap) -> impl IntoResponse {
        let mut s = state.lock().unwrap();
        if let Some(refusal) = refusal(&s, &headers) {
            return refusal;
        }
        s.rotates += 1;
        roll(&mut s);
        (StatusCode::OK, keys_json(&s).into_bytes())
    }

    fn roll(s: &mut ApiState) {
        s.generation += 1;
        s.current = std::mem::replace(&mut s.next, format!("sig_standIn{:04}key", s.generation));
    }

    impl QstashStandIn {
        pub async fn start(current: &str, next: &str) -> Self {
            let state = Arc::new(Mutex::new(ApiState {
                current: current.into(),
                next: next.into(),
                generation: 0,
                failing: false,
                answer: None,
                delay: Duration::ZERO,
                gets: 0,
                rotates: 0,
            }));
            let app = Router::new()
                .route("/v2/keys", get(get_keys))
                .route("/v2/keys/rotate", post(rotate_keys))
                .with_state(Arc::clone(&state));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Self { addr, state }
        }

        pub fn url(&self) -> String {
            format!("http://{}", self.addr)
        }

        pub fn current(&self) -> String {
            self.state.lock().unwrap().current.clone()
        }

        /// The current key and how many rolls happened, read together.
        pub fn current_and_generation(&self) -> (String, u64) {
            let s = self.state.lock().unwrap();
            (s.current.clone(), u64::from(s.generation))
        }

        pub fn next(&self) -> String {
            self.state.lock().unwrap().next.clone()
        }

        /// A token signed as QStash would sign a request now.
        pub fn sign(&self, body: &[u8], url: &str) -> String {
            super::token(&self.current(), body, url)
        }

        /// Rolls keys behind signet's back (from the QStash console).
        pub fn roll(&self) {
            roll(&mut self.state.lock().unwrap());
        }

        pub fn set_failing(&self, failing: bool) {
            self.state.lock().unwrap().failing = failing;
        }

        /// Answers both endpoints with `status` and exactly `body` (a broken
        /// or hostile keys API) until called with `None`; keys do not roll.
        pub fn set_answer(&self, answer: Option<(u16, &[u8])>) {
            self.state.lock().unwrap().answer =
                answer.map(|(code, body)| (StatusCode::from_u16(code).unwrap(), body.to_vec()));
        }

        /// Makes `GET /v2/keys` wait this long before answering.
        pub fn set_delay(&self, delay: Duration) {
            self.state.lock().unwrap().delay = delay;
        }

        pub fn gets(&self) -> u32 {
            self.state.lock().unwrap().gets
        }

        pub fn rotates(&self) -> u32 {
            self.state.lock().unwrap().rotates
        }
    }

    /// Verifies a fresh token signed with `key` for the body `{}`.
    pub async fn verify_with(
        client: &mut AuthorizerClient<Channel>,
        key: &str,
        key_set: &str,
        region: &str,
    ) -> VerifySignatureResponse {
        client
            .verify_signature(VerifySignatureRequest {
                signature: super::token(key, b"{}", super::URL),
                body: Some(b"{}".to_vec().into()),
                url: super::URL.into(),
                key_set: key_set.into(),
                region: region.into(),
                ..Default::default()
            })
            .await
            .expect("VerifySignature")
            .into_inner()
    }

    /// Writes `toml` to a config file in a fresh temp dir.
    pub fn config_file(toml: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, toml).unwrap();
        (dir, path)
    }
}
