// Time budget and cancellation in the npm package: `timeoutMs` stops a call inside the module
// (sync and async), an AbortSignal rejects `process` at once (the call runs on a worker thread,
// which is terminated), and the module stays usable after either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { png } from './png.mjs';
import { init, process as ingest, processSync, errorCodes } from '../pkg/node.js';

/** An RGB PNG of noise (the slowest pixels to encode). */
function noisePng(width, height) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let s = 0x12345678;
  for (let i = 0; i < raw.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    raw[i] = i % (width * 3 + 1) === 0 ? 0 : s & 0xff;
  }
  return png(width, height, 3, raw, 1);
}

const ORIGINAL = { variants: [{ name: 'original' }], dominant_color: false, placeholder: false };
const slow = noisePng(1600, 1600); // ~1.5 s of one thread: a full-size WebP of noise
const small = noisePng(48, 32);

test('the error table has timeout (8) and cancelled (9)', async () => {
  await init();
  const codes = Object.fromEntries(errorCodes().map(({ code, number }) => [code, number]));
  assert.equal(codes.timeout, 8);
  assert.equal(codes.cancelled, 9);
});

test('timeoutMs stops a synchronous call inside the module, which stays usable', async () => {
  await init();
  const start = performance.now();
  assert.throws(
    () => processSync(slow, { ...ORIGINAL, timeoutMs: 20 }),
    (e) => e.code === 'timeout' && /20 ms budget/.test(e.message),
  );
  assert.ok(performance.now() - start < 1000);
  assert.equal(processSync(small, ORIGINAL).variants.original.width, 48);
  // The core's own name works too; both at once is an error.
  assert.throws(() => processSync(slow, { ...ORIGINAL, timeout_ms: 20 }), (e) => e.code === 'timeout');
  assert.throws(() => processSync(small, { timeoutMs: 5, timeout_ms: 5 }), (e) => e.code === 'invalid_options');
  for (const bad of [0, -1, 1.5, 'x']) {
    assert.throws(() => processSync(small, { timeoutMs: bad }), (e) => e.code === 'invalid_options', String(bad));
  }
});

test('an AbortSignal rejects process() at once and stops the work', async () => {
  await init();
  const controller = new AbortController();
  const started = performance.now();
  const call = ingest(slow, { ...ORIGINAL, signal: controller.signal });
  setTimeout(() => controller.abort(new Error('user left')), 100);
  await assert.rejects(call, (e) => e.code === 'cancelled' && e.cause?.message === 'user left');
  const took = performance.now() - started;
  assert.ok(took < 600, `rejected after ${took} ms`);
  // The module, on this thread and on a new worker, runs on.
  assert.equal(processSync(small, ORIGINAL).variants.original.width, 48);
  const again = await ingest(small, { ...ORIGINAL, signal: new AbortController().signal });
  assert.equal(again.variants.original.height, 32);
});

test('an already aborted signal rejects without running; processSync checks it too', async () => {
  await init();
  const signal = AbortSignal.abort();
  await assert.rejects(ingest(small, { signal }), (e) => e.code === 'cancelled');
  assert.throws(() => processSync(small, { signal }), (e) => e.code === 'cancelled');
  assert.throws(() => processSync(small, { signal: 'no' }), (e) => e.code === 'invalid_options');
});

test('on a worker: results, errors and timeouts as on this thread', async () => {
  await init();
  const signal = new AbortController().signal;
  const here = processSync(small, ORIGINAL);
  const there = await ingest(small, { ...ORIGINAL, signal });
  assert.equal(there.variants.original.sha256, here.variants.original.sha256);
  assert.deepEqual([...there.variants.original.bytes], [...here.variants.original.bytes]);
  await assert.rejects(ingest(new Uint8Array([1, 2, 3]), { signal }), (e) => e.code === 'unsupported_format');
  await assert.rejects(ingest(slow, { ...ORIGINAL, signal, timeoutMs: 20 }), (e) => e.code === 'timeout');
  // Calls in parallel, each on its own worker.
  const all = await Promise.all([1, 2, 3].map(() => ingest(small, { ...ORIGINAL, signal })));
  assert.ok(all.every((r) => r.variants.original.sha256 === here.variants.original.sha256));
});
