#!/usr/bin/env bash
# Checks the Helm chart offline:
#   0. every value in values.yaml has a helm-docs `# --` comment;
#   1. helm lint --strict with the default values and every realistic test-values file;
#   2. helm template with the same values, each manifest through
#      `kubernetes-validate --strict` (Kubernetes 1.35.0, and 1.27.0 = the chart's
#      kubeVersion floor for the defaults), the ServiceMonitor (a CRD that
#      kubernetes-validate has no schema for) against a schema kept below, and the
#      rendered signet.toml + pod spec against the service contract;
#   3. every helm/test-values/insecure-*.yaml and invalid-*.yaml must FAIL to render, with
#      the text from its `# expect-error:` line in the error.
# Needs helm and kubernetes-validate: bash scripts/install-helm-tools.sh
# Prints one line per check and `N passed, N failed`; exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/.tools/bin:$PATH"
CHART="$ROOT/helm/signet"
VALUES_DIR="$ROOT/helm/test-values"
K8S_VERSION="${K8S_VERSION:-1.35.0}"
K8S_FLOOR="1.27.0"
RELEASE="signet"
NAMESPACE="signet"
PYTHON="${PYTHON:-python3}"

for tool in helm kubernetes-validate "$PYTHON"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "check-helm: '$tool' not found; run: bash scripts/install-helm-tools.sh" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
done

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

pass() { printf 'PASS  %s\n' "$1"; passed=$((passed + 1)); }
# fail NAME [DETAILS_FILE]
fail() {
  printf 'FAIL  %s\n' "$1"
  if [[ -n "${2:-}" && -s "$2" ]]; then sed -e 's/^/      /' "$2" | head -n 40; fi
  failed=$((failed + 1))
}
note() { printf 'NOTE  %s\n' "$1"; }

# --- The ServiceMonitor schema (monitoring.coreos.com/v1), and the contract checks ---------
# kubernetes-validate knows only built-in kinds. This schema holds the ServiceMonitor fields
# of the Prometheus Operator CRD that the chart can emit, strictly (unknown fields rejected);
# it is a subset, not the CRD itself.
read -r -d '' PY_CHECKS <<'PYEOF'
import re, sys, json
import yaml, jsonschema

path, mode = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
problems = []

DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": STRMAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["key", "operator"],
            "properties": {"key": {"type": "string"},
                           "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}}}},
    },
}
ACTIONS = ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
           "lowercase", "uppercase", "keepequal", "dropequal"]
RELABEL = {"type": "array", "items": {
    "type": "object", "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
        "separator": {"type": "string"}, "targetLabel": {"type": "string"},
        "regex": {"type": "string"}, "modulus": {"type": "integer", "minimum": 0},
        "replacement": {"type": "string"},
        "action": {"enum": ACTIONS + ["Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop",
                                      "LabelKeep", "Lowercase", "Uppercase", "KeepEqual", "DropEqual"]},
    }}}
SERVICE_MONITOR = {
    "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
            "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
            "labels": STRMAP, "annotations": STRMAP}},
        "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
                 "properties": {
            "jobLabel": {"type": "string"},
            "targetLabels": {"type": "array", "items": {"type": "string"}},
            "podTargetLabels": {"type": "array", "items": {"type": "string"}},
            "sampleLimit": {"type": "integer", "minimum": 0},
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {"type": "object", "additionalProperties": False, "properties": {
                "any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}}},
            "endpoints": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "port": {"type": "string"}, "path": {"type": "string"},
                    "scheme": {"enum": ["http", "https"]},
                    "interval": {"type": "string", "pattern": DURATION},
                    "scrapeTimeout": {"type": "string", "pattern": DURATION},
                    "honorLabels": {"type": "boolean"}, "honorTimestamps": {"type": "boolean"},
                    "relabelings": RELABEL, "metricRelabelings": RELABEL}}},
        }},
    },
}

def kind(k):
    return [d for d in docs if d.get("kind") == k]

if mode == "servicemonitor":
    sms = kind("ServiceMonitor")
    if not sms:
        problems.append("no ServiceMonitor rendered")
    validator = jsonschema.Draft202012Validator(SERVICE_MONITOR)
    for sm in sms:
        for e in sorted(validator.iter_errors(sm), key=lambda e: list(e.path)):
            problems.append("servicemonitor/%s: %s: %s" % (sm["metadata"].get("name"),
                            ".".join(map(str, e.path)), e.message))
    for sm in sms:
        ep = sm["spec"]["endpoints"][0]
        svc = [s for s in kind("Service") if "clusterIP" not in s["spec"]]
        ports = {p["name"] for s in svc for p in s["spec"]["ports"]}
        if ep.get("port") not in ports:
            problems.append("ServiceMonitor scrapes port %r which the Service does not name" % ep.get("port"))

