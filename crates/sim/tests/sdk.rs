//! Each simulator checked by its vendor's official SDK from PyPI (tests/sdk/check_*.py): the SDK,
//! pointed at the simulator, must connect, stream and parse everything without error. The SDKs
//! live in a venv made by `scripts/sdk-venv.sh` (`make test` runs it first).

use std::path::PathBuf;
use std::process::Command;

use callfunnel_sim::{Provider, SimConfig, start};

fn python() -> PathBuf {
    let venv = std::env::var_os("CALLFUNNEL_SDK_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/callfunnel/sdk-venv"));
    let py = venv.join("bin/python");
    assert!(py.exists(), "the provider SDK venv is missing at {}: run scripts/sdk-venv.sh (make test does)", venv.display());
    py
}

async fn check(provider: Provider, script: &str) {
    let sim = start(provider, ([127, 0, 0, 1], 0).into(), SimConfig::default()).await.unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk");
    let py = python();
    let url = sim.url();
    let script = script.to_string();
    let out = tokio::task::spawn_blocking(move || Command::new(py).arg(&script).arg(url).current_dir(dir).output().expect("run python")).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{provider} SDK check failed:\n{text}");
    assert!(text.contains("SDK: ok"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_streams_and_parses_everything() {
    check(Provider::Anthropic, "check_anthropic.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deepgram_sdk_streams_and_parses_everything() {
    check(Provider::Deepgram, "check_deepgram.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cartesia_sdk_streams_and_parses_everything() {
    check(Provider::Cartesia, "check_cartesia.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sarvam_sdk_streams_and_parses_everything() {
    check(Provider::Sarvam, "check_sarvam.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voyage_sdk_embeds() {
    check(Provider::Voyage, "check_voyage.py").await;
}
