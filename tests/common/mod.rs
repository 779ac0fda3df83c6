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
    let now = now();
    sign(
        &key(k),
        &SignOptions {
            iss: "Upstash",
            sub: url,
            exp: now + 300,
            nbf: now,
            iat: now,
            jti: "jwt_test",
            body,
        },
    )
}
