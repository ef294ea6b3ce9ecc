use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_callfunnel")).args(args).output().unwrap();
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

#[test]
fn every_subcommand_has_help() {
    for sub in [&["--help"][..], &["serve", "--help"], &["call", "--help"], &["demo", "--help"], &["vad", "--help"], &["models", "--help"], &["models", "fetch", "--help"]] {
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
