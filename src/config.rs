//! Typed configuration: a TOML file, `SIGNET__SECTION__KEY` environment
//! overrides, validated once at start with every error reported together.

use std::{
    collections::BTreeMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

use crate::{
    config_bearer::{
        DecisionCacheSettings, IssuerSettings, JwksSettings, PolicySettings, ReplaySettings,
    },
    secret::Secret,
};

/// The configuration as written (file + environment), before validation.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The gRPC listener.
    pub server: ServerSettings,
    /// Logging.
    pub log: LogSettings,
    /// Signature verification limits.
    pub verify: VerifySettings,
    /// Signing keys.
    pub keys: KeySettings,
    /// The Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// Caller tokens (callers without mTLS).
    pub callers: CallerSettings,
    /// OpenTelemetry trace export.
    pub otel: OtelSettings,
    /// The `signet.v1.KeyAdmin` service.
    pub admin: AdminSettings,
    /// JWT issuers (`[issuers.NAME]`).
    pub issuers: BTreeMap<String, IssuerSettings>,
    /// Named policies (`[policies.NAME]`).
    pub policies: BTreeMap<String, PolicySettings>,
    /// JWKS fetching and caching.
    pub jwks: JwksSettings,
    /// Cached bearer decisions.
    pub decision_cache: DecisionCacheSettings,
    /// Replay protection stores (`[replay]`).
    pub replay: ReplaySettings,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: String,
    /// How long SIGTERM waits for in-flight calls (humantime, e.g. `10s`).
    pub shutdown_grace: String,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
    /// TLS and mTLS on the gRPC listener.
    pub tls: TlsSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
            shutdown_grace: "10s".into(),
            max_message_bytes: 8 * 1024 * 1024,
            tls: TlsSettings::default(),
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Serve gRPC over TLS.
    pub enabled: bool,
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key.
    pub key_file: String,
    /// PEM CA bundle for client certificates; set = mTLS required.
    pub client_ca_file: String,
    /// How often the files are checked for changes (humantime).
    pub reload_interval: String,
    /// With mTLS: client SAN identities allowed per service.
    pub allowed_clients: AllowedClientsSettings,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: String::new(),
            key_file: String::new(),
            client_ca_file: String::new(),
            reload_interval: "10s".into(),
            allowed_clients: AllowedClientsSettings::default(),
        }
    }
}

/// `[server.tls.allowed_clients]`: SAN DNS names or URIs (e.g. SPIFFE ids).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllowedClientsSettings {
    /// May call `signet.v1.Authorizer`; empty = any verified client.
    pub authorizer: Vec<String>,
    /// May call `signet.v1.KeyAdmin`; empty = any verified client.
    pub key_admin: Vec<String>,
}

/// `[metrics]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address of the plaintext `/metrics`, `/livez`, `/readyz` listener; empty = off.
    pub listen: String,
}

/// `[callers]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallerSettings {
    /// Hex SHA-256 digests of caller tokens; set = callers without a client
    /// certificate must send `x-signet-caller-token`.
    pub token_sha256: Vec<String>,
}

/// `[otel]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtelSettings {
    /// Export spans over OTLP (needs the `otel` cargo feature).
    pub enabled: bool,
    /// OTLP/gRPC collector endpoint.
    pub endpoint: String,
    /// `service.name` resource attribute.
    pub service_name: String,
}

impl Default for OtelSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: "http://127.0.0.1:4317".into(),
            service_name: "signet".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: String,
    /// A tracing filter: `info`, `debug`, `signet=trace,info`…
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

/// `[verify]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifySettings {
    /// Clock tolerance for `exp`/`nbf` when a request gives none, in seconds.
    pub clock_tolerance_secs: u64,
    /// The most a request may ask for; larger requests are capped.
    pub max_clock_tolerance_secs: u64,
    /// Signatures longer than this are denied without being parsed.
    pub max_signature_bytes: usize,
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self {
            clock_tolerance_secs: 0,
            max_clock_tolerance_secs: 300,
            max_signature_bytes: 8 * 1024,
        }
    }
}