elif mode == "docs":
    # Every value in values.yaml carries a helm-docs `# --` comment, itself or on a parent.
    lines = open(path).read().splitlines()
    stack, block = [], []
    for n, line in enumerate(lines, 1):
        st = line.strip()
        if not st:
            block = []
            continue
        if st.startswith("#"):
            block.append(st)
            continue
        m = re.match(r"^( *)([A-Za-z0-9_.\"-]+):(\s|$)", line)
        if not m:
            block = []
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = any(c.startswith("# --") for c in block)
        rest = line[m.end():].strip()
        is_parent = rest == "" or rest.startswith("#")
        if not (documented or any(d for _, d in stack) or is_parent):
            problems.append("values.yaml:%d: %s has no `# --` comment" % (n, st))
        stack.append((indent, documented))
        block = []

elif mode == "contract":
  try:
      import tomllib
      # The keys of signet.toml (the service contract); policies are free-form.
      CONTRACT = {
          "server": {"listen", "shutdown_grace", "max_message_bytes", "tls"},
          "server.tls": {"enabled", "cert_file", "key_file", "client_ca_file", "allowed_clients"},
          "server.tls.allowed_clients": {"authorizer", "key_admin"},
          "log": {"format", "level"},
          "verify": {"clock_tolerance_secs", "max_clock_tolerance_secs", "max_signature_bytes"},
          "keys": {"directory", "max_staleness", "qstash_api"},
          "keys.qstash_api": {"enabled", "url", "token_file", "poll_interval", "min_rotation_interval"},
          "metrics": {"listen"},
          "admin": {"enabled", "token_sha256"},
          "callers": {"token_sha256"},
      }
      cms = kind("ConfigMap")
      deps = kind("Deployment")
      if len(cms) != 1 or len(deps) != 1:
          problems.append("expected one ConfigMap and one Deployment, got %d and %d" % (len(cms), len(deps)))
          print("\n".join(problems)); sys.exit(1)
      try:
          cfg = tomllib.loads(cms[0]["data"]["signet.toml"])
      except Exception as e:
          print("signet.toml does not parse as TOML: %s" % e); sys.exit(1)

      def walk(table, prefix):
          for k, v in table.items():
              dotted = (prefix + "." + k) if prefix else k
              if prefix == "" and k == "policies":
                  continue
              allowed = CONTRACT.get(prefix) if prefix else set(CONTRACT) | {"policies"}
              if allowed is not None and k not in allowed:
                  problems.append("signet.toml: unknown key %s" % dotted)
              if isinstance(v, dict) and dotted in CONTRACT:
                  walk(v, dotted)
      walk(cfg, "")

      def seconds(d):
          total = 0
          for n, unit in re.findall(r"(\d+)\s*(ms|s|m|h|d)", d):
              total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
          return total

      pod = deps[0]["spec"]["template"]["spec"]
      c = [c for c in pod["containers"] if c["name"] == "signet"][0]
      ports = {p["name"]: p["containerPort"] for p in c["ports"]}
      if c.get("args") != ["serve", "--config", "/etc/signet/signet.toml"]:
          problems.append("container args %r are not `serve --config /etc/signet/signet.toml`" % c.get("args"))
      if int(cfg["server"]["listen"].rsplit(":", 1)[1]) != ports.get("grpc"):
          problems.append("server.listen %s does not match container port grpc %s" % (cfg["server"]["listen"], ports.get("grpc")))
      if int(cfg["metrics"]["listen"].rsplit(":", 1)[1]) != ports.get("metrics"):
          problems.append("metrics.listen does not match container port metrics")
      grace = seconds(cfg["server"]["shutdown_grace"])
      if not pod.get("terminationGracePeriodSeconds", 30) > grace:
          problems.append("terminationGracePeriodSeconds %s is not > shutdown_grace %ss" % (pod.get("terminationGracePeriodSeconds"), grace))
      # Probes: native gRPC without TLS, the right health services.
      tls = cfg["server"].get("tls", {}).get("enabled", False)
      live, ready = c.get("livenessProbe", {}), c.get("readinessProbe", {})
      if not tls:
          if live.get("grpc") != {"port": ports["grpc"], "service": ""}:
              problems.append("liveness probe is not grpc{port: grpc, service: \"\"}: %r" % live)
          if ready.get("grpc") != {"port": ports["grpc"], "service": "signet.v1.Authorizer"}:
              problems.append("readiness probe is not grpc{service: signet.v1.Authorizer}: %r" % ready)
      else:
          # TLS on: the kubelet's gRPC probe is plaintext, so HTTP probes on the metrics port.
          if live.get("httpGet") != {"path": "/livez", "port": "metrics"}:
              problems.append("TLS on: liveness probe is not httpGet /livez on the metrics port: %r" % live)
          if ready.get("httpGet") != {"path": "/readyz", "port": "metrics"}:
              problems.append("TLS on: readiness probe is not httpGet /readyz on the metrics port: %r" % ready)
      # Restrictive security context.
      sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
      want = {"runAsNonRoot": True, "runAsUser": 65532, "readOnlyRootFilesystem": True,
              "allowPrivilegeEscalation": False}
      for k, v in want.items():
          if sc.get(k, psc.get(k)) != v:
              problems.append("securityContext.%s is %r, want %r" % (k, sc.get(k, psc.get(k)), v))
      if sc.get("capabilities", {}).get("drop") != ["ALL"]:
          problems.append("securityContext.capabilities.drop is not [ALL]")
      if sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
          problems.append("seccompProfile is not RuntimeDefault")
      if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
          problems.append("resources need requests and limits")
      if pod.get("automountServiceAccountToken") is not False:
          problems.append("pods must not mount a service account token")
      ann = deps[0]["spec"]["template"]["metadata"].get("annotations", {})
      if not re.fullmatch(r"[0-9a-f]{64}", str(ann.get("checksum/config", ""))):
          problems.append("pod annotation checksum/config missing")
      # Mounts match the paths in signet.toml; the key directory is mounted whole (no subPath),
      # or the kubelet's ..data swap would never reach the pod.
      mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
      keydir = cfg["keys"].get("directory")
      if keydir:
          if keydir not in mounts:
              problems.append("keys.directory %s is not mounted" % keydir)
          elif "subPath" in mounts[keydir]:
              problems.append("keys.directory is mounted with subPath: rotations would not reach the pod")
      elif not cfg["keys"].get("qstash_api", {}).get("enabled"):
          problems.append("no key directory and no QStash keys API")
      if cfg["keys"].get("qstash_api", {}).get("enabled"):
          tf = cfg["keys"]["qstash_api"]["token_file"]
          if tf.rsplit("/", 1)[0] not in mounts:
              problems.append("qstash token_file %s is not mounted" % tf)
      if tls:
          for f in ("cert_file", "key_file", "client_ca_file"):
              p = cfg["server"]["tls"].get(f)
              if p and p.rsplit("/", 1)[0] not in mounts:
                  problems.append("server.tls.%s %s is not mounted" % (f, p))
      # Services: gRPC port carries appProtocol grpc.
      for s in kind("Service"):
          for p in s["spec"]["ports"]:
              if p["name"] == "grpc" and p.get("appProtocol") != "grpc":
                  problems.append("Service %s port grpc lacks appProtocol: grpc" % s["metadata"]["name"])
      # No plaintext key in a ConfigMap.
      raw = cms[0]["data"]["signet.toml"]
      for s in kind("Secret"):
          for v in s.get("data", {}).values():
              import base64
              if base64.b64decode(v).decode() in raw:
                  problems.append("a Secret value appears in the ConfigMap")
  except KeyError as e:
    problems.append("rendered output lacks %s (signet.toml section or pod field)" % e)

