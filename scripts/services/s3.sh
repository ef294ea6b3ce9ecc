# S3 (MinIO stand-in): s3s-fs from crates.io, an S3 server on a directory that checks SigV4
# signatures (a wrong secret is refused). Built once into $CF_TOOLS_DIR (~3 min) with its own
# target dir so the project's build cache is untouched. A bucket is a directory of its data root.
s3_up() {
  local root="$CF_TOOLS_DIR/s3s-fs" port=8014 data="$CF_SERVICES_DIR/s3-data" bucket=callfunnel-test
  local access=cf-test-access secret=cf-test-secret-key
  if [ ! -x "$root/bin/s3s-fs" ]; then
    log "building s3s-fs 0.14.1 (about 3 minutes, once)"
    CARGO_TARGET_DIR="$CF_TOOLS_DIR/s3s-fs-target" cargo install s3s-fs@0.14.1 --features binary --locked --root "$root" >&2
    rm -rf "$CF_TOOLS_DIR/s3s-fs-target"
  fi
  if ! port_open "$port"; then
    rm -rf "$data" # test objects start afresh
    mkdir -p "$data/$bucket"
    start_bg s3 "$root/bin/s3s-fs" --host 127.0.0.1 --port "$port" --access-key "$access" --secret-key "$secret" "$data"
    wait_port "$port" 20 s3
  fi
  mkdir -p "$data/$bucket"
  write_env s3 "CF_TEST_S3_ENDPOINT=http://127.0.0.1:$port" "CF_TEST_S3_ACCESS_KEY=$access" \
    "CF_TEST_S3_SECRET_KEY=$secret" "CF_TEST_S3_REGION=us-east-1" "CF_TEST_S3_BUCKET=$bucket"
}
s3_down() { stop_pid s3; }
