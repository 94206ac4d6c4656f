// The npm package against the shared corpus (same checks as the core's corpus test) and, when
// IMGEST_NATIVE_REPORTS points at the native CLI's output folder, byte parity with the native build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, dirname, basename, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = process.env.IMGEST_PKG ?? join(here, '..', 'pkg');
const { init, processSync, decodeSync, ImgestError, errorCodes, toBlob, toFile } = await import(join(pkg, 'node.js'));
await init();

const corpus = process.env.IMGEST_CORPUS ?? join(here, '..', '..', '..', 'shared', 'corpus');
const haveCorpus = existsSync(join(corpus, 'EXPECTED.json'));
if (!haveCorpus && process.env.IMGEST_REQUIRE_CORPUS === '1') {
  throw new Error(`IMGEST_REQUIRE_CORPUS=1 but no corpus at ${corpus}`);
}

// The optional Cargo features of the build under test (IMGEST_PKG_FEATURES, as given to
// scripts/build-wasm.sh): with `avif-input`, the corpus' AVIF files must be accepted.
const features = (process.env.IMGEST_PKG_FEATURES ?? '').split(',').filter(Boolean);
const avifInput = features.includes('avif-input');

const CODE = { truncated: 'corrupt_input', corrupt: 'corrupt_input', bomb: 'limit_exceeded',
  unsupported: 'unsupported_format', 'not-an-image': 'not_an_image' };

// What the corpus test saw per file (by absolute path), for the parity test to reuse.
const seen = new Map();

function run(bytes) {
  try {
    return { out: processSync(bytes) };
  } catch (e) {
    assert.ok(e instanceof ImgestError, `not an ImgestError: ${e}`);
    return { err: e };
  }
}

function checkAccept(entry, r, problems) {
  if (r.err) return problems.push(`rejected: [${r.err.code}] ${r.err.message}`);
  const d = entry.decoded ?? {};
  const s = r.out.source;
  if (d.width != null && (s.width !== d.width || s.height !== d.height)) {
    problems.push(`size ${s.width}x${s.height}, expected ${d.width}x${d.height}`);
  }
  const names = { 150: 'thumbnail', 800: 'medium', 1600: 'large' };
  for (const [edge, want] of Object.entries(entry.variants_long_edge ?? {})) {
    const v = r.out.variants[names[edge]];
    if (Math.abs(v.width - want[0]) > 1 || Math.abs(v.height - want[1]) > 1) {
      problems.push(`${names[edge]} ${v.width}x${v.height}, expected ${want}`);
    }
  }
  for (const name of r.out.variantNames) {
    const b = r.out.variants[name].bytes;
    assert.ok(b instanceof Uint8Array);
    const tag = String.fromCharCode(...b.subarray(0, 4)) + String.fromCharCode(...b.subarray(8, 12));
    if (tag !== 'RIFFWEBP') problems.push(`${name} is not a WebP`);
    for (const bad of ['EXIF', 'XMP ', 'ICCP']) {
      if (Buffer.from(b).includes(bad)) problems.push(`${name} contains a ${bad} chunk`);
    }
  }
}

test('error codes are the core table', () => {
  assert.deepEqual(errorCodes().map((c) => c.code), ['unsupported_format', 'not_an_image', 'corrupt_input',
    'limit_exceeded', 'invalid_options', 'encode_failed', 'storage', 'timeout', 'cancelled', 'internal']);
});

test('options are validated; unknown keys throw invalid_options', () => {
  for (const bad of [{ bogus: 1 }, { variants: [] }, { variants: [{ name: 'a', quality: 300 }] },
    { limits: { max_pixel: 1 } }]) {
    assert.throws(() => processSync(new Uint8Array([1, 2, 3]), bad), (e) => e instanceof ImgestError && e.code === 'invalid_options');
  }
  // JPEG, PNG and AVIF output are left out of the npm build (Cargo features of bindings-wasm,
  // which IMGEST_PKG_FEATURES names for a build that has some).
  for (const format of ['jpeg', 'png', 'avif'].filter((f) => !features.includes(`${f}-output`))) {
    assert.throws(() => processSync(new Uint8Array([1, 2, 3]), { variants: [{ name: 'a', format }] }),
      (e) => e instanceof ImgestError && e.code === 'invalid_options' && /not enabled in this build/.test(e.message));
  }
});

