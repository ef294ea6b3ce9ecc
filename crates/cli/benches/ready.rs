//! Server start-up: `cargo bench -p callfunnel --bench ready`. Starts `callfunnel serve` ten
//! times and measures process start → `/readyz` answering 200 (models load lazily/in the
//! background, so readiness does not wait for them).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200")
}

fn main() {
    let mut times = Vec::new();
    for _ in 0..10 {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port");
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_callfunnel"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("CALLFUNNEL_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn callfunnel");
        while !ready(port) {
            if start.elapsed() > Duration::from_secs(10) {
                panic!("server not ready after 10 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("server ready (process start → /readyz 200): median {:.0} ms, max {:.0} ms over {} starts", times[times.len() / 2], times[times.len() - 1], times.len());
}
