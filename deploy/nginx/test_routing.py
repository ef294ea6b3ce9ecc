#!/usr/bin/env python3
"""Runs the production routing rules for real: nginx (test-3nodes.conf.template, which includes
callfunnel-http.conf and callfunnel-routing.conf) in front of three stand-in nodes on loopback.

  python3 deploy/nginx/test_routing.py [--nginx PATH]

The stand-in nodes are Python HTTP servers that answer with their name and what they received;
a media request is upgraded (101) and then echoes a line through the tunnel. Checked: media
streams stick to one node per call id (and spread over the nodes), a draining node's new
streams go to another, webhooks and /v1 reach every node, WebSocket and X-Forwarded headers,
body limits, /metrics closed, and the access log holding no token or query string.
Exit 0 when every check passes; ends only the processes it started."""

import argparse, json, os, shutil, socket, subprocess, sys, tempfile, threading, time, urllib.request, urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
DRAINING = set()  # names of stand-in nodes that refuse new media streams


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node(name, port):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _seen(self):
            return {"node": name, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}

        def do_GET(self):
            if self.path.split("/")[2:3] == ["media"] and self.headers.get("Upgrade", "").lower() == "websocket":
                if name in DRAINING:
                    return self._reply(503, {"code": "draining", "node": name})
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.end_headers()
                self.wfile.write((json.dumps(self._seen()) + "\n").encode())
                self.wfile.flush()
                line = self.rfile.readline()  # echo one line back through the tunnel
                self.wfile.write(b"echo " + line)
                self.wfile.flush()
                self.close_connection = True
                return
            self._reply(200, self._seen())

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(n)
            self._reply(200, dict(self._seen(), bytes=n))

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def media(port, path):
    """Opens a WebSocket-style upgrade through nginx; returns (status, first line from the node)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
        f = s.makefile("rwb")
        status = int(f.readline().split()[1])
        headers = {}
        while (line := f.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 101:
            return status, json.loads(f.read(int(headers.get("content-length", "0"))) or b"{}")
        seen = json.loads(f.readline())
        f.write(b"ping\n"); f.flush()
        assert f.readline() == b"echo ping\n", "the tunnel does not carry data back and forth"
        return status, seen


def http(port, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    args = ap.parse_args()
    names = ["node1", "node2", "node3"]
    ports = {n: free_port() for n in names}
    servers = [node(n, p) for n, p in ports.items()]
    front = free_port()
    tmp = tempfile.mkdtemp(prefix="cf-nginx-")
    nginx = None
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    try:
        subprocess.run([os.path.join(HERE, "render-test-3nodes.sh"), tmp, str(front), *map(str, ports.values())], check=True)
        nginx = subprocess.Popen([args.nginx, "-p", tmp + "/", "-c", tmp + "/nginx.conf", "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", front), timeout=0.2).close()
                break
            except OSError:
                if nginx.poll() is not None:
                    sys.exit("nginx did not start: " + nginx.stderr.read().decode())
                time.sleep(0.05)

        calls = [f"CA{i:032x}" for i in range(30)]
        first = {}
        for c in calls:
            st, seen = media(front, f"/twilio/media/{c}/1767225600.c2VjcmV0dG9rZW4")
            first[c] = seen["node"] if st == 101 else None
        check(all(first.values()), "every media stream is upgraded (101) and carries data both ways")
        again = {c: media(front, f"/twilio/media/{c}/1767225600.c2VjcmV0dG9rZW4")[1]["node"] for c in calls}
        check(again == first, "a call's stream goes back to the same node (30 call ids, twice each)")
        check(len(set(first.values())) == 3, f"call ids spread over the 3 nodes: {sorted(set(first.values()))}")
        ex = [media(front, f"/exotel/media/{c}/1767225600.c2VjcmV0dG9rZW4")[1]["node"] for c in calls[:10]]
        check(ex == [first[c] for c in calls[:10]], "Exotel streams are hashed on the same call id segment")
        st, seen = media(front, "/twilio/media/CAheaders/tok")
        h = seen["headers"]
        check(h.get("upgrade") == "websocket" and h.get("connection", "").lower() == "upgrade", "Upgrade and Connection reach the node")
        check(h.get("x-forwarded-proto") == "http" and h.get("x-forwarded-host") == f"127.0.0.1:{front}"
              and h.get("host") == f"127.0.0.1:{front}" and h.get("x-forwarded-for") == "127.0.0.1",
              "X-Forwarded-Proto/Host/For and Host as the client sent them (Twilio signature URL)")

        victim = first[calls[0]]
        DRAINING.add(victim)
        during = {c: media(front, f"/twilio/media/{c}/tok") for c in calls}
        DRAINING.clear()
        moved = [seen["node"] for c, (st, seen) in during.items() if first[c] == victim and st == 101]
        check(len(moved) == sum(first[c] == victim for c in calls) and victim not in moved,
              f"a draining node's new streams ({len(moved)}) go to other nodes")
        check(all(st == 101 and seen["node"] == first[c] for c, (st, seen) in during.items() if first[c] != victim),
              "the other nodes' streams stay where they were (consistent hashing)")

        seen_nodes = {http(front, "/v1/calls")[1]["node"] for _ in range(9)}
        check(seen_nodes == set(names), f"/v1 reaches every node: {sorted(seen_nodes)}")
        seen_nodes = {http(front, "/twilio/voice", b"To=%2B15550100199")[1]["node"] for _ in range(9)}
        check(seen_nodes == set(names), f"webhooks reach every node: {sorted(seen_nodes)}")
        st, body = http(front, "/exotel/voicebot?CallSid=abc&secret=do-not-log")
        check(st == 200 and body["path"].endswith("secret=do-not-log"), "the query string reaches the node")
        check(http(front, "/metrics")[0] == 404, "/metrics is not served through the proxy")
        check(http(front, "/v1/calls", b"x" * (2 << 20))[0] == 413, "a 2 MiB body is refused outside document uploads")
        st, body = http(front, "/v1/knowledge-bases/kb1/documents", b"x" * (2 << 20))
        check(st == 200 and body["bytes"] == 2 << 20, "a 2 MiB document upload goes through")

        time.sleep(0.3)  # access log lines are written when requests end
        log = open(os.path.join(tmp, "logs", "access.log")).read()
        check("c2VjcmV0dG9rZW4" not in log and "/tok" not in log, "the access log holds no media token")
        check("do-not-log" not in log and "CallSid" not in log, "the access log holds no query string")
        check(f"/twilio/media/{calls[0]}/-\"" in log and f"call={calls[0]}" in log, "media lines name the call id")
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(10)
        for s in servers:
            s.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"nginx routing: {len(failures)} check(s) failed", file=sys.stderr)
        sys.exit(1)
    print("nginx routing: all checks passed")


if __name__ == "__main__":
    main()
