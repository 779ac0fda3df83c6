#!/usr/bin/env bash
# The TypeScript and Python client suites, against the real binary:
# $SIGNET_BIN, else target/release/signet (built here if missing). Installs what it needs on a fresh machine: npm ci
# from the committed package-lock.json, and a Python venv in clients/python/.venv.
#
# The AuthorizeBearer/Authorize tests are hard requirements (the server
# implements both); SIGNET_REQUIRE_BEARER=0 lets them skip against an older
# server that answers UNIMPLEMENTED.
set -euo pipefail
export SIGNET_REQUIRE_BEARER="${SIGNET_REQUIRE_BEARER:-1}"
cd "$(dirname "$0")/.."

step() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }

if [ -z "${SIGNET_BIN:-}" ]; then
  if [ ! -x target/release/signet ]; then
    step "release build (target/release/signet is missing)"
    cargo build --locked --release
  fi
  export SIGNET_BIN="$PWD/target/release/signet"
fi

step "TypeScript client: npm ci, proto copy check, tsc, node --test"
(
  cd clients/typescript
  npm ci --no-audit --no-fund --loglevel=error
  printf '(npm ci done at %ss)\n' "$SECONDS"
  npm test
)

step "Python client: venv, pip install, stub check, pytest"
(
  cd clients/python
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -r requirements-dev.txt -e '.[test]'
  printf '(pip install done at %ss)\n' "$SECONDS"
  .venv/bin/python scripts/gen_stubs.py --check
  .venv/bin/python -m pytest -q -rs
)

step "client suites done"
