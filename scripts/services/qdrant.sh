# Qdrant: no Qdrant server installs from the reachable registries, so tests talk to
# tests/services/qdrant_server.py: Qdrant's REST API (the calls we use) around the real Qdrant
# engine embedded in Python (qdrant-edge-py), every request body validated against Qdrant's
# OpenAPI models (qdrant-client). The official SDK is run against it once at start-up.
qdrant_up() {
  local venv="$CF_TOOLS_DIR/qdrant-venv" port=6343 key=cf-test-qdrant-key
  local req="$CF_ROOT/tests/services/requirements-qdrant.txt"
  if ! cmp -s "$req" "$venv/requirements.txt" 2>/dev/null; then
    log "installing the Qdrant test server's Python packages"
    local py; py=$(command -v python3 || python313)
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/pip" install -q -r "$req" && cp "$req" "$venv/requirements.txt"
  fi
  if ! port_open "$port"; then
    rm -rf "$CF_SERVICES_DIR/qdrant-data" && mkdir -p "$CF_SERVICES_DIR/qdrant-data" # test collections start afresh
    QDRANT_TEST_API_KEY=$key start_bg qdrant "$venv/bin/python" "$CF_ROOT/tests/services/qdrant_server.py" "$port" "$CF_SERVICES_DIR/qdrant-data"
    wait_port "$port" 30 qdrant
    "$venv/bin/python" "$CF_ROOT/tests/services/qdrant_sdk_check.py" "http://127.0.0.1:$port" "$key" >&2
  fi
  write_env qdrant "CF_TEST_QDRANT_URL=http://127.0.0.1:$port" "CF_TEST_QDRANT_API_KEY=$key" \
    "CF_TEST_QDRANT_PYTHON=$venv/bin/python"
}
qdrant_down() { stop_pid qdrant; }
