// The module needs WebAssembly SIMD: where the runtime lacks it, init() must reject with a message
// that says so (instead of a compile error from deep inside the loader), and a later init() on a
// runtime that has it must still work. Node always has SIMD, so its absence is simulated by a
// WebAssembly.validate that refuses every module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init, processSync } from '../pkg/node.js';

test('init() without WebAssembly SIMD rejects with a clear message, then recovers', async () => {
  const validate = WebAssembly.validate;
  WebAssembly.validate = () => false;
  try {
    await assert.rejects(init(), /lacks WebAssembly SIMD/);
    assert.throws(() => processSync(new Uint8Array([0x89, 0x50])), /call `await init\(\)`/);
  } finally {
    WebAssembly.validate = validate;
  }
  await init();
  assert.throws(() => processSync(new Uint8Array([1, 2, 3])), (e) => e.code === 'unsupported_format');
});
