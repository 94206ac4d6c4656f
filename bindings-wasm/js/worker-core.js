// The body of imgest's worker (worker.js in browsers, worker-node.js in Node): runs one
// pipeline call per message on its own instance of the module, so that the caller's thread
// stays free and an aborted call can be stopped by terminating the worker.
import { initSync, processRaw } from './imgest_wasm.js';

let ready = false;

/** Handles `{module, input, options}` and replies `{report, bytes}` or `{error}`. */
export function handle(data, reply) {
  try {
    if (!ready) {
      initSync({ module: data.module });
      ready = true;
    }
    const { report, bytes } = processRaw(data.input, data.options);
    reply({ report, bytes }, bytes.map((b) => b.buffer));
  } catch (e) {
    const coded = e && typeof e === 'object' && typeof e.code === 'string';
    reply({
      error: coded
        ? { code: e.code, message: e.message, limit: e.limit }
        : { code: 'internal', message: String(e?.message ?? e) },
    });
  }
}
