#!/usr/bin/env bash
# Prints the folder of dav1d's C source (the AV1 decoder the npm build with AVIF input compiles
# with clang): cargo fetches the package that carries it (libdav1d-sys, pinned in
# bindings-wasm/dav1d-source/Cargo.lock) without building it, and its manifest path names the
# folder. scripts/build-wasm.sh exports it as IMGEST_DAV1D_SRC for core/build.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
manifest=bindings-wasm/dav1d-source/Cargo.toml
cargo fetch --locked --manifest-path "$manifest" >&2
cargo metadata --locked --offline --format-version 1 --manifest-path "$manifest" |
  node --input-type=module -e "
import { dirname, join } from 'node:path';
let text = '';
for await (const chunk of process.stdin) text += chunk;
const pkg = JSON.parse(text).packages.find((p) => p.name === 'libdav1d-sys');
if (!pkg) { console.error('libdav1d-sys is not in the metadata'); process.exit(1); }
console.log(join(dirname(pkg.manifest_path), 'vendor'));
"
