// AVIF output in the npm build with the `avif-output` feature (scripts/build-wasm.sh with
// IMGEST_WASM_FEATURES=avif-output → pkg-avif-output/; too large for the default module, see the
// README). Skipped when that build is absent, unless IMGEST_REQUIRE_NPM_AVIF=1 (.ci/run).
// IMGEST_NPM_AVIF_OUT, when set, receives each AVIF with the facts a native decode must confirm
// (<name>.avif, <name>.json, and the same variant as WebP: <name>-webp.webp), which .ci/run
// checks through the native CLI (check-avif-decode.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { png } from './png.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', 'pkg-avif-output', 'node.js');
const required = process.env.IMGEST_REQUIRE_NPM_AVIF === '1';
const skip = !existsSync(pkg) && !required && 'no AVIF build (IMGEST_WASM_FEATURES=avif-output scripts/build-wasm.sh)';

/** An RGBA PNG: a left half fading in (alpha 0 → 255) over a red-to-blue gradient, a right half
 * of solid opaque orange (the dominant colour). */
function gradientPng(width, height) {
  const row = width * 4 + 1;
  const raw = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * row + 1 + x * 4;
      const left = x < width / 2;
      raw[i] = left ? Math.round((255 * x) / (width - 1)) : 230;
      raw[i + 1] = left ? 40 : 120;
      raw[i + 2] = left ? 255 - raw[i] : 20;
      raw[i + 3] = left ? Math.round((510 * x) / width) : 255;
    }
  }
  return png(width, height, 4, raw);
}

/** The (width, height) of every `ispe` box, in file order. */
function ispe(bytes) {
  const b = Buffer.from(bytes);
  const out = [];
  for (let i = b.indexOf('ispe'); i >= 0; i = b.indexOf('ispe', i + 4)) {
    out.push([b.readUInt32BE(i + 8), b.readUInt32BE(i + 12)]);
  }
  return out;
}

const ALPHA_URN = 'urn:mpeg:mpegB:cicp:systems:auxiliary:alpha';

test('AVIF variants from the npm build: the file, its size, its alpha, no metadata', { skip }, async () => {
  const { init, process: ingest } = await import(pkg);
  await init();
  const out = process.env.IMGEST_NPM_AVIF_OUT;
  const sample = readFileSync(join(here, '..', '..', 'examples', 'cli', 'sample', 'sunrise.jpg'));
  const cases = [
    // The sample carries EXIF (orientation 6): turned upright, its EXIF gone.
    { name: 'sunrise', input: sample, box: 320, alpha: false },
    { name: 'gradient', input: gradientPng(240, 160), box: 200, alpha: true },
  ];
  for (const c of cases) {
    const variants = [
      { name: 'a', max_width: c.box, max_height: c.box, format: 'avif', quality: 85 },
      { name: 'w', max_width: c.box, max_height: c.box },
    ];
    const r = await ingest(c.input, { variants });
    const a = r.variants.a;
    const w = r.variants.w;
    const b = Buffer.from(a.bytes);
    assert.equal(b.subarray(4, 12).toString('latin1'), 'ftypavif', c.name);
    assert.equal(a.format, 'avif');
    assert.deepEqual([a.width, a.height], [w.width, w.height], c.name);
    // The image size (one `ispe`, which the alpha item shares with the colour item).
    assert.deepEqual(ispe(b), [[a.width, a.height]], c.name);
    assert.equal(b.includes(ALPHA_URN), c.alpha, `${c.name}: alpha item`);
    assert.ok(!b.includes('Exif') && !b.includes('mime') && !b.includes('http://ns.adobe.com'), `${c.name}: metadata`);
    if (out) {
      writeFileSync(join(out, `${c.name}.avif`), b);
      writeFileSync(join(out, `${c.name}-webp.webp`), w.bytes);
      const facts = { width: a.width, height: a.height, has_alpha: c.alpha };
      writeFileSync(join(out, `${c.name}.json`), JSON.stringify(facts));
    }
  }
  // Effort and quality are used: a lower quality gives fewer bytes.
  const low = await ingest(sample, { variants: [{ name: 'a', max_width: 320, max_height: 320, format: 'avif', quality: 30 }] });
  const high = await ingest(sample, { variants: [{ name: 'a', max_width: 320, max_height: 320, format: 'avif', quality: 95 }] });
  assert.ok(low.variants.a.bytes.length < high.variants.a.bytes.length);
});
