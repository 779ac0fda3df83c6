//! `KeyRefresher`: owns the key sources that change while signet runs (a
//! watched key directory, the QStash keys API), builds a new [`KeySnapshot`]
//! whenever one of them changes and swaps it into the [`KeyStore`] at once.
//! The request path only ever loads the current snapshot (lock-free); the
//! refresher's own bookkeeping sits behind a mutex off that path.
//!
//! A source that fails keeps its last-known-good keys: the error and the
//! staleness (how long the source has failed to confirm its keys) show in key
//! status, and health turns NOT_SERVING past `keys.max_staleness`.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::{
    sync::mpsc,
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

use super::{
    DEFAULT_KEY_SET, KeySet, KeySnapshot, KeySource, KeySourceError, KeyStore,
    directory::read_key_dir,
    qstash_api::{QstashApi, api_sets},
};
use crate::config::KeyRefreshConfig;

/// After a file event, further events within this window are taken as the
/// same change (a writer touching several files) before the directory is read.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Why a key-management request could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// No such key set.
    #[error("unknown key set")]
    UnknownKeySet,
    /// The key set's source cannot be rotated by signet.
    #[error("keys from the {} source are not rotated by signet", .0.as_str())]
    NotRotatable(KeySource),
    /// Another rotation happened inside the minimum interval.
    #[error("a rotation happened less than the minimum interval ago")]
    TooSoon,
    /// The source failed.
    #[error(transparent)]
    Source(#[from] KeySourceError),
}

/// The status of one key pair (a key set, or one region of it).
#[derive(Debug, Clone)]
pub struct KeySetStatus {
    /// Key set name.
    pub key_set: String,
    /// Normalised region, empty for the key set's default pair.
    pub region: String,
    /// Where the keys came from.
    pub source: KeySource,
    /// Fingerprint of the current key (empty: no keys).
    pub current_fingerprint: String,
    /// Fingerprint of the next key (empty: no keys).
    pub next_fingerprint: String,
    /// When these keys were loaded.
    pub loaded_at: SystemTime,
    /// How many times this key set's keys changed since start.
    pub version: u64,
    /// The source's last refresh error, if its last refresh failed.
    pub last_refresh_error: Option<String>,
    /// How long the source has failed to confirm these keys (zero when its
    /// last refresh succeeded).
    pub staleness: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Directory,
    Api,
}

/// One refreshing source's last-known-good sets and health.
#[derive(Debug)]
struct SourceState {
    sets: HashMap<String, KeySet>,
    last_error: Option<KeySourceError>,
    last_ok: SystemTime,
}

impl SourceState {
    fn new(now: SystemTime) -> Self {
        Self {
            sets: HashMap::new(),
            last_error: None,
            last_ok: now,
        }
    }

    fn staleness(&self, now: SystemTime) -> Duration {
        staleness(self.last_error.is_some(), self.last_ok, now)
    }
}

/// Zero while the last refresh succeeded; else the time since the last success.
fn staleness(failing: bool, last_ok: SystemTime, now: SystemTime) -> Duration {
    if failing {
        now.duration_since(last_ok).unwrap_or_default()
    } else {
        Duration::ZERO
    }
}

/// May a refetch triggered by an unknown signature run at `now`?
fn refetch_allowed(last: Option<Instant>, now: Instant, cooldown: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= cooldown)
}

/// May a rotation run at `now`? Rolling twice before the fleet picked up the
/// first roll breaks verification, so a second one needs `force`.
fn rotation_allowed(last: Option<Instant>, now: Instant, min: Duration, force: bool) -> bool {
    force || last.is_none_or(|t| now.saturating_duration_since(t) >= min)
}

/// Counts since start, for metrics (key changes, source reads and failures).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCounters {
    /// Key sets whose keys changed (each change counted once).
    pub key_changes: u64,
    /// Successful reads of the key directory.
    pub directory_reads: u64,
    /// Failed reads of the key directory.
    pub directory_failures: u64,
    /// Successful keys-API calls (fetches and rotations).
    pub api_calls: u64,
    /// Failed keys-API calls.
    pub api_failures: u64,
}

#[derive(Debug)]
struct State {
    directory: SourceState,
    api: SourceState,
    versions: HashMap<String, u64>,
    counters: RefreshCounters,
}

#[derive(Debug)]
struct Api {
    client: QstashApi,
    key_set: String,
    poll_interval: Duration,
    refetch_cooldown: Duration,
    min_rotation_interval: Duration,
}

