//! The gRPC server: thin tonic edges over the decision core, plus health,
//! reflection and graceful shutdown.

mod admin;
mod authorizer;
pub mod caller;
pub mod codec;
mod error;
mod ext_authz;
pub mod observe;
pub mod tls;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Server, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

pub use admin::{AdminAuth, KeyAdminService};
pub use authorizer::AuthorizerService;
pub use error::ApiError;
pub use ext_authz::ExtAuthzService;

use crate::{
    bearer::Bearer,
    config::{AdminConfig, CallerPolicy, ServerConfig, VerifyLimits},
    envoy_proto::envoy::service::auth::v3::authorization_server::AuthorizationServer,
    keys::{KeyRefresher, KeyStore},
    metrics::Metrics,
    proto::{authorizer_server::AuthorizerServer, key_admin_server::KeyAdminServer},
};

/// The encoded descriptor set of `signet.v1` and the Envoy ext_authz v3
/// subset, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/signet_descriptor.bin"));

/// The health service name that reports whether signet can decide.
pub const AUTHORIZER_SERVICE: &str = "signet.v1.Authorizer";

/// The health service name of Envoy's ext_authz API; it follows
/// [`AUTHORIZER_SERVICE`].
pub const EXT_AUTHZ_SERVICE: &str = "envoy.service.auth.v3.Authorization";

/// HTTP/2 streams (calls in flight) one connection may hold.
const MAX_STREAMS_PER_CONNECTION: u32 = 256;

/// How often health re-checks key staleness between key changes.
const STALENESS_CHECK: Duration = Duration::from_secs(1);

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// Signing keys.
    pub keys: Arc<KeyStore>,
    /// Verification limits.
    pub limits: VerifyLimits,
    /// Keeps `keys` in step with the key sources.
    pub key_refresher: Arc<KeyRefresher>,
    /// `signet.v1.KeyAdmin`, served only when set.
    pub admin: Option<AdminConfig>,
    /// Bearer policies, issuers' keys and the decision cache.
    pub bearer: Bearer,
    /// Metric families (clone it into components that count things).
    pub metrics: Metrics,
}

/// What guards the gRPC listener: TLS (reloading) and caller authorization.
#[derive(Debug, Default)]
pub struct Edge {
    /// TLS on the listener; `None` = plaintext.
    pub tls: Option<Arc<tls::ReloadingTls>>,
    /// Who may call which service.
    pub callers: CallerPolicy,
}

/// True when `signet.v1.Authorizer` can decide (its health is SERVING):
/// keys are loaded and no key source has failed to confirm its keys for
/// longer than `keys.max_staleness`, and the issuers' JWKS start-up prefetch
/// is over. The gRPC health service and the
/// metrics port's `/readyz` both use it.
pub fn authorizer_serving(state: &AppState) -> bool {
    state.keys.snapshot().has_keys()
        && !state.key_refresher.too_stale(SystemTime::now())
        && state.bearer.jwks().settled()
}

/// Server start-up failures.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reflection could not be built from the descriptor sets.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS files could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves on `listener` (behind `edge`'s TLS and caller checks) until
/// `shutdown` resolves, then drains in-flight calls for at most
/// `config.shutdown_grace`.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    config: &ServerConfig,
    edge: Edge,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(report_health(health, Arc::clone(&state)));

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let authorizer = AuthorizerServer::new(AuthorizerService::new(Arc::clone(&state)))
        .max_decoding_message_size(config.max_message_bytes);
    let ext_authz = AuthorizationServer::new(ExtAuthzService::new(Arc::clone(&state)))
        .max_decoding_message_size(config.max_message_bytes);
    let key_admin = state.admin.clone().map(|admin| {
        KeyAdminServer::with_interceptor(
            KeyAdminService::new(Arc::clone(&state.key_refresher)),
            AdminAuth::new(admin),
        )
    });

    let rpcs = Arc::new(observe::RpcNames::from_descriptor_sets(&[
        FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]));
    // Outermost first: observe (span, request id, metrics) sees every call,
    // including those the caller check refuses.
    let layers = tower::ServiceBuilder::new()
        .layer(observe::ObserveLayer::new(state.metrics.clone(), rpcs))
        .layer(caller::CallerLayer::new(edge.callers))
        .layer(tower::util::MapResponseLayer::new(
            error::oversized_is_resource_exhausted,
        ));
    let stop = CancellationToken::new();
    let router = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // One client cannot open unbounded concurrent calls on a connection.
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .layer(layers)
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(authorizer)
        .add_service(ext_authz)
        .add_optional_service(key_admin);
    let signal = stop.clone().cancelled_owned();
    let mut tasks = Vec::new();
    let serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match edge.tls {
            Some(tls) => {
                tasks.push(tls.spawn_reloader());
                let (incoming, accept) = tls.incoming(listener);
                tasks.push(accept);
                Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
            }
            None => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                Box::pin(router.serve_with_incoming_shutdown(incoming, signal))
            }
        };
    tokio::pin!(serve);

    let result = tokio::select! {
        result = &mut serve => result,
        () = shutdown => {
            tracing::info!(grace = ?config.shutdown_grace, "shutting down: draining in-flight calls");
            stop.cancel();
            match tokio::time::timeout(config.shutdown_grace, &mut serve).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("shutdown grace period over: dropping the calls still open");
                    Ok(())
                }
            }
        }
    };
    health_task.abort();
    for task in tasks {
        task.abort();
    }
    Ok(result?)
}

/// Keeps the health of `signet.v1.Authorizer` and of Envoy's ext_authz API in
/// step with the key store:
/// SERVING only while keys are loaded, no key source has failed to confirm
/// its keys for longer than `keys.max_staleness`, and not before the issuers'
/// JWKS have loaded once (or the prefetch timeout passed).
async fn report_health(health: HealthReporter, state: Arc<AppState>) {
    let jwks = state.bearer.jwks();
    if !jwks.is_empty() {
        health
            .set_service_status(AUTHORIZER_SERVICE, ServingStatus::NotServing)
            .await;
        if tokio::time::timeout(jwks.prefetch_timeout(), jwks.prefetch())
            .await
            .is_err()
        {
            tracing::warn!("JWKS prefetch timed out: serving; issuers load on first use");
        }
        jwks.settle();
        jwks.spawn_refresh();
    }
    let mut changes = state.keys.subscribe();
    let mut tick = tokio::time::interval(STALENESS_CHECK);
    let mut last = None;
    loop {
        let serving = authorizer_serving(&state);
        if last != Some(serving) {
            if last.is_some() {
                tracing::warn!(serving, "{AUTHORIZER_SERVICE} health changed");
            }
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            for service in [AUTHORIZER_SERVICE, EXT_AUTHZ_SERVICE] {
                health.set_service_status(service, status).await;
            }
            last = Some(serving);
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}
