//! Our X-Twilio-Signature against Twilio's official Python library (`twilio` from PyPI, in the
//! venv `scripts/sdk-venv.sh` makes; `make test` runs it first): for every case our signature is
//! the SDK's, the SDK accepts what we sign, and both refuse tampered URLs, parameters, bodies
//! and tokens.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use callfunnel_telephony::twilio::signature::{sign, sign_with, Algorithm, Validator};
use serde_json::{json, Value};

fn python() -> PathBuf {
    let venv = std::env::var_os("CALLFUNNEL_SDK_VENV").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/callfunnel/sdk-venv"));
    let py = venv.join("bin/python");
    assert!(py.exists(), "the SDK venv is missing at {}: run scripts/sdk-venv.sh (make test does)", venv.display());
    py
}

fn sdk(cases: &Value) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/sdk/twilio_signature.py");
    let mut child = Command::new(python()).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run python");
    child.stdin.take().unwrap().write_all(cases.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SDK script failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn our_signatures_are_twilios() {
    let form = pairs(&[("CallSid", "CA0123456789abcdef0123456789abcdef"), ("From", "+15550100"), ("To", "+15550199"), ("CallStatus", "ringing"), ("SequenceNumber", "1")]);
    let cases: Vec<(&str, &str, Vec<(String, String)>)> = vec![
        ("tok1", "https://voice.example.com/twilio/voice", form.clone()),
        ("tok1", "https://voice.example.com:443/twilio/status/c1", form.clone()),
        ("tok2", "https://voice.example.com/twilio/voice?tenant=a&x=%20y", form.clone()),
        ("tok2", "wss://voice.example.com/twilio/media/c1", vec![]),
        ("tok3", "https://h.example/x", pairs(&[("Body", "héllo wörld ✓"), ("Empty", ""), ("a", "2"), ("a", "1"), ("a", "1")])),
        ("tok3", "http://127.0.0.1:8080/twilio/voice", pairs(&[("Digits", "1234#")])),
    ];
    let mut input = Vec::new();
    for (token, url, params) in &cases {
        let ours = sign(token, url, params);
        let p: Vec<Value> = params.iter().map(|(k, v)| json!([k, v])).collect();
        input.push(json!({"token": token, "url": url, "params": p, "signature": ours}));
        // Tampered: another URL, a changed parameter, a wrong token.
        input.push(json!({"token": token, "url": format!("{url}x"), "params": p, "signature": ours}));
        let mut changed = p.clone();
        changed.push(json!(["Injected", "1"]));
        input.push(json!({"token": token, "url": url, "params": changed, "signature": ours}));
        input.push(json!({"token": "not-the-token", "url": url, "params": p, "signature": ours}));
    }
    let out = sdk(&Value::Array(input.clone()));
    for (i, (token, url, params)) in cases.iter().enumerate() {
        let ours = sign(token, url, params);
        assert_eq!(out[4 * i]["signature"], ours, "case {i}: {url}");
        assert_eq!(out[4 * i]["valid"], true, "case {i}: the SDK accepts our signature");
        let v = Validator::new(token.to_string(), None);
        assert!(v.validate(url, params, &ours));
        for (k, what) in [(1, "tampered URL"), (2, "added parameter"), (3, "wrong token")] {
            assert_eq!(out[4 * i + k]["valid"], false, "case {i}: SDK must refuse the {what}");
        }
        assert!(!v.validate(&format!("{url}x"), params, &ours));
        let mut more = params.clone();
        more.push(("Injected".into(), "1".into()));
        assert!(!v.validate(url, &more, &ours));
        assert!(!Validator::new("not-the-token".into(), None).validate(url, params, &ours));
    }
}

#[test]
fn sdk_signatures_pass_our_validator_with_and_without_ports_and_during_rotation() {
    let params = vec![json!(["CallSid", "CA1"]), json!(["From", "+1555"])];
    let urls = ["https://voice.example.com/twilio/voice", "https://voice.example.com:443/twilio/voice"];
    let input: Vec<Value> = urls.iter().map(|u| json!({"token": "old-token", "url": u, "params": params})).collect();
    let out = sdk(&Value::Array(input));
    let v = Validator::new("new-token".into(), Some("old-token".into()));
    let p = pairs(&[("CallSid", "CA1"), ("From", "+1555")]);
    for (o, signed_url) in out.iter().zip(urls) {
        let sig = o["signature"].as_str().unwrap();
        for url in urls {
            assert!(v.validate(url, &p, sig), "signed over {signed_url}, checked over {url}");
        }
    }
    assert!(!Validator::new("new-token".into(), None).validate(urls[0], &p, out[0]["signature"].as_str().unwrap()), "an expired token is refused");
}

#[test]
fn json_webhooks_match_the_sdk() {
    let body = r#"{"event":"call.completed","sid":"CA1"}"#;
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    };
    let url = format!("https://voice.example.com/hooks/events?bodySHA256={hash}");
    let sig = sign("tok", &url, &[]);
    let out = sdk(&json!([
        {"token": "tok", "url": url, "params": [], "body": body, "signature": sig},
        {"token": "tok", "url": url, "params": [], "body": body.replace("CA1", "CA2"), "signature": sig},
    ]));
    assert_eq!(out[0]["signature"], sig);
    assert_eq!((out[0]["valid"].as_bool(), out[1]["valid"].as_bool()), (Some(true), Some(false)));
    let v = Validator::new("tok".into(), None);
    assert!(v.validate_json_body(&url, body.as_bytes(), &sig));
    assert!(!v.validate_json_body(&url, body.replace("CA1", "CA2").as_bytes(), &sig));
}

#[test]
fn shared_key_hmac_sha256_matches_the_sdk() {
    let p = pairs(&[("CallSid", "CA1"), ("CallStatus", "completed")]);
    let url = "https://voice.example.com/twilio/status/c1";
    let ours = sign_with(Algorithm::HmacSha256, "wk-secret", url, &p);
    let params = vec![json!(["CallSid", "CA1"]), json!(["CallStatus", "completed"])];
    let out = sdk(&json!([{"token": "wk-secret", "url": url, "params": params, "signature": ours, "algorithm": "HMAC_SHA256"}]));
    assert_eq!(out[0]["signature"], ours);
    assert_eq!(out[0]["valid"], true);
    assert!(Validator::new("wk-secret".into(), None).validate_with(Algorithm::HmacSha256, url, &p, &ours));
}
