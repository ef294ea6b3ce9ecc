//! The web console end to end, in Debian's headless Chromium driven by playwright-core
//! (`console-tests/run.mjs`): sign in (authorization code + PKCE at the built-in issuer), watch
//! a simulated phone call appear and its transcript grow, open its detail and play the
//! recording, edit and publish an agent, talk to it from the browser through the fake
//! microphone, and check keyboard use, phone width and that nothing is fetched from elsewhere.
//! Screenshots of each page go to `target/console-artifacts/` (`$CF_ARTIFACTS`).
//! A second run (`console-tests/keycloak.mjs`) signs in at the Keycloak-shaped realm of the test
//! OIDC provider instead (server in `oidc` auth mode), as an editor and as a viewer.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use callfunnel_control::auth::AuthMode;
use callfunnel_control::{Config, Server};
use callfunnel_media::caller::{self, CallerOptions, Script};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fake microphone: a caller asking for opening hours, then silence (Chromium loops it).
fn fake_mic(dir: &Path) -> PathBuf {
    let (raw, wav) = (dir.join("mic-raw.wav"), dir.join("mic.wav"));
    let ok = std::process::Command::new("espeak-ng").args(["-s", "150", "-w"]).arg(&raw).arg("What are your opening hours?").status().is_ok_and(|s| s.success());
    assert!(ok, "espeak-ng makes the caller's voice (make test installs it)");
    let ok = std::process::Command::new("sox").arg(&raw).args(["-r", "16000", "-c", "1", "-b", "16"]).arg(&wav).args(["pad", "5", "6"]).status().is_ok_and(|s| s.success());
    assert!(ok, "sox converts the caller's voice (make test installs it)");
    wav
}

/// Two minutes of calls last month at 2 per 1 000 ms (0.24 on its invoice), for the invoice chart.
async fn last_months_usage(server: &Server) {
    use callfunnel_data::control::{Metric, Price, UsageRecord};
    let control = &server.state.stores.control;
    let tenant = server.state.config.agents.default_tenant.clone();
    control.set_price(Some(&tenant), Metric::CallMs, "*", Price { micros_per_1000_units: 2_000 }).await.unwrap();
    let month_start = callfunnel_control::admission::month_start_ms(chrono::Utc::now());
    let at = month_start - 10 * 86_400_000;
    let rec = UsageRecord { tenant_id: tenant, call_id: "last-month".into(), idempotency_key: "last-month:call_ms".into(), metric: Metric::CallMs, provider: "twilio".into(), quantity: 120_000, at_unix_ms: at };
    control.record_usage(rec).await.unwrap();
}

async fn phone_call(port: u16, server: &Server) {
    let call_id = format!("CAconsole{}", std::process::id());
    let token = server.state.auth.call_tokens.mint(&call_id);
    let script = Script::from_toml(
        "[call]\nmax_call_secs = 60\n[[line]]\nsay = \"What are your opening hours?\"\nstart_ms = 2500\n[[line]]\nsay = \"Do you have parking?\"\n[[line]]\nsay = \"Thank you, goodbye.\"\n",
    )
    .unwrap();
    let opts = CallerOptions::new(format!("ws://127.0.0.1:{port}/twilio/media/{call_id}/{token}"));
    let report = caller::run(&script, &opts).await.expect("the simulated phone call runs");
    eprintln!("simulated call {call_id}: {} ms of agent audio, ended by {}", report.agent_audio_ms, report.ended_by);
}

/// Debian's Chromium and the console tests' npm packages (both installed by `make test`).
fn browser() -> (String, PathBuf) {
    let chromium = std::env::var("CF_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: make test installs Debian's chromium (scripts/setup-system.sh)");
    let tests = repo().join("console-tests");
    assert!(tests.join("node_modules/playwright-core").exists(), "console-tests/node_modules is missing: make test runs `npm ci` there (scripts/console-deps.sh)");
    (chromium, tests)
}

/// A server on a free port with its data in a fresh `dir`.
fn server_config(dir: &Path) -> (Config, u16) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let port = crate::telephony::free_port();
    let mut cfg = Config::default();
    cfg.server.listen = ([127, 0, 0, 1], port).into();
    cfg.server.public_host = format!("127.0.0.1:{port}");
    cfg.server.public_ws_scheme = "ws".into();
    cfg.data.dir = dir.join("data");
    cfg.agents.dir = repo().join("agents");
    (cfg, port)
}

