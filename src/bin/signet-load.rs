//! `signet-load`: drives a signet server with gRPC calls and prints
//! throughput and latency for each call next to an empty baseline call
//! (`grpc.health.v1.Health/Check`) measured against the same server, with the
//! same client and concurrency, in the same run.
//!
//! ```sh
//! cargo build --release
//! target/release/signet-load                     # starts target/release/signet serve --dev itself
//! target/release/signet-load --addr http://127.0.0.1:50051 --concurrency 1 --connections 1
//! ```
//!
//! Each scenario is one small function returning a [`Scenario`]; a scenario
//! whose RPC the server answers with `UNIMPLEMENTED` is skipped with a message.
#![forbid(unsafe_code)]

use std::{
    future::Future,
    io::{BufRead, BufReader},
    path::PathBuf,
    pin::Pin,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use sha2::{Digest, Sha256};
use signet::{
    keys::{SigningKey, source::DEV_CURRENT_SIGNING_KEY},
    proto::{
        AuthorizeBearerRequest, AuthorizeRequest, HttpHeader, VerifySignatureRequest,
        authorizer_client::AuthorizerClient,
    },
    secret::Secret,
    server::AUTHORIZER_SERVICE,
    verify::{SignOptions, sign},
};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The url the signed tokens name (checked against `sub`).
const URL: &str = "https://svc.example/api/workflow";

/// The scenario every ratio is taken against.
const BASELINE: &str = "baseline_health_check";

/// Command line of `signet-load`.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load generator for signet: throughput and latency against an empty baseline call"
)]
struct Args {
    /// A running signet (`http://HOST:PORT`). Without it, signet-load starts
    /// `--server serve --dev` on 127.0.0.1:0 and measures its start-up and memory.
    #[arg(long)]
    addr: Option<String>,
    /// The signet binary to start when no `--addr` is given.
    #[arg(long, default_value = "target/release/signet")]
    server: PathBuf,
    /// Calls in flight at once (closed loop: each worker sends its next call
    /// when the previous one answered).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the workers are spread over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Measured time per scenario and round.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up before each measurement.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Pace the calls at this many per second in total instead of as fast as
    /// possible (open loop: each call leaves on schedule, whatever is in
    /// flight; `--concurrency` does not apply).
    #[arg(long)]
    rate: Option<f64>,
    /// After each scenario's run, run it again paced at half the throughput it
    /// reached and print that latency too.
    #[arg(long)]
    half_rate: bool,
    /// Repeat the whole sequence of scenarios this many times; figures are the
    /// median over rounds, ratios are taken within each round.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Scenarios to run, comma separated (default: all; see `--list`).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Print the scenario names and exit.
    #[arg(long)]
    list: bool,
    /// The signing key tokens are made with (default: the QStash dev-server
    /// key that `serve --dev` accepts).
    #[arg(long, env = "SIGNET_LOAD_SIGNING_KEY", default_value = DEV_CURRENT_SIGNING_KEY, hide_env_values = true)]
    signing_key: String,
    /// Also run the bearer scenarios (`AuthorizeBearer`, `Authorize`).
    #[arg(long)]
    bearer: bool,
    /// The policy the bearer scenarios name.
    #[arg(long, default_value = "default")]
    policy: String,
    /// A JWT the policy accepts (the cached-JWT scenario sends it every time).
    #[arg(long, env = "SIGNET_LOAD_JWT", hide_env_values = true)]
    jwt: Option<String>,
    /// A file of distinct JWTs the policy accepts, one a line (the uncached-JWT
    /// scenario cycles through them).
    #[arg(long)]
    jwt_file: Option<PathBuf>,
    /// An API key the policy accepts.
    #[arg(long, env = "SIGNET_LOAD_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Start the server this many extra times only to time start-up (needs no `--addr`).
    #[arg(long, default_value_t = 0)]
    startup_samples: usize,
}

/// One call in flight.
type CallFuture = Pin<Box<dyn Future<Output = Result<(), Status>> + Send>>;

/// The clients of one connection.
#[derive(Clone)]
struct Clients {
    health: HealthClient<Channel>,
    authorizer: AuthorizerClient<Channel>,
}

/// A named call the workers repeat.
struct Scenario {
    name: &'static str,
    call: Box<dyn Fn(Clients) -> CallFuture + Send + Sync>,
}

