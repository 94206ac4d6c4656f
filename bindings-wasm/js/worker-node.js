// imgest's worker thread for Node (see worker-core.js).
import { parentPort } from 'node:worker_threads';
import { handle } from './worker-core.js';

parentPort.on('message', (data) => handle(data, (message, transfer) => parentPort.postMessage(message, transfer)));