fn artifacts() -> PathBuf {
    std::env::var("CF_ARTIFACTS").map(PathBuf::from).unwrap_or_else(|_| repo().join("target/console-artifacts"))
}

fn assert_passed(status: std::process::ExitStatus, report: &[String], artifacts: &Path) {
    let failures: Vec<&String> = report.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(status.success() && failures.is_empty() && report.last().is_some_and(|l| l == "PASSED"), "browser tests failed (screenshots in {}):\n{}", artifacts.display(), report.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_watches_calls_edits_agents_and_talks() {
    let (chromium, tests) = browser();
    let dir = std::env::temp_dir().join(format!("cf-console-{}", std::process::id()));
    let (cfg, port) = server_config(&dir);
    let stop = CancellationToken::new();
    let server = Server::start(cfg, stop.clone()).await.unwrap();
    let password = std::fs::read_to_string(dir.join("data/auth/dev-password")).expect("the server made the dev sign-in password");
    last_months_usage(&server).await;
    let artifacts = artifacts();

    let mut node = tokio::process::Command::new("node")
        .arg(tests.join("run.mjs"))
        .env("CF_BASE", format!("http://127.0.0.1:{port}"))
        .env("CF_PASSWORD", password.trim())
        .env("CF_TENANT", &server.state.config.agents.default_tenant)
        .env("CF_ARTIFACTS", &artifacts)
        .env("CF_FAKE_MIC", fake_mic(&dir))
        .env("CF_CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the browser tests");
    let mut stdin = node.stdin.take().unwrap();
    let mut out = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut report = Vec::new();
    let run = async {
        while let Some(line) = out.next_line().await.unwrap() {
            eprintln!("console: {line}");
            if line == "NEED call" {
                phone_call(port, &server).await;
                stdin.write_all(b"CALL_DONE\n").await.unwrap();
                stdin.flush().await.unwrap();
            } else {
                report.push(line);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), run).await.expect("the browser tests finish within 10 minutes");
    let status = node.wait().await.unwrap();
    stop.cancel();
    assert_passed(status, &report, &artifacts);
    for name in ["sign-in", "calls-live", "call-live", "call-detail", "agent-lint", "agent-published", "talk", "knowledge", "campaigns", "usage", "phone-calls"] {
        assert!(artifacts.join(format!("{name}.png")).exists(), "screenshot {name}.png");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_at_a_keycloak_realm() {
    let (chromium, tests) = browser();
    let dir = std::env::temp_dir().join(format!("cf-console-kc-{}", std::process::id()));
    let (mut cfg, port) = server_config(&dir);
    let issuer = crate::stores::service_env("CF_TEST_OIDC_ISSUER");
    cfg.auth.mode = AuthMode::Oidc;
    cfg.auth.issuer = Some(issuer.clone());
    cfg.auth.audience = crate::stores::service_env("CF_TEST_OIDC_AUDIENCE");
    cfg.server.preload_models = false;
    let stop = CancellationToken::new();
    let server = Server::start(cfg, stop.clone()).await.unwrap();
    // the realm's users belong to acme (a platform admin creates tenants)
    server.state.stores.control.ensure_tenant("acme", "Acme").await.unwrap();
    let artifacts = artifacts().join("keycloak");

    let out = tokio::process::Command::new("node")
        .arg(tests.join("keycloak.mjs"))
        .env("CF_BASE", format!("http://127.0.0.1:{port}"))
        .env("CF_ISSUER", &issuer)
        .env("CF_ARTIFACTS", &artifacts)
        .env("CF_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out).await.expect("the sign-in tests finish within 5 minutes").expect("node runs the browser tests");
    stop.cancel();
    let report: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    eprintln!("{}\n{}", report.join("\n"), String::from_utf8_lossy(&out.stderr));
    assert_passed(out.status, &report, &artifacts);
    for name in ["keycloak-login", "keycloak-calls", "keycloak-agent", "keycloak-viewer"] {
        assert!(artifacts.join(format!("{name}.png")).exists(), "screenshot {name}.png");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
