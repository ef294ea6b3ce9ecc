#!/usr/bin/env bash
# Installs and starts the real servers the tests talk to, on loopback only, and records how to
# reach them: one env file per service under $CALLFUNNEL_SERVICES_DIR (default
# ~/.cache/callfunnel/services), read by the tests. Idempotent: a service already up is reused.
#   scripts/services.sh up [NAME...]     install + start (all by default)
#   scripts/services.sh down [NAME...]   stop what this script started (by recorded PID)
#   scripts/services.sh status
# Each service is scripts/services/NAME.sh defining NAME_up and NAME_down.
set -euo pipefail
cd "$(dirname "$0")/.."
export CF_ROOT="$PWD"
export CF_SERVICES_DIR="${CALLFUNNEL_SERVICES_DIR:-$HOME/.cache/callfunnel/services}"
export CF_TOOLS_DIR="${CALLFUNNEL_TOOLS_DIR:-$HOME/.cache/callfunnel/tools}"
mkdir -p "$CF_SERVICES_DIR" "$CF_TOOLS_DIR"

# helpers shared by the service scripts
log() { echo "services: $*" >&2; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() { # apt_install PKG...: installs the Debian packages that are missing
  local need=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  ((${#need[@]})) || return 0
  log "installing ${need[*]}"
  sudo_ apt-get update -qq && DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # wait_port PORT SECONDS NAME
  local i
  for ((i = 0; i < $2 * 10; i++)); do port_open "$1" && return 0; sleep 0.1; done
  log "$3 did not open port $1 within $2 s (log: $CF_SERVICES_DIR/$3.log)"; tail -20 "$CF_SERVICES_DIR/$3.log" >&2 || true
  return 1
}
pid_alive() { [ -f "$CF_SERVICES_DIR/$1.pid" ] && kill -0 "$(cat "$CF_SERVICES_DIR/$1.pid")" 2>/dev/null; }
start_bg() { # start_bg NAME CMD...: starts a daemon, records its PID, logs to NAME.log
  local name=$1; shift
  # run from the services directory: a daemon must not depend on the caller's working
  # directory (a deleted checkout would break servers that resolve paths against it)
  (cd "$CF_SERVICES_DIR" && exec nohup setsid "$@" >"$CF_SERVICES_DIR/$name.log" 2>&1 </dev/null) &
  echo $! >"$CF_SERVICES_DIR/$name.pid"
}
stop_pid() { # stop_pid NAME: ends only the process this script started
  if pid_alive "$1"; then kill "$(cat "$CF_SERVICES_DIR/$1.pid")" 2>/dev/null || true; fi
  rm -f "$CF_SERVICES_DIR/$1.pid"
}
write_env() { # write_env NAME KEY=VALUE...
  local name=$1; shift
  printf '%s\n' "$@" >"$CF_SERVICES_DIR/$name.env.tmp" && mv "$CF_SERVICES_DIR/$name.env.tmp" "$CF_SERVICES_DIR/$name.env"
}
python313() { # a CPython >= 3.13 (mongoeco needs it)
  local p
  for p in python3.13 python3.14 "$HOME/.pyenv/versions/3.13.0/bin/python3"; do
    command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; assert sys.version_info >= (3, 13)' 2>/dev/null && { command -v "$p"; return 0; }
  done
  return 1
}

all=()
for f in scripts/services/*.sh; do
  # shellcheck disable=SC1090
  source "$f"
  all+=("$(basename "$f" .sh)")
done

cmd=${1:-up}; shift || true
names=("$@"); ((${#names[@]})) || names=("${all[@]}")
case "$cmd" in
  up) for n in "${names[@]}"; do "${n}_up"; log "$n up ($(tr '\n' ' ' <"$CF_SERVICES_DIR/$n.env"))"; done ;;
  down) for n in "${names[@]}"; do "${n}_down"; rm -f "$CF_SERVICES_DIR/$n.env"; done ;;
  status) for n in "${names[@]}"; do if [ -f "$CF_SERVICES_DIR/$n.env" ]; then echo "$n: $(tr '\n' ' ' <"$CF_SERVICES_DIR/$n.env")"; else echo "$n: down"; fi; done ;;
  *) echo "usage: $0 up|down|status [service...]" >&2; exit 2 ;;
esac
