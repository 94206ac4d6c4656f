// imgest for browsers and bundlers: the safe image pipeline in one WebAssembly module.
import initWasm, { processRaw, decodeRaw, errorCodes as rawErrorCodes, version as rawVersion } from './imgest_wasm.js';

/** Thrown for every imgest failure; `code` is the core's stable snake_case error code. */
export class ImgestError extends Error {
  constructor(code, message, limit) {
    super(message);
    this.name = 'ImgestError';
    this.code = code;
    if (limit !== undefined) this.limit = limit;
  }
}

let ready = null;
let initialized = false;
let defaultSource = () => new URL('./imgest_wasm_bg.wasm', import.meta.url);

/** @internal Used by the Node entry point to read the module from disk. */
export function _setDefaultSource(fn) {
  defaultSource = fn;
}

/**
 * Loads the WebAssembly module. Idempotent: later calls (and concurrent ones) share the first
 * call's promise. `source` may be a URL or string, a Response, an ArrayBuffer / typed array, or
 * a compiled WebAssembly.Module; by default the `.wasm` next to this file is used.
 */
export function init(source) {
  if (!ready) {
    ready = (async () => {
      if (!featuresSupported()) {
        throw new Error(
          'imgest: this runtime lacks WebAssembly SIMD or exception handling (needs Chrome 95, Firefox 100, Safari 16.4, Node 17 or later)',
        );
      }
      const moduleOrPath = source ?? (await defaultSource());
      await initWasm({ module_or_path: await moduleOrPath });
      initialized = true;
    })();
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

// A module whose one function uses SIMD instructions (i8x16.splat, i8x16.popcnt) and an
// exception-handling block (try … catch_all): it validates only where both are supported.
const FEATURE_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 14, 1, 12, 0, 6, 64, 25, 11,
  65, 0, 253, 15, 253, 98, 11,
]);

function featuresSupported() {
  try {
    return WebAssembly.validate(FEATURE_PROBE);
  } catch {
    return false;
  }
}

function toBytes(input) {
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new ImgestError('invalid_options', 'input must be a Uint8Array, ArrayBuffer or Blob');
}

function call(fn) {
  try {
    return fn();
  } catch (e) {
    if (e && typeof e === 'object' && typeof e.code === 'string') {
      throw new ImgestError(e.code, e.message, e.limit);
    }
    throw e;
  }
}

// The options travel as JSON, parsed by the core (unknown keys are refused there).
function optionsJson(options) {
  if (options == null) return undefined;
  try {
    return JSON.stringify(options);
  } catch (e) {
    throw new ImgestError('invalid_options', `invalid option \`options\`: not JSON (${e.message})`);
  }
}

// snake_case → camelCase, for every key of a JSON-like value.
function camelKeys(value) {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k.replace(/_(.)/g, (_, c) => c.toUpperCase())] = camelKeys(v);
  return out;
}

// The core's report with camelCase keys, `variants` keyed by name (in `variantNames` order) and
// each variant's `bytes`.
function toResult({ report, bytes }) {
  const { variants: list, ...rest } = report;
  const result = { variants: {}, ...camelKeys(rest), variantNames: [] };
  list.forEach((v, i) => {
    result.variants[v.name] = { ...camelKeys(v), bytes: bytes[i] };
    result.variantNames.push(v.name);
  });
  return result;
}

/** Runs the pipeline on bytes, synchronously. `init()` must have completed. */
export function processSync(input, options) {
  if (!initialized) throw new Error('imgest: call `await init()` before processSync()');
  const bytes = toBytes(input);
  const json = optionsJson(options);
  return toResult(call(() => processRaw(bytes, json)));
}

/**
 * Validates, decodes, converts to sRGB and orients an image without resizing or encoding:
 * `{width, height, data}` with RGBA pixels. Synchronous; `init()` must have completed.
 */
export function decodeSync(input, options) {
  if (!initialized) throw new Error('imgest: call `await init()` before decodeSync()');
  const bytes = toBytes(input);
  const json = optionsJson(options);
  return call(() => decodeRaw(bytes, json));
}

/** Runs the pipeline on bytes or a Blob/File (initialising the module if needed). */
export async function process(input, options) {
  await init();
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    input = new Uint8Array(await input.arrayBuffer());
  }
  return processSync(input, options);
}

/** Every error code as `{code, number}`. */
export function errorCodes() {
  if (!initialized) throw new Error('imgest: call `await init()` first');
  return rawErrorCodes();
}

/** The package version. */
export function version() {
  if (!initialized) throw new Error('imgest: call `await init()` first');
  return rawVersion();
}

const MIME = { webp: 'image/webp', jpeg: 'image/jpeg', png: 'image/png' };
const EXT = { webp: 'webp', jpeg: 'jpg', png: 'png' };

/** A Blob of a variant, for `fetch` bodies. */
export function toBlob(variant) {
  return new Blob([variant.bytes], { type: MIME[variant.format] });
}

/** A File of a variant, for `FormData`; `name` defaults to `<variant name or "image">.<ext>`. */
export function toFile(variant, name) {
  return new File([variant.bytes], name ?? `image.${EXT[variant.format]}`, { type: MIME[variant.format] });
}
