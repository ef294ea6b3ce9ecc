# MongoDB: mongoeco (PyPI; the MongoDB wire protocol over SQLite) — no MongoDB server installs
# from the registries here. Needs CPython >= 3.13; tests/services/mongoeco_serve.py shims two
# incompatibilities with the Rust driver. Port 27030; data in $CF_SERVICES_DIR/mongo.sqlite.
mongo_up() {
  local venv=$CF_TOOLS_DIR/mongoeco-venv py
  if ! "$venv/bin/python" -c 'import mongoeco' 2>/dev/null; then
    py=$(python313) || { log "mongo: needs CPython >= 3.13 (python3.13 on PATH or pyenv 3.13)"; return 1; }
    log "installing mongoeco into $venv"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check 'mongoeco[wire]==4.11.0'
  fi
  if ! port_open 27030; then
    start_bg mongo "$venv/bin/python" "$CF_ROOT/tests/services/mongoeco_serve.py" 27030 "$CF_SERVICES_DIR/mongo.sqlite"
    wait_port 27030 30 mongo
  fi
  write_env mongo "CF_TEST_MONGO_URI=mongodb://127.0.0.1:27030" "CF_TEST_MONGOECO_PYTHON=$venv/bin/python" "CF_TEST_MONGOECO_SERVE=$CF_ROOT/tests/services/mongoeco_serve.py"
}
mongo_down() { stop_pid mongo; }
