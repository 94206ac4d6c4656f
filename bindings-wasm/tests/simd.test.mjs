// The module needs WebAssembly SIMD and exception handling (the JPEG decoder's error exits):
// where the runtime lacks either, init() must reject with a message that says so (instead of a
// compile error from deep inside the loader), and a later init() on a runtime that has them must
// still work. Node has both, so their absence is simulated by a WebAssembly.validate that
// refuses modules using them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { init, processSync } from '../pkg/node.js';

const has = (bytes, seq) =>
  bytes.some((_, i) => seq.every((b, k) => bytes[i + k] === b));

test('init() without WebAssembly SIMD or exception handling rejects with a clear message, then recovers', async () => {
  const validate = WebAssembly.validate;
  // i8x16.splat (0xFD 0x0F); `try` … `catch_all` (0x06 0x40 0x19).
  for (const opcodes of [[0xfd, 0x0f], [0x06, 0x40, 0x19]]) {
    WebAssembly.validate = (bytes) => !has(new Uint8Array(bytes), opcodes) && validate(bytes);
    try {
      await assert.rejects(init(), /lacks WebAssembly SIMD or exception handling/);
      assert.throws(() => processSync(new Uint8Array([0x89, 0x50])), /call `await init\(\)`/);
    } finally {
      WebAssembly.validate = validate;
    }
  }
  await init();
  assert.throws(() => processSync(new Uint8Array([1, 2, 3])), (e) => e.code === 'unsupported_format');
});
