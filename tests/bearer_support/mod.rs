//! Bearer test helpers: test keys from `tests/fixtures/jwt` (made by its
//! `make-keys.sh`), JWT signing, and a stand-in OIDC issuer: a real local
//! HTTP server serving discovery and a JWKS it can rotate, take down and count
//! fetches of.
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

pub const HS_SECRET: &str = "hs256-test-secret-0123456789abcdef";

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The private key for `alg` (`rsa-1` or `rsa-2` for RS*, `ec-p256`, `ed25519`).
pub fn encoding_key(alg: Algorithm, name: &str) -> EncodingKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(name.as_bytes()).unwrap()
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            EncodingKey::from_ec_pem(&fixture(&format!("{name}.key.pem"))).unwrap()
        }
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&fixture(&format!("{name}.key.pem"))).unwrap(),
        _ => EncodingKey::from_rsa_pem(&fixture(&format!("{name}.key.pem"))).unwrap(),
    }
}

pub fn sign(alg: Algorithm, key_name: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(alg, key_name)).unwrap()
}

/// The public JWK of a fixture private key.
pub fn jwk(alg: Algorithm, key_name: &str, kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, key_name), alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard claims valid for five minutes.
pub fn claims(iss: &str, sub: &str) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": sub,
        "aud": "orders-api",
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now - 10,
        "scope": "orders:read orders:write",
    })
}

/// Makes a compact JWS by hand (for `alg: none` and tampering).
pub fn raw_jws(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(signature)
    )
}

#[derive(Default)]
struct IssuerState {
    base: Mutex<String>,
    jwks: Mutex<Value>,
    max_age: Mutex<Option<u64>>,
    down: AtomicBool,
    /// Answered for the JWKS instead of the keys (status, body) while set.
    answer: Mutex<Option<(StatusCode, Vec<u8>)>>,
    /// How long the JWKS endpoint waits before answering.
    delay: Mutex<std::time::Duration>,
    jwks_fetches: AtomicUsize,
}

/// A stand-in OIDC issuer on 127.0.0.1:0.
#[derive(Clone)]
pub struct Issuer {
    pub addr: SocketAddr,
    state: Arc<IssuerState>,
}

async fn discovery(State(s): State<Arc<IssuerState>>) -> impl IntoResponse {
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new()).into_response();
    }
    let base = s.base.lock().unwrap().clone();
    json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") })
        .to_string()
        .into_response()
}

async fn jwks(State(s): State<Arc<IssuerState>>) -> impl IntoResponse {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = *s.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new()).into_response();
    }
    let answer = s.answer.lock().unwrap().clone();
    if let Some(answer) = answer {
        return answer.into_response();
    }
    let body = s.jwks.lock().unwrap().to_string();
    match *s.max_age.lock().unwrap() {
        Some(age) => (
            [(axum::http::header::CACHE_CONTROL, format!("max-age={age}"))],
            body,
        )
            .into_response(),
        None => body.into_response(),
    }
}

impl Issuer {
    /// Starts serving `keys` (a list of JWKs).
    pub async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(IssuerState::default());
        *state.jwks.lock().unwrap() = json!({ "keys": keys });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *state.base.lock().unwrap() = format!("http://{addr}");
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(Arc::clone(&state));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// The issuer URL (`iss`), also the discovery base.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    pub fn set_max_age(&self, age: Option<u64>) {
        *self.state.max_age.lock().unwrap() = age;
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Answers the JWKS endpoint with `status` and exactly `body` (a broken
    /// issuer) until called with `None`.
    pub fn set_answer(&self, answer: Option<(u16, &[u8])>) {
        *self.state.answer.lock().unwrap() =
            answer.map(|(code, body)| (StatusCode::from_u16(code).unwrap(), body.to_vec()));
    }

    /// Makes the JWKS endpoint wait this long before answering.
    pub fn set_delay(&self, delay: std::time::Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    /// JWKS requests received (failed ones included).
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
}

/// Writes `toml` to a temporary config file; keep the guard alive.
pub fn config_file(toml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signet.toml");
    std::fs::write(&path, toml).unwrap();
    let p = path.display().to_string();
    (dir, p)
}
