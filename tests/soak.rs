//! Soak: mixed load against one real server for SIGNET_SOAK_SECONDS (default
//! 6; `SIGNET_SOAK_SECONDS=60 cargo test --release --test soak -- --nocapture`
//! for the full run): QStash signatures, bearer JWTs from a JWKS issuer,
//! failure callbacks, key rotations through a kubelet-style Secret directory
//! every second, and an issuer outage in the middle. Counts false rejects and
//! false accepts (both must be 0) and prints RSS over time.

mod bearer_support;
mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bearer_support::{Issuer, claims, config_file, jwk, sign};
use common::{keys::*, *};
use jsonwebtoken::Algorithm::EdDSA;
use signet::proto::{
    AuthorizeRequest, HttpHeader, VerifySignatureRequest, authorizer_client::AuthorizerClient,
};
use tonic::transport::Channel;

/// Signing key of rotation `n`: the pair on disk at step `n` is (key(n), key(n+1)).
fn rotation_key(n: u64) -> String {
    format!("sig_soakRotation{n:012}")
}

#[derive(Default)]
struct Counts {
    allowed: AtomicU64,
    denied: AtomicU64,
    false_rejects: AtomicU64,
    false_accepts: AtomicU64,
    straddling: AtomicU64,
}

fn h(name: &str, value: &str) -> HttpHeader {
    HttpHeader {
        name: name.into(),
        value: value.into(),
    }
}

/// The key every signer uses now: in both the pair on disk and the next one.
struct Signer {
    step: AtomicU64,
}

impl Signer {
    fn key(&self) -> (String, u64) {
        let step = self.step.load(Ordering::SeqCst);
        (rotation_key(step + 1), step)
    }
}

