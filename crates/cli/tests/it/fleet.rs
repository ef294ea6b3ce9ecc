//! The fleet end to end: the shipped nginx routing (deploy/nginx) in front of three real
//! `callfunnel serve` processes sharing PostgreSQL, Redis and MongoDB. Inbound Twilio calls
//! come in through nginx and are talked to by the scripted caller.
//! - A call's media WebSocket lands on the node its call id hashes to, every time.
//! - Killing a node (SIGKILL) cuts only its calls. The other calls finish normally, a new call
//!   meant for the dead node is taken by another, and the dead node's leases expire.
//! - The API on any node hangs up a call that another node runs.
//! - SIGTERM drains a node: it is no longer ready and its new calls go elsewhere. Its live call
//!   finishes, its timeline is in MongoDB, and it exits 0.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callfunnel_data::TimelineStore;
use callfunnel_data::hot::{HotState, RedisHotState};
use callfunnel_data::timeline::{MongoTimeline, Retention};
use callfunnel_media::caller::{self, CallerOptions, CallerReport, Script};
use tokio::task::JoinHandle;

use super::console_api::read_events_until;
use super::stores::service_env;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn nginx_binary() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).find(|f| f.is_file()))
        .unwrap_or_default();
    found.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.is_file())).expect("nginx is not installed: run `make test` (scripts/check-deploy.sh installs it)")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Node {
    id: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Node {
    fn upstream(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success(), "kill {sig} {}", self.id);
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Three nodes and nginx; everything is killed on drop (a failed test leaves nothing running).
struct Fleet {
    dir: PathBuf,
    nodes: Vec<Node>,
    nginx: Child,
    front: String,
    http: reqwest::Client,
    /// A tenant-admin token every node accepts (they share the dev issuer's key).
    token: String,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
        // SIGTERM: the master stops its workers too (SIGKILL would leave them running)
        let _ = Command::new("kill").args(["-TERM", &self.nginx.id().to_string()]).status();
        let t = Instant::now();
        while self.nginx.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.nginx.kill();
        let _ = self.nginx.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            for n in &self.nodes {
                eprintln!("--- {} (last lines of {}):\n{}", n.id, n.log.display(), n.log_tail());
            }
        }
    }
}

struct Shared {
    tenant: String,
    prefix: String,
    mongo_db: String,
}

fn node_config(dir: &Path, i: usize, port: u16, front: u16, s: &Shared) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:{port}"
public_host = "127.0.0.1:{front}"
public_ws_scheme = "ws"
drain_timeout_s = 120
[data]
dir = "{data}"
[agents]
dir = "{agents}"
default_tenant = "{tenant}"
[stores]
postgres_url = "{pg}"
mongodb_uri = "{mongo}"
mongodb_database = "{db}"
redis_url = "{redis}"
redis_prefix = "{prefix}"
node_id = "node-{i}"
lease_ttl_s = 3
"#,
        data = dir.join(format!("node-{i}")).display(),
        agents = repo().join("agents").display(),
        tenant = s.tenant,
        pg = service_env("CF_TEST_POSTGRES_URL"),
        mongo = service_env("CF_TEST_MONGO_URI"),
        db = s.mongo_db,
        redis = service_env("CF_TEST_REDIS_URL"),
        prefix = s.prefix,
    )
}

