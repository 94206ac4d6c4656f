# Sourced by the scripts that build the npm package's module: the C flags of .cargo/config.toml
# plus libwebp's SSE2 code paths, compiled to WebAssembly SIMD through Emscripten's intrinsics
# headers (fetched at build time: scripts/sse2-headers.sh). An exported variable takes precedence
# over [env].
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_base=$(sed -n 's/^CFLAGS_wasm32_unknown_unknown = "\(.*\)"$/\1/p' "$_root/.cargo/config.toml")
[ -n "$_base" ] || { echo "error: no CFLAGS_wasm32_unknown_unknown in .cargo/config.toml" >&2; exit 1; }
_sse2=$("$_root/scripts/sse2-headers.sh") || exit 1
export CFLAGS_wasm32_unknown_unknown="$_base -DEMSCRIPTEN -D__SSE__ -D__SSE2__ -isystem $_sse2"
unset _root _base _sse2

# Binaryen's size optimiser on a module wasm-bindgen wrote (−5 KB gzipped, same speed; its passes
# repeated until the size stops shrinking, −0.3 KB more), fetched by npx at a pinned version. The
# features are those the module uses; the list is explicit because the stripped module does not
# carry them.
optimize_wasm() {
  npx --yes -p binaryen@132.0.0 wasm-opt -Os --converge --enable-simd --enable-bulk-memory \
    --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --enable-exception-handling --enable-reference-types --enable-multivalue "$1" -o "$1"
}

# AVIF input compiles dav1d's C source, which cargo fetches as a package: exports its folder as
# IMGEST_DAV1D_SRC (unless set) when the feature list given includes avif-input.
dav1d_source_for() {
  if [[ "$*" == *avif-input* ]] && [ -z "${IMGEST_DAV1D_SRC:-}" ]; then
    IMGEST_DAV1D_SRC=$("$(dirname "${BASH_SOURCE[0]}")/dav1d-source.sh")
    export IMGEST_DAV1D_SRC
  fi
}
