//! `KeyStore`: the process-wide, lock-free view of the current key snapshot.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::sync::{Notify, watch};

use super::key_set::KeySnapshot;

/// Holds the current [`KeySnapshot`]. Reads never take a lock; writers swap
/// in a whole new snapshot atomically and notify watchers (health, metrics).
#[derive(Debug)]
pub struct KeyStore {
    current: ArcSwap<KeySnapshot>,
    changes: watch::Sender<u64>,
    refetch: Notify,
}

impl KeyStore {
    /// A store starting from `snapshot`.
    pub fn new(snapshot: KeySnapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
            changes: watch::Sender::new(0),
            refetch: Notify::new(),
        }
    }

    /// The snapshot as of now (lock-free; hold it only for one request).
    pub fn snapshot(&self) -> Guard<Arc<KeySnapshot>> {
        self.current.load()
    }

    /// Replaces the whole snapshot.
    pub fn replace(&self, snapshot: KeySnapshot) {
        self.current.store(Arc::new(snapshot));
        self.changes.send_modify(|v| *v += 1);
    }

    /// Applies `change` to the current snapshot and stores the result; writers
    /// racing each other are serialised by retrying on a lost race.
    pub fn update(&self, change: impl Fn(&KeySnapshot) -> KeySnapshot) {
        self.current.rcu(|old| Arc::new(change(old)));
        self.changes.send_modify(|v| *v += 1);
    }

    /// Asks a refreshing source (the QStash keys API) to fetch again because a
    /// signature matched neither key: the account may have rolled. Never
    /// blocks; requests made before the refresher looks coalesce into one.
    pub fn request_refetch(&self) {
        self.refetch.notify_one();
    }

    /// Resolves when a refetch was requested.
    pub async fn refetch_requested(&self) {
        self.refetch.notified().await;
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
