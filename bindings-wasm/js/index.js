// imgest for browsers and bundlers: the safe image pipeline in one WebAssembly module.
import initWasm, {
  processRaw, decodeRaw, errorCodes as rawErrorCodes, outputFormats, version as rawVersion,
} from './imgest_wasm.js';

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
let initSource;
let defaultSource = () => new URL('./imgest_wasm_bg.wasm', import.meta.url);

/** @internal Used by the Node entry point to read the module from disk. */
export function _setDefaultSource(fn) {
  defaultSource = fn;
}

// A worker runs the calls that carry an AbortSignal: aborting terminates it, which stops the
// work at once and frees its memory, while this thread's module is untouched. Browsers get a
// module worker; the Node entry point installs a worker thread.
let workerFactory = () => {
  if (typeof Worker === 'undefined') return null;
  const w = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  return {
    post: (message, transfer) => w.postMessage(message, transfer),
    listen(onMessage, onError) {
      w.onmessage = (e) => onMessage(e.data);
      w.onerror = (e) => {
        e.preventDefault?.();
        onError(e.error ?? new Error(e.message));
      };
    },
    idle() {},
    terminate: () => w.terminate(),
  };
};

/** @internal Used by the Node entry point to run workers as worker threads. */
export function _setWorkerFactory(fn) {
  workerFactory = fn;
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
      initSource = source;
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

// The options travel as JSON, parsed by the core (unknown keys are refused there); `signal`
// and `timeoutMs` are this wrapper's (the latter is the core's `timeout_ms`).
function optionsJson(options) {
  if (options == null) return undefined;
  let core = options;
  if ('signal' in options || 'timeoutMs' in options) {
    const { signal: _signal, timeoutMs, ...rest } = options;
    core = rest;
    if (timeoutMs !== undefined) {
      if (rest.timeout_ms !== undefined) {
        throw new ImgestError('invalid_options', 'invalid option `timeoutMs`: give `timeoutMs` or `timeout_ms`, not both');
      }
      core = { ...rest, timeout_ms: timeoutMs };
    }
  }
  try {
    return JSON.stringify(core);
  } catch (e) {
    throw new ImgestError('invalid_options', `invalid option \`options\`: not JSON (${e.message})`);
  }
}

function abortSignal(options) {
  const signal = options?.signal;
  if (signal == null) return undefined;
  if (typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw new ImgestError('invalid_options', 'invalid option `signal`: expected an AbortSignal');
  }
  return signal;
}

function cancelled(signal) {
  const err = new ImgestError('cancelled', 'cancelled by the caller (AbortSignal)');
  err.cause = signal.reason;
  return err;
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

/**
 * Runs the pipeline on bytes, synchronously. `init()` must have completed. `timeoutMs` stops
 * it; a `signal` can only be checked before it starts (nothing else runs on this thread
 * meanwhile: use `process` to abort a running call).
 */
export function processSync(input, options) {
  if (!initialized) throw new Error('imgest: call `await init()` before processSync()');
  const bytes = toBytes(input);
  const json = optionsJson(options);
  const signal = abortSignal(options);
  if (signal?.aborted) throw cancelled(signal);
  return toResult(call(() => processRaw(bytes, json)));
}

// The compiled module, for workers (compiled once; a Response given to init() was consumed,
// so the default source serves then).
let compiled = null;
function compiledModule() {
  if (!compiled) {
    compiled = (async () => {
      let source = await initSource;
      if (source instanceof WebAssembly.Module) return source;
      if (source == null || (typeof Response !== 'undefined' && source instanceof Response)) {
        source = await defaultSource();
      }
      if (source instanceof URL || typeof source === 'string') {
        const response = await fetch(source);
        return WebAssembly.compile(await response.arrayBuffer());
      }
      return WebAssembly.compile(source);
    })();
    compiled.catch(() => {
      compiled = null;
    });
  }
  return compiled;
}

const idleWorkers = [];

// One call on a worker; aborting terminates that worker (the next call starts another).
async function processInWorker(bytes, json, signal) {
  const module = await compiledModule();
  if (signal.aborted) throw cancelled(signal);
  const worker = idleWorkers.pop() ?? workerFactory();
  if (!worker) {
    // No workers here: the call runs on this thread and the signal is checked around it.
    const result = toResult(call(() => processRaw(bytes, json)));
    if (signal.aborted) throw cancelled(signal);
    return result;
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      worker.terminate();
      reject(cancelled(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    worker.listen(
      (message) => {
        signal.removeEventListener('abort', onAbort);
        worker.idle();
        if (idleWorkers.length < 4) idleWorkers.push(worker);
        else worker.terminate();
        if (message.error) {
          const { code, message: text, limit } = message.error;
          reject(new ImgestError(code, text, limit));
        } else {
          resolve(toResult(message));
        }
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        worker.terminate();
        reject(error);
      },
    );
    // A copy goes to the worker, so that the caller's buffer is not detached.
    const input = bytes.slice();
    worker.post({ module, input, options: json }, [input.buffer]);
  });
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

/**
 * Runs the pipeline on bytes or a Blob/File (initialising the module if needed). With a
 * `signal`, the call runs on a worker and rejects with code `cancelled` as soon as the signal
 * aborts (the worker is terminated: the work stops and its memory is freed).
 */
export async function process(input, options) {
  await init();
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    input = new Uint8Array(await input.arrayBuffer());
  }
  const signal = abortSignal(options);
  if (signal) {
    if (signal.aborted) throw cancelled(signal);
    return processInWorker(toBytes(input), optionsJson(options), signal);
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

// The core's output formats by name: `{format, mimeType, extension}`.
let formats;
function formatOf(variant) {
  if (!initialized) throw new Error('imgest: call `await init()` first');
  formats ??= new Map(outputFormats().map((f) => [f.format, f]));
  return formats.get(variant.format) ?? { mimeType: '', extension: 'bin' };
}

/** A Blob of a variant, for `fetch` bodies. */
export function toBlob(variant) {
  return new Blob([variant.bytes], { type: formatOf(variant).mimeType });
}

/** A File of a variant, for `FormData`; `name` defaults to `image.<extension>`. */
export function toFile(variant, name) {
  const f = formatOf(variant);
  return new File([variant.bytes], name ?? `image.${f.extension}`, { type: f.mimeType });
}
