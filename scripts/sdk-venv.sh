#!/usr/bin/env bash
# Creates the Python venv with the vendors' official SDKs (tests/sdk/requirements.txt) that the
# simulator tests drive. Idempotent: reinstalls only when the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CALLFUNNEL_SDK_VENV:-$HOME/.cache/callfunnel/sdk-venv}"
req=tests/sdk/requirements.txt
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
echo "installing the provider SDKs into $venv ..."
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
