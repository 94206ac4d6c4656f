#!/usr/bin/env bash
# Runs every test of the workspace. Corpus tests read ../shared/corpus (or $IMGEST_CORPUS) and
# skip with a message when it is absent, unless IMGEST_REQUIRE_CORPUS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
