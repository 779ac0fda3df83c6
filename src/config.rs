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

use crate::secret::Secret;

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
/// `QSTASH_*` variables or a Secret directory), and named key sets.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// Current signing key of the default key set.
    pub current: Option<Secret>,
    /// Next signing key of the default key set.
    pub next: Option<Secret>,
    /// Named key sets (`[keys.sets.NAME]`), one QStash account each.
    pub sets: BTreeMap<String, KeyPairSettings>,
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
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
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
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
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
        let token_sha256 = self
            .callers
            .token_sha256
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let parsed = hex::decode(d)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                if parsed.is_none() {
                    errors.push(ConfigError::new(
                        format!("callers.token_sha256[{i}]"),
                        "not a hex SHA-256 digest (64 hex digits)",
                    ));
                }
                parsed
            })
            .collect();
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
