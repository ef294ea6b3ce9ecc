//! Graceful drain: a draining node is not ready and refuses new calls (503 `draining`) while
//! its live call finishes on its own; then it stops. And the binary: SIGTERM → exit 0.

use std::time::Duration;

use serde_json::{Value, json};

use crate::telephony::rig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_lets_its_calls_finish_and_takes_no_new_ones() {
    let rig = rig("drain", |c| c.server.drain_timeout_s = 120).await;
    let placed = rig.place(json!({"to": "+15550001"})).await;
    let id = placed["call_id"].as_str().unwrap().to_string();
    let st = rig.server.state.clone();
    for _ in 0..200 {
        if st.registry.get_active(&id).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(st.registry.get_active(&id).is_some(), "the call is live");
    let drainer = st.clone();
    let drain = tokio::spawn(async move { drainer.drain().await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ready = reqwest::get(format!("{}/readyz", rig.base)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.unwrap()["draining"], true);
    let r = rig.http.post(format!("{}/v1/calls", rig.base)).json(&json!({"to": "+15550001"})).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string())), (503, Some("1".into())));
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "draining");
    let r = reqwest::Client::new().post(format!("{}/twilio/voice", rig.base)).header("content-type", "application/x-www-form-urlencoded").body("CallSid=CAnew&To=%2B15550100").send().await.unwrap();
    assert_eq!(r.status(), 503, "a new inbound call goes to another node");
    // what is not a new call still works: the API reads, the live call's carrier callbacks
    let r = rig.http.get(format!("{}/v1/calls/{id}", rig.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(!drain.is_finished(), "the drain waits for the live call");

    let report = tokio::time::timeout(Duration::from_secs(90), drain).await.expect("the call ends within its script").unwrap();
    assert_eq!((report.live_at_start, report.cut), (1, 0), "{report:?}");
    let ev = rig.server.state.store.timeline(&rig.server.state.config.agents.default_tenant, &id).await.unwrap();
    let end = ev.iter().find(|e| e.kind == "call_ended").expect("ended");
    assert_eq!(end.data["end"], "agent_ended", "the call ended by its own script, not by the shutdown: {:?}", end.data);
    assert!(rig.server.state.shutdown.is_cancelled(), "then the server stops");
    rig.server.state.finish(Duration::from_secs(10)).await;
    rig.done();
}

#[test]
fn sigterm_drains_an_idle_server_and_exits_zero() {
    let dir = std::env::temp_dir().join(format!("cf-drain-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = dir.join("cf.toml");
    std::fs::write(&cfg, format!("[server]\nlisten = \"127.0.0.1:{port}\"\npreload_models = false\n[data]\ndir = \"{}\"\n", dir.join("data").display())).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callfunnel")).args(["--config"]).arg(&cfg).arg("serve").stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(up, "the server listens");
    let t = std::time::Instant::now();
    assert!(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "still running 20 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(log.contains("draining") && log.contains("stopped"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}