impl Scenario {
    fn new<F, Fut>(name: &'static str, call: F) -> Self
    where
        F: Fn(Clients) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        Self {
            name,
            call: Box::new(move |clients| Box::pin(call(clients))),
        }
    }
}

/// What the scenarios are made from.
struct Fixture {
    key: SigningKey,
    now: u64,
    body_1kib: Bytes,
    body_1mib: Bytes,
}

impl Fixture {
    fn token(&self, body: &[u8]) -> String {
        let options = SignOptions {
            iss: "Upstash",
            sub: URL,
            exp: self.now + 3600,
            nbf: self.now.saturating_sub(60),
            iat: self.now,
            jti: "jwt_signet_load",
            body,
        };
        sign(&self.key, &options)
    }

    fn verify_request(&self, body: &Bytes, as_digest: bool) -> VerifySignatureRequest {
        let (raw, digest) = if as_digest {
            (None, Some(Bytes::copy_from_slice(&Sha256::digest(body))))
        } else {
            (Some(body.clone()), None)
        };
        VerifySignatureRequest {
            signature: self.token(body),
            body: raw,
            body_sha256: digest,
            url: URL.to_owned(),
            ..Default::default()
        }
    }
}

/// The empty baseline: a health check, the cheapest unary call the server has.
fn baseline() -> Scenario {
    let request = HealthCheckRequest {
        service: AUTHORIZER_SERVICE.to_owned(),
    };
    Scenario::new(BASELINE, move |mut c| {
        let request = request.clone();
        async move {
            let status = c.health.check(request).await?.into_inner().status;
            expect(status == ServingStatus::Serving as i32, "not SERVING")
        }
    })
}

fn verify_scenario(name: &'static str, request: VerifySignatureRequest) -> Scenario {
    Scenario::new(name, move |mut c| {
        let request = request.clone();
        async move {
            let valid = c
                .authorizer
                .verify_signature(request)
                .await?
                .into_inner()
                .valid;
            expect(valid, "signature denied")
        }
    })
}

/// `VerifySignature` with a 1 KiB body sent as bytes.
fn verify_1kib(fx: &Fixture) -> Scenario {
    verify_scenario("verify_1KiB_bytes", fx.verify_request(&fx.body_1kib, false))
}

/// `VerifySignature` with a 1 MiB body sent as bytes.
fn verify_1mib_bytes(fx: &Fixture) -> Scenario {
    verify_scenario("verify_1MiB_bytes", fx.verify_request(&fx.body_1mib, false))
}

/// `VerifySignature` with a 1 MiB body sent as its SHA-256 (hashed once,
/// before the run: the figure is signet's cost, not the caller's hashing).
fn verify_1mib_sha256(fx: &Fixture) -> Scenario {
    verify_scenario("verify_1MiB_sha256", fx.verify_request(&fx.body_1mib, true))
}

fn bearer_scenario(name: &'static str, policy: &str, authorizations: Vec<String>) -> Scenario {
    let requests: Arc<[AuthorizeBearerRequest]> = authorizations
        .into_iter()
        .map(|authorization| AuthorizeBearerRequest {
            authorization,
            policy: policy.to_owned(),
        })
        .collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Scenario::new(name, move |mut c| {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = requests[i % requests.len()].clone();
        async move {
            let allowed = c
                .authorizer
                .authorize_bearer(request)
                .await?
                .into_inner()
                .allowed;
            expect(allowed, "bearer denied")
        }
    })
}

/// `AuthorizeBearer` with the same JWT every time (the decision cache answers).
fn bearer_jwt_cached(args: &Args) -> Option<Scenario> {
    let jwt = args.jwt.as_ref()?;
    let authorization = vec![format!("Bearer {jwt}")];
    Some(bearer_scenario(
        "bearer_jwt_cached",
        &args.policy,
        authorization,
    ))
}

/// `AuthorizeBearer` cycling through distinct JWTs (more of them than the run
/// sends, or the cache answers after the first pass).
fn bearer_jwt_uncached(args: &Args) -> Result<Option<Scenario>, String> {
    let Some(path) = &args.jwt_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("Bearer {}", l.trim()))
        .collect();
    if tokens.is_empty() {
        return Err(format!("{}: no tokens", path.display()));
    }
    Ok(Some(bearer_scenario(
        "bearer_jwt_uncached",
        &args.policy,
        tokens,
    )))
}