/// `[keys]`: the default key set's keys (development only: prefer the
/// `QSTASH_*` variables or a Secret directory), named key sets, and the
/// sources refreshed while running.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// Current signing key of the default key set.
    pub current: Option<Secret>,
    /// Next signing key of the default key set.
    pub next: Option<Secret>,
    /// Named key sets (`[keys.sets.NAME]`), one QStash account each.
    pub sets: BTreeMap<String, KeyPairSettings>,
    /// A key directory as Kubernetes mounts a Secret; empty = none.
    pub directory: String,
    /// How often the key directory is re-read besides watching it (humantime).
    pub reread_interval: String,
    /// Keys a source has failed to confirm for longer than this make health NOT_SERVING.
    pub max_staleness: String,
    /// `[keys.qstash_api]`: the QStash keys API as a key source.
    pub qstash_api: QstashApiSettings,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            current: None,
            next: None,
            sets: BTreeMap::new(),
            directory: String::new(),
            reread_interval: "30s".into(),
            max_staleness: "1h".into(),
            qstash_api: QstashApiSettings::default(),
        }
    }
}

/// `[keys.qstash_api]`
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QstashApiSettings {
    /// Poll the QStash keys API for the signing keys.
    pub enabled: bool,
    /// Base URL; empty = `QSTASH_URL`, else `https://qstash.upstash.io`.
    pub url: String,
    /// The QStash token (prefer `token_file`); unset = `QSTASH_TOKEN`.
    pub token: Option<Secret>,
    /// A file holding the QStash token (a mounted Secret).
    pub token_file: String,
    /// The key set these keys fill.
    pub key_set: String,
    /// How often the keys are fetched (humantime).
    pub poll_interval: String,
    /// Least time between two fetches triggered by unknown signatures.
    pub refetch_cooldown: String,
    /// Timeout of one API call.
    pub timeout: String,
    /// `RotateSigningKeys` refuses a second rotation inside this interval unless forced.
    pub min_rotation_interval: String,
}

impl Default for QstashApiSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            url: String::new(),
            token: None,
            token_file: String::new(),
            key_set: DEFAULT_KEY_SET_NAME.into(),
            poll_interval: "5m".into(),
            refetch_cooldown: "30s".into(),
            timeout: "10s".into(),
            min_rotation_interval: "10m".into(),
        }
    }
}

/// `[admin]`: the `signet.v1.KeyAdmin` service.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Serve `signet.v1.KeyAdmin`.
    pub enabled: bool,
    /// Hex SHA-256 digests of the admin tokens (never the tokens).
    pub token_sha256: Vec<String>,
}

const DEFAULT_KEY_SET_NAME: &str = "default";
const DEFAULT_QSTASH_URL: &str = "https://qstash.upstash.io";

/// Validated settings of the key sources refreshed while running.
#[derive(Debug, Clone)]
pub struct KeyRefreshConfig {
    /// The key directory, if any.
    pub directory: Option<PathBuf>,
    /// Periodic re-read of the directory.
    pub reread_interval: Duration,
    /// Staleness past which health is NOT_SERVING.
    pub max_staleness: Duration,
    /// The QStash keys API source, if enabled.
    pub qstash_api: Option<QstashApiConfig>,
}

/// Validated `[keys.qstash_api]`.
#[derive(Debug, Clone)]
pub struct QstashApiConfig {
    /// Base URL without a trailing `/`.
    pub url: String,
    /// Bearer token of the QStash account.
    pub token: Secret,
    /// The key set the API's keys fill.
    pub key_set: String,
    /// Poll interval.
    pub poll_interval: Duration,
    /// Least time between refetches triggered by unknown signatures.
    pub refetch_cooldown: Duration,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Least time between two unforced rotations.
    pub min_rotation_interval: Duration,
}

/// Validated `[admin]`: present only when the service is enabled.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// SHA-256 digests of the accepted admin tokens.
    pub token_digests: Vec<[u8; 32]>,
}

/// A current/next pair as written in the configuration.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyPairSettings {
    /// Current signing key.
    pub current: Option<Secret>,
    /// Next signing key.
    pub next: Option<Secret>,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Validated server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// How long SIGTERM waits for in-flight calls.
    pub shutdown_grace: Duration,
    /// Largest request message accepted, in bytes.
    pub max_message_bytes: usize,
}

