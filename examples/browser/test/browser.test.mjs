// The demo page in a real Chromium (Debian's /usr/bin/chromium driven by playwright-core):
// pick an orientation-6 photo and a Display P3 photo, check what the page shows and produces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { serve } from '../serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const required = process.env.IMGEST_REQUIRE_BROWSER === '1';
const havePkg = existsSync(join(root, 'bindings-wasm', 'pkg', 'imgest_wasm_bg.wasm'));
const haveChromium = existsSync(chromiumPath);
if (required && !(havePkg && haveChromium)) {
  throw new Error(`IMGEST_REQUIRE_BROWSER=1 but pkg built: ${havePkg}, chromium at ${chromiumPath}: ${haveChromium}`);
}
const corpus = process.env.IMGEST_CORPUS ?? join(root, '..', 'shared', 'corpus');
const p3 = join(corpus, 'jpeg', 'P3-sRGB-color-ring.jpg');

test('demo page in Chromium', { skip: !(havePkg && haveChromium) && 'needs bindings-wasm/pkg (scripts/build-wasm.sh) and Debian chromium' }, async () => {
  const { chromium } = await import('playwright-core');
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30000 });
    const files = [join(root, 'examples', 'cli', 'sample', 'sunrise.jpg')];
    if (existsSync(p3)) files.push(p3);
    await page.setInputFiles('#files', files);
    await page.waitForFunction((n) => document.querySelectorAll('section.image[data-state]').length === n, files.length, { timeout: 60000 });

    // The orientation-6 sample: shown upright, GPS and EXIF removed, 150×100 thumbnail.
    const sunrise = await page.$eval('section[data-name="sunrise.jpg"]', (s) => ({ ...s.dataset }));
    assert.equal(sunrise.state, 'done');
    assert.deepEqual([sunrise.width, sunrise.height, sunrise.orientation], ['1200', '800', '6']);
    assert.ok(sunrise.removed.split(',').includes('gps') && sunrise.removed.split(',').includes('exif'), sunrise.removed);
    const thumb = await page.$eval('section[data-name="sunrise.jpg"] img[data-variant="thumbnail"]', (i) => ({
      w: i.naturalWidth, h: i.naturalHeight, dw: i.dataset.width, dh: i.dataset.height }));
    assert.deepEqual(thumb, { w: 150, h: 100, dw: '150', dh: '100' });
    // The produced blob: a WebP with image chunks only (no EXIF/XMP/ICCP).
    const chunks = await page.$eval('section[data-name="sunrise.jpg"] img[data-variant="original"]', async (img) => {
      const b = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
      const out = [];
      for (let i = 12; i + 8 <= b.length;) {
        const len = b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24);
        out.push(String.fromCharCode(...b.subarray(i, i + 4)));
        i += 8 + len + (len & 1);
      }
      return out;
    });
    assert.ok(chunks.every((c) => ['VP8 ', 'VP8L', 'VP8X', 'ALPH'].includes(c)), chunks.join(','));
    // Upright: the sky (blue) is at the top of the full-size variant, the warm horizon below.
    const [top, bottom] = await page.$eval('section[data-name="sunrise.jpg"] img[data-variant="original"]', (img) => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0);
      return [[100, 20], [100, c.height - 20]].map(([x, y]) => [...ctx.getImageData(x, y, 1, 1).data]);
    });
    assert.ok(top[2] > top[0] + 40 && bottom[0] > bottom[2] + 40, `top ${top} bottom ${bottom}`);

    if (files.length === 2) {
      // Display P3 converted to sRGB: the ring's green probe is (11, 255, 6) in sRGB after
      // conversion, (117, 251, 78) if the profile were ignored.
      const ring = await page.$eval('section[data-name="P3-sRGB-color-ring.jpg"]', (s) => ({ ...s.dataset }));
      assert.equal(ring.state, 'done');
      assert.ok(ring.removed.split(',').includes('icc'), ring.removed);
      const px = await page.$eval('section[data-name="P3-sRGB-color-ring.jpg"] img[data-variant="original"]', (img) => {
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d');
        ctx.drawImage(img, 0, 0);
        return [...ctx.getImageData(342 - 3, 674 - 3, 7, 7).data].reduce((acc, v, i) => { acc[i % 4] += v / 49; return acc; }, [0, 0, 0, 0]);
      });
      assert.ok(Math.abs(px[0] - 11) <= 12 && px[1] >= 240 && px[2] <= 20, `P3 probe ${px.map(Math.round)}`);
    }
    // The package in a module Web Worker (no SharedArrayBuffer, no special headers).
    const fromWorker = await page.evaluate(async () => {
      const src = `
        import { init, process } from '${location.origin}/pkg/index.js';
        self.onmessage = async (e) => {
          try {
            await init();
            const r = await process(e.data);
            self.postMessage({ ok: true, w: r.variants.thumbnail.width, h: r.variants.thumbnail.height, o: r.source.orientation });
          } catch (err) {
            self.postMessage({ ok: false, error: String(err) });
          }
        };`;
      const worker = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
      const bytes = new Uint8Array(await (await fetch('/sample.jpg')).arrayBuffer());
      return new Promise((resolve) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => resolve({ ok: false, error: e.message });
        worker.postMessage(bytes, [bytes.buffer]);
      });
    });
    assert.deepEqual(fromWorker, { ok: true, w: 150, h: 100, o: 6 });
    // A call with an AbortSignal runs on the package's own module worker: the same bytes as on
    // the page's thread; aborted, it rejects with 'cancelled' and the next call works.
    const withSignal = await page.evaluate(async () => {
      const { init, process, processSync } = await import('/pkg/index.js');
      await init();
      const bytes = new Uint8Array(await (await fetch('/sample.jpg')).arrayBuffer());
      const here = processSync(bytes).variants.thumbnail.sha256;
      const there = (await process(bytes, { signal: new AbortController().signal })).variants.thumbnail.sha256;
      const controller = new AbortController();
      const call = process(bytes, { signal: controller.signal });
      setTimeout(() => controller.abort(), 5);
      const aborted = await call.then(() => 'resolved', (e) => e.code);
      const timedOut = await process(bytes, { signal: new AbortController().signal, timeoutMs: 1 }).then(() => 'resolved', (e) => e.code);
      const after = (await process(bytes, { signal: new AbortController().signal })).variants.thumbnail.sha256;
      return { same: here === there && after === here, aborted, timedOut };
    });
    assert.deepEqual(withSignal, { same: true, aborted: 'cancelled', timedOut: 'timeout' });
    assert.equal(await page.evaluate(() => typeof SharedArrayBuffer === 'undefined' || !crossOriginIsolated), true);
    assert.deepEqual(errors, []);
    const shots = process.env.IMGEST_ARTIFACTS ?? join(tmpdir(), 'imgest-browser');
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'demo.png'), fullPage: true });
    console.log(`browser: demo page checked in Chromium; screenshot ${join(shots, 'demo.png')}`);
  } finally {
    await browser.close();
    server.close();
  }
});