/// `AuthorizeBearer` with an API key.
fn bearer_api_key(args: &Args) -> Option<Scenario> {
    let key = args.api_key.as_ref()?;
    let authorization = vec![format!("Bearer {key}")];
    Some(bearer_scenario(
        "bearer_api_key",
        &args.policy,
        authorization,
    ))
}

/// `Authorize`: a whole QStash request (1 KiB body) with a bearer credential.
fn authorize_request(args: &Args, fx: &Fixture) -> Option<Scenario> {
    let credential = args.jwt.as_ref().or(args.api_key.as_ref())?;
    let header = |name: &str, value: String| HttpHeader {
        name: name.to_owned(),
        value,
    };
    let request = AuthorizeRequest {
        method: "POST".to_owned(),
        url: URL.to_owned(),
        headers: vec![
            header("upstash-signature", fx.token(&fx.body_1kib)),
            header("authorization", format!("Bearer {credential}")),
            header("content-type", "application/json".to_owned()),
        ],
        body: Some(fx.body_1kib.clone()),
        policy: args.policy.clone(),
        ..Default::default()
    };
    Some(Scenario::new("authorize_1KiB", move |mut c| {
        let request = request.clone();
        async move {
            let allowed = c.authorizer.authorize(request).await?.into_inner().allowed;
            expect(allowed, "request denied")
        }
    }))
}

fn expect(ok: bool, what: &'static str) -> Result<(), Status> {
    if ok {
        Ok(())
    } else {
        Err(Status::failed_precondition(what))
    }
}

/// Every scenario, baseline first.
fn scenarios(args: &Args, fx: &Fixture) -> Result<Vec<Scenario>, String> {
    let mut all = vec![
        baseline(),
        verify_1kib(fx),
        // Before the 1 MiB-as-bytes run, whose aftermath (a large heap, busy
        // allocator) would otherwise be charged to it.
        verify_1mib_sha256(fx),
        verify_1mib_bytes(fx),
    ];
    if args.bearer {
        let bearer = [
            bearer_jwt_cached(args),
            bearer_jwt_uncached(args)?,
            bearer_api_key(args),
            authorize_request(args, fx),
        ];
        if bearer.iter().all(Option::is_none) {
            println!("bearer scenarios skipped: give --jwt, --jwt-file and/or --api-key");
        }
        all.extend(bearer.into_iter().flatten());
    }
    Ok(all)
}

/// The measurements of one run of one scenario.
struct Run {
    calls: u64,
    errors: u64,
    first_error: Option<Status>,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Run {
    fn new() -> Self {
        Self {
            calls: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latency: histogram(),
        }
    }

    /// Counts one call that took `took`.
    fn record(&mut self, took: Duration, result: Result<(), Status>) {
        self.calls += 1;
        match result {
            Ok(()) => {
                let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                self.latency.saturating_record(nanos.max(1));
            }
            Err(status) => {
                self.errors += 1;
                self.first_error.get_or_insert(status);
            }
        }
    }

    /// Adds the calls of `other`, a run over the same time.
    fn add(&mut self, other: Run) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds");
    }

    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

fn histogram() -> Histogram<u64> {
    // Nanoseconds, 1 ns .. 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Runs `scenario` on `pool` for `duration`, closed loop or paced at `rate`
/// calls per second in total.
async fn drive(
    scenario: &Arc<Scenario>,
    pool: &[Clients],
    concurrency: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Run {
    match rate {
        Some(rate) => drive_paced(scenario, pool, duration, rate).await,
        None => drive_closed(scenario, pool, concurrency, duration).await,
    }
}

/// Closed loop: `concurrency` workers, each sending its next call when the
/// previous one answered.
async fn drive_closed(
    scenario: &Arc<Scenario>,
    pool: &[Clients],
    concurrency: usize,
    duration: Duration,
) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let clients = pool[i % pool.len()].clone();
            let scenario = Arc::clone(scenario);
            tokio::spawn(async move {
                let mut run = Run::new();
                loop {
                    let sent = Instant::now();
                    if sent >= deadline {
                        break;
                    }
                    let result = (scenario.call)(clients.clone()).await;
                    run.record(sent.elapsed(), result);
                }
                run
            })
        })
        .collect();
    let mut total = Run::new();
    for worker in workers {
        total.add(worker.await.expect("a load worker panicked"));
    }
    total.elapsed = start.elapsed();
    total
}

