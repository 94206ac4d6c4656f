#!/usr/bin/env bash
# Regenerates bindings-c/include/imgest.h from bindings-c/src/lib.rs with cbindgen
# (`cargo install cbindgen --locked`). .ci/run fails if the committed header is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cbindgen >/dev/null || { echo "error: cbindgen not found (cargo install cbindgen --locked)" >&2; exit 1; }
cbindgen --quiet --config bindings-c/cbindgen.toml --crate imgest-c --output bindings-c/include/imgest.h bindings-c
