//! Whole-request `Authorize` calls as arbitrary protobuf bytes, through the
//! real tonic service in process (the dev QStash keys, one policy of each
//! `require` kind, one with replay protection): mapping and deciding never
//! panic, an answer allows only when every check that ran passed, and a call
//! that gets no answer gets a caller error, never an internal one.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use signet::{
    authorize,
    bearer::Require,
    config, config_bearer,
    keys::{KeyRefresher, KeyStore, source},
    metrics::Metrics,
    proto::{AuthorizeReason, AuthorizeRequest, authorizer_server::Authorizer},
    server::{AppState, AuthorizerService},
};
use tonic::Code;

/// The seeds in `corpus/authorize_request/` carry credentials for this
/// configuration: QStash tokens signed with the dev key, HS256 JWTs signed
/// with the issuer's secret, and the API key `sk_fuzz_api_key`.
const CONFIG: &str = r#"
[issuers.fuzz]
issuer = "https://fuzz.example"
algorithms = ["HS256"]
keys = [{ kid = "hs", algorithm = "HS256", secret = "fuzz-hs256-secret-0123456789abcdef" }]

[policies.signature]
require = "signature"

[policies.bearer]
require = "bearer"
issuers = ["fuzz"]
api_keys = [{ sha256 = "ca5fbcbf7b9a0e62619360335aac01a2d831c5022400c7cb6b4a367d59c7a055", subject = "fuzz", scopes = [] }]

[policies.both]
require = "both"
issuers = ["fuzz"]

[policies.either]
require = "either"
issuers = ["fuzz"]

[policies.replayed]
require = "signature"
replay = "memory"
"#;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: AuthorizerService,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("signet-fuzz-authz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("signet.toml");
        std::fs::write(&path, CONFIG).expect("config file");
        let settings = config::load(Some(&path), Vec::new()).expect("config loads");
        let (_, limits, _) = settings.validate().expect("valid server settings");
        let (refresh, _) = settings
            .validate_keys(|_| None)
            .expect("valid key settings");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let now = SystemTime::now();
        let service = runtime.block_on(async {
            let bearer = config_bearer::build(&settings).expect("valid bearer settings");
            let snapshot =
                source::initial_snapshot(&settings.keys, |_| None, true, now).expect("dev keys");
            let keys = Arc::new(KeyStore::new(snapshot));
            let key_refresher = Arc::new(
                KeyRefresher::new(Arc::clone(&keys), &refresh, now).expect("key refresher"),
            );
            AuthorizerService::new(Arc::new(AppState {
                key_refresher,
                keys,
                limits,
                admin: None,
                metrics: Metrics::new(),
                bearer,
            }))
        });
        Fixture { runtime, service }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = AuthorizeRequest::decode(data) else {
        return;
    };
    let require = match request.policy.as_str() {
        "" | "default" | "signature" | "replayed" => Require::Signature,
        "bearer" => Require::Bearer,
        "both" => Require::Both,
        "either" => Require::Either,
        // An unknown policy is refused before any check; assume the strictest.
        _ => Require::Both,
    };
    let f = fixture();
    match f
        .runtime
        .block_on(f.service.authorize(tonic::Request::new(request)))
    {
        Ok(response) => {
            let r = response.into_inner();
            let ok = r.reason == AuthorizeReason::Ok as i32;
            assert_eq!(r.allowed, ok, "allowed must mean reason OK: {r:?}");
            if r.allowed {
                // Every check the policy runs passed; `either` needs one.
                let signature_ok = r.signature.as_ref().is_some_and(|s| s.valid);
                let bearer_ok = r.bearer.as_ref().is_some_and(|b| b.allowed);
                let (signature, bearer) = authorize::checks(require, r.failure_callback);
                if require == Require::Either {
                    assert!(
                        signature_ok || bearer_ok,
                        "allowed with no passed check: {r:?}"
                    );
                } else {
                    assert!(
                        signature_ok || !signature,
                        "allowed without the signature: {r:?}"
                    );
                    assert!(bearer_ok || !bearer, "allowed without the bearer: {r:?}");
                }
            }
        }
        Err(status) => assert!(
            matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::ResourceExhausted
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::Unavailable
            ),
            "unexpected {:?}: {}",
            status.code(),
            status.message()
        ),
    }
});
