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

step "release build (the binary the client tests and load runs use)"
cargo build --locked --release

step "client suites: TypeScript and Python against target/release/signet"
bash scripts/test-clients.sh

step "redis-server (the replay-protection tests start their own)"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
command -v redis-server >/dev/null ||
    { as_root apt-get install -y redis-server >/dev/null 2>&1 ||
      { as_root apt-get update >/dev/null && as_root apt-get install -y redis-server >/dev/null; }; }

step "Envoy ext_authz with Envoy's real message definitions (envoy-data-plane) against the release binary"
bash scripts/test-envoy.sh

step "cargo test"
cargo test --locked --features client,otel

step "Helm chart: lint, render, validate against the Kubernetes schemas, refuse insecure values"
bash scripts/install-helm-tools.sh
bash scripts/check-helm.sh

step "benchmark smoke (compiles and runs each bench once; asserts nothing about speed)"
cargo bench --locked --bench verify -- --test
cargo bench --locked --bench bearer -- --test

step "load generator smoke (a few seconds end to end against a fresh server; asserts nothing about speed)"
target/release/signet-load --concurrency 4 --connections 2 --duration 300ms --warmup 0s \
  --half-rate --startup-samples 1

step "fuzz: replay each target's corpus, then fuzz it briefly (scripts/fuzz.sh SECONDS for longer runs)"
bash scripts/fuzz.sh "${SIGNET_FUZZ_SECONDS:-20}"
