# PostgreSQL: reuses a server on 127.0.0.1:5432 with trust auth (the rust-svc machine runs one);
# otherwise installs Debian's PostgreSQL and starts a private cluster on port 54329.
postgres_up() {
  local url db=callfunnel_test
  if command -v psql >/dev/null && psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    url="postgres://postgres@127.0.0.1:5432"
  else
    apt_install postgresql
    local bin dir=$CF_SERVICES_DIR/postgres-data
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    if ! port_open 54329; then
      if [ ! -f "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"; chown postgres "$dir" 2>/dev/null || true
        runuser -u postgres -- "$bin/initdb" -D "$dir" --auth=trust -U postgres >/dev/null
      fi
      runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "-c listen_addresses=127.0.0.1 -p 54329 -k $dir" -w start >/dev/null
    fi
    url="postgres://postgres@127.0.0.1:54329"
  fi
  psql "$url/postgres" -Atc "select 1 from pg_database where datname='$db'" | grep -q 1 || psql "$url/postgres" -qc "create database $db" >/dev/null
  write_env postgres "CF_TEST_POSTGRES_URL=$url/$db"
}
postgres_down() {
  local dir=$CF_SERVICES_DIR/postgres-data bin
  if [ -f "$dir/postmaster.pid" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null || true
  fi
}
