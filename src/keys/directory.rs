//! A key directory as Kubernetes mounts a Secret: files `current` and `next`
//! for the default key set, and optionally one folder per named key set
//! (`billing/current`, `billing/next`). The kubelet swaps a `..data` symlink
//! atomically; entries starting with `.` are never key sets.

use std::{collections::HashMap, io, path::Path, time::SystemTime};

use zeroize::Zeroizing;

use super::{
    DEFAULT_KEY_SET, KeySet, KeySource, KeySourceError,
    source::{is_single_key, pair},
};
use crate::secret::Secret;

fn io_error(path: &Path, e: &io::Error) -> KeySourceError {
    KeySourceError::Io {
        path: path.to_owned(),
        kind: e.kind(),
    }
}

/// Reads one key file: trimmed, non-empty, one token without whitespace.
fn read_key(path: &Path) -> Result<Secret, KeySourceError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| io_error(path, &e))?);
    let key = bytes.trim_ascii();
    if key.is_empty() {
        return Err(KeySourceError::EmptyFile(path.to_owned()));
    }
    if !is_single_key(key) {
        return Err(KeySourceError::Malformed(path.to_owned()));
    }
    Ok(Secret::new(key.to_vec()))
}

/// The key set in `dir`, `None` when it has neither file.
fn read_set(dir: &Path, now: SystemTime) -> Result<Option<KeySet>, KeySourceError> {
    let (current, next) = (dir.join("current"), dir.join("next"));
    let (has_current, has_next) = (current.exists(), next.exists());
    if !has_current && !has_next {
        return Ok(None);
    }
    if has_current != has_next {
        return Err(KeySourceError::HalfPair(dir.to_owned()));
    }
    let (current, next) = (read_key(&current)?, read_key(&next)?);
    if current == next {
        return Err(KeySourceError::SameKeys(dir.to_owned()));
    }
    Ok(Some(KeySet {
        default: pair(Some(current), Some(next)),
        regions: HashMap::new(),
        source: KeySource::Directory,
        loaded_at: now,
    }))
}

/// Reads every key set under `root`. Any problem fails the whole read, so
/// the caller keeps its last-known-good keys rather than a partial view.
pub fn read_key_dir(
    root: &Path,
    now: SystemTime,
) -> Result<HashMap<String, KeySet>, KeySourceError> {
    let mut sets = HashMap::new();
    if let Some(set) = read_set(root, now)? {
        sets.insert(DEFAULT_KEY_SET.to_owned(), set);
    }
    let entries = std::fs::read_dir(root).map_err(|e| io_error(root, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root, &e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        if name.starts_with('.') || name == "current" || name == "next" || !path.is_dir() {
            continue;
        }
        if let Some(set) = read_set(&path, now)? {
            sets.insert(name, set);
        }
    }
    if sets.is_empty() {
        return Err(KeySourceError::NoKeys(root.to_owned()));
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, value: &str) {
        std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
        std::fs::write(dir.join(name), value).unwrap();
    }

    #[test]
    fn default_and_named_sets() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "current", "sig_a\n");
        write(dir.path(), "next", "sig_b");
        write(dir.path(), "billing/current", "sig_c");
        write(dir.path(), "billing/next", "sig_d");
        write(dir.path(), "..data/current", "ignored");
        let sets = read_key_dir(dir.path(), SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(sets.len(), 2);
        let d = sets[DEFAULT_KEY_SET].default.as_ref().unwrap();
        assert_eq!(d.current.secret(), &Secret::new("sig_a"));
        let b = sets["billing"].default.as_ref().unwrap();
        assert_eq!(b.next.secret(), &Secret::new("sig_d"));
    }

    #[test]
    fn bad_files_fail_the_whole_read() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "current", "sig_a");
        write(dir.path(), "next", "");
        assert!(matches!(
            read_key_dir(dir.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::EmptyFile(_))
        ));
        write(dir.path(), "next", "sig_a");
        assert!(matches!(
            read_key_dir(dir.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::SameKeys(_))
        ));
        write(
            dir.path(),
            "next",
            &"k".repeat(crate::keys::source::MAX_KEY_BYTES + 1),
        );
        assert!(matches!(
            read_key_dir(dir.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::Malformed(_))
        ));
        write(dir.path(), "next", "sig_b with space");
        assert!(matches!(
            read_key_dir(dir.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::Malformed(_))
        ));
        std::fs::remove_file(dir.path().join("next")).unwrap();
        assert!(matches!(
            read_key_dir(dir.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::HalfPair(_))
        ));
        let missing = dir.path().join("gone");
        assert!(matches!(
            read_key_dir(&missing, SystemTime::UNIX_EPOCH),
            Err(KeySourceError::Io { .. })
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_key_dir(empty.path(), SystemTime::UNIX_EPOCH),
            Err(KeySourceError::NoKeys(_))
        ));
    }
}
