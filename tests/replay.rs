//! Replay protection against a real redis-server: one use per token id
//! across replicas, fail closed while Redis is down, back when it returns.

mod common;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use redis_server::Redis;
use signet::{
    replay::{ReplayError, ReplayStore, Seen},
    secret::Secret,
};

const TTL: Duration = Duration::from_secs(300);

#[tokio::test]
async fn redis_is_shared_by_replicas_and_fails_closed() {
    let mut redis = Redis::start();
    let url = Secret::new(redis.url());
    // Two replicas, each with its own connection.
    let a = ReplayStore::redis(&url, Duration::from_millis(500)).unwrap();
    let b = ReplayStore::redis(&url, Duration::from_millis(500)).unwrap();

    assert_eq!(a.record("default", "jwt_1", TTL).await, Ok(Seen::First));
    assert_eq!(b.record("default", "jwt_1", TTL).await, Ok(Seen::Again));
    assert_eq!(b.record("default", "jwt_2", TTL).await, Ok(Seen::First));
    assert_eq!(a.record("eu", "jwt_1", TTL).await, Ok(Seen::First));

    // Concurrent first uses of one id: exactly one wins.
    let tries = (0..32).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move { store.record("default", "jwt_race", TTL).await })
    });
    let mut firsts = 0;
    for t in tries {
        if t.await.unwrap() == Ok(Seen::First) {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);

    redis.stop();
    let start = Instant::now();
    assert_eq!(
        a.record("default", "jwt_3", TTL).await,
        Err(ReplayError::Unavailable)
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "a down Redis is noticed within the timeout"
    );

    // Back again (empty: an outage must not turn old ids into new ones
    // unnoticed, so the test only checks that checks work again).
    redis.restart();
    let start = Instant::now();
    loop {
        match a.record("default", "jwt_4", TTL).await {
            Ok(seen) => {
                assert_eq!(seen, Seen::First);
                break;
            }
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("redis came back but checks still fail: {e}"),
        }
    }
    assert_eq!(b.record("default", "jwt_4", TTL).await, Ok(Seen::Again));
}

#[tokio::test]
async fn ids_expire_with_their_tokens() {
    let redis = Redis::start();
    let store = ReplayStore::redis(&Secret::new(redis.url()), Duration::from_millis(500)).unwrap();
    assert_eq!(
        store
            .record("default", "jwt_short", Duration::from_secs(1))
            .await,
        Ok(Seen::First)
    );
    assert_eq!(
        store
            .record("default", "jwt_short", Duration::from_secs(1))
            .await,
        Ok(Seen::Again)
    );
    let key_ttl = redis_ttl(&redis, "default", "jwt_short").await;
    assert!(
        (0..=1).contains(&key_ttl),
        "stored for the token's lifetime, got {key_ttl}"
    );
}

/// Asks Redis directly how long the id has left.
async fn redis_ttl(redis: &Redis, _scope: &str, _jti: &str) -> i64 {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("signet:replay:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "one key, named by digest only: {keys:?}");
    assert!(!keys[0].contains("jwt_short"), "the raw id is not stored");
    redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap()
}

/// `Authorize` with replay protection, through real servers sharing a real
/// Redis: per replica in memory, fleet-wide in Redis, and what a policy does
/// while Redis is down.
mod through_the_server {
    use super::*;

    use super::common::{Signet, TEST_CURRENT, URL, token_with_jti};
    use signet::proto::{AuthorizeRequest, HttpHeader, SignatureReason};
    use tonic::Code;

    fn config(redis: &Redis) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(
            &path,
            format!(
                r#"
[replay]
redis_url = "{}"
redis_timeout = "300ms"

[policies.replica]
replay = "memory"

[policies.fleet]
replay = "redis"

[policies.fleet_open]
replay = "redis"
replay_unavailable = "allow"
"#,
                redis.url()
            ),
        )
        .unwrap();
        (dir, path)
    }

    fn start(path: &std::path::Path) -> Signet {
        Signet::builder().test_keys().config(path).start()
    }

    /// A fresh QStash signature with its own `jti`.
    fn signature(jti: &str) -> String {
        token_with_jti(TEST_CURRENT, b"{}", URL, jti)
    }

    /// `Ok(reason)` of the signature check, or the call's error code.
    async fn ask(signet: &Signet, policy: &str, signature: &str) -> Result<SignatureReason, Code> {
        let response = signet
            .client()
            .await
            .authorize(AuthorizeRequest {
                method: "POST".into(),
                url: URL.into(),
                headers: vec![HttpHeader {
                    name: "Upstash-Signature".into(),
                    value: signature.into(),
                }],
                body: Some(b"{}".to_vec().into()),
                policy: policy.into(),
                ..Default::default()
            })
            .await
            .map_err(|s| s.code())?
            .into_inner();
        let reason = SignatureReason::try_from(response.signature.unwrap().reason).unwrap();
        assert_eq!(response.allowed, reason == SignatureReason::Ok);
        Ok(reason)
    }

    #[tokio::test]
    async fn replayed_signatures_are_denied() {
        let mut redis = Redis::start();
        let (_dir, path) = config(&redis);
        let (a, b) = (start(&path), start(&path));
        use SignatureReason::{Ok as Allowed, Replayed};

        // Per replica: the same replica refuses the replay, another one does not know it.
        let t = signature("jwt_replica");
        assert_eq!(ask(&a, "replica", &t).await, Ok(Allowed));
        assert_eq!(ask(&a, "replica", &t).await, Ok(Replayed));
        assert_eq!(ask(&b, "replica", &t).await, Ok(Allowed));

        // Fleet-wide: once anywhere.
        let t = signature("jwt_fleet");
        assert_eq!(ask(&a, "fleet", &t).await, Ok(Allowed));
        assert_eq!(ask(&b, "fleet", &t).await, Ok(Replayed));
        assert_eq!(ask(&a, "fleet", &t).await, Ok(Replayed));

        // A policy without replay protection is unaffected.
        assert_eq!(ask(&a, "default", &t).await, Ok(Allowed));
        assert_eq!(ask(&a, "default", &t).await, Ok(Allowed));

        // A forged signature is not recorded (nor allowed).
        let forged = format!("{}x", signature("jwt_forged"));
        assert_ne!(ask(&a, "fleet", &forged).await, Ok(Allowed));

        // Redis down: fail closed by default, or decide without the check.
        redis.stop();
        let t = signature("jwt_outage");
        assert_eq!(ask(&a, "fleet", &t).await, Err(Code::Unavailable));
        assert_eq!(ask(&a, "fleet_open", &t).await, Ok(Allowed));
        assert_eq!(ask(&a, "replica", &t).await, Ok(Allowed));

        // Back: protection resumes.
        redis.restart();
        let t = signature("jwt_after");
        let start = Instant::now();
        loop {
            match ask(&b, "fleet", &t).await {
                Ok(reason) => {
                    assert_eq!(reason, Allowed);
                    break;
                }
                Err(Code::Unavailable) if start.elapsed() < Duration::from_secs(10) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(code) => panic!("redis is back but calls fail: {code:?}"),
            }
        }
        assert_eq!(ask(&a, "fleet", &t).await, Ok(Replayed));
    }

    #[tokio::test]
    async fn replay_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(
            &path,
            r#"
[policies.a]
replay = "redis"

[policies.b]
replay = "sometimes"
replay_unavailable = "maybe"
"#,
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_signet"))
            .args(["check-config", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(text.contains("policies.a.replay"), "{text}");
        assert!(text.contains("policies.b.replay"), "{text}");
        assert!(text.contains("policies.b.replay_unavailable"), "{text}");
    }
}
