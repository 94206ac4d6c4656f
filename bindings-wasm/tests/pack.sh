#!/usr/bin/env bash
# `npm pack` the built package and import it from a fresh project, as a user would.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg="$PWD/pkg"
sample="$PWD/../examples/cli/sample/sunrise.jpg"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$pkg" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/imgest-*.tgz)
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "$tarball"
cp "$sample" sample.jpg
cat > check.mjs <<'JS'
import { init, process as ingest, ImgestError } from 'imgest';
import { readFileSync } from 'node:fs';
await init();
await init(); // idempotent
const r = await ingest(readFileSync('sample.jpg'));
const t = r.variants.thumbnail;
if (t.width !== 150 || t.height !== 100 || r.source.orientation !== 6 || !(t.bytes instanceof Uint8Array)) {
  throw new Error(`unexpected result ${JSON.stringify({ w: t.width, h: t.height, o: r.source.orientation })}`);
}
try {
  await ingest(new Uint8Array(0));
  throw new Error('empty input accepted');
} catch (e) {
  if (!(e instanceof ImgestError) || e.code !== 'not_an_image') throw e;
}
// A call with a signal runs on a worker thread: its files are in the package.
const onWorker = await ingest(readFileSync('sample.jpg'), { signal: new AbortController().signal });
if (onWorker.variants.thumbnail.sha256 !== t.sha256) throw new Error('the worker gave other bytes');
console.log(`npm pack: installed tarball works (thumbnail ${t.width}x${t.height}, ${t.bytes.length} bytes)`);
JS
node check.mjs
