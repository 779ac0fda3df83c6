{{/* vim: set filetype=mustache: */}}

{{/* Chart name. */}}
{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-qualified, at most 63 characters (DNS label). */}}
{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a derived object (`<fullname>-<suffix>`), still at most 63 characters. */}}
{{- define "signet.suffixed" -}}
{{- $full := include "signet.fullname" .root -}}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix)))) .suffix | trimAll "-" -}}
{{- end -}}

{{- define "signet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "signet.labels" -}}
helm.sh/chart: {{ include "signet.chart" . }}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: signet
{{- end -}}

{{/* Labels that select signet's pods (never change them: Deployment selectors are immutable). */}}
{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "signet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "signet.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the container (the service contract). */}}
{{- define "signet.configPath" -}}/etc/signet/signet.toml{{- end -}}
{{- define "signet.keysDir" -}}/etc/signet/keys{{- end -}}
{{- define "signet.qstashDir" -}}/etc/signet/qstash{{- end -}}
{{- define "signet.tlsDir" -}}/etc/signet/tls{{- end -}}

{{/* Is a signing-key Secret mounted (existing or chart-made)? */}}
{{- define "signet.hasSigningKeySecret" -}}
{{- if or .Values.signingKeys.existingSecret .Values.signingKeys.current -}}true{{- end -}}
{{- end -}}

{{- define "signet.signingKeysSecretName" -}}
{{- if .Values.signingKeys.existingSecret -}}
{{- .Values.signingKeys.existingSecret -}}
{{- else -}}
{{- include "signet.suffixed" (dict "root" . "suffix" "signing-keys") -}}
{{- end -}}
{{- end -}}

{{- define "signet.qstashSecretName" -}}
{{- if .Values.qstashApi.existingSecret -}}
{{- .Values.qstashApi.existingSecret -}}
{{- else -}}
{{- include "signet.suffixed" (dict "root" . "suffix" "qstash") -}}
{{- end -}}
{{- end -}}

{{- define "signet.hasAllowedClients" -}}
{{- if or .Values.tls.allowedClients.authorizer .Values.tls.allowedClients.keyAdmin -}}true{{- end -}}
{{- end -}}

{{/* The gRPC probes only work over plaintext: the kubelet neither speaks TLS nor holds a client certificate. */}}
{{- define "signet.grpcProbes" -}}
{{- if not .Values.tls.enabled -}}true{{- end -}}
{{- end -}}

{{/* Seconds between SIGTERM and SIGKILL. */}}
{{- define "signet.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.server.shutdownGraceSeconds) (int .Values.lifecycle.preStopSleepSeconds) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $needed 5 -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/*
Refuses insecure or contradictory values, each with a message saying what to do.
Included by the Deployment, which every release renders.
*/}}
{{- define "signet.validate" -}}
{{- $v := .Values -}}
{{- if $v.devMode -}}
{{- fail "\n\ndevMode uses public keys; never in a cluster. Remove devMode and give the signing keys (signingKeys.existingSecret)." -}}
{{- end -}}
{{- if and $v.admin.enabled (not $v.admin.tokenSha256) -}}
{{- fail "\n\nadmin.enabled needs at least one admin.tokenSha256 digest: an admin API without a token would let anyone rotate keys. Create one with `signet hash-token` and list its hex SHA-256 in admin.tokenSha256." -}}
{{- end -}}
{{- if and $v.tls.enabled (not $v.tls.existingSecret) -}}
{{- fail "\n\ntls.enabled needs tls.existingSecret: the name of a kubernetes.io/tls Secret (tls.crt, tls.key), e.g. one written by cert-manager." -}}
{{- end -}}
{{- if and $v.tls.clientCA.enabled (not $v.tls.enabled) -}}
{{- fail "\n\ntls.clientCA.enabled (mTLS) needs tls.enabled and tls.existingSecret." -}}
{{- end -}}
{{- if and (include "signet.hasAllowedClients" .) (not $v.tls.clientCA.enabled) -}}
{{- fail "\n\ntls.allowedClients is set but no client CA is configured: without mTLS the allowlist cannot be enforced. Set tls.enabled, tls.existingSecret and tls.clientCA.enabled (ca.crt in the TLS Secret or in tls.clientCA.existingSecret)." -}}
{{- end -}}
{{- if and $v.signingKeys.current (not $v.signingKeys.next) -}}
{{- fail "\n\nsigningKeys.current is set without signingKeys.next: QStash signs with both keys and rotation needs the next one. Give both (better: put them in a Secret and set signingKeys.existingSecret)." -}}
{{- end -}}
{{- if and $v.signingKeys.next (not $v.signingKeys.current) -}}
{{- fail "\n\nsigningKeys.next is set without signingKeys.current: give both." -}}
{{- end -}}
{{- if and $v.signingKeys.existingSecret $v.signingKeys.current -}}
{{- fail "\n\nsigningKeys.existingSecret and signingKeys.current/next are both set: give the keys one way only." -}}
{{- end -}}
{{- if not (or (include "signet.hasSigningKeySecret" .) $v.qstashApi.enabled) -}}
{{- fail "\n\nno signing keys: signet would never become ready. Give keys one way:\n  1. a Secret (preferred): kubectl create secret generic signet-signing-keys --from-literal=current=\"$QSTASH_CURRENT_SIGNING_KEY\" --from-literal=next=\"$QSTASH_NEXT_SIGNING_KEY\" and --set signingKeys.existingSecret=signet-signing-keys\n  2. values: signingKeys.current and signingKeys.next (the chart creates the Secret)\n  3. the QStash keys API: qstashApi.enabled=true with qstashApi.existingSecret (key `token`)" -}}
{{- end -}}
{{- if and $v.qstashApi.enabled (not (or $v.qstashApi.existingSecret $v.qstashApi.token)) -}}
{{- fail "\n\nqstashApi.enabled needs the QStash token: qstashApi.existingSecret (a Secret with key `token`), or qstashApi.token." -}}
{{- end -}}
{{- if and $v.qstashApi.existingSecret $v.qstashApi.token -}}
{{- fail "\n\nqstashApi.existingSecret and qstashApi.token are both set: give the token one way only." -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (not $v.networkPolicy.grpc.from) -}}
{{- fail "\n\nnetworkPolicy.enabled needs networkPolicy.grpc.from (the namespaces/pods that may call signet); an empty list would shut every caller out." -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) -}}
{{- fail "\n\nautoscaling.minReplicas is larger than autoscaling.maxReplicas." -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (kindIs "invalid" $v.autoscaling.targetCPUUtilizationPercentage) (kindIs "invalid" $v.autoscaling.targetMemoryUtilizationPercentage) -}}
{{- fail "\n\nautoscaling.enabled needs a metric: autoscaling.targetCPUUtilizationPercentage and/or autoscaling.targetMemoryUtilizationPercentage." -}}
{{- end -}}
{{- $needed := add (int $v.server.shutdownGraceSeconds) (int $v.lifecycle.preStopSleepSeconds) -}}
{{- if le (int (include "signet.terminationGracePeriodSeconds" .)) (int $needed) -}}
{{- fail (printf "\n\nterminationGracePeriodSeconds (%d) must be larger than server.shutdownGraceSeconds + lifecycle.preStopSleepSeconds (%d), or Kubernetes kills signet in the middle of its drain." (int $v.terminationGracePeriodSeconds) (int $needed)) -}}
{{- end -}}
{{- end -}}

