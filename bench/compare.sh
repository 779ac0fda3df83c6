#!/usr/bin/env bash
# signet next to the tool QStash users have today: @upstash/qstash's
# Receiver.verify (Node) on the same token and 1 KiB body, against
#   1. signet's in-process verify (criterion, benches/verify.rs), and
#   2. a whole VerifySignature round trip over loopback (signet-load, one
#      client, one call at a time, p50).
# Prints the figures and the ratios; asserts nothing about speed.
#
#   bash bench/compare.sh            # SIGNET_COMPARE_QUICK=1: shorter runs
set -euo pipefail
cd "$(dirname "$0")/.."

URL=https://svc.example/api/workflow
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
head -c 1024 /dev/zero | tr '\0' x >"$work/body"

cargo build --locked --release --bins -q
(cd bench && npm ci --no-audit --no-fund --silent)

# One token, valid for an hour, signed with the key benches/verify.rs and the
# Node script verify with.
token=$(target/release/signet sign --key sig_benchCurrent --url "$URL" \
  --body-file "$work/body" --ttl 3600)

bench_args=()
load_duration=5s
if [[ -n "${SIGNET_COMPARE_QUICK:-}" ]]; then
  export SIGNET_BENCH_BATCHES=3 SIGNET_BENCH_BATCH=500
  bench_args=(--measurement-time 1 --warm-up-time 1)
  load_duration=1s
fi

node_line=$(node bench/receiver-verify.mjs "$token" "$work/body" "$URL")
signet_line=$(SIGNET_BENCH_TOKEN="$token" cargo bench --locked --bench verify -- \
  "${bench_args[@]}" 2>/dev/null | grep '^qstash verify')
load_out=$(target/release/signet-load --concurrency 1 --connections 1 \
  --scenarios verify_1KiB_bytes --duration "$load_duration" --warmup 1s)

echo "$node_line"
echo "$signet_line"
echo "$load_out" | grep -E '^(scenario|baseline|verify_1KiB)'

node_best=$(sed -E 's/.*best ([0-9.]+) µs.*/\1/' <<<"$node_line")
signet_best=$(sed -E 's/^qstash verify 1 KiB: ([0-9.]+) µs.*/\1/' <<<"$signet_line")
rt_p50=$(awk '$1 == "verify_1KiB_bytes" { print $3 }' <<<"$load_out")
awk -v n="$node_best" -v s="$signet_best" -v r="$rt_p50" 'BEGIN {
  printf "\nin process: signet %.2f µs vs node %.2f µs per verify: signet does %.0fx the verifies/s (target >= 30x)\n", s, n, n / s
  printf "round trip: signet VerifySignature over loopback p50 %.1f µs vs node in-process %.2f µs: %.2fx (target < 1x)\n", r, n, r / n
}'
