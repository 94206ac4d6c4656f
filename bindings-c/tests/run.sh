#!/usr/bin/env bash
# The C API's tests: install into a temporary prefix, build tests/test_imgest.c with
# gcc -Wall -Wextra -Werror against the shared and the static library (through pkg-config),
# run both (the shared one over the whole corpus when IMGEST_CORPUS has one), run the static
# one under valgrind, compile the header as C++, build examples/c, and compare the sample's
# variant hashes with the Rust CLI's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
sample="$root/examples/cli/sample/sunrise.jpg"

"$root/bindings-c/install.sh" "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=(-std=c99 -Wall -Wextra -Werror -O1 -pthread)

# The header is C99 and C++.
g++ -fsyntax-only -Wall -Wextra -Werror -x c++ "$prefix/include/imgest.h"

# Shared library, through pkg-config as a user would.
gcc "${cflags[@]}" "$root/bindings-c/tests/test_imgest.c" $(pkg-config --cflags --libs imgest) \
  -Wl,-rpath,"$prefix/lib" -o "$work/test_shared"
# Static library: the archive plus its private link line.
gcc "${cflags[@]}" "$root/bindings-c/tests/test_imgest.c" $(pkg-config --cflags imgest) \
  "$prefix/lib/libimgest.a" $(pkg-config --static --libs-only-l imgest | sed 's/-limgest//') \
  -o "$work/test_static"
if ldd "$work/test_static" | grep -q libimgest; then
  echo "error: test_static links libimgest.so" >&2
  exit 1
fi

manifest=()
corpus="${IMGEST_CORPUS:-$root/../shared/corpus}"
if [ -f "$corpus/EXPECTED.json" ]; then
  python3 - "$corpus" > "$work/manifest" <<'PY'
import json, sys
corpus = sys.argv[1]
codes = {"truncated": 3, "corrupt": 3, "bomb": 4, "unsupported": 1, "not-an-image": 2}
for e in json.load(open(f"{corpus}/EXPECTED.json"))["files"]:
    d = e.get("decoded") or {}
    if e["outcome"] == "reject":
        expect = str(codes[e["reason"]])
    elif e["outcome"] in ("accept", "accept-by-content", "accept-sanitized") or (
        e["outcome"] == "accept-or-unsupported" and e.get("magic_format") == "avif"
    ):
        expect = "ok"
    else:
        expect = "any"
    print(expect, d.get("width") or 0, d.get("height") or 0, f"{corpus}/{e['path']}")
PY
  manifest=("$work/manifest")
elif [ "${IMGEST_REQUIRE_CORPUS:-0}" = 1 ]; then
  echo "error: IMGEST_REQUIRE_CORPUS=1 but no corpus at $corpus" >&2
  exit 1
else
  echo "note: no corpus at $corpus; the C test runs on the sample only"
fi
"$work/test_shared" "$sample" "${manifest[@]}" > "$work/shared.out"
grep -v '^sha256 ' "$work/shared.out"
"$work/test_static" "$sample" > "$work/static.out"
tail -1 "$work/static.out"

# Zero leaks, zero errors (the static build, sample only: valgrind is ~50x slower). "Possibly
# lost" blocks are not counted: they are the stacks of rayon's worker threads, which live until
# the process exits by design. A build with one planted leak must fail the same check.
memcheck=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --error-exitcode=1
  --suppressions="$root/bindings-c/tests/valgrind.supp")
"${memcheck[@]}" "$work/test_static" "$sample" > /dev/null
gcc "${cflags[@]}" -DPLANT_LEAK "$root/bindings-c/tests/test_imgest.c" $(pkg-config --cflags imgest) \
  "$prefix/lib/libimgest.a" $(pkg-config --static --libs-only-l imgest | sed 's/-limgest//') \
  -o "$work/test_leak"
if "${memcheck[@]}" "$work/test_leak" "$sample" > /dev/null 2>&1; then
  echo "error: valgrind did not notice a planted leak" >&2
  exit 1
fi
echo "valgrind: no leaks, no errors (and a planted leak is caught)"

# The example, built as its comment says.
gcc -std=c99 -Wall -Wextra -Werror "$root/examples/c/thumbnail.c" $(pkg-config --cflags --libs imgest) \
  -Wl,-rpath,"$prefix/lib" -o "$work/thumbnail"
"$work/thumbnail" "$sample" "$work/thumb.webp" 200

# Parity: the same variant bytes as the Rust CLI.
(cd "$root" && cargo run --locked -q -p imgest-cli -- --out "$work/cli" "$sample" >/dev/null)
python3 - "$work/cli/sunrise/report.json" "$work/shared.out" <<'PY'
import json, sys
cli = {v["name"]: v["sha256"] for v in json.load(open(sys.argv[1]))["output"]["variants"]}
c = dict(l.split()[1:] for l in open(sys.argv[2]) if l.startswith("sha256 "))
assert c == cli, (c, cli)
print(f"parity: {len(c)} variants byte-identical to the Rust CLI")
PY