{{/*
TOML rendering of free-form values (policies). Helm reads every YAML number as a
float64 and `toToml` would write 30 as 30.0, which an integer setting rejects: this
writes whole numbers as integers.
*/}}
{{- define "signet.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{- define "signet.toml.value" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- toJson $v -}}
{{- else if kindIs "bool" $v -}}
{{- ternary "true" "false" $v -}}
{{- else if kindIs "float64" $v -}}
{{- if eq $v (floor $v) -}}{{- int64 $v -}}{{- else -}}{{- $v -}}{{- end -}}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- $v -}}
{{- else if kindIs "slice" $v -}}
[{{- range $i, $e := $v -}}{{- if $i -}}, {{ end -}}{{- include "signet.toml.value" $e -}}{{- end -}}]
{{- else if kindIs "map" $v -}}
{ {{- range $i, $k := keys $v | sortAlpha -}}{{- if $i -}}, {{ else }} {{ end -}}{{- include "signet.toml.key" $k -}} = {{ include "signet.toml.value" (get $v $k) -}}{{- end }} }
{{- else if kindIs "invalid" $v -}}
{{- fail "signet.toml: null has no TOML form; remove the key instead" -}}
{{- else -}}
{{- fail (printf "signet.toml: cannot render a %s" (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{/* A table: `[prefix]` with the scalar keys, then each map-valued key as a sub-table. */}}
{{- define "signet.toml.table" -}}
{{- $table := .table -}}
[{{ .prefix }}]
{{- range $k := keys $table | sortAlpha }}
{{- $val := get $table $k }}
{{- if not (kindIs "map" $val) }}
{{ include "signet.toml.key" $k }} = {{ include "signet.toml.value" $val }}
{{- end }}
{{- end }}
{{- range $k := keys $table | sortAlpha }}
{{- $val := get $table $k }}
{{- if kindIs "map" $val }}

{{ include "signet.toml.table" (dict "prefix" (printf "%s.%s" $.prefix (include "signet.toml.key" $k)) "table" $val) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A list of strings as a TOML array. */}}
{{- define "signet.toml.strings" -}}
[{{- range $i, $e := . -}}{{- if $i -}}, {{ end -}}{{- toJson (toString $e) -}}{{- end -}}]
{{- end -}}

{{/* signet.toml, the service's configuration file. */}}
{{- define "signet.config" -}}
{{- $v := .Values -}}
# Rendered by the signet Helm chart from its values; change the values, not this file.
# Every key can also be overridden with an env variable SIGNET__SECTION__KEY (extraEnv).

[server]
listen = {{ printf "%s:%d" (include "signet.hostForListen" $v.server.bindAddress) (int $v.server.port) | toJson }}
shutdown_grace = {{ printf "%ds" (int $v.server.shutdownGraceSeconds) | toJson }}
max_message_bytes = {{ int64 $v.server.maxMessageBytes }}

[server.tls]
enabled = {{ ternary "true" "false" $v.tls.enabled }}
{{- if $v.tls.enabled }}
cert_file = {{ printf "%s/tls.crt" (include "signet.tlsDir" .) | toJson }}
key_file = {{ printf "%s/tls.key" (include "signet.tlsDir" .) | toJson }}
{{- if $v.tls.clientCA.enabled }}
client_ca_file = {{ printf "%s/ca.crt" (include "signet.tlsDir" .) | toJson }}
{{- end }}
{{- end }}
{{- if $v.tls.clientCA.enabled }}

[server.tls.allowed_clients]
authorizer = {{ include "signet.toml.strings" $v.tls.allowedClients.authorizer }}
key_admin = {{ include "signet.toml.strings" $v.tls.allowedClients.keyAdmin }}
{{- end }}

[log]
format = {{ $v.log.format | toJson }}
level = {{ $v.log.level | toJson }}

[verify]
clock_tolerance_secs = {{ int64 $v.verify.clockToleranceSecs }}
max_clock_tolerance_secs = {{ int64 $v.verify.maxClockToleranceSecs }}
max_signature_bytes = {{ int64 $v.verify.maxSignatureBytes }}

[keys]
{{- if include "signet.hasSigningKeySecret" . }}
directory = {{ include "signet.keysDir" . | toJson }}
{{- else }}
# No signing-key Secret is mounted: the keys come from the QStash keys API alone.
directory = ""
{{- end }}
max_staleness = {{ $v.keys.maxStaleness | toJson }}

[keys.qstash_api]
enabled = {{ ternary "true" "false" $v.qstashApi.enabled }}
{{- if $v.qstashApi.enabled }}
url = {{ $v.qstashApi.url | toJson }}
token_file = {{ printf "%s/token" (include "signet.qstashDir" .) | toJson }}
poll_interval = {{ $v.qstashApi.pollInterval | toJson }}
min_rotation_interval = {{ $v.qstashApi.minRotationInterval | toJson }}
{{- end }}

[metrics]
listen = {{ printf "%s:%d" (include "signet.hostForListen" $v.server.bindAddress) (int $v.metrics.port) | toJson }}

[admin]
enabled = {{ ternary "true" "false" $v.admin.enabled }}
token_sha256 = {{ include "signet.toml.strings" $v.admin.tokenSha256 }}

[callers]
token_sha256 = {{ include "signet.toml.strings" $v.callers.tokenSha256 }}
{{- range $name := keys $v.policies | sortAlpha }}

{{ include "signet.toml.table" (dict "prefix" (printf "policies.%s" (include "signet.toml.key" $name)) "table" (get $v.policies $name)) }}
{{- end }}
{{- end -}}

{{/* An IPv6 bind address goes in brackets in `host:port`. */}}
{{- define "signet.hostForListen" -}}
{{- if contains ":" . -}}[{{ trimAll "[]" . }}]{{- else -}}{{ . }}{{- end -}}
{{- end -}}
