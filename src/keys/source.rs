//! Key sources that are read once at start: environment, configuration file,
//! and the public dev-server keys.

use std::{collections::HashMap, time::SystemTime};

use super::{DEFAULT_KEY_SET, KeyPair, KeySet, KeySnapshot, KeySource, SigningKey};
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

fn pair(current: Option<Secret>, next: Option<Secret>) -> Option<KeyPair> {
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
/// public dev keys), else `QSTASH_*` variables, else the file; named sets from
/// the file. `env` looks a variable up (empty counts as unset).
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
