#!/usr/bin/env bash
# Size of the npm package's .wasm per optional feature (raw and gzip -9, after wasm-bindgen),
# and a per-crate breakdown of the default build's code. Not part of .ci/run (one release
# build per line); scripts/build-wasm.sh checks the default build against its ceiling.
#   ./scripts/wasm-size.sh [feature ...]      default: "" bmp tiff
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh
target_dir="${CARGO_TARGET_DIR:-target}"
features=("$@")
[ ${#features[@]} -gt 0 ] || features=("" bmp tiff)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
wasm="$target_dir/wasm32-unknown-unknown/wasm/imgest_wasm.wasm"

dav1d_source_for "${features[@]}"
printf '%-12s %10s %10s\n' build raw gzip
base=0
for f in "${features[@]}"; do
  cargo build -q -p imgest-wasm --locked --profile wasm --target wasm32-unknown-unknown \
    ${f:+--features "$f"}
  wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$out" \
    "$wasm" 2>/dev/null
  optimize_wasm "$out/imgest_wasm_bg.wasm"
  raw=$(stat -c %s "$out/imgest_wasm_bg.wasm")
  gz=$(gzip -9 -c "$out/imgest_wasm_bg.wasm" | wc -c)
  if [ -z "$f" ]; then base=$gz; label=default; else label="+$f"; fi
  delta=""
  [ -n "$f" ] && [ "$base" -gt 0 ] && delta=$(printf '(%+d KB gz)' $(((gz - base) / 1000)))
  printf '%-12s %10d %10d %s\n' "$label" "$raw" "$gz" "$delta"
done

echo
echo "default build, code by crate (before wasm-bindgen):"
cargo build -q -p imgest-wasm --locked --profile wasm --target wasm32-unknown-unknown \
  --config 'profile.wasm.strip=false'
node scripts/wasm-breakdown.mjs "$wasm"
