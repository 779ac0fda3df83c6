//! The keys of one named key set, and the immutable snapshot of all of them.

use std::{collections::HashMap, time::SystemTime};

use super::signing_key::KeyPair;

/// Where a key set's keys came from (shown by key status, never the keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `QSTASH_*` environment variables.
    Environment,
    /// The configuration file (development).
    ConfigFile,
    /// The public QStash dev-server keys (`serve --dev`).
    Dev,
    /// A watched key directory (a mounted Kubernetes Secret).
    Directory,
    /// The QStash keys API.
    QstashApi,
}

impl KeySource {
    /// Stable lower-case name, for status and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "env",
            Self::ConfigFile => "config",
            Self::Dev => "dev",
            Self::Directory => "directory",
            Self::QstashApi => "qstash-api",
        }
    }
}

/// The keys of one QStash account: a default pair and, for multi-region
/// accounts, one pair per region (`US_EAST_1`, `EU_CENTRAL_1`).
#[derive(Clone, Debug)]
pub struct KeySet {
    /// The pair used when the request names no region (or regions are off).
    pub default: Option<KeyPair>,
    /// Region pairs, keyed by normalised region name; empty = regions off.
    pub regions: HashMap<String, KeyPair>,
    /// Where the keys came from.
    pub source: KeySource,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
}

/// Why no key pair could be chosen for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyLookupError {
    /// No such key set is configured.
    UnknownKeySet,
    /// The key set exists but has no keys loaded.
    NoKeys,
    /// The request names a region that has no keys.
    UnknownRegion,
}

impl KeySet {
    /// The pair for a request's `upstash-region` header value (as received).
    ///
    /// With regions configured, a named region must have its own keys: an
    /// unknown region fails closed rather than falling back.
    pub fn pair_for_region(&self, region: &str) -> Result<&KeyPair, KeyLookupError> {
        if region.is_empty() || self.regions.is_empty() {
            return self.default.as_ref().ok_or(KeyLookupError::NoKeys);
        }
        self.regions
            .get(&normalize_region(region))
            .ok_or(KeyLookupError::UnknownRegion)
    }

    /// True when at least one pair is loaded.
    pub fn has_keys(&self) -> bool {
        self.default.is_some() || !self.regions.is_empty()
    }
}

/// `us-east-1` / `US-EAST-1` → `US_EAST_1`, as the QStash SDKs normalise it.
pub fn normalize_region(region: &str) -> String {
    region.trim().replace('-', "_").to_ascii_uppercase()
}

/// Every key set at one instant. Immutable: a change builds a new snapshot,
/// so a request sees old or new keys, never a mix.
#[derive(Clone, Debug, Default)]
pub struct KeySnapshot {
    sets: HashMap<String, KeySet>,
}

/// The name of the key set used when a request names none.
pub const DEFAULT_KEY_SET: &str = "default";

impl KeySnapshot {
    /// A snapshot holding these key sets.
    pub fn new(sets: HashMap<String, KeySet>) -> Self {
        Self { sets }
    }

    /// The pair for a request's key set (empty = default) and region.
    pub fn pair(&self, key_set: &str, region: &str) -> Result<&KeyPair, KeyLookupError> {
        let name = if key_set.is_empty() {
            DEFAULT_KEY_SET
        } else {
            key_set
        };
        self.sets
            .get(name)
            .ok_or(KeyLookupError::UnknownKeySet)?
            .pair_for_region(region)
    }

    /// The named key set.
    pub fn get(&self, name: &str) -> Option<&KeySet> {
        self.sets.get(name)
    }

    /// All key sets by name.
    pub fn sets(&self) -> impl Iterator<Item = (&str, &KeySet)> {
        self.sets.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// True when any key set has keys.
    pub fn has_keys(&self) -> bool {
        self.sets.values().any(KeySet::has_keys)
    }

    /// A copy of this snapshot with one key set replaced.
    pub fn with_set(&self, name: &str, set: KeySet) -> Self {
        let mut sets = self.sets.clone();
        sets.insert(name.to_owned(), set);
        Self { sets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{keys::SigningKey, secret::Secret};

    fn pair(a: &str, b: &str) -> KeyPair {
        KeyPair {
            current: SigningKey::new(Secret::new(a)).unwrap(),
            next: SigningKey::new(Secret::new(b)).unwrap(),
        }
    }

    fn set(default: Option<KeyPair>, regions: &[(&str, KeyPair)]) -> KeySet {
        KeySet {
            default,
            regions: regions
                .iter()
                .map(|(r, p)| (r.to_string(), p.clone()))
                .collect(),
            source: KeySource::Environment,
            loaded_at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn region_names_are_normalised() {
        assert_eq!(normalize_region("us-east-1"), "US_EAST_1");
        assert_eq!(normalize_region("EU-CENTRAL-1"), "EU_CENTRAL_1");
    }

    #[test]
    fn lookup_fails_closed() {
        let snap = KeySnapshot::new(HashMap::from([
            (DEFAULT_KEY_SET.to_string(), set(Some(pair("a", "b")), &[])),
            ("empty".to_string(), set(None, &[])),
            (
                "regional".to_string(),
                set(Some(pair("c", "d")), &[("US_EAST_1", pair("e", "f"))]),
            ),
        ]));
        assert!(snap.pair("", "").is_ok());
        assert!(snap.pair("", "us-east-1").is_ok(), "regions off: ignored");
        assert_eq!(
            snap.pair("nope", "").unwrap_err(),
            KeyLookupError::UnknownKeySet
        );
        assert_eq!(snap.pair("empty", "").unwrap_err(), KeyLookupError::NoKeys);
        let us = snap.pair("regional", "us-east-1").unwrap();
        assert_eq!(us.current.secret(), &Secret::new("e"));
        assert_eq!(
            snap.pair("regional", "ap-south-1").unwrap_err(),
            KeyLookupError::UnknownRegion
        );
        assert_eq!(
            snap.pair("regional", "").unwrap().current.secret(),
            &Secret::new("c")
        );
    }
}
