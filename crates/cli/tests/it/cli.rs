use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_callfunnel")).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn every_subcommand_has_help() {
    for sub in [&["--help"][..], &["serve", "--help"], &["call", "--help"], &["demo", "--help"], &["vad", "--help"], &["models", "--help"], &["models", "fetch", "--help"], &["token", "--help"], &["kb", "ingest", "--help"]] {
        let (ok, out, _) = run(sub);
        assert!(ok && out.contains("Usage:"), "{sub:?}: {out}");
    }
}

#[test]
fn bad_input_gets_a_clear_error() {
    let (ok, _, err) = run(&["call", "--url", "http://x", "--script", "nope.toml"]);
    assert!(!ok && err.contains("ws:// or wss://"), "{err}");
    let (ok, _, err) = run(&["call", "--url", "ws://127.0.0.1:9/twilio/media/x", "--script", "/nonexistent/script.toml"]);
    assert!(!ok && err.contains("cannot read script"), "{err}");
    let (ok, _, err) = run(&["--config", "/nonexistent/c.toml", "models", "status"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = run(&["vad", "/nonexistent.wav"]);
    assert!(!ok && err.contains("cannot read WAV"), "{err}");
    let (ok, _, err) = run(&["vad", "x.wav", "--rate", "44100"]);
    assert!(!ok && err.contains("8000 or 16000"), "{err}");
}

#[test]
fn vad_prints_speech_probabilities() {
    let dir = std::env::temp_dir().join(format!("cf-vad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("hello.wav");
    assert!(Command::new("espeak-ng").args(["-w"]).arg(&wav).arg("Hello, this is a test of the voice activity detector.").status().unwrap().success());
    let (ok, out, err) = run(&["vad", wav.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["frame_ms"], 32.0);
    let p: Vec<f64> = v["frames"].as_array().unwrap().iter().map(|f| f["p"].as_f64().unwrap()).collect();
    assert!(p.iter().filter(|&&x| x > 0.5).count() > p.len() / 3, "{p:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `callfunnel token` mints with the key a server on the same data directory verifies with.
#[tokio::test]
async fn cli_tokens_open_the_api_of_a_server_on_the_same_data_dir() {
    let dir = std::env::temp_dir().join(format!("cf-token-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("c.toml");
    std::fs::write(&conf, format!("[data]\ndir = {:?}\ntimeline = \"memory\"\n[server]\npreload_models = false\n", dir.join("data"))).unwrap();
    let (ok, token, err) = run(&["--config", conf.to_str().unwrap(), "token", "--tenant", "default", "--role", "viewer"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["--config", conf.to_str().unwrap(), "token", "--role", "viewer"]);
    assert!(!ok && err.contains("--tenant is required"), "{err}");
    let (ok, _, err) = run(&["--config", conf.to_str().unwrap(), "token", "--tenant", "default", "--role", "boss"]);
    assert!(!ok && err.contains("--role must be"), "{err}");
    let mut cfg = callfunnel_control::Config::load(Some(&conf)).unwrap();
    cfg.server.listen = ([127, 0, 0, 1], 0).into();
    let stop = tokio_util::sync::CancellationToken::new();
    let s = callfunnel_control::Server::start(cfg, stop.clone()).await.unwrap();
    let me: serde_json::Value = reqwest::Client::new().get(format!("http://{}/v1/me", s.addr)).bearer_auth(token.trim()).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["tenant"].as_str(), me["role"].as_str(), me["via"].as_str()), (Some("default"), Some("viewer"), Some("jwt")), "{me}");
    let disco: serde_json::Value = reqwest::get(format!("http://{}/dev/oidc/.well-known/openid-configuration", s.addr)).await.unwrap().json().await.unwrap();
    assert!(disco["jwks_uri"].as_str().unwrap().ends_with("/dev/oidc/certs"), "{disco}");
    let jwks: serde_json::Value = reqwest::get(format!("http://{}/dev/oidc/certs", s.addr)).await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    stop.cancel();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `callfunnel kb ingest` indexes a directory (a second run skips what did not change) and
/// `kb search` finds the answer; bad input is named.
#[test]
fn kb_ingest_and_search_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("cf-kb-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("c.toml");
    std::fs::write(&conf, format!("[data]\ndir = {:?}\n", dir.join("data"))).unwrap();
    let c = conf.to_str().unwrap();
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/clinic-kb");
    let (ok, out, err) = run(&["--config", c, "kb", "ingest", docs, "--agent", "clinic"]);
    assert!(ok, "{err}");
    assert!(out.contains("11 documents indexed") && out.contains("0 unchanged, 0 skipped"), "10 Markdown documents and a PDF: {out}");
    let (ok, out, err) = run(&["--config", c, "kb", "ingest", docs, "--agent", "clinic"]);
    assert!(ok && out.contains("0 documents indexed") && out.contains("11 unchanged"), "{out}{err}");
    let (ok, out, err) = run(&["--config", c, "kb", "search", "--kb", "clinic", "where can I park?"]);
    assert!(ok && out.lines().next().unwrap_or_default().contains("[parking]"), "{out}{err}");
    let (ok, out, err) = run(&["--config", c, "kb", "search", "--kb", "clinic", "can I bring my dog?"]);
    assert!(ok && out.lines().next().unwrap_or_default().contains("[visitor-policy]") && out.contains("assistance dogs"), "from the PDF: {out}{err}");
    // a folder with a damaged PDF: it is skipped with the reason, the rest is indexed
    let folder = dir.join("docs");
    std::fs::create_dir_all(folder.join("policies")).unwrap();
    let pdf = std::fs::read(format!("{docs}/visitor-policy.pdf")).unwrap();
    std::fs::write(folder.join("policies/Visitors.PDF"), &pdf).unwrap();
    std::fs::write(folder.join("broken.pdf"), &pdf[..pdf.len() / 3]).unwrap();
    std::fs::write(folder.join("notes.csv"), "not, a, document").unwrap();
    let (ok, out, err) = run(&["--config", c, "kb", "ingest", folder.to_str().unwrap(), "--kb", "policies"]);
    assert!(ok && out.contains("1 documents indexed") && out.contains("1 skipped"), "{out}{err}");
    assert!(err.contains("broken.pdf") && err.contains("pdf_unreadable"), "{err}");
    let (ok, out, err) = run(&["--config", c, "kb", "search", "--kb", "policies", "do you have interpreters?"]);
    assert!(ok && out.lines().next().unwrap_or_default().contains("[policies-visitors]"), "{out}{err}");
    let (ok, _, err) = run(&["--config", c, "kb", "ingest", "/nonexistent/docs", "--kb", "x"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (ok, _, err) = run(&["--config", c, "kb", "ingest", docs]);
    assert!(!ok && err.contains("--kb ID or --agent ID"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
