#!/usr/bin/env bash
# Builds the npm package into bindings-wasm/pkg: cargo (wasm32, release) → wasm-bindgen
# (--target web) → the hand-written ESM entry points and package.json. Needs the
# wasm32-unknown-unknown target, Debian's clang/llvm/wasi-libc (for libwebp; two Emscripten headers
# come from scripts/sse2-headers.sh) and wasm-bindgen-cli
# at exactly the wasm-bindgen version in Cargo.lock (.ci/run installs all of them), and npm (for
# binaryen's wasm-opt, fetched by npx at the version below).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh
target_dir="${CARGO_TARGET_DIR:-target}"
# IMGEST_WASM_FEATURES (comma-separated, e.g. avif-output) builds a package with optional codecs
# into IMGEST_WASM_OUT (default bindings-wasm/pkg-<features>); the size ceiling below is the
# default module's only.
features="${IMGEST_WASM_FEATURES:-}"
if [ -n "$features" ]; then
  out="${IMGEST_WASM_OUT:-bindings-wasm/pkg-${features//,/-}}"
else
  out="${IMGEST_WASM_OUT:-bindings-wasm/pkg}"
fi

locked=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$locked" ]; then
  echo "error: wasm-bindgen-cli $locked is required (found: ${have:-none});" >&2
  echo "       cargo install wasm-bindgen-cli --version $locked" >&2
  exit 1
fi

dav1d_source_for "$features"
cargo build -p imgest-wasm --locked --profile wasm --target wasm32-unknown-unknown \
  ${features:+--features "$features"}
rm -rf "$out"
mkdir -p "$out"
# No function-name or tool-version sections: the module ships without them (−0.3 KB gz).
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$out" \
  "$target_dir/wasm32-unknown-unknown/wasm/imgest_wasm.wasm"
optimize_wasm "$out/imgest_wasm_bg.wasm"
cp bindings-wasm/js/index.js bindings-wasm/js/index.d.ts bindings-wasm/js/node.js bindings-wasm/js/node.d.ts \
  bindings-wasm/js/worker.js bindings-wasm/js/worker-node.js bindings-wasm/js/worker-core.js \
  bindings-wasm/js/types.d.ts bindings-wasm/js/package.json "$out/"
cp bindings-wasm/README.md "$out/" 2>/dev/null || true

# An unresolved C symbol links silently and fails only at instantiation: refuse any import
# from the `env` module.
node --input-type=module -e "
import { readFileSync } from 'node:fs';
const mod = new WebAssembly.Module(readFileSync('$out/imgest_wasm_bg.wasm'));
const env = WebAssembly.Module.imports(mod).filter((i) => i.module === 'env');
if (env.length) { console.error('unresolved env imports:', env.map((i) => i.name).join(', ')); process.exit(1); }
"
raw=$(stat -c %s "$out/imgest_wasm_bg.wasm")
gz=$(gzip -9 -c "$out/imgest_wasm_bg.wasm" | wc -c)
echo "imgest_wasm_bg.wasm: $raw bytes, $gz bytes gzipped"
# The size budget of the default module: 400 KB gzipped (scripts/wasm-size.sh shows where the
# bytes are). Growth past it is a decision, not an accident.
max="${IMGEST_WASM_GZ_MAX:-400000}"
if [ -z "$features" ] && [ "$gz" -gt "$max" ]; then
  echo "error: the gzipped module ($gz bytes) exceeds its ceiling of $max bytes" >&2
  exit 1
fi
