//! Where the real servers are: `scripts/services.sh up` (run by `make test`) writes one env file
//! per service under ~/.cache/callfunnel/services; the process environment overrides them.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn services_dir() -> PathBuf {
    std::env::var_os("CALLFUNNEL_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/callfunnel/services"))
}

/// The value of `key` (e.g. `CF_TEST_POSTGRES_URL`); panics with the command that starts the
/// servers when it is not known: these tests never skip silently.
pub fn service_env(key: &str) -> String {
    if let Ok(v) = std::env::var(key) {
        return v;
    }
    let dir = services_dir();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "env") {
                for line in std::fs::read_to_string(e.path()).unwrap_or_default().lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        if k.trim() == key {
                            return v.trim().to_string();
                        }
                    }
                }
            }
        }
    }
    panic!("{key} is not set and no service file in {} names it: run `scripts/services.sh up` (make test does)", dir.display())
}

/// A fresh name for one test's data (tenant ids, key prefixes, buckets, collections).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x"))
}
