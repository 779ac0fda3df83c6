//! TLS (and mTLS) on the gRPC listener with rustls, reloading the
//! certificate, key and client CA files when their content changes.
//!
//! signet runs its own accept loop: each connection is handshaken with the
//! rustls configuration current at accept time, so a rotated certificate
//! (cert-manager renewing a mounted Secret) is used by the next connection
//! without a restart. Handshakes run concurrently and are bounded in time.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use arc_swap::ArcSwap;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{self, RootCertStore, ServerConfig, server::WebPkiClientVerifier},
    server::TlsStream,
};
use tokio_stream::wrappers::ReceiverStream;
use zeroize::Zeroizing;

use crate::{config::TlsConfig, metrics::Metrics};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A file has no usable PEM item of the expected kind.
    #[error("{file}: no {what} found")]
    Pem {
        /// The file.
        file: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the material (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA could not build a verifier.
    #[error("client CA: {0}")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

fn read(file: &PathBuf) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(file)
        .map(Zeroizing::new)
        .map_err(|source| TlsError::Read {
            file: file.clone(),
            source,
        })
}

fn certs(file: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            file: file.to_path_buf(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The files' bytes, and a digest to notice a change.
struct Material {
    cert: Zeroizing<Vec<u8>>,
    key: Zeroizing<Vec<u8>>,
    client_ca: Option<Zeroizing<Vec<u8>>>,
    digest: [u8; 32],
}

impl Material {
    fn read(config: &TlsConfig) -> Result<Self, TlsError> {
        let cert = read(&config.cert_file)?;
        let key = read(&config.key_file)?;
        let client_ca = config.client_ca_file.as_ref().map(read).transpose()?;
        let mut h = Sha256::new();
        for part in [Some(&cert), Some(&key), client_ca.as_ref()] {
            let part = part.map_or(&[][..], |p| p.as_slice());
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        Ok(Self {
            cert,
            key,
            client_ca,
            digest: h.finalize().into(),
        })
    }

    fn server_config(&self, config: &TlsConfig) -> Result<ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = certs(&config.cert_file, &self.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|_| TlsError::Pem {
            file: config.key_file.clone(),
            what: "private key",
        })?;
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = match (&config.client_ca_file, &self.client_ca) {
            (Some(file), Some(pem)) => {
                let mut roots = RootCertStore::empty();
                for ca in certs(file, pem)? {
                    roots.add(ca)?;
                }
                builder.with_client_cert_verifier(
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()?,
                )
            }
            _ => builder.with_no_client_auth(),
        };
        let mut server = builder.with_single_cert(chain, key)?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(server)
    }
}

/// The current rustls configuration, swapped when the files change.
pub struct ReloadingTls {
    config: TlsConfig,
    current: ArcSwap<ServerConfig>,
    digest: std::sync::Mutex<[u8; 32]>,
    metrics: Metrics,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ReloadingTls {
    /// Loads the files once; an error here stops the start-up.
    pub fn new(config: TlsConfig, metrics: Metrics) -> Result<Arc<Self>, TlsError> {
        let material = Material::read(&config)?;
        let server = material.server_config(&config)?;
        Ok(Arc::new(Self {
            config,
            current: ArcSwap::from_pointee(server),
            digest: std::sync::Mutex::new(material.digest),
            metrics,
        }))
    }

    /// Re-reads the files; swaps in a new configuration if they changed and
    /// are valid. A bad new set of files keeps the old configuration.
    fn reload(&self) {
        let result = Material::read(&self.config).and_then(|m| {
            let mut digest = self
                .digest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *digest == m.digest {
                return Ok(false);
            }
            let server = m.server_config(&self.config)?;
            self.current.store(Arc::new(server));
            *digest = m.digest;
            Ok(true)
        });
        match result {
            Ok(false) => {}
            Ok(true) => {
                self.metrics.tls_reload(true);
                tracing::info!(cert = %self.config.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                self.metrics.tls_reload(false);
                tracing::warn!(error = %e, "TLS files changed but cannot be used: keeping the previous certificate");
            }
        }
    }

    /// Checks the files every `tls.reload_interval` until aborted.
    pub fn spawn_reloader(self: &Arc<Self>) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.config.reload_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let reloading = Arc::clone(&this);
                // File reads and certificate parsing are blocking work.
                let _ = tokio::task::spawn_blocking(move || reloading.reload()).await;
            }
        })
    }

    /// Accepts TCP connections on `listener` and yields them once their TLS
    /// handshake succeeded. Failed handshakes (plaintext clients, unknown
    /// client certificates) are dropped and logged at debug level.
    pub fn incoming(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> (
        ReceiverStream<io::Result<TlsStream<TcpStream>>>,
        JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::channel(64);
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let _ = tcp.set_nodelay(true);
                let acceptor = TlsAcceptor::from(this.current.load_full());
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        (ReceiverStream::new(rx), task)
    }
}
