// A tiny static server for the demo: the page from examples/browser, the package from
// bindings-wasm/pkg under /pkg/. Loopback only.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const page = here;
const pkg = process.env.IMGEST_PKG ?? join(here, '..', '..', 'bindings-wasm', 'pkg');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json', '.css': 'text/css' };

export function serve() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (path.includes('..')) return res.writeHead(400).end();
    const file = path.startsWith('/pkg/')
      ? join(pkg, path.slice(5))
      : path === '/sample.jpg'
        ? join(page, '..', 'cli', 'sample', 'sunrise.jpg')
        : join(page, path === '/' ? 'index.html' : path);
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await serve();
  console.log(`http://127.0.0.1:${server.address().port}/`);
}
