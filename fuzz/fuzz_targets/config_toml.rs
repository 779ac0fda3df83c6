//! Configuration files: loading and validating arbitrary TOML never panics,
//! and no error message repeats a key's value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("signet-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("signet.toml");
    if std::fs::write(&path, text).is_err() {
        return;
    }
    if let Ok(settings) = signet::config::load(Some(&path), Vec::new()) {
        let _ = settings.validate();
    }
});
