// AVIF output and input in the npm build with the `avif-output` and `avif-input` features
// (IMGEST_WASM_FEATURES=avif-output,avif-input IMGEST_WASM_OUT=bindings-wasm/pkg-avif
// scripts/build-wasm.sh; too large for the default module, see the README). Skipped when that
// build is absent, unless IMGEST_REQUIRE_NPM_AVIF=1 (.ci/run).
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
const pkg = join(here, '..', 'pkg-avif', 'node.js');
const required = process.env.IMGEST_REQUIRE_NPM_AVIF === '1';
const skip = !existsSync(pkg) && !required && 'no AVIF build (bindings-wasm/pkg-avif)';

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

test('AVIF input in the npm build: round trip, alpha, limits read from the header, truncation', { skip }, async () => {
  const { init, processSync, decodeSync, ImgestError } = await import(pkg);
  await init();
  const source = gradientPng(240, 160);
  const original = decodeSync(source);
  const made = processSync(source, { variants: [{ name: 'a', format: 'avif', quality: 90 }] }).variants.a.bytes;
  // Round trip: the AVIF decodes back to its size with its alpha, close to the source pixels.
  const back = decodeSync(made);
  assert.deepEqual([back.width, back.height], [240, 160]);
  let alphaOff = 0;
  let colourOff = 0;
  let opaque = 0;
  for (let i = 0; i < back.data.length; i += 4) {
    alphaOff = Math.max(alphaOff, Math.abs(back.data[i + 3] - original.data[i + 3]));
    if (original.data[i + 3] === 255) {
      opaque += 1;
      for (let c = 0; c < 3; c++) colourOff += Math.abs(back.data[i + c] - original.data[i + c]);
    }
  }
  assert.ok(alphaOff <= 8, `alpha off by up to ${alphaOff}`);
  assert.ok(colourOff / (opaque * 3) < 2, `mean colour error ${colourOff / (opaque * 3)} on opaque pixels`);
  const r = processSync(made);
  assert.equal(r.source.format, 'avif');
  assert.deepEqual([r.source.width, r.source.height], [240, 160]);
  assert.equal(r.source.hasAlpha, true);

  // An `ispe` declaring more pixels than the limit is refused before any decoding.
  const huge = Buffer.from(made);
  const at = huge.indexOf('ispe');
  huge.writeUInt32BE(20000, at + 8);
  huge.writeUInt32BE(20000, at + 12);
  assert.throws(() => processSync(huge), (e) => e instanceof ImgestError && e.code === 'limit_exceeded');
  // A truncated file is corrupt input, never a crash.
  for (const cut of [made.length - 1, Math.floor(made.length * 0.6), Math.floor(made.length / 3)]) {
    assert.throws(() => processSync(made.subarray(0, cut)),
      (e) => e instanceof ImgestError && e.code === 'corrupt_input', `cut at ${cut}`);
  }
  // The module is still usable after the errors.
  assert.equal(processSync(made).source.width, 240);
});
