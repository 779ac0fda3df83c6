//! The command line: `serve`, and the tools `sign`, `verify`, `hash-token`,
//! `check-config`.

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::SystemTime,
};

use clap::{Args, Parser, Subcommand};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    bearer::{Bearer, api_key},
    config::{self, ConfigError, Settings},
    config_bearer,
    keys::{KeyRefresher, KeyStore, SigningKey, source},
    metrics::{self, Metrics},
    secret::Secret,
    server::{self, AppState, Edge, tls::ReloadingTls},
    telemetry,
    verify::{self, Body, SignOptions, SignatureCheck},
};

/// signet: central verification of QStash signatures and bearer credentials.
#[derive(Debug, Parser)]
#[command(name = "signet", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC server.
    Serve(ServeArgs),
    /// Make a QStash-format `Upstash-Signature` token (tests, local development).
    Sign(SignArgs),
    /// Verify one signature offline with the configured keys; exit 0 if valid, 1 if not.
    Verify(VerifyArgs),
    /// Print the SHA-256 digest of an API key, as `[policies.NAME].api_keys`
    /// stores it. Reads the key from stdin (one line) unless given.
    HashToken(HashTokenArgs),
    /// Check the configuration, reporting every error at once; exit 1 on any.
    CheckConfig(ConfigArgs),
}

#[derive(Debug, Args)]
struct HashTokenArgs {
    /// The API key (prefer stdin: arguments end up in shell history).
    token: Option<String>,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "SIGNET_CONFIG")]
    config: Option<PathBuf>,
    /// Use the public QStash dev-server keys (never in production).
    #[arg(long)]
    dev: bool,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on (overrides `server.listen`); port 0 picks a free port.
    #[arg(long)]
    listen: Option<String>,
}

#[derive(Debug, Args)]
struct BodyArgs {
    /// The request body, as a string.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Read the request body from a file (`-` for stdin).
    #[arg(long)]
    body_file: Option<PathBuf>,
}

impl BodyArgs {
    fn read(&self) -> std::io::Result<Vec<u8>> {
        match (&self.body, &self.body_file) {
            (Some(s), _) => Ok(s.clone().into_bytes()),
            (None, Some(p)) if p == Path::new("-") => {
                let mut buf = Vec::new();
                std::io::stdin().read_to_end(&mut buf)?;
                Ok(buf)
            }
            (None, Some(p)) => std::fs::read(p),
            (None, None) => Ok(Vec::new()),
        }
    }
}

