#!/usr/bin/env bash
# A load test on this machine: the Deepgram, Anthropic and Cartesia simulators (realistic
# latencies), `callfunnel serve --config config/loadtest.toml`, then `callfunnel loadtest`.
#   scripts/loadtest.sh CALLS [RAMP_S] [DURATION_S] [extra loadtest flags, e.g. --json]
# Uses the release binary (make build). The server's log: $OUT/serve.log (OUT defaults to
# /tmp/callfunnel-load). Everything started here is stopped on exit.
# CF_SERVER_CPUS / CF_LOAD_CPUS (taskset lists, e.g. 1 and 0) pin the server, and the
# simulators with the load generator, to separate cores, so the server's numbers are per core
# and not disturbed by the generator. CF_LOAD_NICE (e.g. 10) runs the load side at a lower
# priority: on shared cores it then yields to the server, as if the server had the box to itself
# (the generator's own timings, such as speech end → agent audio, absorb the wait instead).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 CALLS [RAMP_S] [DURATION_S] [loadtest flags]" >&2; exit 2; }
calls=$1 ramp=${2:-30} duration=${3:-60}
shift $(( $# < 3 ? $# : 3 ))
BIN=${CF_LOAD_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/callfunnel-target}/release/callfunnel}
[ -x "$BIN" ] || { echo "$0: $BIN missing: run make build" >&2; exit 1; }
OUT=${OUT:-/tmp/callfunnel-load}
rm -rf "$OUT" && mkdir -p "$OUT"
pids=()
server_cpus=${CF_SERVER_CPUS:-} load_cpus=${CF_LOAD_CPUS:-} load_nice=${CF_LOAD_NICE:-0}
# pin server|load COMMAND…: the load side (simulators, generator) runs at CF_LOAD_NICE
pin() {
  local cpus=$server_cpus
  if [ "$1" = load ]; then
    cpus=$load_cpus
    if [ "$load_nice" != 0 ]; then set -- "$1" nice -n "$load_nice" "${@:2}"; fi
  fi
  shift
  if [ -n "$cpus" ]; then exec taskset -c "$cpus" "$@"; else exec "$@"; fi
}
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
export CALLFUNNEL_LOG_LEVEL=${CALLFUNNEL_LOG_LEVEL:-warn}
pin load "$BIN" sim deepgram --listen 127.0.0.1:18101 --realistic --script assets/load/stt-lines.txt >"$OUT/sim-deepgram.log" 2>&1 & pids+=($!)
pin load "$BIN" sim anthropic --listen 127.0.0.1:18102 --realistic >"$OUT/sim-anthropic.log" 2>&1 & pids+=($!)
pin load "$BIN" sim cartesia --listen 127.0.0.1:18103 --realistic >"$OUT/sim-cartesia.log" 2>&1 & pids+=($!)
DEEPGRAM_API_KEY=sim-key ANTHROPIC_API_KEY=sim-key CARTESIA_API_KEY=sim-key CALLFUNNEL_DATA__DIR="$OUT/data" \
  pin server "$BIN" --config config/loadtest.toml serve >"$OUT/serve.log" 2>&1 & pids+=($!)
for _ in $(seq 1 300); do
  curl -sf http://127.0.0.1:18100/readyz >/dev/null && break
  sleep 0.2
done
curl -sf http://127.0.0.1:18100/readyz >/dev/null || { echo "$0: the server is not ready (see $OUT/serve.log)" >&2; exit 1; }
(pin load "$BIN" loadtest --target http://127.0.0.1:18100 --calls "$calls" --ramp "$ramp" --duration "$duration" "$@")