async fn start_fleet(s: &Shared) -> Fleet {
    let dir = std::env::temp_dir().join(format!("cf-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let front = free_port();
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    for i in 1..=3 {
        std::fs::write(dir.join(format!("node-{i}.toml")), node_config(&dir, i, ports[i - 1], front, s)).unwrap();
    }
    // one API signing key for the fleet: made by `callfunnel token` for node-1, copied to the others
    let out = Command::new(env!("CARGO_BIN_EXE_callfunnel")).arg("--config").arg(dir.join("node-1.toml")).args(["token", "--tenant", &s.tenant]).output().unwrap();
    assert!(out.status.success(), "callfunnel token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for i in 2..=3 {
        let to = dir.join(format!("node-{i}/auth"));
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(dir.join("node-1/auth")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let port = ports[i - 1];
        let cfg = dir.join(format!("node-{i}.toml"));
        let log = dir.join(format!("node-{i}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_callfunnel"))
            .arg("--config")
            .arg(&cfg)
            .arg("serve")
            // every node of a fleet shares the media-token secret: a stream URL minted by one
            // node's webhook is checked by whichever node the stream reaches
            .env("CALLFUNNEL_CALL_TOKEN_SECRET", "fleet-test-call-token-secret-0123456789")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        nodes.push(Node { id: format!("node-{i}"), port, child, log });
    }
    let ngx = dir.join("nginx");
    let ports: Vec<String> = std::iter::once(front).chain(nodes.iter().map(|n| n.port)).map(|p| p.to_string()).collect();
    let rendered = Command::new(repo().join("deploy/nginx/render-test-3nodes.sh")).arg(&ngx).args(&ports).status().unwrap();
    assert!(rendered.success(), "render-test-3nodes.sh failed");
    let nginx = Command::new(nginx_binary())
        .arg("-p")
        .arg(format!("{}/", ngx.display()))
        .arg("-c")
        .arg(ngx.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut fleet = Fleet { dir, nodes, nginx, front: format!("127.0.0.1:{front}"), http: reqwest::Client::new(), token };
    // every node ready (its models loaded), and nginx in front
    let t = Instant::now();
    for i in 0..3 {
        loop {
            let url = format!("http://{}/readyz", fleet.nodes[i].upstream());
            if fleet.http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                break;
            }
            if let Ok(Some(st)) = fleet.nodes[i].child.try_wait() {
                panic!("{} exited at start ({st}):\n{}", fleet.nodes[i].id, fleet.nodes[i].log_tail());
            }
            assert!(t.elapsed() < Duration::from_secs(300), "{} not ready after 300 s", fleet.nodes[i].id);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    while fleet.http.get(format!("http://{}/healthz", fleet.front)).send().await.is_err() {
        assert!(t.elapsed() < Duration::from_secs(310), "nginx does not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet
}

impl Fleet {
    fn node(&self, id: &str) -> &Node {
        self.nodes.iter().find(|n| n.id == id).unwrap()
    }

    fn node_of_upstream(&self, upstream: &str) -> Option<String> {
        self.nodes.iter().find(|n| n.upstream() == upstream).map(|n| n.id.clone())
    }

    /// The upstreams nginx used for `call`'s media path, from its access log (one entry per
    /// request: `addr`, or `addr1, addr2` when it moved on to a second node).
    fn logged_upstreams(&self, call: &str) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("nginx/logs/access.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(&format!("/twilio/media/{call}/-")))
            .filter_map(|l| Some(l.split(" upstream=").nth(1)?.split(" upstream_status=").next()?.to_string()))
            .collect()
    }

    /// An inbound call through nginx: the TwiML's stream URL.
    async fn incoming(&self, sid: &str) -> String {
        let body = format!("CallSid={sid}&AccountSid=AC1&From=%2B15550123&To=%2B15550199&CallStatus=ringing");
        let r = self.http.post(format!("http://{}/twilio/voice", self.front)).header("content-type", "application/x-www-form-urlencoded").body(body).send().await.unwrap();
        assert_eq!(r.status(), 200, "inbound webhook through nginx");
        let twiml = r.text().await.unwrap();
        let start = twiml.find("url=\"").unwrap_or_else(|| panic!("no stream url in {twiml}")) + 5;
        let end = start + twiml[start..].find('"').unwrap();
        let url = twiml[start..end].replace("&amp;", "&");
        assert!(url.starts_with(&format!("ws://{}/twilio/media/{sid}/", self.front)), "the stream goes through nginx: {url}");
        url
    }
}

const LONG: &str = "[call]\nmax_call_secs = 150\n[[line]]\nsay = \"Hello, I would like to book an appointment\"\n[[line]]\nsay = \"Goodbye\"\npause_ms = 8000\n";
const SHORT: &str = "[call]\nmax_call_secs = 150\n[[line]]\nsay = \"Hello\"\n[[line]]\nsay = \"Goodbye\"\n";

/// Runs the scripted caller on a stream URL.
fn talk(url: String, sid: &str, script: &str) -> JoinHandle<CallerReport> {
    let script = Script::from_toml(script).unwrap();
    let opts = CallerOptions { call_sid: Some(sid.to_string()), ..CallerOptions::new(url) };
    tokio::spawn(async move { caller::run(&script, &opts).await.expect("caller") })
}

async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, limit: Duration, mut f: F) {
    let t = Instant::now();
    while !f().await {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ended_normally(tl: &MongoTimeline, tenant: &str, call: &str) {
    let mut ev = Vec::new();
    wait_until(&format!("{call}'s call_ended in MongoDB"), Duration::from_secs(30), async || {
        ev = tl.timeline(tenant, call).await.unwrap();
        ev.iter().any(|e| e.kind == "call_ended")
    })
    .await;
    let end = ev.iter().find(|e| e.kind == "call_ended").unwrap();
    assert_eq!(end.data["end"], "agent_ended", "{call} ended by its script: {:?}", end.data);
    assert!(ev.iter().any(|e| e.kind == "transcript"), "{call}: the caller was heard");
}

fn heard_every_reply(r: &CallerReport) -> bool {
    r.lines.len() == 2 && r.lines.iter().all(|l| l.reply_after_ms.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_sticky_media_node_loss_and_drain() {
    let run = std::process::id();
    let shared = Shared { tenant: format!("fleet{run}"), prefix: format!("cf-fleet-{run}"), mongo_db: format!("cf_fleet_{run}") };
    let mut fleet = start_fleet(&shared).await;
    let hot = RedisHotState::connect(&service_env("CF_TEST_REDIS_URL"), &shared.prefix).await.unwrap();
    let timelines = MongoTimeline::connect(&format!("{}/?serverSelectionTimeoutMS=5000", service_env("CF_TEST_MONGO_URI")), &shared.mongo_db, Retention::default()).await.unwrap();

    // 1. Sticky media routing: each call id's media path goes to one node, every time (three
    //    tries each, as reconnects would), and the ids spread over the three nodes.
    let mut by_node: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for k in 0..40 {
        let sid = format!("CAfleet{run}x{k}");
        for _ in 0..3 {
            let r = fleet.http.get(format!("http://{}/twilio/media/{sid}/probe", fleet.front)).send().await.unwrap();
            assert_ne!(r.status().as_u16(), 502, "every node is up");
        }
        // nginx logs a request just after answering it
        let mut ups = Vec::new();
        wait_until(&format!("three requests logged for {sid}"), Duration::from_secs(5), async || {
            ups = fleet.logged_upstreams(&sid);
            ups.len() >= 3
        })
        .await;
        assert_eq!(ups.len(), 3, "{sid}: {ups:?}");
        assert!(ups.iter().all(|u| u == &ups[0]), "{sid} went to several nodes: {ups:?}");
        let node = fleet.node_of_upstream(&ups[0]).unwrap_or_else(|| panic!("unknown upstream {}", ups[0]));
        by_node.entry(node).or_default().push(sid);
        if by_node.len() == 3 && by_node.values().all(|v| v.len() >= 3) {
            break;
        }
    }
    assert!(by_node.len() == 3 && by_node.values().all(|v| v.len() >= 3), "the hash spreads call ids over the nodes: {by_node:?}");
    let mut pick = |node: &str| by_node.get_mut(node).unwrap().remove(0);

    // 2. One long call per node; each call's media lands on the node its id hashes to.
    let calls: Vec<(String, String)> = ["node-1", "node-2", "node-3"].iter().map(|n| (n.to_string(), pick(n))).collect();
    let mut talks = HashMap::new();
    for (node, sid) in &calls {
        let url = fleet.incoming(sid).await;
        talks.insert(sid.clone(), (node.clone(), talk(url, sid, LONG)));
    }
    for (node, sid) in &calls {
        wait_until(&format!("{sid} live on {node}"), Duration::from_secs(60), async || hot.call_node(sid).await.unwrap().as_deref() == Some(node.as_str())).await;
    }
    assert_eq!(hot.active_calls_total().await.unwrap(), 3);

    // 3. node-3 dies mid-call.
    let dead = fleet.nodes.iter_mut().find(|n| n.id == "node-3").unwrap();
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    // a new call meant for node-3 is taken by a live node
    let orphan = pick("node-3");
    let url = fleet.incoming(&orphan).await;
    let orphan_talk = talk(url, &orphan, SHORT);
    wait_until("the dead node's lease expires", Duration::from_secs(20), async || hot.active_calls_node("node-3").await.unwrap() == 0).await;
    let (_, cut) = talks.remove(&calls[2].1).unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(30), cut).await.expect("the cut call's caller notices").unwrap();
    assert!(cut.ended_by.starts_with("connection error") || cut.ended_by == "agent closed the stream", "{:?}", cut.ended_by);
    assert!(!heard_every_reply(&cut), "node-3's call was cut: {cut:?}");
    for (node, sid) in &calls[..2] {
        let (_, t) = talks.remove(sid).unwrap();
        let r = tokio::time::timeout(Duration::from_secs(120), t).await.expect("the call ends").unwrap();
        assert_eq!(r.ended_by, "agent closed the stream", "{sid} on {node}");
        assert!(heard_every_reply(&r), "{sid} on {node} was not affected: {r:?}");
        ended_normally(&timelines, &shared.tenant, sid).await;
    }
    let r = tokio::time::timeout(Duration::from_secs(120), orphan_talk).await.expect("the re-routed call ends").unwrap();
    assert!(heard_every_reply(&r), "{r:?}");
    ended_normally(&timelines, &shared.tenant, &orphan).await;
    let took = fleet.logged_upstreams(&orphan).last().and_then(|u| fleet.node_of_upstream(u.rsplit(", ").next().unwrap()));
    assert!(matches!(took.as_deref(), Some("node-1" | "node-2")), "a live node took the re-routed call: {took:?}");
    wait_until("no lease left", Duration::from_secs(10), async || hot.active_calls_total().await.unwrap() == 0).await;

    // 4. The API of node-1 hangs up a call that node-2 runs, and node-1's live events (what
    //    the console watches) carry that call's events, passed on by node-2.
    let remote = pick("node-2");
    let watch = fleet.http.get(format!("http://{}/v1/calls/events?call_id={remote}", fleet.node("node-1").upstream())).bearer_auth(&fleet.token).send().await.unwrap();
    assert_eq!(watch.status(), 200);
    let watched = tokio::spawn(read_events_until(watch, Duration::from_secs(120), |got| got.iter().any(|e| e["kind"] == "call_ended")));
    // node-1 listens to the other nodes before it raises the flag that starts them
    wait_until("node-1 asks the fleet for live events", Duration::from_secs(5), async || hot.flag("_live_watched").await.unwrap()).await;
    let url = fleet.incoming(&remote).await;
    let remote_talk = talk(url, &remote, LONG);
    wait_until("the call is live on node-2", Duration::from_secs(60), async || hot.call_node(&remote).await.unwrap().as_deref() == Some("node-2")).await;
    let api = |node: &str, path: String| fleet.http.post(format!("http://{}{path}", fleet.node(node).upstream())).bearer_auth(&fleet.token).send();
    let r = api("node-1", format!("/v1/calls/{remote}/hangup")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((body["hung_up"].as_bool(), body["node"].as_str()), (Some(true), Some("node-2")), "{body}");
    let r = tokio::time::timeout(Duration::from_secs(20), remote_talk).await.expect("the hung-up call ends at once").unwrap();
    assert_eq!(r.ended_by, "agent closed the stream");
    let mut ev = Vec::new();
    wait_until("the hang-up in the timeline", Duration::from_secs(30), async || {
        ev = timelines.timeline(&shared.tenant, &remote).await.unwrap();
        ev.iter().any(|e| e.kind == "call_ended")
    })
    .await;
    assert!(ev.iter().any(|e| e.kind == "hangup_api" && e.data["engine_stopped"] == true), "node-2 stopped the call");
    let seen = tokio::time::timeout(Duration::from_secs(10), watched).await.expect("node-1's watcher hears the call end").unwrap();
    let kinds: Vec<&str> = seen.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"hangup_api") && kinds.contains(&"call_ended"), "node-1's live events of node-2's call: {kinds:?}");
    assert!(seen.iter().all(|e| e["call_id"] == remote.as_str()), "only the watched call");
    let r = api("node-1", format!("/v1/calls/{remote}/hangup")).await.unwrap();
    assert_eq!(r.status(), 404, "an ended call is not active anywhere");
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "call_not_active");

    // 5. node-1 drains (SIGTERM) while a call runs on it.
    let long = pick("node-1");
    let url = fleet.incoming(&long).await;
    let long_talk = talk(url, &long, LONG);
    wait_until("the call is live on node-1", Duration::from_secs(60), async || hot.call_node(&long).await.unwrap().as_deref() == Some("node-1")).await;
    fleet.node("node-1").signal("-TERM");
    let ready = format!("http://{}/readyz", fleet.node("node-1").upstream());
    wait_until("node-1 is not ready", Duration::from_secs(10), async || fleet.http.get(&ready).send().await.is_ok_and(|r| r.status() == 503)).await;
    // a new call through nginx, its id hashing to the draining node: taken by node-2
    let late = pick("node-1");
    let url = fleet.incoming(&late).await;
    let late_talk = talk(url, &late, SHORT);
    wait_until("the new call is live on node-2", Duration::from_secs(60), async || hot.call_node(&late).await.unwrap().as_deref() == Some("node-2")).await;
    let r = tokio::time::timeout(Duration::from_secs(120), long_talk).await.expect("the draining node's call ends").unwrap();
    assert_eq!(r.ended_by, "agent closed the stream");
    assert!(heard_every_reply(&r), "the drain did not cut the call: {r:?}");
    let t = Instant::now();
    let status = loop {
        let n = fleet.nodes.iter_mut().find(|n| n.id == "node-1").unwrap();
        if let Some(st) = n.child.try_wait().unwrap() {
            break st;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "node-1 still running 60 s after its last call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "node-1 exits 0 after draining: {status}");
    ended_normally(&timelines, &shared.tenant, &long).await;
    let r = tokio::time::timeout(Duration::from_secs(120), late_talk).await.expect("the new call ends").unwrap();
    assert!(heard_every_reply(&r), "{r:?}");
    ended_normally(&timelines, &shared.tenant, &late).await;
    let log = std::fs::read_to_string(&fleet.node("node-1").log).unwrap();
    assert!(log.contains("draining"), "node-1 logged its drain");
    assert_eq!(hot.active_calls_total().await.unwrap(), 0);
}
