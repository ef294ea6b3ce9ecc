//! The configurations that deploy/ ships load in the real binary (unknown keys and invalid
//! values are refused by `Config::load`): the container image's, the systemd units', and the
//! Helm chart's rendered ConfigMap with the literal `CALLFUNNEL_*` variables its Deployment sets
//! (rendered by `scripts/check-deploy.sh render-configs`, which `make test` has installed the
//! tools for; without them that part is skipped with a message).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `callfunnel --config FILE models status` with only `env` from the CALLFUNNEL_* family.
fn loads(config: &Path, env: &[(String, String)]) -> Result<(), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callfunnel"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CALLFUNNEL_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.envs(env.iter().cloned()).arg("--config").arg(config).args(["models", "status"]).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

#[test]
fn the_image_and_systemd_configs_load() {
    for f in ["deploy/docker/callfunnel.toml", "deploy/systemd/callfunnel.toml"] {
        let path = repo().join(f);
        loads(&path, &[]).unwrap_or_else(|e| panic!("{f} does not load: {e}"));
    }
    // the check has teeth: a misspelt key is refused
    let dir = std::env::temp_dir().join(format!("cf-deploy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, std::fs::read_to_string(repo().join("deploy/systemd/callfunnel.toml")).unwrap().replace("public_host", "public_hots")).unwrap();
    assert!(loads(&bad, &[]).unwrap_err().contains("public_hots"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_helm_charts_rendered_configs_load() {
    let dir = std::env::temp_dir().join(format!("cf-deploy-helm-{}", std::process::id()));
    let status = Command::new(repo().join("scripts/check-deploy.sh")).arg("render-configs").arg(&dir).status().expect("scripts/check-deploy.sh");
    if status.code() == Some(3) {
        eprintln!("skipped: the Helm tools are not installed (run scripts/check-deploy.sh, as make test does)");
        return;
    }
    assert!(status.success(), "render-configs failed");
    for case in ["minimal", "full", "metrics-api"] {
        let env: Vec<(String, String)> = std::fs::read_to_string(dir.join(format!("{case}.env")))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        assert!(env.iter().any(|(k, _)| k == "CALLFUNNEL_TWILIO__PUBLIC_BASE"), "{case}: {env:?}");
        loads(&dir.join(format!("{case}.toml")), &env).unwrap_or_else(|e| panic!("the chart's {case} config does not load: {e}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