/// Validated verification limits.
#[derive(Debug, Clone, Copy)]
pub struct VerifyLimits {
    /// Default clock tolerance in seconds.
    pub clock_tolerance_secs: u64,
    /// Cap on a request's own tolerance.
    pub max_clock_tolerance_secs: u64,
    /// Largest signature parsed.
    pub max_signature_bytes: usize,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        let v = VerifySettings::default();
        Self {
            clock_tolerance_secs: v.clock_tolerance_secs,
            max_clock_tolerance_secs: v.max_clock_tolerance_secs,
            max_signature_bytes: v.max_signature_bytes,
        }
    }
}

impl VerifyLimits {
    /// The tolerance for one request: its own value capped by the maximum.
    pub fn tolerance(&self, requested: Option<u32>) -> u64 {
        requested
            .map_or(self.clock_tolerance_secs, u64::from)
            .min(self.max_clock_tolerance_secs)
    }
}

/// Validated TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
    /// PEM client CA bundle: mTLS when set.
    pub client_ca_file: Option<PathBuf>,
    /// How often the files are checked for changes.
    pub reload_interval: Duration,
}

/// Who may call which service (see `server::caller`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerPolicy {
    /// SAN identities allowed to call `signet.v1.Authorizer` (and ext_authz); empty = any verified client.
    pub authorizer: Vec<String>,
    /// SAN identities allowed to call `signet.v1.KeyAdmin`; empty = any verified client.
    pub key_admin: Vec<String>,
    /// SHA-256 digests of caller tokens; empty = no token required.
    pub token_sha256: Vec<[u8; 32]>,
}

/// Validated OpenTelemetry export settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// OTLP/gRPC collector endpoint.
    pub endpoint: String,
    /// `service.name` resource attribute.
    pub service_name: String,
}

/// Validated operations settings: TLS, callers, metrics, tracing export.
#[derive(Debug, Clone, Default)]
pub struct OpsConfig {
    /// TLS on the gRPC listener; `None` = plaintext.
    pub tls: Option<TlsConfig>,
    /// Caller authorization.
    pub callers: CallerPolicy,
    /// The metrics listener; `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP export; `None` = off.
    pub otel: Option<OtelConfig>,
}

/// One configuration problem, naming the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `server.listen`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl ConfigError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Reads the file (if any) and `SIGNET__…` overrides from `env`.
pub fn load(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let overrides: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("SIGNET__"))
        .collect();
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
    }
    builder
        .add_source(
            config::Environment::with_prefix("SIGNET")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("callers.token_sha256")
                .with_list_parse_key("server.tls.allowed_clients.authorizer")
                .with_list_parse_key("server.tls.allowed_clients.key_admin")
                .source(Some(overrides)),
        )
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| {
            ConfigError::new(
                path.map_or("environment".into(), |p| p.display().to_string()),
                e.to_string(),
            )
        })
}

