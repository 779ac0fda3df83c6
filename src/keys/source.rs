//! Key sources that are read once at start: environment, configuration file,
//! and the public dev-server keys.

use std::{collections::HashMap, time::SystemTime};

use super::{
    DEFAULT_KEY_SET, KeyPair, KeySet, KeySnapshot, KeySource, SigningKey, normalize_region,
};
use crate::{
    config::{ConfigError, KeySettings, check_pair},
    secret::Secret,
};

/// The QStash local dev server's public current signing key.
pub const DEV_CURRENT_SIGNING_KEY: &str = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
/// The QStash local dev server's public next signing key.
pub const DEV_NEXT_SIGNING_KEY: &str = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";

/// The variable holding the default key set's current key.
pub const ENV_CURRENT: &str = "QSTASH_CURRENT_SIGNING_KEY";
/// The variable holding the default key set's next key.
pub const ENV_NEXT: &str = "QSTASH_NEXT_SIGNING_KEY";
/// With this set (e.g. `US_EAST_1`), region keys come from
/// `{REGION}_QSTASH_CURRENT_SIGNING_KEY` / `{REGION}_QSTASH_NEXT_SIGNING_KEY`.
pub const ENV_REGION: &str = "QSTASH_REGION";
/// The regions QStash signs from, as normalised `upstash-region` values.
pub const KNOWN_REGIONS: [&str; 2] = ["US_EAST_1", "EU_CENTRAL_1"];

/// Multi-region keys from the environment: with `QSTASH_REGION` set, one
/// pair per region that has keys; the primary region must be one of them.
fn env_regions(
    var: &impl Fn(&str) -> Option<Secret>,
    primary: &str,
    errors: &mut Vec<ConfigError>,
) -> HashMap<String, KeyPair> {
    let primary = normalize_region(primary);
    let mut names: Vec<String> = KNOWN_REGIONS.iter().map(|r| (*r).to_owned()).collect();
    if !names.contains(&primary) {
        names.push(primary.clone());
    }
    let mut regions = HashMap::new();
    for region in names {
        let keys = [
            format!("{region}_{ENV_CURRENT}"),
            format!("{region}_{ENV_NEXT}"),
        ];
        let (current, next) = (var(&keys[0]), var(&keys[1]));
        check_pair(
            [&keys[0], &keys[1]],
            current.as_ref(),
            next.as_ref(),
            errors,
        );
        if let Some(p) = pair(current, next) {
            regions.insert(region, p);
        }
    }
    if !regions.contains_key(&primary) {
        errors.push(ConfigError {
            key: ENV_REGION.into(),
            problem: format!(
                "names region {primary}, which has no keys: set {primary}_{ENV_CURRENT} and {primary}_{ENV_NEXT}"
            ),
        });
    }
    regions
}

/// A pair when both keys are present and non-empty.
/// Longest signing key a refreshing source (key directory, keys API) may
/// hand over. QStash keys are about 30 characters; anything much longer is
/// not a key but a wrong file or a broken answer.
pub const MAX_KEY_BYTES: usize = 1024;

/// True when `key` can be a single signing key from a refreshing source:
/// non-empty, at most [`MAX_KEY_BYTES`], printable ASCII without spaces.
pub(crate) fn is_single_key(key: &[u8]) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && key.iter().all(u8::is_ascii_graphic)
}

pub(crate) fn pair(current: Option<Secret>, next: Option<Secret>) -> Option<KeyPair> {
    Some(KeyPair {
        current: SigningKey::new(current?)?,
        next: SigningKey::new(next?)?,
    })
}

fn key_set(pair: Option<KeyPair>, source: KeySource, now: SystemTime) -> KeySet {
    KeySet {
        default: pair,
        regions: HashMap::new(),
        source,
        loaded_at: now,
    }
}

