// imgest for Node: same API as the browser entry, loading the .wasm from disk.
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { _setDefaultSource, _setWorkerFactory } from './index.js';

_setDefaultSource(() => readFile(new URL('./imgest_wasm_bg.wasm', import.meta.url)));

// Worker threads, which keep the process alive only while they have a call to answer.
_setWorkerFactory(() => {
  const w = new Worker(new URL('./worker-node.js', import.meta.url));
  w.unref();
  return {
    post(message, transfer) {
      w.ref();
      w.postMessage(message, transfer);
    },
    listen(onMessage, onError) {
      w.removeAllListeners('message').removeAllListeners('error');
      w.on('message', onMessage);
      w.on('error', onError);
    },
    idle: () => w.unref(),
    terminate: () => w.terminate(),
  };
});

export { ImgestError, init, process, processSync, decodeSync, errorCodes, version, toBlob, toFile } from './index.js';
