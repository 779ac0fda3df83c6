#!/usr/bin/env bash
# Envoy ext_authz v3 tests with Envoy's real message definitions (PyPI
# envoy-data-plane) against the real binary ($SIGNET_BIN, else
# target/release/signet, built if missing): creates a venv under target/,
# installs the pinned requirements, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/envoy-venv
req=tests/envoy/requirements.txt
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
# Reinstall only when the pins changed.
if ! cmp -s "$req" "$venv/.installed-requirements.txt"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/.installed-requirements.txt"
fi
[ -n "${SIGNET_BIN:-}" ] || test -x target/release/signet || cargo build --locked --release
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/envoy "$@"
