//! Key sources and key administration against the real binary: regions,
//! named key sets (config file and key directory), the QStash keys API
//! source with refetch on unknown signatures, and the `KeyAdmin` RPCs with
//! their authentication and the double-rotation guard.

mod common;

use common::{keys::*, *};
use signet::proto::{
    GetKeyStatusRequest, ReloadRequest, RotateSigningKeysRequest, SignatureReason,
};
use tonic::Code;

const US_C: &str = "sig_usEastCurrentKey00000001";
const US_N: &str = "sig_usEastNextKey0000000002";
const EU_C: &str = "sig_euCentralCurrentKey0003";
const EU_N: &str = "sig_euCentralNextKey0000004";

fn admin_section() -> String {
    format!(
        "[admin]\nenabled = true\ntoken_sha256 = [\"{}\"]\n",
        admin_digest()
    )
}

fn with_config(path: &std::path::Path) -> SignetBuilder {
    Signet::builder().config(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_select_keys_and_unknown_regions_fail_closed() {
    let server = Signet::builder()
        .env("QSTASH_REGION", "US_EAST_1")
        .env("US_EAST_1_QSTASH_CURRENT_SIGNING_KEY", US_C)
        .env("US_EAST_1_QSTASH_NEXT_SIGNING_KEY", US_N)
        .env("EU_CENTRAL_1_QSTASH_CURRENT_SIGNING_KEY", EU_C)
        .env("EU_CENTRAL_1_QSTASH_NEXT_SIGNING_KEY", EU_N)
        .start();
    let mut client = server.client().await;
    assert!(
        verify_with(&mut client, EU_C, "", "EU-CENTRAL-1")
            .await
            .valid
    );
    assert!(
        verify_with(&mut client, EU_N, "", "eu-central-1")
            .await
            .valid
    );
    assert!(verify_with(&mut client, US_C, "", "US-EAST-1").await.valid);
    // No header: the primary region (QSTASH_REGION).
    assert!(verify_with(&mut client, US_C, "", "").await.valid);
    // Another region's key is no key of this region.
    let r = verify_with(&mut client, EU_C, "", "US-EAST-1").await;
    assert_eq!(r.reason(), SignatureReason::NoKeyMatched);
    // A region without keys fails closed with its own reason.
    let r = verify_with(&mut client, US_C, "", "AP-SOUTH-1").await;
    assert!(!r.valid);
    assert_eq!(r.reason(), SignatureReason::UnknownRegion);
}

#[test]
fn a_primary_region_without_keys_refuses_to_start() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args(["check-config"])
        .env_clear()
        .env("QSTASH_REGION", "EU_CENTRAL_1")
        .env("US_EAST_1_QSTASH_CURRENT_SIGNING_KEY", US_C)
        .env("US_EAST_1_QSTASH_NEXT_SIGNING_KEY", US_N)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("QSTASH_REGION"), "{err}");
    assert!(!err.contains(US_C), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_key_sets_never_fall_back() {
    let mut dir = SecretDir::new(&[
        ("current", TEST_CURRENT),
        ("next", TEST_NEXT),
        ("billing/current", "sig_billingCurrentKey0001"),
        ("billing/next", "sig_billingNextKey0000002"),
    ]);
    let (_cfg, path) = config_file(&format!(
        "[keys]\ndirectory = {:?}\n[keys.sets.dev-account]\ncurrent = \"sig_devAccountCurrent01\"\nnext = \"sig_devAccountNext0002\"\n{}",
        dir.path(),
        admin_section()
    ));
    let server = with_config(&path).start();
    let mut client = server.client().await;
    assert!(verify_with(&mut client, TEST_CURRENT, "", "").await.valid);
    assert!(
        verify_with(&mut client, "sig_billingNextKey0000002", "billing", "")
            .await
            .valid
    );
    assert!(
        verify_with(&mut client, "sig_devAccountCurrent01", "dev-account", "")
            .await
            .valid
    );
    // The default set's key is no key of another set.
    let r = verify_with(&mut client, TEST_CURRENT, "billing", "").await;
    assert_eq!(r.reason(), SignatureReason::NoKeyMatched);
    // An unknown key set is an error, never a fallback.
    let e = client
        .verify_signature(signet::proto::VerifySignatureRequest {
            signature: token(TEST_CURRENT, b"{}", URL),
            key_set: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    let mut admin = admin(&server).await;
    let rows = all_status(&mut admin).await;
    let names: Vec<_> = rows
        .iter()
        .map(|r| (r.key_set.as_str(), r.source.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("billing", "directory"),
            ("default", "directory"),
            ("dev-account", "config")
        ]
    );
    // The billing folder rotates on its own.
    dir.update(&[
        ("current", TEST_CURRENT),
        ("next", TEST_NEXT),
        ("billing/current", "sig_billingNextKey0000002"),
        ("billing/next", "sig_billingNewNextKey00003"),
    ]);
    let (row, took) = wait_status(&mut admin, "billing", |r| {
        r.current_fingerprint == fp("sig_billingNextKey0000002")
    })
    .await;
    println!("per-set folder picked up in {took:?}");
    assert_eq!(row.version, 2);
    assert_eq!(status(&mut admin, "default").await.version, 1);
    let e = admin
        .get_key_status(with_token(
            GetKeyStatusRequest {
                key_set: "nope".into(),
            },
            Some(ADMIN_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_api_source_refetches_once_on_unknown_signatures() {
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let (_cfg, path) = config_file(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = \"{}/\"\ntoken = {QSTASH_TOKEN:?}\npoll_interval = \"1h\"\nrefetch_cooldown = \"1h\"\n{}",
        api.url(),
        admin_section()
    ));
    let server = with_config(&path).start();
    let mut client = server.client().await;
    assert_eq!(api.gets(), 1, "fetched once at start");
    assert!(verify_with(&mut client, &api.current(), "", "").await.valid);

    // Rolled twice behind signet's back (QStash console): QStash's current
    // key is neither of the keys signet holds.
    api.roll();
    api.roll();
    let first = verify_with(&mut client, &api.current(), "", "").await;
    assert_eq!(first.reason(), SignatureReason::NoKeyMatched);
    let start = std::time::Instant::now();
    while !verify_with(&mut client, &api.current(), "", "").await.valid {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "no refetch"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!(
        "refetch after an unknown signature took {:?}",
        start.elapsed()
    );
    // Forged signatures do not flood the API: one refetch per cooldown.
    for _ in 0..20 {
        let r = verify_with(&mut client, "sig_forgedKeyNobodyHas", "", "").await;
        assert!(!r.valid);
    }
    assert_eq!(api.gets(), 2, "one start fetch and one refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_with_a_wrong_token_is_a_refresh_error() {
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let (_cfg, path) = config_file(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = \"not-the-token\"\n{}",
        api.url(),
        admin_section()
    ));
    let server = with_config(&path).test_keys().start();
    let mut admin = admin(&server).await;
    let row = status(&mut admin, "").await;
    // The environment's keys stay; the API's failure shows in nothing that
    // leaks the token.
    assert_eq!(row.source, "env");
    assert!(row.last_refresh_error.contains("401"), "{row:?}");
    assert!(!server.logs().contains("not-the-token"));
    assert!(server.logs().contains("401"), "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_need_the_admin_token() {
    let (_cfg, path) = config_file(&admin_section());
    let server = with_config(&path).test_keys().start();
    let mut admin = admin(&server).await;
    for (token, code) in [
        (None, Code::Unauthenticated),
        (Some("wrong-token"), Code::Unauthenticated),
    ] {
        let e = admin
            .get_key_status(with_token(GetKeyStatusRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{token:?}");
        let e = admin
            .reload(with_token(ReloadRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code);
        let e = admin
            .rotate_signing_keys(with_token(RotateSigningKeysRequest::default(), token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), code);
    }
    let rows = all_status(&mut admin).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].source, "env");
    assert_eq!(rows[0].current_fingerprint, fp(TEST_CURRENT));
    assert_eq!(rows[0].staleness_seconds, 0);
    // Environment keys rotate by restarting: a fixed message says so.
    let e = admin
        .rotate_signing_keys(with_token(
            RotateSigningKeysRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("restarting"), "{}", e.message());
    assert!(!server.logs().contains(ADMIN_TOKEN));
    assert!(!server.logs().contains("wrong-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_admin_is_off_by_default() {
    let server = Signet::builder().test_keys().start();
    let e = admin(&server)
        .await
        .get_key_status(with_token(
            GetKeyStatusRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_keys_are_not_rotated_by_signet_but_reload() {
    let mut dir = SecretDir::new(&[("current", TEST_CURRENT), ("next", TEST_NEXT)]);
    let (_cfg, path) = config_file(&format!(
        "[keys]\ndirectory = {:?}\n{}",
        dir.path(),
        admin_section()
    ));
    let server = with_config(&path).start();
    let mut admin = admin(&server).await;
    let e = admin
        .rotate_signing_keys(with_token(
            RotateSigningKeysRequest::default(),
            Some(ADMIN_TOKEN),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("Secret"), "{}", e.message());
    dir.update(&[("current", TEST_NEXT), ("next", "sig_reloadedNextKey001")]);
    let rows = admin
        .reload(with_token(ReloadRequest::default(), Some(ADMIN_TOKEN)))
        .await
        .unwrap()
        .into_inner()
        .key_sets;
    assert_eq!(rows[0].current_fingerprint, fp(TEST_NEXT));
    assert_eq!(rows[0].next_fingerprint, fp("sig_reloadedNextKey001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rotation_inside_the_minimum_interval_needs_force() {
    let api = QstashStandIn::start(TEST_CURRENT, TEST_NEXT).await;
    let (_cfg, path) = config_file(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = {QSTASH_TOKEN:?}\nmin_rotation_interval = \"1h\"\n{}",
        api.url(),
        admin_section()
    ));
    let server = with_config(&path).start();
    let mut admin = admin(&server).await;
    let mut client = server.client().await;
    let rotate = |force| {
        with_token(
            RotateSigningKeysRequest {
                key_set: "default".into(),
                force,
            },
            Some(ADMIN_TOKEN),
        )
    };

    let first = admin
        .rotate_signing_keys(rotate(false))
        .await
        .unwrap()
        .into_inner();
    let row = first.key_set.unwrap();
    assert_eq!(row.current_fingerprint, fp(TEST_NEXT));
    assert_eq!(row.version, 2);
    assert!(verify_with(&mut client, TEST_NEXT, "", "").await.valid);
    assert!(!verify_with(&mut client, TEST_CURRENT, "", "").await.valid);

    let e = admin.rotate_signing_keys(rotate(false)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("minimum interval"), "{}", e.message());
    assert_eq!(
        api.rotates(),
        1,
        "the refused rotation never reached QStash"
    );

    let forced = admin
        .rotate_signing_keys(rotate(true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        forced.key_set.unwrap().current_fingerprint,
        fp(&api.current())
    );
    assert_eq!(api.rotates(), 2);

    // The API failing: the rotation is reported as the source's failure.
    api.set_failing(true);
    let e = admin.rotate_signing_keys(rotate(true)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
}

#[test]
fn the_verify_tool_reads_the_key_directory() {
    let dir = SecretDir::new(&[("current", TEST_CURRENT), ("next", TEST_NEXT)]);
    let (_cfg, path) = config_file(&format!("[keys]\ndirectory = {:?}\n", dir.path()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
        .args([
            "verify",
            "--config",
            path.to_str().unwrap(),
            "--url",
            URL,
            "--body",
            "{}",
        ])
        .args(["--signature", &token(TEST_NEXT, b"{}", URL)])
        .env_clear()
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("\"key_slot\":\"next\""), "{shown}");
}
