// AVIF output in the npm build with the `avif-output` feature (scripts/build-wasm.sh with
// IMGEST_WASM_FEATURES=avif-output → pkg-avif-output/; too large for the default module, see the
// README). Skipped when that build is absent, unless IMGEST_REQUIRE_NPM_AVIF=1 (.ci/run).
// IMGEST_NPM_AVIF_OUT, when set, receives each AVIF with the facts a native decode must confirm
// (<name>.avif, <name>.json), which .ci/run checks through the native CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, '..', 'pkg-avif-output', 'node.js');
const required = process.env.IMGEST_REQUIRE_NPM_AVIF === '1';
const skip = !existsSync(pkg) && !required && 'no AVIF build (IMGEST_WASM_FEATURES=avif-output scripts/build-wasm.sh)';

const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (bytes) => {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/** An RGBA PNG: a left half fading in (alpha 0 → 255) over a red-to-blue gradient, a right half
 * of solid opaque orange (the dominant colour). */
function gradientPng(width, height) {
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'latin1');
    data.copy(out, 8);
    out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
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
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = 6;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
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
