# Redis: reuses a server on 127.0.0.1:6379 (the rust-svc machine runs one); otherwise installs
# Debian's redis-server and starts one on port 6390 that keeps nothing on disk.
redis_up() {
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    write_env redis "CF_TEST_REDIS_URL=redis://127.0.0.1:6379/"
    return
  fi
  apt_install redis-server
  if ! port_open 6390; then
    start_bg redis redis-server --bind 127.0.0.1 --port 6390 --save '' --appendonly no
    wait_port 6390 10 redis
  fi
  write_env redis "CF_TEST_REDIS_URL=redis://127.0.0.1:6390/"
}
redis_down() { stop_pid redis; }