/// Open loop: one call every `1 / rate` seconds, however many are in flight.
///
/// The schedule is kept by a plain thread, because tokio's timer fires in
/// 1 ms ticks: at thousands of calls per second it would send them in bursts
/// and the latency would measure the bursts. Latency counts from the time a
/// call was due, so a late send is charged to the call, not hidden.
async fn drive_paced(
    scenario: &Arc<Scenario>,
    pool: &[Clients],
    duration: Duration,
    rate: f64,
) -> Run {
    let (done, mut results) = tokio::sync::mpsc::unbounded_channel();
    let runtime = tokio::runtime::Handle::current();
    let scenario = Arc::clone(scenario);
    let pool = pool.to_vec();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let pacer = std::thread::spawn(move || {
        let mut due = start;
        let mut i = 0;
        while due < start + duration {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let call = (scenario.call)(pool[i % pool.len()].clone());
            let done = done.clone();
            runtime.spawn(async move {
                let result = call.await;
                // The receiver outlives every sender; a send cannot fail.
                let _ = done.send((due.elapsed(), result));
            });
            due += interval;
            i += 1;
        }
    });
    let mut total = Run::new();
    while let Some((took, result)) = results.recv().await {
        total.record(took, result);
    }
    pacer.join().expect("the pacer thread panicked");
    total.elapsed = start.elapsed();
    total
}