/// Builds the start-up snapshot. The default key set comes from `--dev` (the
/// public dev keys), else `QSTASH_*` variables (per region with
/// `QSTASH_REGION`), else the file; named sets from the file. `env` looks a
/// variable up (empty counts as unset).
pub fn initial_snapshot(
    keys: &KeySettings,
    env: impl Fn(&str) -> Option<String>,
    dev: bool,
    now: SystemTime,
) -> Result<KeySnapshot, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(Secret::from);
    let (env_current, env_next) = (var(ENV_CURRENT), var(ENV_NEXT));
    check_pair(
        [ENV_CURRENT, ENV_NEXT],
        env_current.as_ref(),
        env_next.as_ref(),
        &mut errors,
    );

    let default = if dev {
        key_set(
            pair(
                Some(Secret::new(DEV_CURRENT_SIGNING_KEY)),
                Some(Secret::new(DEV_NEXT_SIGNING_KEY)),
            ),
            KeySource::Dev,
            now,
        )
    } else if let Some(primary) = env(ENV_REGION).filter(|v| !v.is_empty()) {
        let regions = env_regions(&var, &primary, &mut errors);
        let default = pair(env_current, env_next)
            .or_else(|| regions.get(&normalize_region(&primary)).cloned());
        KeySet {
            default,
            regions,
            source: KeySource::Environment,
            loaded_at: now,
        }
    } else if env_current.is_some() || env_next.is_some() {
        key_set(pair(env_current, env_next), KeySource::Environment, now)
    } else {
        key_set(
            pair(keys.current.clone(), keys.next.clone()),
            KeySource::ConfigFile,
            now,
        )
    };
    let mut sets = HashMap::from([(DEFAULT_KEY_SET.to_owned(), default)]);
    for (name, p) in &keys.sets {
        let set = key_set(
            pair(p.current.clone(), p.next.clone()),
            KeySource::ConfigFile,
            now,
        );
        sets.insert(name.clone(), set);
    }
    if errors.is_empty() {
        Ok(KeySnapshot::new(sets))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn environment_fills_the_default_set() {
        let snap = initial_snapshot(
            &KeySettings::default(),
            env(&[(ENV_CURRENT, "c"), (ENV_NEXT, "n")]),
            false,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let p = snap.pair("", "").unwrap();
        assert_eq!(p.current.secret(), &Secret::new("c"));
        assert_eq!(
            snap.get(DEFAULT_KEY_SET).unwrap().source,
            KeySource::Environment
        );
    }

    #[test]
    fn no_keys_means_no_pair() {
        let snap = initial_snapshot(
            &KeySettings::default(),
            env(&[]),
            false,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        assert!(!snap.has_keys());
    }

    #[test]
    fn half_a_pair_is_an_error() {
        let errors = initial_snapshot(
            &KeySettings::default(),
            env(&[(ENV_CURRENT, "c")]),
            false,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap_err();
        assert_eq!(errors[0].key, ENV_NEXT);
    }

    #[test]
    fn regions_from_the_environment() {
        let snap = initial_snapshot(
            &KeySettings::default(),
            env(&[
                (ENV_REGION, "us-east-1"),
                ("US_EAST_1_QSTASH_CURRENT_SIGNING_KEY", "uc"),
                ("US_EAST_1_QSTASH_NEXT_SIGNING_KEY", "un"),
                ("EU_CENTRAL_1_QSTASH_CURRENT_SIGNING_KEY", "ec"),
                ("EU_CENTRAL_1_QSTASH_NEXT_SIGNING_KEY", "en"),
            ]),
            false,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let eu = snap.pair("", "EU-CENTRAL-1").unwrap();
        assert_eq!(eu.current.secret(), &Secret::new("ec"));
        let primary = snap.pair("", "").unwrap();
        assert_eq!(primary.current.secret(), &Secret::new("uc"));
        assert_eq!(
            snap.pair("", "ap-south-1").unwrap_err(),
            super::super::KeyLookupError::UnknownRegion
        );
    }

    #[test]
    fn a_primary_region_without_keys_is_an_error() {
        let errors = initial_snapshot(
            &KeySettings::default(),
            env(&[
                (ENV_REGION, "EU_CENTRAL_1"),
                ("US_EAST_1_QSTASH_CURRENT_SIGNING_KEY", "uc"),
                ("US_EAST_1_QSTASH_NEXT_SIGNING_KEY", "un"),
            ]),
            false,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, ENV_REGION);
    }

    #[test]
    fn dev_uses_the_public_dev_keys() {
        let snap = initial_snapshot(
            &KeySettings::default(),
            env(&[]),
            true,
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        let p = snap.pair("", "").unwrap();
        assert_eq!(p.current.secret(), &Secret::new(DEV_CURRENT_SIGNING_KEY));
        assert_eq!(p.next.secret(), &Secret::new(DEV_NEXT_SIGNING_KEY));
    }
}