/// Keeps the [`KeyStore`] in step with the key sources.
#[derive(Debug)]
pub struct KeyRefresher {
    store: Arc<KeyStore>,
    base: KeySnapshot,
    directory: Option<PathBuf>,
    reread_interval: Duration,
    max_staleness: Duration,
    api: Option<Api>,
    state: Mutex<State>,
    // Single-flight for API fetches; holds when the last refetch triggered
    // by an unknown signature started.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    last_rotation: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyRefresher {
    /// A refresher over `store`, whose initial snapshot (environment,
    /// configuration file, dev keys) stays the base the refreshing sources
    /// override key set by key set.
    pub fn new(
        store: Arc<KeyStore>,
        config: &KeyRefreshConfig,
        now: SystemTime,
    ) -> Result<Self, KeySourceError> {
        let api = match &config.qstash_api {
            Some(c) => Some(Api {
                client: QstashApi::new(c)?,
                key_set: c.key_set.clone(),
                poll_interval: c.poll_interval,
                refetch_cooldown: c.refetch_cooldown,
                min_rotation_interval: c.min_rotation_interval,
            }),
            None => None,
        };
        let base = store.snapshot().as_ref().clone();
        Ok(Self {
            store,
            base,
            directory: config.directory.clone(),
            reread_interval: config.reread_interval,
            max_staleness: config.max_staleness,
            api,
            state: Mutex::new(State {
                directory: SourceState::new(now),
                api: SourceState::new(now),
                versions: HashMap::new(),
                counters: RefreshCounters::default(),
            }),
            last_refetch: tokio::sync::Mutex::new(None),
            last_rotation: tokio::sync::Mutex::new(None),
        })
    }

    /// The store this refresher fills.
    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // update is one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every refreshing source once (at start and on `Reload`).
    pub async fn reload_all(&self) {
        self.reload_directory();
        if self.api.is_some() {
            self.fetch_api(Instant::now(), false).await;
        }
    }

    /// Starts the background tasks: the directory watch with its periodic
    /// re-read, and the API poll with refetches on unknown signatures.
    pub fn spawn(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(dir) = &self.directory {
            // The watch is in place before this returns (and so before the
            // listener is announced); the read after it closes the gap
            // between the first read and the watch.
            let (tx, events) = mpsc::channel::<bool>(1);
            let watcher = dir.exists().then(|| watch(dir, tx.clone())).flatten();
            self.reload_directory();
            tasks.push(tokio::spawn(Arc::clone(self).watch_directory(
                dir.clone(),
                (tx, events),
                watcher,
            )));
        }
        if self.api.is_some() {
            tasks.push(tokio::spawn(Arc::clone(self).poll_api()));
        }
        tasks
    }

    fn reload_directory(&self) {
        if let Some(dir) = &self.directory {
            let now = SystemTime::now();
            self.apply(Which::Directory, read_key_dir(dir, now), now);
        }
    }

