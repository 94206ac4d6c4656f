#!/usr/bin/env bash
# Builds libimgest (release) and installs it under PREFIX (default /usr/local):
#   PREFIX/lib/libimgest.so, PREFIX/lib/libimgest.a, PREFIX/include/imgest.h,
#   PREFIX/lib/pkgconfig/imgest.pc
# then `cc app.c $(pkg-config --cflags --libs imgest)` works (with PKG_CONFIG_PATH pointing at
# PREFIX/lib/pkgconfig if PREFIX is not a system prefix), and
# `cc app.c $(pkg-config --cflags imgest) PREFIX/lib/libimgest.a $(pkg-config --libs-only-other --static imgest)`
# links statically.
#   bindings-c/install.sh [PREFIX]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${1:-${PREFIX:-/usr/local}}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
version=$(awk -F'"' '/^version = /{print $2; exit}' "$root/Cargo.toml")

(cd "$root" && cargo build --release --locked -p imgest-c)
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$root/bindings-c/include/imgest.h" "$prefix/include/imgest.h"
install -m 755 "$target_dir/release/libimgest.so" "$prefix/lib/libimgest.so"
install -m 644 "$target_dir/release/libimgest.a" "$prefix/lib/libimgest.a"
cat > "$prefix/lib/pkgconfig/imgest.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: imgest
Description: Turn an untrusted uploaded image into safe, web-ready variants
Version: $version
Libs: -L\${libdir} -limgest
Libs.private: -lpthread -ldl -lm -lrt -lutil -lgcc_s -lc
Cflags: -I\${includedir}
PC
echo "installed imgest $version under $prefix"
