# OIDC: no Keycloak installs here, so tests get tests/services/oidc/provider.mjs: the real
# panva/oidc-provider (npm, pinned by tests/services/oidc/package-lock.json) shaped like a Keycloak
# realm `voice` (issuer /realms/voice, Keycloak's endpoint paths, service-account access tokens
# with azp, realm_access.roles and a tenant_id claim). Its signing keys persist in oidc-keys.json;
# POST $CF_TEST_OIDC_ADMIN/rotate switches to a new key with a new kid.
oidc_up() {
  local dir="$CF_TOOLS_DIR/oidc" src="$CF_ROOT/tests/services/oidc" port=8180 i
  local stamp; stamp=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/installed" 2>/dev/null)" != "$stamp" ] || [ ! -d "$dir/node_modules/oidc-provider" ]; then
    log "installing the OIDC test provider's npm packages"
    command -v npm >/dev/null || { log "oidc needs node and npm"; return 1; }
    mkdir -p "$dir" && rm -f "$dir/installed"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
    echo "$stamp" >"$dir/installed"
  fi
  # a provider started from an older provider.mjs is restarted (CI reuses running services)
  local code; code=$(sha256sum "$src/provider.mjs" | cut -d' ' -f1)
  if port_open "$port" && [ "$(cat "$CF_SERVICES_DIR/oidc.code" 2>/dev/null)" != "$code" ] && pid_alive oidc; then
    log "restarting the OIDC test provider (provider.mjs changed)"
    stop_pid oidc
    for ((i = 0; i < 50; i++)); do port_open "$port" || break; sleep 0.1; done
  fi
  if ! port_open "$port"; then
    echo "$code" >"$CF_SERVICES_DIR/oidc.code"
    PORT=$port OIDC_KEY_FILE="$CF_SERVICES_DIR/oidc-keys.json" NODE_PATH="$dir/node_modules" \
      start_bg oidc node "$CF_ROOT/tests/services/oidc/provider.mjs"
    wait_port "$port" 30 oidc
  fi
  local issuer="http://127.0.0.1:$port/realms/voice"
  for ((i = 0; i < 100; i++)); do # the port opens before the provider answers
    curl -sf "$issuer/.well-known/openid-configuration" >/dev/null && break
    sleep 0.1
  done
  curl -sf "$issuer/.well-known/openid-configuration" | grep -q "\"issuer\":\"$issuer\"" || {
    log "port $port does not answer as the OIDC issuer $issuer (log: $CF_SERVICES_DIR/oidc.log)"; return 1; }
  write_env oidc "CF_TEST_OIDC_ISSUER=$issuer" "CF_TEST_OIDC_AUDIENCE=voice-api" \
    "CF_TEST_OIDC_ADMIN=http://127.0.0.1:$port/admin"
}
oidc_down() { stop_pid oidc; }
