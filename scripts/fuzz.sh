#!/usr/bin/env bash
# Runs every fuzz target: replays its corpus, then fuzzes for SECONDS (default
# 30) each. A crash, panic or leak fails the run and leaves the input in
# fuzz/artifacts/. Installs cargo-fuzz on a fresh machine.
#
# The targets are the [[bin]]s of fuzz/Cargo.toml (`cargo fuzz list`).
#
#   scripts/fuzz.sh            # every target, 30 s each (what CI runs)
#   scripts/fuzz.sh 600        # every target, 10 minutes each
#   scripts/fuzz.sh 60 qstash_verify
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-30}
# SIGNET_FUZZ_PROFILE=dev builds unoptimised: a much shorter build for CI's
# brief runs; the default (release) fuzzes many times faster per second.
profile=()
[ "${SIGNET_FUZZ_PROFILE:-release}" = dev ] && profile=(--dev)
shift || true

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2

# libFuzzer's instrumentation needs unstable rustc flags; the machine has one
# stable toolchain, so allow them for this build only.
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

# Safe Rust under #![forbid(unsafe_code)]: AddressSanitizer adds build time
# and finds nothing the borrow checker has not; panics and OOMs are what count.
# The first `cargo fuzz run` builds the library; later ones reuse it.
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "==> fuzz $t for ${seconds}s"
    # A scratch copy receives new inputs; the committed seeds stay as they are.
    scratch=$(mktemp -d)
    log=$(mktemp)
    status=0
    cargo fuzz run --sanitizer none "${profile[@]}" "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|panicked|ERROR|SUMMARY|Test unit written' "$log" || true
    rm -rf "$scratch"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz target $t failed (exit $status); the input is in fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
    rm -f "$log"
done
