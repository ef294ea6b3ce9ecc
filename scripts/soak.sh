#!/usr/bin/env bash
# A soak: scripts/loadtest.sh for a long run, with the server's RSS read from /proc every 10 s.
#   scripts/soak.sh CALLS [RAMP_S] [DURATION_S]      (defaults: 30 s ramp, 600 s)
# Writes $OUT/rss.tsv (seconds, VmRSS in kB, and the heap's allocated and resident kB from
# /metrics when the allocator reports them, else -) and $OUT/report.json (the load test's
# JSON), then prints the RSS (and heap) from the first sample after the ramp (plus 60 s to
# settle) to the last one before the load ends.
# The same variables as loadtest.sh apply (CF_SERVER_CPUS, CF_LOAD_CPUS, CF_LOAD_NICE).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 CALLS [RAMP_S] [DURATION_S]" >&2; exit 2; }
calls=$1 ramp=${2:-30} duration=${3:-600}
export OUT=${OUT:-/tmp/callfunnel-soak}
scripts/loadtest.sh "$calls" "$ramp" "$duration" --json >"$OUT.json" 2>"$OUT.log" &
load=$!
trap 'kill $load 2>/dev/null || true; wait 2>/dev/null || true' EXIT
samples=$(mktemp)
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
  pid=$(pgrep -f -- "--config config/loadtest.toml serve" | head -1 || true)
  if [ -n "$pid" ] && [ -r /proc/$pid/status ]; then
    rss=$(awk '/^VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
    heap=$(curl -sf --max-time 2 http://127.0.0.1:18100/metrics 2>/dev/null | awk '
      /^callfunnel_heap_allocated_bytes / {a = int($2 / 1024)} /^callfunnel_heap_resident_bytes / {r = int($2 / 1024)}
      END {if (a != "") printf "%s\t%s", a, r; else printf "-\t-"}' || printf -- '-\t-')
    [ -n "$rss" ] && printf '%s\t%s\t%s\n' $(( $(date +%s) - start )) "$rss" "$heap" >>"$samples"
  fi
  sleep 10
done
wait $load || { echo "$0: the load test failed (see $OUT.log)" >&2; exit 1; }
mv "$samples" "$OUT/rss.tsv"
mv "$OUT.json" "$OUT/report.json"
# the steady state: from 60 s after the ramp to the end of the load (not the hang-ups after it)
settle=$(( ramp + 60 )) end=$(( ramp + duration ))
awk -v settle="$settle" -v end="$end" '$1 >= settle && $1 <= end { if (!first) { first = $2; ha = $3; hr = $4 } last = $2; la = $3; lr = $4; n++ }
  END { if (n < 2) { print "too few samples after the ramp"; exit 1 }
        printf "RSS after the ramp: %.1f MB → %.1f MB at the end (%+.1f %%, %d samples)\n", first/1024, last/1024, (last-first)*100/first, n
        if (ha != "-") printf "heap allocated: %.1f MB → %.1f MB (%+.1f %%); heap resident: %.1f MB → %.1f MB\n", ha/1024, la/1024, (la-ha)*100/ha, hr/1024, lr/1024 }' "$OUT/rss.tsv"
