//! The offline demo call end to end with every real model: Silero VAD, Smart Turn, Whisper,
//! MiniLM + the clinic rule-book, Piper; over the real Twilio WebSocket with the simulated caller.

use std::process::Command;

#[test]
fn offline_demo_call_hears_answers_barges_in_and_books() {
    let dir = std::env::temp_dir().join(format!("cf-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rec = dir.join("call.wav");
    let out = Command::new(env!("CARGO_BIN_EXE_callfunnel"))
        .args(["demo", "--json", "--no-fetch", "--record"])
        .arg(&rec)
        .env("CALLFUNNEL_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let turns = r["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 6, "{r:#}");
    let heard = |i: usize| turns[i]["agent_heard"].as_str().unwrap().to_lowercase();
    let said = |i: usize| turns[i]["agent_said"].as_str().unwrap().to_string();

    // What STT heard of the caller (Whisper on 8 kHz espeak audio: key words, not every word).
    assert!(heard(0).contains("opening"), "{}", heard(0));
    assert!(heard(1).contains("book") && heard(1).contains("appointment"), "{}", heard(1));
    assert!(heard(2).contains("name is"), "{}", heard(2));
    assert!(heard(3).contains("tomorrow"), "{}", heard(3));
    assert!(heard(5).contains("goodbye") || heard(5).contains("bye"), "{}", heard(5));

    // The agent answered the hours, was cut off there, then ran the booking flow.
    assert!(said(0).starts_with("We're open"), "{}", said(0));
    assert_eq!(turns[0]["interrupted"], true);
    assert_eq!(said(1), "Sure. Can I have your name, please?");
    assert_eq!(said(2), "What day would suit you?");
    // The name is whatever Whisper made of "Priya Shah"; the date and time are exact.
    assert!(said(3).starts_with("So that's ") && said(3).contains(" at 3 PM. Shall I book it?"), "{}", said(3));
    assert!(said(4).starts_with("You're all set, "), "{}", said(4));
    let booked = r["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "tool_called").expect("booking tool not called");
    assert_eq!(booked["data"]["ok"], true);
    assert!(said(5).contains("Goodbye"), "{}", said(5));

    // Barge-in: clear sent soon after the caller started; history truncated to what was heard.
    let b = &r["barge_in"];
    assert_eq!(b["history_truncated"], true, "{b}");
    let clear_ms = b["clear_sent_ms"].as_u64().unwrap();
    assert!((300..1500).contains(&clear_ms), "clear after {clear_ms} ms");
    let (h, full) = (b["heard"].as_str().unwrap(), b["full_text"].as_str().unwrap());
    assert!(!h.is_empty() && full.starts_with(h) && h.len() < full.len(), "{h:?} / {full:?}");
    assert_eq!(said(0), h, "the interrupted turn keeps only what was heard");

    // Latency recorded per stage for the answered turns.
    let lat: Vec<&serde_json::Value> = turns.iter().filter_map(|t| t["latency_ms"].as_object().map(|_| &t["latency_ms"])).collect();
    assert_eq!(lat.len(), 6, "every answered turn has its latency: {r:#}");
    for l in lat {
        for k in ["end_of_turn", "stt", "brain_first_token", "tts_first_audio", "total"] {
            assert!(l[k].as_f64().is_some_and(|v| v >= 0.0), "{k} missing in {l}");
        }
    }
    assert_eq!(r["ended"]["end"], "agent_ended");
    assert_eq!(r["recording"].as_str(), Some(rec.to_str().unwrap()));
    assert!(std::fs::metadata(&rec).unwrap().len() > 500_000, "recording too short");
    // The post-call analysis of the clinic agent: the booking, read from what the caller said.
    let a = &r["analysis"];
    assert_eq!((a["analyzer"].as_str(), a["success"].as_bool(), a["extraction"]["outcome"].as_str()), (Some("local"), Some(true), Some("booked")), "{a}");
    assert!(a["extraction"]["appointment_time"].as_str().is_some_and(|t| t.ends_with(":00")), "{a}");
    assert!(a["summary"].as_str().unwrap().contains("book"), "{a}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same call through the cloud adapters (Deepgram, Claude, Cartesia) against the locally
/// started simulators: what the caller said arrives word for word, the simulated model calls
/// the booking tool, barge-in cancels the Claude stream and the Cartesia context.
#[test]
fn cloud_demo_call_runs_on_the_provider_simulators() {
    let dir = std::env::temp_dir().join(format!("cf-cloud-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_callfunnel"))
        .args(["demo", "--providers", "cloud", "--json", "--no-fetch", "--record"])
        .arg(dir.join("call.wav"))
        .env("CALLFUNNEL_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}\n{stdout}");
    assert!(!stderr.contains("failover"), "no provider failed: {stderr}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    let turns = r["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 6, "{r:#}");
    let story = || -> String {
        let tl: Vec<String> = r["timeline"].as_array().unwrap().iter().filter(|e| ["call_started", "transcript", "agent_turn_started", "agent_said", "barge_in", "call_ended"].contains(&e["kind"].as_str().unwrap_or_default())).map(|e| format!("{} {} {}", e["at_ms"], e["kind"], e["data"]["text"].as_str().unwrap_or_default())).collect();
        format!("turns: {:#}\ntimeline:\n{}\nstderr: {stderr}", r["turns"], tl.join("\n"))
    };
    for t in turns {
        assert_eq!(t["agent_heard"], t["caller_said"], "the STT simulator transcribes each utterance exactly: {t}\n{}", story());
    }
    let events = r["timeline"].as_array().unwrap();
    let started = events.iter().find(|e| e["kind"] == "call_started").unwrap();
    assert_eq!((started["data"]["stt"].as_str(), started["data"]["tts"].as_str(), started["data"]["brain"].as_str()), (Some("deepgram"), Some("cartesia"), Some("anthropic")));
    let tool = events.iter().find(|e| e["kind"] == "tool_called").expect("the booking tool was called");
    assert_eq!(tool["data"]["name"], "book_appointment");
    assert_eq!(tool["data"]["ok"], true);
    assert!(events.iter().any(|e| e["kind"] == "brain_usage" && e["data"]["usage"]["cache_read_input_tokens"].as_u64() > Some(0)), "the prompt cache was read on later turns");
    let b = &r["barge_in"];
    assert_eq!(b["history_truncated"], true, "{b}");
    assert!(turns[5]["agent_said"].as_str().unwrap().contains("Goodbye"));
}
