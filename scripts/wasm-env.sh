# Sourced by the scripts that build the npm package's module: the C flags of .cargo/config.toml
# plus libwebp's SSE2 code paths, compiled to WebAssembly SIMD through Emscripten's intrinsics
# headers (bindings-wasm/sse2/README.md). An exported variable takes precedence over [env].
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_base=$(sed -n 's/^CFLAGS_wasm32_unknown_unknown = "\(.*\)"$/\1/p' "$_root/.cargo/config.toml")
[ -n "$_base" ] || { echo "error: no CFLAGS_wasm32_unknown_unknown in .cargo/config.toml" >&2; exit 1; }
export CFLAGS_wasm32_unknown_unknown="$_base -DEMSCRIPTEN -D__SSE__ -D__SSE2__ -isystem $_root/bindings-wasm/sse2"
unset _root _base
