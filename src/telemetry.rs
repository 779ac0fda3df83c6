//! Logging: human or JSON lines on stderr, filtered by `log.level` or
//! `RUST_LOG`; with the `otel` feature and `[otel] enabled`, spans are also
//! exported over OTLP/gRPC.

use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt};

use crate::config::{LogFormat, OtelConfig};

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber is already installed.
    #[error("tracing already initialised")]
    AlreadyInitialised,
    /// The OTLP exporter could not be built.
    #[cfg(feature = "otel")]
    #[error("OpenTelemetry exporter: {0}")]
    Otel(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps the span exporter alive; dropping it flushes pending spans.
#[derive(Debug, Default)]
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: OpenTelemetry export did not flush: {e}");
        }
    }
}

type BoxLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
/// With `otel`, call it inside the Tokio runtime (the exporter's gRPC client
/// lives there) and keep the guard until the runtime ends.
pub fn init(
    format: LogFormat,
    level: &str,
    otel: Option<&OtelConfig>,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let output = fmt::layer().with_writer(std::io::stderr);
    let output: BoxLayer = match format {
        LogFormat::Human => output.boxed(),
        LogFormat::Json => output.json().flatten_event(true).boxed(),
    };
    #[cfg(feature = "otel")]
    let (export, guard) = match otel {
        Some(otel) => {
            let (layer, provider) = otel_layer(otel)?;
            let guard = TelemetryGuard {
                provider: Some(provider),
            };
            (Some(layer), guard)
        }
        None => (None, TelemetryGuard::default()),
    };
    #[cfg(not(feature = "otel"))]
    let (export, guard): (Option<BoxLayer>, _) = {
        let _ = otel;
        (None, TelemetryGuard::default())
    };
    let layers: Vec<BoxLayer> = std::iter::once(output).chain(export).collect();
    let subscriber = Registry::default().with(layers).with(filter);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInitialised)?;
    Ok(guard)
}

#[cfg(feature = "otel")]
fn otel_layer(
    otel: &OtelConfig,
) -> Result<(BoxLayer, opentelemetry_sdk::trace::SdkTracerProvider), TelemetryError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&otel.endpoint)
        .build()?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(otel.service_name.clone())
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("signet"))
        .boxed();
    Ok((layer, provider))
}