test('toBlob and toFile take the MIME type and extension from the core', { skip: !haveCorpus && `no corpus at ${corpus}` }, async () => {
  const out = processSync(readFileSync(join(corpus, 'webp', 'test.webp')), { variants: [{ name: 'v', max_width: 64 }] });
  const v = out.variants.v;
  const blob = toBlob(v);
  assert.equal(blob.type, 'image/webp');
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), v.bytes);
  const file = toFile(v);
  assert.equal(file.name, 'image.webp');
  assert.equal(file.type, 'image/webp');
  assert.equal(toFile(v, 'x.bin').name, 'x.bin');
});

test('corpus', { skip: !haveCorpus && `no corpus at ${corpus}` }, () => {
  const expected = JSON.parse(readFileSync(join(corpus, 'EXPECTED.json'), 'utf8'));
  const failed = [];
  for (const entry of expected.files) {
    const file = resolve(corpus, entry.path);
    const r = run(readFileSync(file));
    seen.set(file, r);
    const problems = [];
    const code = r.err?.code;
    switch (entry.outcome) {
      case 'reject':
        if (code !== CODE[entry.reason]) problems.push(`expected ${CODE[entry.reason]}, got ${code ?? 'ok'}`);
        break;
      case 'accept-or-unsupported':
        if (code !== 'unsupported_format' || (avifInput && /\.avifs?$/.test(entry.path))) {
          checkAccept(entry, r, problems);
        }
        break;
      case 'reject-or-accept-without-inflating':
        if (code !== 'limit_exceeded') checkAccept(entry, r, problems);
        break;
      default:
        checkAccept(entry, r, problems);
    }
    if (problems.length) failed.push(`${entry.path}: ${problems.join('; ')}`);
  }
  console.log(`wasm corpus: ${expected.files.length - failed.length} passed, ${failed.length} failed`);
  assert.deepEqual(failed, []);
});

const native = process.env.IMGEST_NATIVE_REPORTS;
test('parity with the native build', { skip: !native && 'IMGEST_NATIVE_REPORTS is not set' }, () => {
  // IMGEST_NATIVE_REPORTS holds the native CLI's output for the corpus (see .ci/run):
  // <name>/report.json. Every output byte must be the same: both builds share one libwebp, and the
  // decoders' and colour code's platform-specific paths are pinned to the same arithmetic.
  let compared = 0;
  let files = 0;
  const notInBuild = [];
  const problems = [];
  for (const dir of readdirSync(native)) {
    const report = JSON.parse(readFileSync(join(native, dir, 'report.json'), 'utf8'));
    const file = resolve(report.input);
    const r = seen.get(file) ?? run(readFileSync(file));
    const where = basename(report.input, extname(report.input));
    if (r.err) {
      // Optional decoders (BMP, TIFF) are left out of the npm package.
      if (r.err.code === 'unsupported_format' && /not enabled in this build/.test(r.err.message)) {
        notInBuild.push(where);
        continue;
      }
      problems.push(`${where}: [${r.err.code}] ${r.err.message}`);
      continue;
    }
    files += 1;
    const out = r.out;
    const check = (ok, what) => ok || problems.push(`${where}: ${what}`);
    check(out.dominantColor?.hex === report.output.dominant_color?.hex,
      `dominant ${out.dominantColor?.hex} vs ${report.output.dominant_color?.hex}`);
    check(out.placeholder === report.output.placeholder, 'placeholder');
    check(isDeepStrictEqual(out.source.metadata, report.output.source.metadata), 'metadata');
    for (const v of report.output.variants) {
      const mine = out.variants[v.name];
      check(mine && mine.width === v.width && mine.height === v.height, `${v.name} size`);
      check(mine?.sha256 === v.sha256, `${v.name} bytes differ from native`);
      compared += 1;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(compared > 0, 'no native reports to compare');
  console.log(`parity: ${compared} variants of ${files} images byte-identical to the native build` +
    (notInBuild.length ? ` (${notInBuild.length} in formats this build leaves out: ${notInBuild.join(', ')})` : ''));
});
