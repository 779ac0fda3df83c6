#!/usr/bin/env bash
# Peak RSS of a signet holding 100k cached bearer decisions, with the bearer
# scenarios of signet-load next to the empty baseline call.
#
# Makes 100k distinct HS256 JWTs (python3, standard library only), a config
# whose policy accepts them and keeps up to 150k decisions, then lets
# signet-load start `signet serve --dev` with that config (SIGNET_CONFIG) and
# drive: the baseline, one cached JWT, the 100k JWTs in turn (each verified
# once, then cached), an API key, and a whole-request Authorize. signet-load
# prints the server's peak RSS (VmHWM) over the run.
#
#   bash bench/bearer-rss.sh              # 100000 tokens, 12 s per scenario
#   SIGNET_BEARER_TOKENS=2000 SIGNET_BEARER_DURATION=1s bash bench/bearer-rss.sh
#
# Uses target/release/ (or SIGNET_BIN and SIGNET_LOAD_BIN, as CI does).
set -euo pipefail
cd "$(dirname "$0")/.."

tokens=${SIGNET_BEARER_TOKENS:-100000}
duration=${SIGNET_BEARER_DURATION:-12s}
signet=${SIGNET_BIN:-target/release/signet}
load=${SIGNET_LOAD_BIN:-target/release/signet-load}
if [[ -z "${SIGNET_BIN:-}" ]]; then
  cargo build --locked --release --bins -q
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Throwaway credentials made for this run only.
secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
api_key="sk_bench_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

python3 - "$secret" "$tokens" "$work/jwts" <<'EOF'
import base64, hashlib, hmac, json, sys, time

secret, count, out = sys.argv[1].encode(), int(sys.argv[2]), sys.argv[3]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "bench"}).encode())
exp = int(time.time()) + 3600
with open(out, "w") as f:
    for i in range(count):
        claims = {"iss": "https://bench.example", "sub": f"caller-{i}",
                  "aud": "bench-api", "exp": exp, "scope": "bench:read"}
        signing_input = header + b"." + b64(json.dumps(claims).encode())
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        f.write((signing_input + b"." + b64(mac)).decode() + "\n")
EOF

cat >"$work/signet.toml" <<EOF
[issuers.bench]
issuer = "https://bench.example"
audiences = ["bench-api"]
algorithms = ["HS256"]
keys = [{ kid = "bench", algorithm = "HS256", secret = "$secret" }]

[policies.bench]
require = "bearer"
issuers = ["bench"]
required_scopes = ["bench:read"]
api_keys = [{ sha256 = "$("$signet" hash-token <<<"$api_key")", subject = "bench", scopes = ["bench:read"] }]

[decision_cache]
max_entries = 150000
ttl = "10m"
EOF

echo "bearer-rss: $tokens distinct JWTs, decision cache of up to 150000"
# Credentials through the environment, not the command line (ps shows that).
SIGNET_CONFIG="$work/signet.toml" SIGNET_LOAD_JWT="$(head -n1 "$work/jwts")" \
  SIGNET_LOAD_API_KEY="$api_key" \
  "$load" --server "$signet" --bearer --policy bench --jwt-file "$work/jwts" \
  --scenarios baseline_health_check,bearer_jwt_cached,bearer_jwt_uncached,bearer_api_key,authorize_1KiB \
  --duration "$duration" --warmup 500ms