fn duration(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Duration {
    humantime::parse_duration(value).unwrap_or_else(|e| {
        errors.push(ConfigError::new(
            key,
            format!("not a duration ({e}); e.g. \"10s\""),
        ));
        Duration::ZERO
    })
}

impl Settings {
    /// Checks every value, reporting all problems at once.
    pub fn validate(&self) -> Result<(ServerConfig, VerifyLimits, LogFormat), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let listen = self.server.listen.parse().unwrap_or_else(|_| {
            errors.push(ConfigError::new(
                "server.listen",
                format!("not a socket address: {:?}", self.server.listen),
            ));
            SocketAddr::from(([127, 0, 0, 1], 0))
        });
        let shutdown_grace = duration(
            "server.shutdown_grace",
            &self.server.shutdown_grace,
            &mut errors,
        );
        if self.server.max_message_bytes < 1024 {
            errors.push(ConfigError::new(
                "server.max_message_bytes",
                "must be at least 1024",
            ));
        }
        let format = match self.log.format.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                errors.push(ConfigError::new(
                    "log.format",
                    format!("must be \"human\" or \"json\", not {other:?}"),
                ));
                LogFormat::Human
            }
        };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            errors.push(ConfigError::new(
                "log.level",
                format!("not a log filter: {e}"),
            ));
        }
        let v = &self.verify;
        if v.clock_tolerance_secs > v.max_clock_tolerance_secs {
            errors.push(ConfigError::new(
                "verify.clock_tolerance_secs",
                "is larger than verify.max_clock_tolerance_secs",
            ));
        }
        if v.max_signature_bytes < 256 {
            errors.push(ConfigError::new(
                "verify.max_signature_bytes",
                "must be at least 256",
            ));
        }
        check_pair(
            ["keys.current", "keys.next"],
            self.keys.current.as_ref(),
            self.keys.next.as_ref(),
            &mut errors,
        );
        for (name, pair) in &self.keys.sets {
            if !key_set_name_ok(name) {
                errors.push(ConfigError::new(
                    format!("keys.sets.{name}"),
                    "key set names use letters, digits, '-' and '_'",
                ));
            }
            check_pair(
                [
                    &format!("keys.sets.{name}.current"),
                    &format!("keys.sets.{name}.next"),
                ],
                pair.current.as_ref(),
                pair.next.as_ref(),
                &mut errors,
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((
            ServerConfig {
                listen,
                shutdown_grace,
                max_message_bytes: self.server.max_message_bytes,
            },
            VerifyLimits {
                clock_tolerance_secs: v.clock_tolerance_secs,
                max_clock_tolerance_secs: v.max_clock_tolerance_secs,
                max_signature_bytes: v.max_signature_bytes,
            },
            format,
        ))
    }
}

