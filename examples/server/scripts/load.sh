#!/usr/bin/env bash
# A short load run against a real imgest-server on 127.0.0.1 with `hey` (Debian package):
# concurrent uploads, then concurrent variant reads, each for a bounded time. Fails on any 5xx;
# prints p50/p99 latencies.
#
#   examples/server/scripts/load.sh [SERVER_BIN] [SECONDS]
#
# SERVER_BIN defaults to $CARGO_TARGET_DIR/release/imgest-server; the image uploaded is the
# CLI's sample photo (1200 x 800, orientation 6).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
bin="${1:-${CARGO_TARGET_DIR:-$root/target}/release/imgest-server}"
secs="${2:-10}"
command -v hey >/dev/null || { echo "load.sh needs hey (apt-get install hey)" >&2; exit 1; }
[ -x "$bin" ] || { echo "no server binary at $bin" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
# The server finishes the job in hand when stopped: the files it writes go before the folder
# does (a removal racing them fails with "Directory not empty"). 10 s, then it is killed.
cleanup() {
  if [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; then
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export JWT_SECRET_KEY="load-test-secret-$RANDOM-0123456789"
export DATABASE_PATH="$work/db.sqlite" STORAGE_PATH="$work/storage" IMGEST_PORT=0
export RATE_LIMIT_MAX_UPLOADS=1000000 RUST_LOG=imgest_server=warn
"$bin" > "$work/out" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.1; done
base="$(sed -n 's/^imgest-server listening on //p' "$work/out")"
[ -n "$base" ] || { echo "the server did not start" >&2; exit 1; }
token="$("$bin" token --user load)"

# A multipart body with the sample photo.
boundary="imgestloadboundary"
{
  printf -- '--%s\r\nContent-Disposition: form-data; name="file"; filename="sunrise.jpg"\r\nContent-Type: image/jpeg\r\n\r\n' "$boundary"
  cat "$root/examples/cli/sample/sunrise.jpg"
  printf -- '\r\n--%s--\r\n' "$boundary"
} > "$work/body"

report() { # name, hey output file, the one status expected
  local p50 p99 rps codes
  p50=$(awk '/ 50% in /{print $3}' "$2"); p99=$(awk '/ 99% in /{print $3}' "$2")
  rps=$(awk '/Requests\/sec:/{print $2}' "$2")
  codes=$(awk '/Status code distribution:/{f=1;next} f&&/\[/{printf "%s%s", sep, $1" "$2; sep=", "} f&&!/\[/{f=0}' "$2")
  printf '%-8s p50 %6.1f ms  p99 %6.1f ms  %7.1f req/s  (%s)\n' "$1" "$(echo "$p50*1000" | bc -l)" "$(echo "$p99*1000" | bc -l)" "$rps" "$codes"
  if grep -Eq '^\s*\[5[0-9][0-9]\]' "$2"; then echo "5xx answers in $1" >&2; exit 1; fi
  if [ "$codes" != "[$3] $(awk '/Status code distribution:/{getline; print $2}' "$2")" ]; then
    echo "$1: answers other than $3: $codes" >&2; exit 1
  fi
  if grep -q "Error distribution" "$2"; then echo "transport errors in $1:" >&2; sed -n '/Error distribution/,$p' "$2" >&2; exit 1; fi
}

# One processed image to read back during the run.
first="$(curl -sf -H "Authorization: Bearer $token" -F "file=@$root/examples/cli/sample/sunrise.jpg" "$base/api/v1/images")"
image_id="$(echo "$first" | sed -n 's/.*"image_id":"\([^"]*\)".*/\1/p')"
for i in $(seq 600); do
  curl -sf -H "Authorization: Bearer $token" "$base/api/v1/images/$image_id" | grep -q '"status":"done"' && break
  [ "$i" = 600 ] && { echo "the first image was not processed in 60 s" >&2; exit 1; }
  sleep 0.1
done

hey -z "${secs}s" -c 8 -m POST -T "multipart/form-data; boundary=$boundary" -D "$work/body" \
  -H "Authorization: Bearer $token" "$base/api/v1/images" > "$work/uploads.txt"
report upload "$work/uploads.txt" 202

# Reads while the queue drains.
hey -z "${secs}s" -c 16 -H "Authorization: Bearer $token" "$base/api/v1/images/$image_id/thumbnail" > "$work/reads.txt"
report read "$work/reads.txt" 200
hey -z "${secs}s" -c 16 -H "Authorization: Bearer $token" "$base/api/v1/images/$image_id" > "$work/meta.txt"
report metadata "$work/meta.txt" 200
curl -sf "$base/api/v1/health/stats" | sed 's/^/stats: /'
echo