    async fn watch_directory(
        self: Arc<Self>,
        dir: PathBuf,
        (tx, mut events): (mpsc::Sender<bool>, mpsc::Receiver<bool>),
        mut watcher: Option<notify::RecommendedWatcher>,
    ) {
        let mut tick = tokio::time::interval(self.reread_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            if watcher.is_none() && dir.exists() {
                watcher = watch(&dir, tx.clone());
            }
            tokio::select! {
                Some(root_removed) = events.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    let mut removed = root_removed;
                    while let Ok(r) = events.try_recv() {
                        removed |= r;
                    }
                    if removed {
                        watcher = None;
                    }
                }
                _ = tick.tick() => {
                    if !dir.exists() {
                        watcher = None;
                    }
                }
            }
            self.reload_directory();
        }
    }

    async fn poll_api(self: Arc<Self>) {
        let Some(api) = &self.api else { return };
        let mut tick = tokio::time::interval(api.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => self.fetch_api(Instant::now(), false).await,
                () = self.store.refetch_requested() => self.fetch_api(Instant::now(), true).await,
            }
        }
    }

    /// Fetches the API's keys; one fetch at a time. A refetch triggered by
    /// an unknown signature (`triggered`) is skipped inside the cooldown
    /// since the previous one, so forged signatures cannot flood the API.
    async fn fetch_api(&self, now: Instant, triggered: bool) {
        let Some(api) = &self.api else { return };
        let mut last = self.last_refetch.lock().await;
        if triggered {
            if !refetch_allowed(*last, now, api.refetch_cooldown) {
                return;
            }
            *last = Some(now);
        }
        let result = api.client.fetch().await;
        let now = SystemTime::now();
        self.apply(
            Which::Api,
            result.map(|pair| api_sets(&api.key_set, pair, now)),
            now,
        );
    }

    /// Rolls the key set's keys at the QStash keys API, then reloads. Refuses
    /// inside the minimum interval since the last rotation unless `force`.
    pub async fn rotate(
        &self,
        key_set: &str,
        force: bool,
        now: Instant,
    ) -> Result<(), RefreshError> {
        let name = if key_set.is_empty() {
            DEFAULT_KEY_SET
        } else {
            key_set
        };
        let Some(api) = self.api.as_ref().filter(|a| a.key_set == name) else {
            let source = self
                .store
                .snapshot()
                .get(name)
                .map(|s| s.source)
                .ok_or(RefreshError::UnknownKeySet)?;
            return Err(RefreshError::NotRotatable(source));
        };
        let mut last = self.last_rotation.lock().await;
        if !rotation_allowed(*last, now, api.min_rotation_interval, force) {
            return Err(RefreshError::TooSoon);
        }
        let pair = api.client.rotate().await?;
        *last = Some(now);
        tracing::info!(
            key_set = name,
            forced = force,
            "signing keys rotated at the QStash keys API"
        );
        let loaded = SystemTime::now();
        self.apply(Which::Api, Ok(api_sets(name, pair, loaded)), loaded);
        drop(last);
        self.fetch_api(now, false).await;
        Ok(())
    }

    /// Records a source's result and, when keys changed, swaps in a new snapshot.
    fn apply(
        &self,
        which: Which,
        result: Result<HashMap<String, KeySet>, KeySourceError>,
        now: SystemTime,
    ) {
        let mut state = self.lock();
        let c = &mut state.counters;
        match (which, result.is_ok()) {
            (Which::Directory, true) => c.directory_reads += 1,
            (Which::Directory, false) => c.directory_failures += 1,
            (Which::Api, true) => c.api_calls += 1,
            (Which::Api, false) => c.api_failures += 1,
        }
        let source = match which {
            Which::Directory => &mut state.directory,
            Which::Api => &mut state.api,
        };
        match result {
            Ok(sets) => {
                if let Some(e) = source.last_error.take() {
                    tracing::info!(source = ?which, previous_error = %e, "key source recovered");
                }
                source.sets = sets;
                source.last_ok = now;
            }
            Err(e) => {
                tracing::warn!(
                    source = ?which,
                    error = %e,
                    "key source failed: keeping the last-known-good keys"
                );
                source.last_error = Some(e);
                return;
            }
        }
        let old = self.store.snapshot();
        let mut sets: HashMap<String, KeySet> = self
            .base
            .sets()
            .map(|(n, s)| (n.to_owned(), s.clone()))
            .collect();
        for (name, set) in state.directory.sets.iter().chain(&state.api.sets) {
            sets.insert(name.clone(), set.clone());
        }
        let mut changed = false;
        for (name, set) in &mut sets {
            match old.get(name) {
                Some(prev) if same_keys(prev, set) => {
                    // Unchanged: keep when it was loaded.
                    set.loaded_at = prev.loaded_at;
                }
                _ => {
                    changed = true;
                    state.counters.key_changes += 1;
                    let version = state.versions.entry(name.clone()).or_default();
                    *version += 1;
                    let (current, next) = fingerprints(set.default.as_ref());
                    tracing::info!(
                        key_set = %name,
                        source = set.source.as_str(),
                        current,
                        next,
                        version = *version,
                        "signing keys changed"
                    );
                }
            }
        }
        for (name, _) in old.sets() {
            if !sets.contains_key(name) {
                changed = true;
                tracing::warn!(key_set = name, "key set removed by its source");
            }
        }
        if changed {
            self.store.replace(KeySnapshot::new(sets));
        }
    }

    /// Counts since start, for metrics.
    pub fn counters(&self) -> RefreshCounters {
        self.lock().counters
    }

    /// True when a source has failed to confirm its keys for longer than
    /// `keys.max_staleness`.
    pub fn too_stale(&self, now: SystemTime) -> bool {
        let state = self.lock();
        let configured = [
            (self.directory.is_some(), &state.directory),
            (self.api.is_some(), &state.api),
        ];
        configured
            .iter()
            .any(|(on, s)| *on && s.staleness(now) > self.max_staleness)
    }

    /// The refreshing source that serves (or is meant to serve) a key set,
    /// so that its errors show even before it ever loaded.
    fn source_for<'a>(
        &self,
        name: &str,
        set: &KeySet,
        state: &'a State,
    ) -> Option<&'a SourceState> {
        if self.api.as_ref().is_some_and(|a| a.key_set == name) {
            Some(&state.api)
        } else if set.source == KeySource::Directory
            || (self.directory.is_some()
                && name == DEFAULT_KEY_SET
                && state.directory.sets.is_empty())
        {
            Some(&state.directory)
        } else {
            None
        }
    }

    /// The status of one key set (empty: every key set), one row per pair.
    pub fn status(
        &self,
        key_set: &str,
        now: SystemTime,
    ) -> Result<Vec<KeySetStatus>, RefreshError> {
        let snapshot = self.store.snapshot();
        let state = self.lock();
        let mut rows = Vec::new();
        let mut names: Vec<&str> = snapshot.sets().map(|(n, _)| n).collect();
        names.sort_unstable();
        if !key_set.is_empty() {
            if snapshot.get(key_set).is_none() {
                return Err(RefreshError::UnknownKeySet);
            }
            names.retain(|n| *n == key_set);
        }
        for name in names {
            let Some(set) = snapshot.get(name) else {
                continue;
            };
            let source_state = self.source_for(name, set, &state);
            let row = |region: &str, pair| {
                let (current, next) = fingerprints(pair);
                KeySetStatus {
                    key_set: name.to_owned(),
                    region: region.to_owned(),
                    source: set.source,
                    current_fingerprint: current.to_owned(),
                    next_fingerprint: next.to_owned(),
                    loaded_at: set.loaded_at,
                    version: state.versions.get(name).copied().unwrap_or_default(),
                    last_refresh_error: source_state
                        .and_then(|s| s.last_error.as_ref())
                        .map(ToString::to_string),
                    staleness: source_state.map_or(Duration::ZERO, |s| s.staleness(now)),
                }
            };
            rows.push(row("", set.default.as_ref()));
            let mut regions: Vec<_> = set.regions.iter().collect();
            regions.sort_unstable_by_key(|(r, _)| r.as_str());
            for (region, pair) in regions {
                rows.push(row(region, Some(pair)));
            }
        }
        Ok(rows)
    }
}

