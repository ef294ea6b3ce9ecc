#!/usr/bin/env bash
# Lays out an nginx prefix for the three-node test front (test-3nodes.conf.template):
#   deploy/nginx/render-test-3nodes.sh DIR LISTEN_PORT NODE1_PORT NODE2_PORT NODE3_PORT
# then: nginx -p DIR/ -c DIR/nginx.conf [-g 'daemon off;']   (stop: kill "$(cat DIR/nginx.pid)")
# DIR gets nginx.conf, callfunnel/ (the shared routing files), logs/ and tmp/.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: $0 DIR LISTEN_PORT NODE1_PORT NODE2_PORT NODE3_PORT" >&2; exit 2; }
dir=$1; shift
for p in "$@"; do
  [[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || { echo "$0: not a port: $p" >&2; exit 2; }
done
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/callfunnel" "$dir/logs" "$dir/tmp"
cp "$here/callfunnel-http.conf" "$here/callfunnel-routing.conf" "$dir/callfunnel/"
sed -e "s/@LISTEN_PORT@/$1/g" -e "s/@NODE1_PORT@/$2/g" -e "s/@NODE2_PORT@/$3/g" -e "s/@NODE3_PORT@/$4/g" \
  "$here/test-3nodes.conf.template" >"$dir/nginx.conf"
# Started by root, nginx would run its workers as `nobody`, who cannot write temp files under
# a private test directory: in a test, the workers stay the user who runs it.
if [ "$(id -u)" -eq 0 ]; then
  sed -i '1i user root;' "$dir/nginx.conf"
fi
if grep -q '@[A-Z0-9_]*@' "$dir/nginx.conf"; then
  echo "$0: placeholders left in $dir/nginx.conf" >&2; exit 1
fi
