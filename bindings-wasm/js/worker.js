// imgest's module worker for browsers (see worker-core.js).
import { handle } from './worker-core.js';

self.onmessage = (event) => handle(event.data, (message, transfer) => self.postMessage(message, transfer));
