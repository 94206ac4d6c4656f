#!/usr/bin/env bash
# Regenerates bindings-wasm/js/types.d.ts from the core's Rust types (via their JSON Schema).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --locked -q -p imgest --example schema --features schema | node scripts/gen-types.mjs > bindings-wasm/js/types.d.ts