async fn worker(
    mut client: AuthorizerClient<Channel>,
    signer: Arc<Signer>,
    jwts: Arc<Vec<String>>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (k, step) = signer.key();
        let jwt = format!("Bearer {}", jwts[i % jwts.len()]);
        let body = format!("{{\"n\":{i}}}");
        let sig = token(&k, body.as_bytes(), URL);
        // (expected allowed, actual allowed)
        let mut outcomes = Vec::with_capacity(6);

        let verify = |signature: String, body: Vec<u8>| VerifySignatureRequest {
            signature,
            body: Some(body.into()),
            url: URL.into(),
            ..Default::default()
        };
        let r = client
            .verify_signature(verify(sig.clone(), body.clone().into_bytes()))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((true, r.valid));
        let forged = token("sig_notTheKeyAtAll0000000000", body.as_bytes(), URL);
        let r = client
            .verify_signature(verify(forged, body.clone().into_bytes()))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((false, r.valid));

        let authorize = |headers: Vec<HttpHeader>, body: &[u8]| AuthorizeRequest {
            method: "POST".into(),
            url: URL.into(),
            headers,
            body: Some(body.to_vec().into()),
            policy: "both".into(),
            ..Default::default()
        };
        let r = client
            .authorize(authorize(
                vec![h("upstash-signature", &sig), h("authorization", &jwt)],
                body.as_bytes(),
            ))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((true, r.allowed));
        let tampered = format!("{}x", &jwt[..jwt.len() - 1]);
        let r = client
            .authorize(authorize(
                vec![h("upstash-signature", &sig), h("authorization", &tampered)],
                body.as_bytes(),
            ))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((false, r.allowed));

        // Failure callbacks: the original caller's credential in the body.
        let cb_body = format!(r#"{{"sourceHeader":{{"Authorization":["{jwt}"]}},"n":{i}}}"#);
        let cb_sig = token(&k, cb_body.as_bytes(), URL);
        let failure = h("upstash-workflow-is-failure", "true");
        let r = client
            .authorize(authorize(
                vec![h("upstash-signature", &cb_sig), failure.clone()],
                cb_body.as_bytes(),
            ))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((true, r.allowed));
        let bare = format!(r#"{{"n":{i}}}"#);
        let bare_sig = token(&k, bare.as_bytes(), URL);
        let r = client
            .authorize(authorize(
                vec![h("upstash-signature", &bare_sig), failure],
                bare.as_bytes(),
            ))
            .await
            .unwrap()
            .into_inner();
        outcomes.push((false, r.allowed));

        let rotated_meanwhile = signer.key().1 > step + 1;
        for (want, got) in outcomes {
            match (want, got) {
                (true, true) => counts.allowed.fetch_add(1, Ordering::Relaxed),
                (false, false) => counts.denied.fetch_add(1, Ordering::Relaxed),
                (true, false) if rotated_meanwhile => {
                    counts.straddling.fetch_add(1, Ordering::Relaxed)
                }
                (true, false) => counts.false_rejects.fetch_add(1, Ordering::Relaxed),
                (false, true) => counts.false_accepts.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_with_rotations_and_an_issuer_outage() {
    let seconds: u64 = std::env::var("SIGNET_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let issuer = Issuer::start(vec![jwk(EdDSA, "ed25519", "e1")]).await;
    let iss = issuer.url();
    let jwts: Arc<Vec<String>> = Arc::new(
        (0..32)
            .map(|n| {
                sign(
                    EdDSA,
                    "ed25519",
                    Some("e1"),
                    &claims(&iss, &format!("user-{n}")),
                )
            })
            .collect(),
    );
    let mut dir = SecretDir::new(&[("current", &rotation_key(0)), ("next", &rotation_key(1))]);
    let (_config_dir, config) = config_file(&format!(
        r#"
[keys]
directory = "{dir}"

[admin]
enabled = true
token_sha256 = ["{digest}"]

[issuers.idp]
issuer = "{iss}"
discovery_url = "{iss}"
algorithms = ["EdDSA"]
audiences = ["orders-api"]

[policies.both]
require = "both"
issuers = ["idp"]
"#,
        dir = dir.path().display(),
        digest = admin_digest(),
    ));
    let server = Signet::builder().arg("--config").arg(config).start();
    wait_health(
        &server,
        tonic_health::pb::health_check_response::ServingStatus::Serving,
    )
    .await;
    let mut admin_client = admin(&server).await;

    let signer = Arc::new(Signer {
        step: AtomicU64::new(0),
    });
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        workers.push(tokio::spawn(worker(
            server.client().await,
            Arc::clone(&signer),
            Arc::clone(&jwts),
            Arc::clone(&counts),
            Arc::clone(&stop),
        )));
    }

    let start = Instant::now();
    let total = Duration::from_secs(seconds);
    let rss = Mutex::new(vec![(0u64, rss_kib(server.pid()))]);
    let mut rotations = 0;
    let mut outage = (false, false);
    while start.elapsed() < total {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let at = start.elapsed();
        // An issuer outage from 40 % to 60 % of the run: cached keys serve.
        let down = at > total * 2 / 5 && at < total * 3 / 5;
        issuer.set_down(down);
        outage.0 |= down;
        outage.1 |= !down && outage.0;
        // Rotate: signers move to the key that the pair on disk and the
        // next pair share, then the Secret is updated, then we wait until
        // signet shows the new pair.
        let step = signer.step.load(Ordering::SeqCst) + 1;
        dir.update(&[
            ("current", &rotation_key(step)),
            ("next", &rotation_key(step + 1)),
        ]);
        let want = fp(&rotation_key(step));
        wait_status(&mut admin_client, "default", |row| {
            row.current_fingerprint == want
        })
        .await;
        signer.step.store(step, Ordering::SeqCst);
        rotations += 1;
        rss.lock()
            .unwrap()
            .push((at.as_secs(), rss_kib(server.pid())));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let rss = rss.into_inner().unwrap();
    let c = &counts;
    println!(
        "soak {seconds}s: {} decisions as expected ({} allowed, {} denied), false rejects {}, \
         false accepts {}, rejected while a rotation raced the call {}, rotations {rotations}, \
         issuer outage {}; RSS KiB over time {:?}",
        c.allowed.load(Ordering::Relaxed) + c.denied.load(Ordering::Relaxed),
        c.allowed.load(Ordering::Relaxed),
        c.denied.load(Ordering::Relaxed),
        c.false_rejects.load(Ordering::Relaxed),
        c.false_accepts.load(Ordering::Relaxed),
        c.straddling.load(Ordering::Relaxed),
        if outage.0 { "yes" } else { "no" },
        rss
    );
    assert_eq!(c.false_accepts.load(Ordering::Relaxed), 0, "false accepts");
    assert_eq!(c.false_rejects.load(Ordering::Relaxed), 0, "false rejects");
    assert!(c.allowed.load(Ordering::Relaxed) > 0 && c.denied.load(Ordering::Relaxed) > 0);
    assert!(
        rotations >= seconds as usize / 2,
        "rotations kept up: {rotations}"
    );
    // Flat after warm-up: the last sample within 32 MiB of the one a quarter in.
    let warm = rss[rss.len() / 4].1;
    let last = rss.last().unwrap().1;
    assert!(
        last < warm + 32 * 1024,
        "RSS grew from {warm} KiB to {last} KiB"
    );
}