impl Settings {
    /// Checks `[server.tls]`, `[callers]`, `[metrics]` and `[otel]`,
    /// reporting all problems at once.
    pub fn validate_ops(&self) -> Result<OpsConfig, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let t = &self.server.tls;
        let file = |key: &str, value: &str, errors: &mut Vec<ConfigError>| {
            if value.is_empty() {
                errors.push(ConfigError::new(key, "required when server.tls.enabled"));
            }
            PathBuf::from(value)
        };
        let mtls = !t.client_ca_file.is_empty();
        let tls = t.enabled.then(|| TlsConfig {
            cert_file: file("server.tls.cert_file", &t.cert_file, &mut errors),
            key_file: file("server.tls.key_file", &t.key_file, &mut errors),
            client_ca_file: mtls.then(|| PathBuf::from(&t.client_ca_file)),
            reload_interval: duration(
                "server.tls.reload_interval",
                &t.reload_interval,
                &mut errors,
            ),
        });
        if tls
            .as_ref()
            .is_some_and(|t| t.reload_interval < Duration::from_secs(1))
        {
            errors.push(ConfigError::new(
                "server.tls.reload_interval",
                "must be at least 1s",
            ));
        }
        if mtls && !t.enabled {
            errors.push(ConfigError::new(
                "server.tls.client_ca_file",
                "set, but server.tls.enabled is false",
            ));
        }
        let allowed = &t.allowed_clients;
        let mtls_on = t.enabled && mtls;
        for (key, list) in [
            ("server.tls.allowed_clients.authorizer", &allowed.authorizer),
            ("server.tls.allowed_clients.key_admin", &allowed.key_admin),
        ] {
            if !list.is_empty() && !mtls_on {
                errors.push(ConfigError::new(
                    key,
                    "an allowlist needs mTLS (server.tls.enabled and server.tls.client_ca_file)",
                ));
            }
            if list.iter().any(String::is_empty) {
                errors.push(ConfigError::new(key, "empty identity"));
            }
        }
        let token_sha256 = digest_list(
            "callers.token_sha256",
            self.callers.token_sha256.iter().map(String::as_str),
            &mut errors,
        );
        let metrics_listen = match self.metrics.listen.as_str() {
            "" => None,
            addr => addr.parse().map(Some).unwrap_or_else(|_| {
                errors.push(ConfigError::new(
                    "metrics.listen",
                    format!("not a socket address: {addr:?}"),
                ));
                None
            }),
        };
        let o = &self.otel;
        if o.enabled && !cfg!(feature = "otel") {
            errors.push(ConfigError::new(
                "otel.enabled",
                "this build has no OpenTelemetry export (cargo feature `otel`)",
            ));
        }
        if o.enabled
            && o.endpoint
                .parse::<http::Uri>()
                .map_or(true, |u| u.scheme().is_none())
        {
            errors.push(ConfigError::new(
                "otel.endpoint",
                format!("not an http(s) URL: {:?}", o.endpoint),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(OpsConfig {
            tls,
            callers: CallerPolicy {
                authorizer: allowed.authorizer.clone(),
                key_admin: allowed.key_admin.clone(),
                token_sha256,
            },
            metrics_listen,
            otel: o.enabled.then(|| OtelConfig {
                endpoint: o.endpoint.clone(),
                service_name: o.service_name.clone(),
            }),
        })
    }
}

/// A hex SHA-256 digest (64 hex digits) as bytes.
pub(crate) fn sha256_hex(hex_digest: &str) -> Option<[u8; 32]> {
    hex::decode(hex_digest)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// The digests of list `key`; each one that is not a hex SHA-256 digest is
/// an error at `key[i]`.
fn digest_list<'a>(
    key: &str,
    values: impl Iterator<Item = &'a str>,
    errors: &mut Vec<ConfigError>,
) -> Vec<[u8; 32]> {
    values
        .enumerate()
        .filter_map(|(i, d)| {
            let parsed = sha256_hex(d);
            if parsed.is_none() {
                errors.push(ConfigError::new(
                    format!("{key}[{i}]"),
                    "not a hex SHA-256 digest (64 hex digits)",
                ));
            }
            parsed
        })
        .collect()
}

fn positive_duration(key: &str, value: &str, errors: &mut Vec<ConfigError>) -> Duration {
    match humantime::parse_duration(value) {
        Ok(d) if d.is_zero() => {
            errors.push(ConfigError::new(key, "must be positive"));
            d
        }
        Ok(d) => d,
        Err(_) => duration(key, value, errors),
    }
}

fn key_set_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

impl Settings {
    /// Checks the key sources and the admin service, reporting all problems
    /// at once. `env` looks up `QSTASH_URL` / `QSTASH_TOKEN`.
    pub fn validate_keys(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(KeyRefreshConfig, Option<AdminConfig>), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let k = &self.keys;
        let reread_interval =
            positive_duration("keys.reread_interval", &k.reread_interval, &mut errors);
        let max_staleness = positive_duration("keys.max_staleness", &k.max_staleness, &mut errors);
        let directory = (!k.directory.is_empty()).then(|| PathBuf::from(&k.directory));
        let qstash_api = k
            .qstash_api
            .enabled
            .then(|| qstash_api(&k.qstash_api, &env, &mut errors));
        let admin = self.admin.enabled.then(|| {
            if self.admin.token_sha256.is_empty() {
                errors.push(ConfigError::new(
                    "admin.token_sha256",
                    "required when admin.enabled: the hex SHA-256 digest of each admin token",
                ));
            }
            let token_digests = digest_list(
                "admin.token_sha256",
                self.admin.token_sha256.iter().map(|d| d.trim()),
                &mut errors,
            );
            AdminConfig { token_digests }
        });
        if errors.is_empty() {
            Ok((
                KeyRefreshConfig {
                    directory,
                    reread_interval,
                    max_staleness,
                    qstash_api,
                },
                admin,
            ))
        } else {
            Err(errors)
        }
    }
}

fn qstash_api(
    s: &QstashApiSettings,
    env: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> QstashApiConfig {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let url = if s.url.is_empty() {
        var("QSTASH_URL").unwrap_or_else(|| DEFAULT_QSTASH_URL.into())
    } else {
        s.url.clone()
    };
    let url = url.trim_end_matches('/').to_owned();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        errors.push(ConfigError::new(
            "keys.qstash_api.url",
            "must be an http(s) URL",
        ));
    }
    let token = match (&s.token, s.token_file.as_str()) {
        (Some(_), f) if !f.is_empty() => {
            errors.push(ConfigError::new(
                "keys.qstash_api.token_file",
                "set token or token_file, not both",
            ));
            None
        }
        (Some(t), _) => Some(t.clone()),
        (None, "") => var("QSTASH_TOKEN").map(Secret::from),
        (None, f) => match std::fs::read(f) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                Some(Secret::new(bytes.trim_ascii().to_vec()))
            }
            Err(e) => {
                errors.push(ConfigError::new(
                    "keys.qstash_api.token_file",
                    format!("cannot read {f}: {}", e.kind()),
                ));
                None
            }
        },
    };
    let token = token.filter(|t| !t.is_empty()).unwrap_or_else(|| {
        if !errors
            .iter()
            .any(|e| e.key.starts_with("keys.qstash_api.token"))
        {
            errors.push(ConfigError::new(
                "keys.qstash_api.token",
                "missing: set token_file (or token, or QSTASH_TOKEN) when keys.qstash_api.enabled",
            ));
        }
        Secret::new(Vec::new())
    });
    if !key_set_name_ok(&s.key_set) {
        errors.push(ConfigError::new(
            "keys.qstash_api.key_set",
            "key set names use letters, digits, '-' and '_'",
        ));
    }
    let poll_interval =
        positive_duration("keys.qstash_api.poll_interval", &s.poll_interval, errors);
    let refetch_cooldown = positive_duration(
        "keys.qstash_api.refetch_cooldown",
        &s.refetch_cooldown,
        errors,
    );
    let timeout = positive_duration("keys.qstash_api.timeout", &s.timeout, errors);
    let min_rotation_interval = duration(
        "keys.qstash_api.min_rotation_interval",
        &s.min_rotation_interval,
        errors,
    );
    QstashApiConfig {
        url,
        token,
        key_set: s.key_set.clone(),
        poll_interval,
        refetch_cooldown,
        timeout,
        min_rotation_interval,
    }
}

