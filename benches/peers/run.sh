#!/usr/bin/env bash
# Runs imgest (the Rust library in-process, the npm and Python packages) side by side with the peers of the shared
# benchmark harness (sharp, pyvips, Pillow, wasm-vips, jSquash, ...): builds the native runner (imgest-rs), installs the
# packed npm package next to the harness's npm peers and the Python package into its venv, registers imgest's
# runners and hands the rest of the arguments to the harness.
#
#   benches/peers/run.sh [--harness DIR] [harness args]
#   benches/peers/run.sh --peers imgest-npm,jsquash,wasm-vips,sharp --rounds 3
#   benches/peers/run.sh --peers imgest-py,pyvips,pillow,sharp --rounds 3
#   benches/peers/run.sh --peers imgest-rs,sharp,pyvips,pillow --rounds 3
#   benches/peers/run.sh --peers imgest-rs,webp-floor,decode-floor,sharp,pyvips,pillow --rounds 3
#
# webp-floor times only the WebP encodes of each image's variants (the pipeline's libwebp calls,
# settings and parallelism; decoding, orienting and resizing happen before timing): the floor
# that no pipeline encoding with libwebp at these settings can beat; decode-floor times only
# the decode, at the JPEG scale imgest's pipeline chooses (no output). imgest-npm-floor and
# jsquash-floor are the same for the WebAssembly encoders (imgest's npm package, @jsquash/webp):
#   benches/peers/run.sh --peers imgest-npm,imgest-npm-floor,jsquash,jsquash-floor,wasm-vips,sharp
#
# DIR defaults to $IMGEST_PEERS or ../shared/bench/peers beside the repository. The harness writes
# its results and RESULTS.md under $BENCH_HOME (see its README); copy the table into
# benches/RESULTS.md with the date, machine and load.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
harness="${IMGEST_PEERS:-$root/../shared/bench/peers}"
if [ "${1:-}" = "--harness" ]; then harness="$2"; shift 2; fi
[ -x "$harness/run.sh" ] || { echo "error: no peer harness at $harness (set IMGEST_PEERS or pass --harness)" >&2; exit 2; }
export BENCH_HOME="${BENCH_HOME:-${TMPDIR:-/tmp}/imgest-peer-bench}"

"$harness/run.sh" install
node_dir="$BENCH_HOME/node"

# The npm package, exactly as users install it: build, pack, install the tarball.
if [ "${IMGEST_SKIP_BUILD:-0}" != 1 ]; then "$root/scripts/build-wasm.sh"; fi
pack_dir="$(mktemp -d)"
trap 'rm -rf "$pack_dir"' EXIT
(cd "$root/bindings-wasm/pkg" && npm pack --silent --pack-destination "$pack_dir" >/dev/null)
(cd "$node_dir" && npm install --no-save --no-audit --no-fund --loglevel=error "$pack_dir"/imgest-*.tgz)
mkdir -p "$node_dir/runners"
cp "$root/benches/peers/imgest_npm.mjs" "$root/benches/peers/npm_floor.mjs" "$node_dir/runners/"

# The Python package, as users install it, into the harness's venv.
if [ "${IMGEST_SKIP_BUILD:-0}" != 1 ] || ! "$BENCH_HOME/venv/bin/python" -c 'import imgest' 2>/dev/null; then
  "$BENCH_HOME/venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$root/bindings-python"
fi
export IMGEST_HARNESS="$harness"

# The Rust library itself, in-process (crate imgest-benches).
if [ "${IMGEST_SKIP_BUILD:-0}" != 1 ] || [ ! -x "${CARGO_TARGET_DIR:-$root/target}/release/imgest-peer-runner" ]; then
  (cd "$root" && cargo build --release --locked -q -p imgest-benches --bin imgest-peer-runner)
fi
runner_bin="${CARGO_TARGET_DIR:-$root/target}/release/imgest-peer-runner"

cat > "$BENCH_HOME/imgest-peers.json" <<JSON
{"peers": [
  {"name": "imgest-npm", "kind": "npm, WASM (Rust + libwebp), 1 thread", "cmd": ["node", "{node}/runners/imgest_npm.mjs"],
   "wasm": ["{node}/node_modules/imgest/imgest_wasm_bg.wasm"]},
  {"name": "imgest-py", "kind": "PyPI, Rust (pyo3), variants in parallel", "cmd": ["{venv}/bin/python", "$root/benches/peers/imgest_py.py"],
   "wasm": []},
  {"name": "imgest-rs", "kind": "Rust, in-process, variants in parallel", "cmd": ["$runner_bin"], "wasm": []},
  {"name": "imgest-npm-floor", "kind": "imgest's npm package encoding each variant's pixels alone (uncompressed PNG in)",
   "cmd": ["node", "{node}/runners/npm_floor.mjs"], "wasm": []},
  {"name": "jsquash-floor", "kind": "@jsquash/webp's encoder alone (SIMD build) on the same pixels",
   "cmd": ["node", "{node}/runners/npm_floor.mjs"], "wasm": []},
  {"name": "webp-floor", "kind": "imgest's WebP encodes alone (decode, orient, resize done before timing)",
   "cmd": ["$runner_bin", "--encode-only"], "wasm": []},
  {"name": "decode-floor", "kind": "imgest's decode alone, at the scale its pipeline chooses (no output)",
   "cmd": ["$runner_bin", "--decode-only"], "wasm": []}
]}
JSON
exec "$harness/run.sh" bench --extra-peers "$BENCH_HOME/imgest-peers.json" "$@"
