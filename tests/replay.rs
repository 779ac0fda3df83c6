//! Replay protection against a real redis-server: one use per token id
//! across replicas, fail closed while Redis is down, back when it returns.

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
