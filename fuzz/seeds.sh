#!/usr/bin/env bash
# Writes the image seeds of the `sniff` and `process` targets from the shared test corpus (the
# files are other projects' test images, so they are not kept in this repository):
#
#   fuzz/seeds.sh <corpus folder> <seeds folder>      e.g. fuzz/seeds.sh "$IMGEST_CORPUS" fuzz/seeds
#
# Every corpus image under 64 KiB (small inputs keep the fuzzer fast) becomes
# `sniff/<folder>_<name>` and `process/0_<folder>_<name>` (a leading options byte 0: one small
# variant); those under 8 KiB also `process/1_<folder>_<name>` (byte 1: full size, linear light).
# The `options_json` seeds are ours and committed in fuzz/seeds/options_json/.
set -euo pipefail
if [ $# -ne 2 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <corpus folder> <seeds folder>" >&2
  exit 2
fi
corpus=$1
out=$2
mkdir -p "$out/sniff" "$out/process"
n=0
while IFS= read -r -d '' f; do
  rel=${f#"$corpus"/}
  case "$rel" in */*) ;; *) continue ;; esac # images live in sub-folders; skip the notes
  name=${rel//\//_}
  cp "$f" "$out/sniff/$name"
  { printf '\0'; cat "$f"; } >"$out/process/0_$name"
  if [ "$(stat -c %s "$f")" -lt 8192 ]; then
    { printf '\1'; cat "$f"; } >"$out/process/1_$name"
  fi
  n=$((n + 1))
done < <(find "$corpus" -type f -size -64k -print0 | sort -z)
if [ "$n" -eq 0 ]; then
  echo "error: no image under 64 KiB in $corpus" >&2
  exit 1
fi
echo "fuzz seeds: $n corpus images into $out/sniff and $out/process" >&2