/// Summary of a scenario over all rounds.
struct Summary {
    name: &'static str,
    per_second: Vec<f64>,
    ratios: Vec<f64>,
    latency: Histogram<u64>,
    errors: u64,
    half_rate: Option<Run>,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// A started signet: killed on drop.
struct Server {
    child: Child,
    addr: String,
    startup: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `binary serve --dev` on a free port and waits until the health
    /// service reports `signet.v1.Authorizer` SERVING; the time from spawning
    /// the process to that answer is the start-up time.
    async fn start(binary: &PathBuf) -> Result<Self, String> {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
            .env("SIGNET__LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let mut server = Self {
            child,
            addr: String::new(),
            startup: Duration::ZERO,
        };
        let addr = line
            .trim()
            .strip_prefix("signet listening on ")
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        server.addr = format!("http://{addr}");
        loop {
            if let Ok(channel) = connect(&server.addr).await {
                let status = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: AUTHORIZER_SERVICE.to_owned(),
                    })
                    .await
                    .map(|r| r.into_inner().status);
                if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                    server.startup = started.elapsed();
                    return Ok(server);
                }
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err("the server did not report SERVING within 10 s".to_owned());
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Peak resident set size so far (Linux `VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

async fn connect(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(addr.to_owned())
        .expect("a valid address")
        .tcp_nodelay(true)
        .connect()
        .await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signet-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let key = SigningKey::new(Secret::new(args.signing_key.as_str()))
        .ok_or("the signing key is empty")?;
    let fx = Fixture {
        key,
        now: unix_now(),
        body_1kib: Bytes::from(vec![b'x'; 1024]),
        body_1mib: Bytes::from(vec![b'm'; 1024 * 1024]),
    };
    let mut all = scenarios(&args, &fx)?;
    if args.list {
        for s in &all {
            println!("{}", s.name);
        }
        return Ok(());
    }
    if !args.scenarios.is_empty() {
        if let Some(unknown) = args
            .scenarios
            .iter()
            .find(|n| !all.iter().any(|s| s.name == n.as_str()))
        {
            return Err(format!("unknown scenario {unknown} (see --list)"));
        }
        // The baseline always runs: every ratio is taken against it.
        all.retain(|s| s.name == BASELINE || args.scenarios.iter().any(|n| n == s.name));
    }
    if args.concurrency == 0 || args.connections == 0 || args.rounds == 0 {
        return Err("--concurrency, --connections and --rounds must be at least 1".to_owned());
    }

    let server = match &args.addr {
        Some(_) => None,
        None => Some(Server::start(&args.server).await?),
    };
    let addr = args
        .addr
        .clone()
        .or_else(|| server.as_ref().map(|s| s.addr.clone()))
        .expect("an address");
    let mut pool = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let channel = connect(&addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        pool.push(Clients {
            health: HealthClient::new(channel.clone()),
            authorizer: AuthorizerClient::new(channel),
        });
    }

    // One probe call each: skip what the server does not implement, stop on
    // anything else (a denial means a broken fixture, not a figure).
    let mut runnable = Vec::new();
    for scenario in all {
        match (scenario.call)(pool[0].clone()).await {
            Ok(()) => runnable.push(Arc::new(scenario)),
            Err(status) if status.code() == Code::Unimplemented => println!(
                "{}: skipped, the server answers UNIMPLEMENTED (not built on this server yet)",
                scenario.name
            ),
            Err(status) => {
                return Err(format!(
                    "{}: probe call failed: {:?} {}",
                    scenario.name,
                    status.code(),
                    status.message()
                ));
            }
        }
    }

    println!(
        "signet-load: {addr}, concurrency {}, connections {}, {} per scenario ({} warm-up), {} round(s){}",
        args.concurrency,
        args.connections,
        humantime::format_duration(args.duration),
        humantime::format_duration(args.warmup),
        args.rounds,
        args.rate
            .map_or(String::new(), |r| format!(", paced at {r} calls/s"))
    );
    let mut summaries: Vec<Summary> = runnable
        .iter()
        .map(|s| Summary {
            name: s.name,
            per_second: Vec::new(),
            ratios: Vec::new(),
            latency: histogram(),
            errors: 0,
            half_rate: None,
        })
        .collect();
    for _ in 0..args.rounds {
        let mut baseline_rate = f64::NAN;
        for (scenario, summary) in runnable.iter().zip(&mut summaries) {
            if !args.warmup.is_zero() {
                drive(scenario, &pool, args.concurrency, args.warmup, args.rate).await;
            }
            let run = drive(scenario, &pool, args.concurrency, args.duration, args.rate).await;
            if let Some(status) = &run.first_error {
                eprintln!(
                    "{}: {} failed call(s), first: {:?} {}",
                    scenario.name,
                    run.errors,
                    status.code(),
                    status.message()
                );
            }
            let rate = run.per_second();
            if scenario.name == BASELINE {
                baseline_rate = rate;
            }
            summary.per_second.push(rate);
            summary.ratios.push(rate / baseline_rate);
            summary.errors += run.errors;
            summary
                .latency
                .add(&run.latency)
                .expect("histograms with the same bounds");
            if args.half_rate && args.rate.is_none() {
                let half = rate / 2.0;
                let paced =
                    drive(scenario, &pool, args.concurrency, args.duration, Some(half)).await;
                summary.half_rate = Some(paced);
            }
        }
    }

    println!(
        "\n{:<24} {:>10} {:>9} {:>9} {:>9} {:>7} {:>12}",
        "scenario", "req/s", "p50 µs", "p99 µs", "p999 µs", "errors", "vs baseline"
    );
    for s in &summaries {
        println!(
            "{:<24} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>11.3}x",
            s.name,
            median(&s.per_second),
            micros(&s.latency, 0.5),
            micros(&s.latency, 0.99),
            micros(&s.latency, 0.999),
            s.errors,
            median(&s.ratios)
        );
    }
    if summaries.iter().any(|s| s.half_rate.is_some()) {
        println!("\nat half the throughput reached (paced, last round):");
        println!(
            "{:<24} {:>10} {:>9} {:>9} {:>9} {:>7}",
            "scenario", "req/s", "p50 µs", "p99 µs", "p999 µs", "errors"
        );
        for s in &summaries {
            if let Some(run) = &s.half_rate {
                println!(
                    "{:<24} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>7}",
                    s.name,
                    run.per_second(),
                    micros(&run.latency, 0.5),
                    micros(&run.latency, 0.99),
                    micros(&run.latency, 0.999),
                    run.errors
                );
            }
        }
    }
    if let Some(server) = &server {
        println!(
            "\nserver start to SERVING: {:.1} ms",
            server.startup.as_secs_f64() * 1e3
        );
        if let Some(kib) = server.peak_rss_kib() {
            println!(
                "server peak RSS (VmHWM) over the run: {:.1} MiB",
                kib as f64 / 1024.0
            );
        }
        // Peak RSS with 100k cached bearer decisions: run with --bearer and a
        // --jwt-file of 100k distinct tokens; the figure above then covers it.
    }
    drop(server);
    if args.startup_samples > 0 {
        let mut samples = Vec::with_capacity(args.startup_samples);
        for _ in 0..args.startup_samples {
            let server = Server::start(&args.server).await?;
            samples.push(server.startup.as_secs_f64() * 1e3);
        }
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "start to SERVING over {} starts: median {:.1} ms, min {:.1} ms",
            samples.len(),
            median(&samples),
            min
        );
    }
    let errors: u64 = summaries.iter().map(|s| s.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} call(s) failed"));
    }
    Ok(())
}