print("\n".join(problems))
sys.exit(1 if problems else 0)
PYEOF

# render NAME OUT [helm args...]  -> 0 when helm template succeeds; stderr in OUT.err
render() {
  local out="$2"; shift 2
  helm template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "$@" >"$out" 2>"$out.err"
}

# kubevalidate NAME FILE VERSION: kubernetes-validate --strict on every resource; a resource
# without a schema is a failure, except a ServiceMonitor (checked separately).
kubevalidate() {
  local name="$1" file="$2" version="$3" log="$WORK/kv.log" other
  local docs validated unknown_sm
  kubernetes-validate --strict -k "$version" - <"$file" >"$log" 2>&1
  local rc=$?
  docs=$("$PYTHON" -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$file")
  validated=$(grep -c '^INFO .* passed for resource' "$log")
  unknown_sm=$(grep -c '^WARN .*kind ServiceMonitor with api version monitoring.coreos.com/v1' "$log")
  other=$(grep -v '^INFO .* passed for resource' "$log" | grep -v 'kind ServiceMonitor with api version monitoring.coreos.com/v1')
  if [[ $rc -eq 0 && -z "$other" && $((validated + unknown_sm)) -eq $docs ]]; then
    pass "$name: kubernetes-validate --strict -k $version ($validated resources)"
    if [[ $unknown_sm -gt 0 ]]; then
      note "$name: kubernetes-validate has no schema for the ServiceMonitor CRD; checked against this script's ServiceMonitor schema instead"
    fi
  else
    { echo "exit $rc, $validated of $docs resources validated"; grep -v '^INFO' "$log"; } >"$WORK/kv.fail"
    fail "$name: kubernetes-validate --strict -k $version" "$WORK/kv.fail"
  fi
}

# --- 0: every value documented ---------------------------------------------------------------
if "$PYTHON" -c "$PY_CHECKS" "$CHART/values.yaml" docs >"$WORK/docs.log" 2>&1; then
  pass "values.yaml: every value has a helm-docs \`# --\` comment"
else
  fail "values.yaml: every value has a helm-docs \`# --\` comment" "$WORK/docs.log"
fi

# --- 1 + 2: lint, render and validate the realistic values --------------------------------
cases=("defaults:")
for f in "$VALUES_DIR"/*.yaml; do
  base="$(basename "$f" .yaml)"
  case "$base" in insecure-* | invalid-*) continue ;; esac
  cases+=("$base:$f")
done

for entry in "${cases[@]}"; do
  name="${entry%%:*}"
  file="${entry#*:}"
  args=()
  [[ -n "$file" ]] && args=(-f "$file")

  if helm lint --strict "$CHART" "${args[@]}" >"$WORK/lint.log" 2>&1; then
    pass "$name: helm lint --strict"
  else
    fail "$name: helm lint --strict" "$WORK/lint.log"
  fi

  out="$WORK/$name.yaml"
  if ! render "$name" "$out" "${args[@]}"; then
    fail "$name: helm template" "$out.err"
    continue
  fi
  pass "$name: helm template"

  kubevalidate "$name" "$out" "$K8S_VERSION"
  if [[ "$name" == "defaults" ]]; then
    # The chart declares kubeVersion >=1.27: the defaults must be valid there too.
    if render "$name" "$WORK/floor.yaml" --kube-version "$K8S_FLOOR"; then
      kubevalidate "$name@$K8S_FLOOR" "$WORK/floor.yaml" "$K8S_FLOOR"
    else
      fail "$name: helm template --kube-version $K8S_FLOOR" "$WORK/floor.yaml.err"
    fi
  fi

  if grep -q '^kind: ServiceMonitor' "$out"; then
    if "$PYTHON" -c "$PY_CHECKS" "$out" servicemonitor >"$WORK/sm.log" 2>&1; then
      pass "$name: ServiceMonitor against the monitoring.coreos.com/v1 schema subset"
    else
      fail "$name: ServiceMonitor against the monitoring.coreos.com/v1 schema subset" "$WORK/sm.log"
    fi
  fi

  if "$PYTHON" -c "$PY_CHECKS" "$out" contract >"$WORK/contract.log" 2>&1; then
    pass "$name: signet.toml and pod spec match the service contract"
  else
    fail "$name: signet.toml and pod spec match the service contract" "$WORK/contract.log"
  fi
done

# The chart must refuse a cluster that is too old.
if render too-old "$WORK/old.yaml" --kube-version 1.26.0; then
  fail "kubeVersion: rendering for Kubernetes 1.26 must fail"
elif grep -q 'kubeVersion' "$WORK/old.yaml.err"; then
  pass "kubeVersion: refuses Kubernetes 1.26"
else
  fail "kubeVersion: refuses Kubernetes 1.26 (unexpected error)" "$WORK/old.yaml.err"
fi

# --- 3: insecure and invalid values must not render ----------------------------------------
shopt -s nullglob
bad=("$VALUES_DIR"/insecure-*.yaml "$VALUES_DIR"/invalid-*.yaml)
if [[ ${#bad[@]} -eq 0 ]]; then
  fail "no insecure-*.yaml test values found in $VALUES_DIR"
fi
for f in "${bad[@]}"; do
  name="$(basename "$f" .yaml)"
  expect="$(sed -n 's/^# expect-error: //p' "$f" | head -n 1)"
  if [[ -z "$expect" ]]; then
    fail "$name: has no '# expect-error: <text>' line"
    continue
  fi
  if render "$name" "$WORK/bad.yaml" -f "$f"; then
    echo "rendered without error" >"$WORK/bad.yaml.err"
    fail "$name: must be refused (\"$expect\")" "$WORK/bad.yaml.err"
  elif grep -qF -- "$expect" "$WORK/bad.yaml.err"; then
    pass "$name: refused with \"$expect\""
  else
    { echo "expected the error to contain: $expect"; cat "$WORK/bad.yaml.err"; } >"$WORK/bad.msg"
    fail "$name: refused, but not with the expected message" "$WORK/bad.msg"
  fi
done

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
