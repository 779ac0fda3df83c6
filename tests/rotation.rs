//! Rotation under load against the real binary: keys rotate three times by
//! rewriting a Secret directory the way the kubelet does, and three times by
//! `RotateSigningKeys` against a stand-in QStash keys API, while load tasks
//! keep sending correctly signed requests. Prints the counts and how long
//! each pick-up took.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{keys::*, *};
use signet::proto::RotateSigningKeysRequest;

/// What the load signs with at a given moment: the key QStash signs with
/// now, a counter that moves at every roll, and the last key signet has been
/// seen to retire (a request signed with it must fail).
type SignerView = Arc<dyn Fn() -> (String, u64, Option<String>) + Send + Sync>;

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    false_rejects: AtomicU64,
    straddling: AtomicU64,
    retired_rejected: AtomicU64,
    false_accepts: AtomicU64,
    /// Per load task: the roll counter at the start of its last finished request.
    done: Vec<AtomicU64>,
}

impl Counts {
    fn new(tasks: usize) -> Self {
        Self {
            done: (0..tasks).map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }

    fn total(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
            + self.false_rejects.load(Ordering::Relaxed)
            + self.straddling.load(Ordering::Relaxed)
    }

    fn print(&self, what: &str, pickups: &[Duration]) {
        println!(
            "{what}: signed with the current key: accepted {}, false rejects {}, \
             rejected while QStash rolled in flight {}; signed with a retired key: rejected {}, \
             false accepts {}; pick-ups {:?}",
            self.accepted.load(Ordering::Relaxed),
            self.false_rejects.load(Ordering::Relaxed),
            self.straddling.load(Ordering::Relaxed),
            self.retired_rejected.load(Ordering::Relaxed),
            self.false_accepts.load(Ordering::Relaxed),
            pickups,
        );
    }

    fn assert_clean(&self) {
        assert_eq!(self.false_rejects.load(Ordering::Relaxed), 0);
        assert_eq!(self.false_accepts.load(Ordering::Relaxed), 0);
        assert!(self.accepted.load(Ordering::Relaxed) > 0);
        assert!(self.retired_rejected.load(Ordering::Relaxed) > 0);
    }
}

/// Starts one load task per `counts.done` slot: each request is signed with
/// the signer's key of that moment; when a retired key is known, one more
/// request is signed with it. A current-key request rejected after QStash
/// rolled while it was in flight (its key was retired by that roll) is
/// counted apart, not as a false reject.
fn load(
    server: &Signet,
    signer: SignerView,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..counts.done.len())
        .map(|task| {
            let (signer, counts, stop) = (signer.clone(), counts.clone(), stop.clone());
            let url = server.url();
            tokio::spawn(async move {
                let channel = tonic::transport::Channel::from_shared(url)
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut client = signet::proto::authorizer_client::AuthorizerClient::new(channel);
                while !stop.load(Ordering::Relaxed) {
                    let (current, epoch, retired) = signer();
                    let r = verify_with(&mut client, &current, "", "").await;
                    if r.valid {
                        counts.accepted.fetch_add(1, Ordering::Relaxed);
                    } else if signer().1 != epoch {
                        counts.straddling.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.false_rejects.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(old) = retired {
                        if verify_with(&mut client, &old, "", "").await.valid {
                            counts.false_accepts.fetch_add(1, Ordering::Relaxed);
                        } else {
                            counts.retired_rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    counts.done[task].store(epoch, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

/// Waits (bounded) until the load has sent `more` requests beyond now.
async fn let_load_run(counts: &Counts, more: u64) {
    let target = counts.total() + more;
    let start = Instant::now();
    while counts.total() < target {
        assert!(start.elapsed() < Duration::from_secs(30), "load stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until every load task finished a request begun at `epoch`
/// or later: no request signed with an older key is in flight any more.
async fn wait_all_past(counts: &Counts, epoch: u64) {
    let start = Instant::now();
    while counts
        .done
        .iter()
        .any(|d| d.load(Ordering::Relaxed) < epoch)
    {
        assert!(start.elapsed() < Duration::from_secs(30), "load stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[derive(Default)]
struct Signer {
    current: String,
    epoch: u64,
    retired: Option<String>,
}

fn key(n: usize) -> String {
    format!("sig_rotationTestKey{n:04}xyz")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secret_directory_rotations_under_load() {
    let mut dir = SecretDir::new(&[("current", &key(0)), ("next", &key(1))]);
    // A long re-read interval: the pick-ups below come from the file watch.
    let (_cfg, path) = config_file(&format!(
        "[keys]\ndirectory = {:?}\nreread_interval = \"1h\"\n[admin]\nenabled = true\ntoken_sha256 = [\"{}\"]\n",
        dir.path(),
        admin_digest()
    ));
    let server = Signet::builder().config(path).start();
    let mut admin = admin(&server).await;
    let row = status(&mut admin, "").await;
    assert_eq!(row.source, "directory");
    assert_eq!(row.current_fingerprint, fp(&key(0)));

    let signer = Arc::new(Mutex::new(Signer {
        current: key(0),
        ..Signer::default()
    }));
    let view: SignerView = {
        let signer = signer.clone();
        Arc::new(move || {
            let s = signer.lock().unwrap();
            (s.current.clone(), s.epoch, s.retired.clone())
        })
    };
    let counts = Arc::new(Counts::new(4));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&server, view, counts.clone(), stop.clone());
    let_load_run(&counts, 100).await;

    let mut pickups = Vec::new();
    for n in 1..=3 {
        // QStash rolls: the old next key signs from now on…
        {
            let mut s = signer.lock().unwrap();
            s.current = key(n);
            s.epoch = n as u64;
        }
        wait_all_past(&counts, n as u64).await;
        // …and the platform team updates the Secret; the kubelet swaps it in.
        dir.update(&[("current", &key(n)), ("next", &key(n + 1))]);
        let (row, took) = wait_status(&mut admin, "", |r| {
            r.current_fingerprint == fp(&key(n)) && r.next_fingerprint == fp(&key(n + 1))
        })
        .await;
        assert_eq!(row.version, n as u64 + 1);
        pickups.push(took);
        // signet has picked up the roll: the old current key is retired.
        signer.lock().unwrap().retired = Some(key(n - 1));
        let_load_run(&counts, 100).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(counts.straddling.load(Ordering::Relaxed), 0);
    counts.print("secret directory (kubelet ..data swap)", &pickups);
    counts.assert_clean();
    assert!(server.logs().contains("signing keys changed"));
    for n in 0..=4 {
        assert!(
            !server.logs().contains(&key(n)),
            "a key leaked into the logs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_rotations_under_load() {
    let api = QstashStandIn::start(&key(10), &key(11)).await;
    let (_cfg, path) = config_file(&format!(
        "[keys.qstash_api]\nenabled = true\nurl = {:?}\ntoken = {QSTASH_TOKEN:?}\nmin_rotation_interval = \"0s\"\n[admin]\nenabled = true\ntoken_sha256 = [\"{}\"]\n",
        api.url(),
        admin_digest()
    ));
    let server = Signet::builder().config(path).start();
    let mut admin = admin(&server).await;
    assert_eq!(status(&mut admin, "").await.source, "qstash-api");

    let retired = Arc::new(Mutex::new(None::<String>));
    let view: SignerView = {
        let (api, retired) = (api.clone(), retired.clone());
        Arc::new(move || {
            let (current, generation) = api.current_and_generation();
            (current, generation, retired.lock().unwrap().clone())
        })
    };
    let counts = Arc::new(Counts::new(4));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&server, view, counts.clone(), stop.clone());
    let_load_run(&counts, 100).await;

    let mut pickups = Vec::new();
    for _ in 0..3 {
        let before = api.current();
        let start = Instant::now();
        let rotated = admin
            .rotate_signing_keys(with_token(
                RotateSigningKeysRequest {
                    key_set: String::new(),
                    force: false,
                },
                Some(ADMIN_TOKEN),
            ))
            .await
            .expect("RotateSigningKeys")
            .into_inner()
            .key_set
            .unwrap();
        pickups.push(start.elapsed());
        assert_eq!(rotated.current_fingerprint, fp(&api.current()));
        assert_eq!(rotated.next_fingerprint, fp(&api.next()));
        *retired.lock().unwrap() = Some(before);
        let_load_run(&counts, 100).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(api.rotates(), 3);
    // At most the one request each load task had in flight at each roll.
    assert!(counts.straddling.load(Ordering::Relaxed) <= 4 * 3);
    counts.print("QStash keys API (RotateSigningKeys)", &pickups);
    counts.assert_clean();
}
