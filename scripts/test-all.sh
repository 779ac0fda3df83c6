#!/usr/bin/env bash
# Runs every check signet has, on a fresh machine too: formatting, lints, the
# Rust unit and integration tests (which start the real server binary), the
# TypeScript and Python client suites (scripts/test-clients.sh), the Envoy
# ext_authz tests with Envoy's real message definitions, the Helm chart checks,
# the benchmark and load generator smoke runs, and the fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "rustfmt and clippy components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets --features client,otel -- -D warnings

step "redis-server (the replay-protection tests start their own)"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
command -v redis-server >/dev/null ||
    { as_root apt-get install -y redis-server >/dev/null 2>&1 ||
      { as_root apt-get update >/dev/null && as_root apt-get install -y redis-server >/dev/null; }; }

step "cargo test (unit tests, and integration tests that start the real binary)"
cargo test --locked --features client,otel

# The client and Envoy suites run against the binary `cargo test` just built:
# the same server, without a second (release) build on a 2-core CI machine.
export SIGNET_BIN="$PWD/target/debug/signet"

step "client suites: TypeScript and Python against $SIGNET_BIN"
bash scripts/test-clients.sh

step "Envoy ext_authz with Envoy's real message definitions (envoy-data-plane)"
bash scripts/test-envoy.sh

step "Helm chart: lint, render, validate against the Kubernetes schemas, refuse insecure values"
bash scripts/install-helm-tools.sh
bash scripts/check-helm.sh

step "benchmark smoke (each bench once, unoptimised; asserts nothing about speed)"
cargo bench --locked --profile dev --features client,otel -- --test

step "load generator smoke (a few seconds end to end against a fresh server; asserts nothing about speed)"
target/debug/signet-load --server "$SIGNET_BIN" --concurrency 4 --connections 2 \
  --duration 300ms --warmup 0s --half-rate --startup-samples 1
SIGNET_LOAD_BIN=target/debug/signet-load SIGNET_BEARER_TOKENS=2000 \
  SIGNET_BEARER_DURATION=300ms bash bench/bearer-rss.sh

step "fuzz: replay each target's corpus, then fuzz it briefly (scripts/fuzz.sh SECONDS for longer runs)"
SIGNET_FUZZ_PROFILE=dev bash scripts/fuzz.sh "${SIGNET_FUZZ_SECONDS:-20}"