fn fingerprints(pair: Option<&super::KeyPair>) -> (&str, &str) {
    pair.map_or(("", ""), |p| {
        (p.current.fingerprint(), p.next.fingerprint())
    })
}

fn same_keys(a: &KeySet, b: &KeySet) -> bool {
    let same_pair = |x: Option<&super::KeyPair>, y: Option<&super::KeyPair>| match (x, y) {
        (Some(x), Some(y)) => {
            x.current.secret() == y.current.secret() && x.next.secret() == y.next.secret()
        }
        (None, None) => true,
        _ => false,
    };
    a.source == b.source
        && same_pair(a.default.as_ref(), b.default.as_ref())
        && a.regions.len() == b.regions.len()
        && a.regions
            .iter()
            .all(|(r, p)| same_pair(Some(p), b.regions.get(r)))
}

/// Watches `dir` (recursively: the kubelet swaps `..data`, per-set folders
/// change inside); each relevant event sends whether the root itself went.
/// `None` when the watch cannot be set up (the periodic re-read still runs).
fn watch(dir: &Path, events: mpsc::Sender<bool>) -> Option<notify::RecommendedWatcher> {
    let root = dir.to_owned();
    let handler = move |event: notify::Result<notify::Event>| {
        let root_removed = match &event {
            // signet's own reads of the key files.
            Ok(e) if matches!(e.kind, EventKind::Access(_)) => return,
            Ok(e) => matches!(e.kind, EventKind::Remove(_)) && e.paths.iter().any(|p| p == &root),
            Err(_) => true,
        };
        // A full channel already holds a pending reload.
        let _ = events.try_send(root_removed);
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the key directory: re-reading it periodically");
            return None;
        }
    };
    match watcher.watch(dir, RecursiveMode::Recursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch the key directory: re-reading it periodically");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::KeyRefreshConfig,
        keys::{KeyPair, SigningKey},
        secret::Secret,
    };

    fn config(dir: Option<&Path>) -> KeyRefreshConfig {
        KeyRefreshConfig {
            directory: dir.map(Path::to_owned),
            reread_interval: Duration::from_secs(30),
            max_staleness: Duration::from_secs(60),
            qstash_api: None,
        }
    }

    fn env_snapshot() -> KeySnapshot {
        KeySnapshot::new(HashMap::from([(
            DEFAULT_KEY_SET.to_owned(),
            KeySet {
                default: Some(KeyPair {
                    current: SigningKey::new(Secret::new("env_c")).unwrap(),
                    next: SigningKey::new(Secret::new("env_n")).unwrap(),
                }),
                regions: HashMap::new(),
                source: KeySource::Environment,
                loaded_at: SystemTime::UNIX_EPOCH,
            },
        )]))
    }

    fn write_pair(dir: &Path, current: &str, next: &str) {
        std::fs::write(dir.join("current"), current).unwrap();
        std::fs::write(dir.join("next"), next).unwrap();
    }

    fn current_key(store: &KeyStore, set: &str) -> Secret {
        store
            .snapshot()
            .pair(set, "")
            .unwrap()
            .current
            .secret()
            .clone()
    }

    #[test]
    fn clocks_decide_cooldown_and_rotation_guard() {
        let t0 = Instant::now();
        let cooldown = Duration::from_secs(30);
        assert!(refetch_allowed(None, t0, cooldown));
        assert!(!refetch_allowed(
            Some(t0),
            t0 + Duration::from_secs(29),
            cooldown
        ));
        assert!(refetch_allowed(Some(t0), t0 + cooldown, cooldown));
        let min = Duration::from_secs(600);
        assert!(rotation_allowed(None, t0, min, false));
        assert!(!rotation_allowed(
            Some(t0),
            t0 + Duration::from_secs(1),
            min,
            false
        ));
        assert!(rotation_allowed(
            Some(t0),
            t0 + Duration::from_secs(1),
            min,
            true
        ));
        assert!(rotation_allowed(Some(t0), t0 + min, min, false));
    }

    #[test]
    fn staleness_counts_only_while_failing() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            staleness(false, t0, t0 + Duration::from_secs(500)),
            Duration::ZERO
        );
        assert_eq!(
            staleness(true, t0, t0 + Duration::from_secs(500)),
            Duration::from_secs(500)
        );
    }

    #[test]
    fn directory_overrides_and_last_known_good_survives() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), "dir_c", "dir_n");
        let store = Arc::new(KeyStore::new(env_snapshot()));
        let t0 = SystemTime::now();
        let r = KeyRefresher::new(Arc::clone(&store), &config(Some(dir.path())), t0).unwrap();
        r.reload_directory();
        assert_eq!(current_key(&store, ""), Secret::new("dir_c"));
        let status = r.status("", t0).unwrap();
        assert_eq!(status[0].version, 1);
        assert_eq!(status[0].source, KeySource::Directory);

        // Half-written: an empty file never replaces good keys.
        std::fs::write(dir.path().join("next"), "").unwrap();
        r.reload_directory();
        assert_eq!(current_key(&store, ""), Secret::new("dir_c"));
        let later = SystemTime::now() + Duration::from_secs(61);
        let status = r.status("default", later).unwrap();
        assert!(
            status[0]
                .last_refresh_error
                .as_deref()
                .unwrap()
                .contains("empty")
        );
        assert!(status[0].staleness > Duration::from_secs(60));
        assert!(r.too_stale(later));
        assert!(!r.too_stale(SystemTime::now()));

        // A roll: the old next key becomes current.
        write_pair(dir.path(), "dir_n", "dir_x");
        r.reload_directory();
        assert_eq!(current_key(&store, ""), Secret::new("dir_n"));
        let status = r.status("", later).unwrap();
        assert_eq!(status[0].version, 2);
        assert_eq!(status[0].staleness, Duration::ZERO);
        assert!(status[0].last_refresh_error.is_none());
        assert_eq!(
            r.status("nope", later).unwrap_err(),
            RefreshError::UnknownKeySet
        );
        assert_eq!(
            r.counters(),
            RefreshCounters {
                key_changes: 2,
                directory_reads: 2,
                directory_failures: 1,
                ..RefreshCounters::default()
            }
        );
    }

    #[tokio::test]
    async fn only_the_api_source_rotates() {
        let store = Arc::new(KeyStore::new(env_snapshot()));
        let r = KeyRefresher::new(store, &config(None), SystemTime::now()).unwrap();
        assert_eq!(
            r.rotate("", false, Instant::now()).await.unwrap_err(),
            RefreshError::NotRotatable(KeySource::Environment)
        );
        assert_eq!(
            r.rotate("nope", false, Instant::now()).await.unwrap_err(),
            RefreshError::UnknownKeySet
        );
    }
}