#[derive(Debug, Args)]
struct SignArgs {
    /// Signing key (defaults to `QSTASH_CURRENT_SIGNING_KEY`).
    #[arg(long, env = "QSTASH_CURRENT_SIGNING_KEY", hide_env_values = true)]
    key: String,
    /// Destination url (`sub`).
    #[arg(long)]
    url: String,
    #[command(flatten)]
    body: BodyArgs,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    ttl: u64,
    /// Issue time, unix seconds (default: now).
    #[arg(long)]
    now: Option<u64>,
    /// `jti` claim.
    #[arg(long, default_value = "jwt_signet_cli")]
    jti: String,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The `Upstash-Signature` value.
    #[arg(long)]
    signature: String,
    /// The url to compare with `sub` (omit to skip the check).
    #[arg(long, default_value = "")]
    url: String,
    #[command(flatten)]
    body: BodyArgs,
    /// Key set name (default set when omitted).
    #[arg(long, default_value = "")]
    key_set: String,
    /// `upstash-region` header value.
    #[arg(long, default_value = "")]
    region: String,
    /// Verify as of this unix time (default: now).
    #[arg(long)]
    now: Option<u64>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn env_vars() -> Vec<(String, String)> {
    std::env::vars().collect()
}

fn report(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

/// Everything `serve` and `verify` need from the configuration.
struct Loaded {
    settings: Settings,
    server: config::ServerConfig,
    limits: config::VerifyLimits,
    format: config::LogFormat,
    keys: KeyStore,
    ops: config::OpsConfig,
    refresh: config::KeyRefreshConfig,
    admin: Option<config::AdminConfig>,
    bearer: Bearer,
}

fn load(args: &ConfigArgs, listen: Option<&str>) -> Result<Loaded, Vec<ConfigError>> {
    let mut settings = config::load(args.config.as_deref(), env_vars()).map_err(|e| vec![e])?;
    if let Some(listen) = listen {
        settings.server.listen = listen.to_owned();
    }
    let validated = settings.validate();
    let ops = settings.validate_ops();
    let snapshot = source::initial_snapshot(
        &settings.keys,
        |name| std::env::var(name).ok(),
        args.dev,
        SystemTime::now(),
    );
    let key_sources = settings.validate_keys(|name| std::env::var(name).ok());
    let bearer = config_bearer::build(&settings);
    match (validated, ops, snapshot, key_sources, bearer) {
        (Ok((server, limits, format)), Ok(ops), Ok(snapshot), Ok((refresh, admin)), Ok(bearer)) => {
            Ok(Loaded {
                settings,
                server,
                limits,
                format,
                keys: KeyStore::new(snapshot),
                ops,
                refresh,
                admin,
                bearer,
            })
        }
        (a, o, b, c, d) => Err(a
            .err()
            .into_iter()
            .chain(o.err())
            .chain(b.err())
            .chain(c.err())
            .chain(d.err())
            .flatten()
            .collect()),
    }
}

impl Cli {
    /// Runs the command and returns the process exit status.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve(args) => serve(args),
            Command::Sign(args) => sign(args),
            Command::Verify(args) => verify_once(args),
            Command::HashToken(args) => hash_token(args),
            Command::CheckConfig(args) => match load(&args, None) {
                Ok(_) => {
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    report(&errors);
                    ExitCode::FAILURE
                }
            },
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let loaded = match load(&args.config, args.listen.as_deref()) {
        Ok(l) => l,
        Err(errors) => {
            report(&errors);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Inside the runtime: the OTLP exporter's gRPC client lives there.
    let telemetry = {
        let _runtime = runtime.enter();
        telemetry::init(
            loaded.format,
            &loaded.settings.log.level,
            loaded.ops.otel.as_ref(),
        )
    };
    let _telemetry = match telemetry {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.config.dev {
        for line in [
            "DEV MODE: verifying with the PUBLIC QStash dev-server signing keys.",
            "DEV MODE: anyone can forge signatures these keys accept. Never run --dev in production.",
        ] {
            tracing::warn!("{line}");
        }
    }
    match runtime.block_on(serve_async(loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_async(loaded: Loaded) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = Metrics::new();
    let tls = match loaded.ops.tls.clone() {
        Some(files) => Some(ReloadingTls::new(files, metrics.clone())?),
        None => None,
    };
    let metrics_listener = match loaded.ops.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (metrics.listen): {e}"))?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(loaded.server.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", loaded.server.listen))?;
    let addr = listener.local_addr()?;
    let keys = Arc::new(loaded.keys);
    let refresher = Arc::new(
        KeyRefresher::new(Arc::clone(&keys), &loaded.refresh, SystemTime::now())
            .map_err(|e| format!("cannot set up the key sources: {e}"))?,
    );
    // Read the key directory and the keys API before announcing the listener.
    refresher.reload_all().await;
    let snapshot = keys.snapshot();
    for (name, set) in snapshot.sets() {
        match &set.default {
            Some(pair) => tracing::info!(
                key_set = name,
                source = set.source.as_str(),
                current = pair.current.fingerprint(),
                next = pair.next.fingerprint(),
                "signing keys loaded"
            ),
            None if !set.regions.is_empty() => tracing::info!(
                key_set = name,
                source = set.source.as_str(),
                regions = set.regions.len(),
                "signing keys loaded"
            ),
            None => tracing::warn!(key_set = name, "no signing keys"),
        }
    }
    if !snapshot.has_keys() {
        tracing::warn!(
            "no signing keys configured: {} is NOT_SERVING and VerifySignature answers UNAVAILABLE; set QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY",
            server::AUTHORIZER_SERVICE
        );
    }
    drop(snapshot);
    if loaded.admin.is_some() {
        tracing::info!("signet.v1.KeyAdmin enabled (admin token required)");
    }
    let tasks = refresher.spawn();
    let state = Arc::new(AppState {
        keys,
        limits: loaded.limits,
        metrics,
        key_refresher: refresher,
        admin: loaded.admin,
        bearer: loaded.bearer,
    });
    let shutdown = shutdown_signal()?;
    let stop_metrics = CancellationToken::new();
    if let Some(listener) = metrics_listener {
        let metrics_addr = listener.local_addr()?;
        tracing::info!(addr = %metrics_addr, "metrics listening");
        let serving = metrics::serve(
            listener,
            Arc::clone(&state),
            stop_metrics.clone().cancelled_owned(),
        );
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    // Tests and scripts read the bound address (port 0) from this one stdout line.
    let mut out = std::io::stdout().lock();
    writeln!(out, "signet listening on {addr}")?;
    out.flush()?;
    drop(out);
    let edge = Edge {
        tls,
        callers: loaded.ops.callers,
    };
    let served = server::run(listener, state, &loaded.server, edge, shutdown).await;
    stop_metrics.cancel();
    for task in tasks {
        task.abort();
    }
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Registers for SIGTERM and SIGINT now (so a signal that arrives before the
/// server is polled is not fatal) and resolves when either arrives.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Resolves on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn sign(args: SignArgs) -> ExitCode {
    let Some(key) = SigningKey::new(Secret::from(args.key)) else {
        eprintln!("error: the signing key is empty");
        return ExitCode::FAILURE;
    };
    let body = match args.body.read() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read the body: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = args.now.unwrap_or_else(unix_now);
    let token = verify::sign(
        &key,
        &SignOptions {
            iss: "Upstash",
            sub: &args.url,
            exp: now + args.ttl,
            nbf: now,
            iat: now,
            jti: &args.jti,
            body: &body,
        },
    );
    println!("{token}");
    ExitCode::SUCCESS
}

fn verify_once(args: VerifyArgs) -> ExitCode {
    let loaded = match load(&args.config, None) {
        Ok(l) => l,
        Err(errors) => {
            report(&errors);
            return ExitCode::from(2);
        }
    };
    let body = match args.body.read() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read the body: {e}");
            return ExitCode::from(2);
        }
    };
    let keys = Arc::new(loaded.keys);
    if loaded.refresh.directory.is_some() || loaded.refresh.qstash_api.is_some() {
        // The keys `serve` would use: one read of the key directory and the keys API.
        let refresher = KeyRefresher::new(Arc::clone(&keys), &loaded.refresh, SystemTime::now());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match (refresher, runtime) {
            (Ok(r), Ok(rt)) => rt.block_on(r.reload_all()),
            (Err(e), _) => {
                eprintln!("error: cannot set up the key sources: {e}");
                return ExitCode::from(2);
            }
            (_, Err(e)) => {
                eprintln!("error: cannot start the runtime: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let digest: [u8; 32] = Sha256::digest(&body).into();
    let check = SignatureCheck {
        signature: &args.signature,
        body: Body::Sha256(&digest),
        url: &args.url,
        clock_tolerance: loaded.limits.tolerance(None),
        max_signature_bytes: loaded.limits.max_signature_bytes,
    };
    let snapshot = keys.snapshot();
    let pair = match snapshot.pair(&args.key_set, &args.region) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "error: no keys to verify with ({e:?}); set QSTASH_CURRENT_SIGNING_KEY and QSTASH_NEXT_SIGNING_KEY"
            );
            return ExitCode::from(2);
        }
    };
    let verdict = verify::verify(&check, pair, args.now.unwrap_or_else(unix_now));
    let shown = serde_json::json!({
        "valid": verdict.is_valid(),
        "reason": verdict.reason.as_str(),
        "message": verdict.reason.message(),
        "key_slot": verdict.key_slot.map(|s| format!("{s:?}").to_lowercase()),
    });
    println!("{shown}");
    if verdict.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn hash_token(args: HashTokenArgs) -> ExitCode {
    let token = match args.token {
        Some(t) => zeroize::Zeroizing::new(t),
        None => {
            let mut line = zeroize::Zeroizing::new(String::new());
            if let Err(e) = std::io::stdin().read_line(&mut line) {
                eprintln!("error: cannot read the key from stdin: {e}");
                return ExitCode::FAILURE;
            }
            zeroize::Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
        }
    };
    if token.is_empty() {
        eprintln!("error: the API key is empty");
        return ExitCode::FAILURE;
    }
    println!("{}", api_key::hash_token(&token));
    ExitCode::SUCCESS
}
