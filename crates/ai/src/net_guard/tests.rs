use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A local HTTP server: answers each request with `respond(request)` (`None`: never answers),
/// counts connections and keeps the requests.
struct Srv {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    reqs: Arc<Mutex<Vec<String>>>,
}

impl Srv {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
    fn port(&self) -> u16 {
        self.addr.port()
    }
    /// Connections so far, after letting a just-made connection reach `accept`.
    async fn hits(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.hits.load(Ordering::SeqCst)
    }
}

type Respond = dyn Fn(&str) -> Option<Vec<u8>> + Send + Sync;

async fn serve(bind: &str, respond: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static) -> Srv {
    serve_on(TcpListener::bind(bind).await.unwrap(), Arc::new(respond))
}

fn serve_on(l: TcpListener, respond: Arc<Respond>) -> Srv {
    let addr = l.local_addr().unwrap();
    let (hits, reqs) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let (h, r) = (hits.clone(), reqs.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            let (respond, r) = (respond.clone(), r.clone());
            tokio::spawn(async move {
                let req = read_request(&mut s).await;
                r.lock().unwrap().push(req.clone());
                match respond(&req) {
                    Some(bytes) => {
                        let _ = s.write_all(&bytes).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    Srv { addr, hits, reqs }
}

async fn read_request(s: &mut tokio::net::TcpStream) -> String {
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = s.read(&mut buf).await else { break };
        req.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&req).to_string();
        if let Some(i) = text.find("\r\n\r\n") {
            let len = text.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
            if req.len() >= i + 4 + len {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    String::from_utf8_lossy(&req).to_string()
}

fn ok(body: &str) -> Option<Vec<u8>> {
    Some(format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes())
}

fn redirect(to: &str) -> Option<Vec<u8>> {
    Some(format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes())
}

fn path(req: &str) -> &str {
    req.split(' ').nth(1).unwrap_or("")
}

/// Plain http, nothing opened but `networks`, short timeouts (a bug that connects to an
/// unroutable address fails as a timeout, not as a refusal).
fn local(networks: &[&str]) -> ToolHttp {
    ToolHttp::new(ToolHttpPolicy { timeout_ms: 3000, ..ToolHttpPolicy::local(networks) }).unwrap()
}

fn with_names(policy: ToolHttpPolicy, names: &[(&str, &[&str])]) -> ToolHttp {
    let table: Vec<(String, Vec<IpAddr>)> = names.iter().map(|(n, ips)| (n.to_string(), ips.iter().map(|i| i.parse().unwrap()).collect())).collect();
    ToolHttp::with_resolver(policy, Arc::new(move |host: &str| table.iter().find(|(n, _)| n == host).map(|(_, ips)| ips.clone()).unwrap_or_default())).unwrap()
}

#[track_caller]
fn refused(r: Result<(u16, String), ToolHttpError>, why: &str) -> String {
    match r {
        Err(ToolHttpError::Refused(m)) => {
            assert!(m.contains(why), "refused for another reason: {m:?} (expected {why:?})");
            format!("tool URL refused: {m}")
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
}

#[test]
fn cidr_parser_reads_networks_and_names_what_is_wrong() {
    let c: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(c.contains("10.255.1.2".parse().unwrap()) && !c.contains("11.0.0.0".parse().unwrap()));
    assert!(!c.contains("::ffff:10.0.0.1".parse().unwrap()), "families never mix");
    let host: Cidr = " 127.0.0.2 ".parse().unwrap();
    assert_eq!(host.to_string(), "127.0.0.2/32");
    assert!(host.contains("127.0.0.2".parse().unwrap()) && !host.contains("127.0.0.3".parse().unwrap()));
    let c: Cidr = "172.16.0.0/12".parse().unwrap();
    assert!(c.contains("172.31.255.255".parse().unwrap()) && !c.contains("172.32.0.0".parse().unwrap()));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("203.0.113.9".parse().unwrap()) && !all.contains("::1".parse().unwrap()));
    let v6: Cidr = "fc00::/7".parse().unwrap();
    assert!(v6.contains("fd12:3456::1".parse().unwrap()) && !v6.contains("fe00::1".parse().unwrap()));
    assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");

    let err = |s: &str| s.parse::<Cidr>().unwrap_err();
    assert!(err("10.0.0.1/8").contains("did you mean 10.0.0.0/8"), "{}", err("10.0.0.1/8"));
    assert!(err("10.0.0.0/33").contains("longer than 32"));
    assert!(err("::/129").contains("longer than 128"));
    assert!(err("10.0.0/8").contains("not an IP address"));
    assert!(err("localhost").contains("not an IP address"));
    assert!(err("10.0.0.0/x").contains("not a number"));
    assert!(err("10.0.0.0/+8").contains("not a number"));
    assert!(err("10.0.0.0/").contains("not a number"));

    let bad = ToolHttpPolicy { allow_networks: vec!["127.0.0.1/32".into(), "10.0.0.1/8".into()], ..Default::default() };
    let e = ToolHttp::new(bad).unwrap_err().to_string();
    assert!(e.contains("allow_networks[1] `10.0.0.1/8`") && e.contains("host bits"), "{e}");
    assert!(ToolHttp::new(ToolHttpPolicy { timeout_ms: 0, ..Default::default() }).is_err());
}

#[test]
fn the_block_list_covers_private_and_special_ranges() {
    let g = Guard::new(ToolHttpPolicy::default()).unwrap();
    let blocked = [
        ("0.1.2.3", "this network"),
        ("10.0.0.1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("169.254.169.254", "link-local/metadata"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.0.0.8", "IETF"),
        ("192.0.2.1", "documentation"),
        ("192.168.1.1", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.1", "benchmarking"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.5", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved/broadcast"),
        ("255.255.255.255", "reserved/broadcast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fc00::1", "unique-local"),
        ("fd00:ec2::254", "unique-local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("64:ff9b::7f00:1", "NAT64"),
        ("64:ff9b::808:808", "NAT64"),
        ("2001:db8::1", "documentation"),
        ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1) is a loopback"),
        ("::ffff:169.254.169.254", "link-local/metadata"),
        ("::ffff:10.1.2.3", "private"),
        ("::127.0.0.1", "IPv4-compatible 127.0.0.1"),
        ("2002:7f00:1::1", "6to4 127.0.0.1"),
        ("2002:a9fe:a9fe::", "6to4 169.254.169.254"),
    ];
    for (ip, why) in blocked {
        let e = g.check_ip(ip.parse().unwrap()).expect_err(ip);
        assert!(e.contains(why), "{ip}: {e}");
    }
    for ip in ["8.8.8.8", "1.1.1.1", "11.0.0.1", "100.128.0.1", "172.32.0.1", "192.169.0.1", "198.20.0.1", "223.255.255.255", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"] {
        assert_eq!(g.check_ip(ip.parse().unwrap()), Ok(()), "{ip}");
    }
    // allow_networks opens exactly what it names, in either spelling of the address
    let g = Guard::new(ToolHttpPolicy::local(&["127.0.0.2/32", "fd00::/8"])).unwrap();
    assert_eq!(g.check_ip("127.0.0.2".parse().unwrap()), Ok(()));
    assert_eq!(g.check_ip("::ffff:127.0.0.2".parse().unwrap()), Ok(()));
    assert_eq!(g.check_ip("fd00::5".parse().unwrap()), Ok(()));
    assert!(g.check_ip("127.0.0.1".parse().unwrap()).is_err());
    assert!(g.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_err());
    assert!(g.check_ip("fc00::5".parse().unwrap()).is_err());
}

#[test]
fn every_spelling_of_a_literal_ip_is_checked() {
    let h = local(&[]);
    for u in ["http://2130706433/", "http://0x7f.1/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/", "http://127.0.0.1./", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/", "HTTP://127.000.000.001:80/"] {
        let e = h.check_url(u).expect_err(u).to_string();
        assert!(e.starts_with("tool URL refused: ") && e.contains("loopback"), "{u}: {e}");
    }
    for u in ["http://169.254.169.254/latest/meta-data", "http://[::ffff:a9fe:a9fe]/", "http://0xa9fea9fe/", "http://2852039166/"] {
        assert!(h.check_url(u).unwrap_err().to_string().contains("link-local/metadata"), "{u}");
    }
    for u in ["http://metadata.google.internal/computeMetadata/v1/", "http://METADATA/", "http://metadata./x"] {
        assert!(h.check_url(u).unwrap_err().to_string().contains("cloud metadata host"), "{u}");
    }
    assert!(h.check_url("ftp://example.com/").unwrap_err().to_string().contains("scheme `ftp`"));
    assert!(h.check_url("file:///etc/passwd").is_err());
    assert_eq!(h.check_url("http://example.com/book"), Ok(()));
    // the strict default: https only
    let strict = ToolHttp::default();
    assert!(strict.check_url("http://example.com/").unwrap_err().to_string().contains("plain http is not allowed"));
    assert_eq!(strict.check_url("https://example.com/"), Ok(()));
    assert!(strict.check_url("https://10.0.0.1/").unwrap_err().to_string().contains("10.0.0.1 is a private address"));
}

#[tokio::test]
async fn loopback_is_refused_with_a_live_server_there() {
    let srv = serve("127.0.0.1:0", |_| ok("secret internal data")).await;
    let h = local(&[]);
    let p = srv.port();
    let m = refused(h.send("GET", &srv.url("/admin"), None, 1000).await, "127.0.0.1 is a loopback address");
    assert_eq!(m, "tool URL refused: 127.0.0.1 is a loopback address (127.0.0.0/8)");
    refused(h.send("GET", &format!("http://localhost:{p}/admin"), None, 1000).await, "localhost resolves only to blocked addresses");
    refused(h.send("POST", &format!("http://[::ffff:127.0.0.1]:{p}/admin"), Some(&json!({})), 1000).await, "IPv4-mapped 127.0.0.1");
    refused(h.send("GET", &format!("http://2130706433:{p}/admin"), None, 1000).await, "127.0.0.1 is a loopback");
    refused(h.send("GET", &format!("http://0x7f.1:{p}/admin"), None, 1000).await, "127.0.0.1 is a loopback");
    assert_eq!(srv.hits().await, 0, "the internal server got no connection");
    // control: the same server is reachable once its network is allowed
    let (status, body) = local(&["127.0.0.1/32"]).send("GET", &srv.url("/admin"), None, 1000).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "secret internal data"));
    assert_eq!(srv.hits().await, 1);
}

#[tokio::test]
async fn ipv6_loopback_is_refused() {
    let h = local(&[]);
    match TcpListener::bind("[::1]:0").await {
        Ok(l) => {
            let srv = serve_on(l, Arc::new(|_: &str| ok("v6")));
            refused(h.send("GET", &format!("http://[::1]:{}/", srv.port()), None, 1000).await, "::1 is a loopback address");
            assert_eq!(srv.hits().await, 0);
        }
        // no IPv6 on this host: the refusal still comes before any connection
        Err(_) => {
            refused(h.send("GET", "http://[::1]:9/", None, 1000).await, "::1 is a loopback address");
        }
    }
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused() {
    let h = local(&[]);
    refused(h.send("GET", "http://10.0.0.1/", None, 1000).await, "10.0.0.1 is a private address");
    let m = refused(h.send("GET", "http://169.254.169.254/latest/meta-data", None, 1000).await, "169.254.169.254 is a link-local/metadata address");
    assert!(!m.contains("meta-data"), "{m}");
    refused(h.send("GET", "http://metadata.google.internal/computeMetadata/v1/", None, 1000).await, "metadata.google.internal is a cloud metadata host");
    refused(h.send("GET", "http://[fd00:ec2::254]/", None, 1000).await, "unique-local");
}

#[tokio::test]
async fn names_resolving_to_blocked_addresses_are_refused_after_lookup() {
    let srv = serve("127.0.0.1:0", |_| ok("internal")).await;
    let h = with_names(
        ToolHttpPolicy { timeout_ms: 3000, ..ToolHttpPolicy::local(&[]) },
        &[("evil.example", &["10.0.0.1"]), ("meta.example", &["169.254.169.254"]), ("loop.example", &["127.0.0.1"]), ("both.example", &["10.0.0.1", "127.0.0.1"])],
    );
    // the URL itself passes the pre-flight check: only the lookup shows where it goes
    assert_eq!(h.check_url("http://evil.example/"), Ok(()));
    let m = refused(h.send("GET", "http://evil.example/x?key=SECRET", None, 1000).await, "evil.example resolves only to blocked addresses (10.0.0.1 is a private address");
    assert!(!m.contains("SECRET"), "{m}");
    refused(h.send("GET", "http://meta.example/latest/meta-data", None, 1000).await, "169.254.169.254 is a link-local/metadata address");
    refused(h.send("GET", &format!("http://loop.example:{}/", srv.port()), None, 1000).await, "127.0.0.1 is a loopback");
    refused(h.send("GET", &format!("http://both.example:{}/", srv.port()), None, 1000).await, "resolves only to blocked addresses");
    assert_eq!(srv.hits().await, 0);
}

#[tokio::test]
async fn a_name_with_blocked_and_allowed_addresses_connects_only_to_the_allowed_one() {
    let good = serve("127.0.0.2:0", |_| ok("allowed")).await;
    let Ok(l) = TcpListener::bind(("127.0.0.1", good.port())).await else { return };
    let bad = serve_on(l, Arc::new(|_: &str| ok("internal")));
    let h = with_names(ToolHttpPolicy { timeout_ms: 3000, ..ToolHttpPolicy::local(&["127.0.0.2/32"]) }, &[("mixed.example", &["127.0.0.1", "127.0.0.2"])]);
    let (status, body) = h.send("GET", &format!("http://mixed.example:{}/", good.port()), None, 1000).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "allowed"));
    assert_eq!(bad.hits().await, 0);
}

#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    let target = serve("127.0.0.1:0", |_| ok("internal")).await;
    let t = target.port();
    let hop = serve("127.0.0.2:0", move |req| match path(req) {
        "/to-self" => redirect("/final"),
        "/final" => ok("landed"),
        "/to-loopback" => redirect(&format!("http://127.0.0.1:{t}/")),
        "/to-mapped" => redirect(&format!("http://[::ffff:127.0.0.1]:{t}/")),
        "/to-decimal" => redirect(&format!("http://2130706433:{t}/")),
        "/to-name" => redirect(&format!("http://evil.example:{t}/")),
        "/to-metadata" => redirect("http://169.254.169.254/latest/meta-data"),
        "/loop" => redirect("/loop"),
        _ => ok("?"),
    })
    .await;
    let h = with_names(ToolHttpPolicy { timeout_ms: 3000, ..ToolHttpPolicy::local(&["127.0.0.2/32"]) }, &[("evil.example", &["127.0.0.1"])]);
    // redirects are followed where the policy allows
    assert_eq!(h.send("GET", &hop.url("/to-self"), None, 1000).await.unwrap(), (200, "landed".into()));
    refused(h.send("GET", &hop.url("/to-loopback"), None, 1000).await, "redirect: 127.0.0.1 is a loopback address");
    refused(h.send("POST", &hop.url("/to-mapped"), Some(&json!({"a": 1})), 1000).await, "IPv4-mapped 127.0.0.1");
    refused(h.send("GET", &hop.url("/to-decimal"), None, 1000).await, "127.0.0.1 is a loopback");
    refused(h.send("GET", &hop.url("/to-name"), None, 1000).await, "evil.example resolves only to blocked addresses");
    refused(h.send("GET", &hop.url("/to-metadata"), None, 1000).await, "169.254.169.254 is a link-local/metadata address");
    refused(h.send("GET", &hop.url("/loop"), None, 1000).await, "more than 3 redirects");
    assert_eq!(target.hits().await, 0, "the redirect target got no request");
    let no_redirects = ToolHttp::new(ToolHttpPolicy { max_redirects: 0, ..ToolHttpPolicy::local(&["127.0.0.2/32"]) }).unwrap();
    refused(no_redirects.send("GET", &hop.url("/to-self"), None, 1000).await, "redirects are not allowed");
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let srv = serve("127.0.0.2:0", |_| ok("hi")).await;
    let https_only = ToolHttp::new(ToolHttpPolicy { allow_networks: vec!["127.0.0.2/32".into()], ..Default::default() }).unwrap();
    refused(https_only.send("GET", &srv.url("/"), None, 1000).await, "plain http is not allowed");
    refused(ToolHttp::default().send("GET", &srv.url("/"), None, 1000).await, "plain http is not allowed");
    assert_eq!(srv.hits().await, 0);
    assert_eq!(local(&["127.0.0.2/32"]).send("GET", &srv.url("/"), None, 1000).await.unwrap(), (200, "hi".into()));
    // https to a blocked address is refused too (before any TLS)
    refused(ToolHttp::default().send("GET", &format!("https://127.0.0.1:{}/", srv.port()), None, 1000).await, "loopback");
}

#[tokio::test]
async fn an_allowed_server_gets_the_query_or_the_json_body() {
    let srv = serve("127.0.0.2:0", |req| if req.starts_with("POST") { Some(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\nconnection: close\r\n\r\ncreated".to_vec()) } else { ok("{\"slots\":[\"10:00\"]}") }).await;
    let h = local(&["127.0.0.2/32"]);
    let (status, body) = h.send("get", &srv.url("/slots"), Some(&json!({"day": "next monday", "n": 2})), 1000).await.unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"slots":["10:00"]}"#));
    let (status, body) = h.send("POST", &srv.url("/book"), Some(&json!({"name": "Ana"})), 1000).await.unwrap();
    assert_eq!((status, body.as_str()), (201, "created"));
    let reqs = srv.reqs.lock().unwrap().clone();
    assert!(reqs[0].starts_with("GET /slots?day=next+monday&n=2 "), "{}", reqs[0]);
    assert!(reqs[1].starts_with("POST /book ") && reqs[1].ends_with(r#"{"name":"Ana"}"#), "{}", reqs[1]);
    assert!(!reqs[1].to_ascii_lowercase().contains("referer"));
    assert!(matches!(h.send("BAD METHOD", &srv.url("/"), None, 1000).await, Err(ToolHttpError::BadMethod(_))));
    assert!(matches!(h.send("GET", "not a url", None, 1000).await, Err(ToolHttpError::BadUrl(_))));
}

#[tokio::test]
async fn the_response_is_cut_at_max_response_bytes() {
    let big = "x".repeat(1 << 20);
    let srv = serve("127.0.0.2:0", move |_| ok(&big)).await;
    let h = ToolHttp::new(ToolHttpPolicy { max_response_bytes: 1000, ..ToolHttpPolicy::local(&["127.0.0.2/32"]) }).unwrap();
    let (status, body) = h.send("GET", &srv.url("/"), None, 1000).await.unwrap();
    assert_eq!((status, body.len()), (200, 1000));
    // the default cap is 64 KiB
    let (_, body) = local(&["127.0.0.2/32"]).send("GET", &srv.url("/"), None, 1000).await.unwrap();
    assert_eq!(body.len(), 64 * 1024);
}

#[tokio::test]
async fn the_timeout_is_honoured() {
    let srv = serve("127.0.0.2:0", |_| None).await;
    // the policy caps a tool's longer timeout
    let h = ToolHttp::new(ToolHttpPolicy { timeout_ms: 300, ..ToolHttpPolicy::local(&["127.0.0.2/32"]) }).unwrap();
    let t = Instant::now();
    assert_eq!(h.send("GET", &srv.url("/"), None, 60_000).await, Err(ToolHttpError::Timeout(300)));
    assert!((Duration::from_millis(250)..Duration::from_secs(3)).contains(&t.elapsed()), "{:?}", t.elapsed());
    // a tool's shorter timeout applies
    let t = Instant::now();
    assert_eq!(local(&["127.0.0.2/32"]).send("POST", &srv.url("/"), Some(&json!({})), 200).await, Err(ToolHttpError::Timeout(200)));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(srv.hits().await, 2);
}

#[tokio::test]
async fn errors_never_carry_the_query() {
    // a closed port on an allowed network: a connection error, without the URL
    let l = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let e = local(&["127.0.0.2/32"]).send("GET", &format!("http://127.0.0.2:{port}/x?token=SECRET"), Some(&json!({"pin": "1234"})), 1000).await.unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, ToolHttpError::Request(_)), "{m}");
    assert!(!m.contains("SECRET") && !m.contains("1234") && !m.contains("/x"), "{m}");
    assert_eq!(redact_url("https://user:pw@api.example.com:8443/v1/book?key=SECRET#f"), "https://api.example.com:8443/v1/book");
}
