#!/usr/bin/env bash
# Prints a folder holding Emscripten's `xmmintrin.h` and `emmintrin.h`: the x86 SSE/SSE2
# intrinsics written with WebAssembly SIMD (`wasm_simd128.h`, which clang ships). With them on the
# include path and `__SSE__`, `__SSE2__` and `EMSCRIPTEN` defined (scripts/wasm-env.sh), libwebp
# compiles its own SSE2 code paths for wasm32, as it does natively: same output bytes, ingest
# 0.59–0.61 × and thumb 0.78 × the time of the plain `-msimd128` build (benches/RESULTS.md).
#
# The two files are not kept in this repository. They are copied once into
# `$CARGO_TARGET_DIR/sse2-headers/` from an installed Emscripten (`$EMSCRIPTEN_ROOT`, or Debian's
# /usr/share/emscripten), else extracted from Debian's `emscripten` package (`apt-get download`;
# the package carries Emscripten's licence terms). Only these two: Emscripten's
# whole `compat/` folder would shadow wasi-libc's headers.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CARGO_TARGET_DIR:-$root/target}/sse2-headers"
compat=usr/share/emscripten/system/include/compat

if [ -s "$dir/xmmintrin.h" ] && [ -s "$dir/emmintrin.h" ]; then
  echo "$dir"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=""
for c in "${EMSCRIPTEN_ROOT:+$EMSCRIPTEN_ROOT/system/include/compat}" "/$compat"; do
  if [ -n "$c" ] && [ -f "$c/emmintrin.h" ] && [ -f "$c/xmmintrin.h" ]; then
    src="$c"
    break
  fi
done
if [ -z "$src" ]; then
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "error: libwebp's SSE2 code paths need Emscripten's xmmintrin.h and emmintrin.h:" >&2
    echo "       install Emscripten (and set EMSCRIPTEN_ROOT) or run this on Debian/Ubuntu" >&2
    exit 1
  fi
  # A fresh machine may have no package lists yet.
  (cd "$tmp" && apt-get download -qq emscripten >/dev/null 2>&1) ||
    { apt-get update -qq >&2 && (cd "$tmp" && apt-get download -qq emscripten >&2); }
  deb=$(ls "$tmp"/emscripten_*.deb)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "./$compat/xmmintrin.h" "./$compat/emmintrin.h"
  src="$tmp/$compat"
fi
# Into place whole or not at all: an interrupted copy leaves nothing half-written behind.
mkdir -p "$dir.tmp.$$"
cp "$src/xmmintrin.h" "$src/emmintrin.h" "$dir.tmp.$$/"
rm -rf "$dir"
mv "$dir.tmp.$$" "$dir"
echo "$dir"
