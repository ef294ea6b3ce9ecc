#!/usr/bin/env bash
# What the console's browser tests need (make test): Debian's Chromium (playwright-core drives
# it; no browser is downloaded) and playwright-core from the lock file in console-tests/.
# Idempotent: installs only what is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium (the console's browser tests)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

stamp=console-tests/node_modules/.installed-from-lock
if ! cmp -s console-tests/package-lock.json "$stamp" 2>/dev/null; then
  echo "installing the console test packages (npm ci)"
  npm ci --prefix console-tests --no-audit --no-fund --silent
  cp console-tests/package-lock.json "$stamp"
fi