/// A key pair is both keys or neither: QStash verification needs the pair to
/// survive a roll, and one key alone is a half-finished configuration.
pub fn check_pair(
    [current_key, next_key]: [&str; 2],
    current: Option<&Secret>,
    next: Option<&Secret>,
    errors: &mut Vec<ConfigError>,
) {
    let missing = match (
        current.filter(|s| !s.is_empty()),
        next.filter(|s| !s.is_empty()),
    ) {
        (Some(_), None) => next_key,
        (None, Some(_)) => current_key,
        _ => return,
    };
    errors.push(ConfigError::new(
        missing,
        "missing: the current and next signing keys are set together",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_validate() {
        let s = load(None, env(&[])).unwrap();
        let (server, limits, format) = s.validate().unwrap();
        assert_eq!(server.listen.port(), 50051);
        assert_eq!(limits.clock_tolerance_secs, 0);
        assert_eq!(format, LogFormat::Human);
    }

    #[test]
    fn environment_overrides() {
        let s = load(
            None,
            env(&[
                ("SIGNET__SERVER__LISTEN", "0.0.0.0:7000"),
                ("SIGNET__VERIFY__CLOCK_TOLERANCE_SECS", "5"),
            ]),
        )
        .unwrap();
        let (server, limits, _) = s.validate().unwrap();
        assert_eq!(server.listen.port(), 7000);
        assert_eq!(limits.clock_tolerance_secs, 5);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(
            &path,
            "[server]\nlisten = \"nowhere\"\nshutdown_grace = \"soon\"\n[log]\nformat = \"xml\"\n[verify]\nclock_tolerance_secs = 900\n[keys]\ncurrent = \"sig_only\"\n",
        )
        .unwrap();
        let errors = load(Some(&path), env(&[])).unwrap().validate().unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.listen",
                "server.shutdown_grace",
                "log.format",
                "verify.clock_tolerance_secs",
                "keys.next"
            ]
        );
        assert!(errors.iter().all(|e| !e.to_string().contains("sig_only")));
    }

    fn settings(toml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, toml).unwrap();
        load(Some(&path), env(&[])).unwrap()
    }

    #[test]
    fn key_sources_default_to_off() {
        let (keys, admin) = settings("[keys]\ndirectory = \"\"\n")
            .validate_keys(|_| None)
            .unwrap();
        assert!(keys.directory.is_none(), "the Helm chart renders \"\"");
        assert!(keys.qstash_api.is_none());
        assert!(admin.is_none());
        assert_eq!(keys.reread_interval, Duration::from_secs(30));
        assert_eq!(keys.max_staleness, Duration::from_secs(3600));
    }

    #[test]
    fn qstash_api_falls_back_to_the_qstash_variables() {
        let vars = |name: &str| match name {
            "QSTASH_URL" => Some("https://qstash-eu-central-1.upstash.io/".to_owned()),
            "QSTASH_TOKEN" => Some("tok".to_owned()),
            _ => None,
        };
        let (keys, _) = settings("[keys.qstash_api]\nenabled = true\n")
            .validate_keys(vars)
            .unwrap();
        let api = keys.qstash_api.unwrap();
        assert_eq!(api.url, "https://qstash-eu-central-1.upstash.io");
        assert_eq!(api.token, Secret::new("tok"));
        assert_eq!(api.key_set, "default");
        assert_eq!(api.min_rotation_interval, Duration::from_secs(600));

        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "from-file\n").unwrap();
        let (keys, _) = settings(&format!(
            "[keys.qstash_api]\nenabled = true\ntoken_file = {:?}\n",
            token_file
        ))
        .validate_keys(vars)
        .unwrap();
        assert_eq!(keys.qstash_api.unwrap().token, Secret::new("from-file"));
    }

    #[test]
    fn key_source_errors_are_reported_together() {
        let errors = settings(
            "[keys]\nreread_interval = \"soon\"\nmax_staleness = \"0s\"\n\
             [keys.qstash_api]\nenabled = true\nurl = \"ftp://x\"\npoll_interval = \"0s\"\n\
             [admin]\nenabled = true\ntoken_sha256 = [\"abc\"]\n",
        )
        .validate_keys(|_| None)
        .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "keys.reread_interval",
                "keys.max_staleness",
                "keys.qstash_api.url",
                "keys.qstash_api.token",
                "keys.qstash_api.poll_interval",
                "admin.token_sha256[0]",
            ]
        );
        let errors = settings("[admin]\nenabled = true\n")
            .validate_keys(|_| None)
            .unwrap_err();
        assert_eq!(errors[0].key, "admin.token_sha256");
    }

    #[test]
    fn admin_digests_parse() {
        let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let (_, admin) = settings(&format!(
            "[admin]\nenabled = true\ntoken_sha256 = [\"{digest}\"]\n"
        ))
        .validate_keys(|_| None)
        .unwrap();
        assert_eq!(hex::encode(admin.unwrap().token_digests[0]), digest);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(&path, "[server]\nlisen = \"127.0.0.1:1\"\n").unwrap();
        let e = load(Some(&path), env(&[])).unwrap_err();
        assert!(e.problem.contains("lisen"), "{e}");
    }

    #[test]
    fn ops_settings_validate_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signet.toml");
        std::fs::write(
            &path,
            "[server.tls]\nenabled = true\nreload_interval = \"0s\"\n[server.tls.allowed_clients]\nauthorizer = [\"spiffe://a\"]\n[metrics]\nlisten = \"nope\"\n[callers]\ntoken_sha256 = [\"abc\"]\n",
        )
        .unwrap();
        let errors = load(Some(&path), env(&[]))
            .unwrap()
            .validate_ops()
            .unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.tls.cert_file",
                "server.tls.key_file",
                "server.tls.reload_interval",
                "server.tls.allowed_clients.authorizer",
                "callers.token_sha256[0]",
                "metrics.listen"
            ]
        );
        let ops = load(None, env(&[("SIGNET__METRICS__LISTEN", "127.0.0.1:0")]))
            .unwrap()
            .validate_ops()
            .unwrap();
        assert!(ops.tls.is_none() && ops.otel.is_none());
        assert_eq!(ops.metrics_listen.unwrap().port(), 0);
    }

    #[test]
    fn tolerance_is_capped() {
        let limits = VerifyLimits {
            clock_tolerance_secs: 2,
            max_clock_tolerance_secs: 60,
            max_signature_bytes: 8192,
        };
        assert_eq!(limits.tolerance(None), 2);
        assert_eq!(limits.tolerance(Some(10)), 10);
        assert_eq!(limits.tolerance(Some(10_000)), 60);
    }
}
