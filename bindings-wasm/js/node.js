// imgest for Node: same API as the browser entry, loading the .wasm from disk.
import { readFile } from 'node:fs/promises';
import { _setDefaultSource } from './index.js';

_setDefaultSource(() => readFile(new URL('./imgest_wasm_bg.wasm', import.meta.url)));

export { ImgestError, init, process, processSync, decodeSync, errorCodes, version, toBlob, toFile } from './index.js';
