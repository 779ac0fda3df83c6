//! Key source outages against the real binary: the keys API answering 500,
//! answering slower than its timeout or on a host that does not resolve, the
//! key directory disappearing, a half-written key file. Verification
//! continues on the last-known-good keys, `GetKeyStatus` shows the error and
//! the staleness, and health stays SERVING until `keys.max_staleness`, then
//! turns NOT_SERVING (and back once the source recovers).

mod common;

use common::{keys::*, *};
use tonic_health::pb::health_check_response::ServingStatus;

const MAX_STALENESS_SECS: u64 = 3;

/// Starts signet with `keys` (its key source settings, ending in a newline)
/// and the admin API enabled for [`ADMIN_TOKEN`], so every test can read
/// `GetKeyStatus`. The temp dir holds the config file for the server's life.
fn start(keys: &str) -> (tempfile::TempDir, Signet) {
    let (cfg, path) = config_file(&format!(
        "{keys}[admin]\nenabled = true\ntoken_sha256 = [\"{}\"]\n",
        admin_digest()
    ));
    let server = Signet::builder().config(path).start();
    (cfg, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_api_outage_keeps_last_known_good_until_max_staleness() {
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let (_cfg, server) = start(&format!(
        "[keys]\nmax_staleness = \"{MAX_STALENESS_SECS}s\"\n[keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = {QSTASH_TOKEN:?}\npoll_interval = \"100ms\"\n",
        api.url(),
    ));
    let mut admin = admin(&server).await;
    let mut client = server.client().await;
    assert_eq!(health(&server).await, ServingStatus::Serving);
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    api.set_failing(true);
    let (row, _) = wait_status(&mut admin, "", |r| !r.last_refresh_error.is_empty()).await;
    assert!(row.last_refresh_error.contains("500"), "{row:?}");
    assert_eq!(row.current_fingerprint, fp(TEST_CURRENT));
    // Within the maximum staleness the replica keeps serving.
    assert!(row.staleness_seconds < MAX_STALENESS_SECS, "{row:?}");
    assert_eq!(health(&server).await, ServingStatus::Serving);
    // Last-known-good keys keep verifying.
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);
    assert!(verify_with(&mut client, TEST_NEXT, "", "").await.valid);

    let took = wait_health(&server, ServingStatus::NotServing).await;
    let row = status(&mut admin, "").await;
    println!(
        "keys API down: NOT_SERVING after a further {took:?}; staleness {} s (max {MAX_STALENESS_SECS} s), error {:?}",
        row.staleness_seconds, row.last_refresh_error
    );
    assert!(row.staleness_seconds >= MAX_STALENESS_SECS, "{row:?}");
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    api.set_failing(false);
    wait_health(&server, ServingStatus::Serving).await;
    let row = status(&mut admin, "").await;
    assert!(row.last_refresh_error.is_empty(), "{row:?}");
    assert_eq!(row.staleness_seconds, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_directory_disappearing_keeps_last_known_good() {
    let files = [("current", TEST_CURRENT), ("next", TEST_NEXT)];
    let mut dir = SecretDir::new(&files);
    let (_cfg, server) = start(&format!(
        "[keys]\ndirectory = {:?}\nreread_interval = \"100ms\"\nmax_staleness = \"{MAX_STALENESS_SECS}s\"\n",
        dir.path(),
    ));
    let mut admin = admin(&server).await;
    let mut client = server.client().await;
    assert_eq!(health(&server).await, ServingStatus::Serving);

    dir.remove();
    let (row, _) = wait_status(&mut admin, "", |r| !r.last_refresh_error.is_empty()).await;
    assert_eq!(row.source, "directory");
    assert!(row.staleness_seconds < MAX_STALENESS_SECS, "{row:?}");
    assert_eq!(health(&server).await, ServingStatus::Serving);
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);
    wait_health(&server, ServingStatus::NotServing).await;
    assert!(status(&mut admin, "").await.staleness_seconds >= MAX_STALENESS_SECS);
    assert!(verify_with(&mut client, TEST_NEXT, "", "").await.valid);

    dir.restore(&files);
    wait_health(&server, ServingStatus::Serving).await;
    assert!(status(&mut admin, "").await.last_refresh_error.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_written_or_empty_files_never_replace_good_keys() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("current"), TEST_CURRENT).unwrap();
    std::fs::write(tmp.path().join("next"), TEST_NEXT).unwrap();
    let (_cfg, server) = start(&format!(
        "[keys]\ndirectory = {:?}\nreread_interval = \"1h\"\n",
        tmp.path(),
    ));
    let mut admin = admin(&server).await;
    let mut client = server.client().await;

    // A writer that truncates before writing (not the kubelet's way).
    std::fs::write(tmp.path().join("current"), "").unwrap();
    let (row, _) = wait_status(&mut admin, "", |r| r.last_refresh_error.contains("empty")).await;
    assert_eq!(row.current_fingerprint, fp(TEST_CURRENT));
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    // Half a roll: `current` now holds the old next key, `next` not yet new.
    std::fs::write(tmp.path().join("current"), TEST_NEXT).unwrap();
    let (row, _) = wait_status(&mut admin, "", |r| {
        r.last_refresh_error.contains("same key")
    })
    .await;
    assert_eq!(row.current_fingerprint, fp(TEST_CURRENT));
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    std::fs::write(tmp.path().join("next"), "sig_brandNewNextKey").unwrap();
    let (row, took) = wait_status(&mut admin, "", |r| r.current_fingerprint == fp(TEST_NEXT)).await;
    assert!(row.last_refresh_error.is_empty());
    assert_eq!(row.next_fingerprint, fp("sig_brandNewNextKey"));
    println!("plain file rewrite picked up in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_keys_api_times_out_and_keeps_last_known_good() {
    use std::time::{Duration, Instant};
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let (_cfg, server) = start(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = {QSTASH_TOKEN:?}\npoll_interval = \"1h\"\ntimeout = \"300ms\"\n",
        api.url(),
    ));
    let mut admin = admin(&server).await;
    let mut client = server.client().await;
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    // Slower than the timeout, and with keys that would replace the good
    // ones if signet waited for them.
    api.set_delay(Duration::from_secs(3));
    api.roll();
    let gets = api.gets();
    let start = Instant::now();
    let rows = admin
        .reload(with_token(
            signet::proto::ReloadRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .expect("Reload answers")
        .into_inner()
        .key_sets;
    let took = start.elapsed();
    println!("slow keys API: Reload answered after {took:?}");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    let row = &rows[0];
    assert!(!row.last_refresh_error.is_empty(), "{row:?}");
    assert_eq!(row.current_fingerprint, fp(TEST_CURRENT));
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);
    assert!(verify_with(&mut client, TEST_NEXT, "", "").await.valid);
    assert!(api.gets() > gets, "Reload did not call the API");
    assert_eq!(health(&server).await, ServingStatus::Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_api_on_an_unresolvable_host_allows_nothing() {
    // `.invalid` never resolves (RFC 2606).
    let (_cfg, server) = start(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = \"http://signet-test.invalid/\"\ntoken = {QSTASH_TOKEN:?}\npoll_interval = \"200ms\"\ntimeout = \"1s\"\n"
    ));
    let mut client = server.client().await;
    let e = client
        .verify_signature(signet::proto::VerifySignatureRequest {
            signature: token(TEST_CURRENT, b"{}", URL),
            body: Some(b"{}".to_vec().into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(health(&server).await, ServingStatus::NotServing);
    // Polling on, the server stays up and keeps saying so.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(health(&server).await, ServingStatus::NotServing);
    let mut admin = admin(&server).await;
    let e = admin
        .rotate_signing_keys(with_token(
            signet::proto::RotateSigningKeysRequest {
                key_set: "default".into(),
                force: true,
            },
            Some(ADMIN_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(
        server.logs().contains("key source failed"),
        "{}",
        server.logs()
    );
}
