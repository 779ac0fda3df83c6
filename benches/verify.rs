//! In-process QStash verification (valid token, 1 KiB body) next to the bare
//! crypto floor: one HMAC-SHA256 over the signing input (key schedule already
//! prepared) plus one SHA-256 over the body. Prints the ratio at the end.
//!
//! `cargo bench --bench verify`
//!
//! `SIGNET_BENCH_TOKEN=<token>` verifies that token (signed with
//! `sig_benchCurrent` over the same 1 KiB body, valid now) instead of one made
//! here for a fixed clock: `bench/compare.sh` passes the token it also gives
//! Node's `Receiver.verify`, so both time the same input.

use std::{
    collections::HashMap,
    hint::black_box,
    sync::Mutex,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use signet::{
    keys::{KeyPair, SigningKey},
    secret::Secret,
    verify::{Body, SignOptions, SignatureCheck, sign, verify},
};

const NOW: u64 = 1_800_000_000;
const URL: &str = "https://svc.example/api/workflow";

/// Fastest per-iteration time seen for each benchmark.
static BEST: Mutex<Option<HashMap<&'static str, Duration>>> = Mutex::new(None);

fn record(name: &'static str, iters: u64, elapsed: Duration) -> Duration {
    let per = elapsed / iters.max(1) as u32;
    let mut best = BEST.lock().unwrap();
    let entry = best
        .get_or_insert_with(HashMap::new)
        .entry(name)
        .or_insert(per);
    *entry = (*entry).min(per);
    elapsed
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key(k: &str) -> SigningKey {
    SigningKey::new(Secret::new(k)).unwrap()
}

fn main() {
    let body = vec![b'x'; 1024];
    let keys = KeyPair {
        current: key("sig_benchCurrent"),
        next: key("sig_benchNext"),
    };
    let options = SignOptions {
        iss: "Upstash",
        sub: URL,
        exp: NOW + 300,
        nbf: NOW,
        iat: NOW,
        jti: "jwt_bench",
        body: &body,
    };
    let (token, now) = match std::env::var("SIGNET_BENCH_TOKEN") {
        Ok(token) => (token, unix_now()),
        Err(_) => (sign(&keys.current, &options), NOW),
    };
    let check = SignatureCheck {
        signature: &token,
        body: Body::Raw(&body),
        url: URL,
        clock_tolerance: 0,
        max_signature_bytes: 8192,
    };
    assert!(
        verify(&check, &keys, now).is_valid(),
        "the token must verify"
    );

    let signing_input = &token.as_bytes()[..token.rfind('.').unwrap()];
    let prepared = Hmac::<Sha256>::new_from_slice(b"sig_benchCurrent").unwrap();

    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("qstash_1KiB");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signet_verify", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(verify(black_box(&check), &keys, now));
            }
            record("verify", iters, start.elapsed())
        })
    });
    group.bench_function("crypto_floor", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut mac = prepared.clone();
                mac.update(black_box(signing_input));
                black_box(mac.finalize());
                black_box(Sha256::digest(black_box(&body)));
            }
            record("floor", iters, start.elapsed())
        })
    });
    group.finish();
    c.final_summary();

    // `--test` (the CI smoke run) times one iteration: no figure to print.
    let smoke = std::env::args().any(|a| a == "--test");
    let best = BEST.lock().unwrap();
    if !smoke
        && let Some(best) = best.as_ref()
        && let (Some(v), Some(f)) = (best.get("verify"), best.get("floor"))
    {
        println!(
            "qstash verify 1 KiB: {:.2} µs, crypto floor: {:.2} µs, ratio {:.2}x (target <= 2x)",
            v.as_secs_f64() * 1e6,
            f.as_secs_f64() * 1e6,
            v.as_secs_f64() / f.as_secs_f64()
        );
    }
}
