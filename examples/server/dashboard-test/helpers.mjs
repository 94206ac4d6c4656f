// Shared by the browser tests of imgest-server: the server binary, Debian's Chromium, a few
// helpers to start processes and upload.
//
// IMGEST_SERVER_BIN: the imgest-server binary (default: $CARGO_TARGET_DIR/debug/imgest-server,
// built by `cargo test`). Tests skip without it or without /usr/bin/chromium, unless
// IMGEST_REQUIRE_BROWSER=1.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..', '..');
export const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
export const bin = process.env.IMGEST_SERVER_BIN ?? join(targetDir, 'debug', 'imgest-server');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const ready = existsSync(bin) && existsSync(chromiumPath);
if (process.env.IMGEST_REQUIRE_BROWSER === '1' && !ready) {
  throw new Error(`IMGEST_REQUIRE_BROWSER=1 but server binary at ${bin}: ${existsSync(bin)}, chromium: ${existsSync(chromiumPath)}`);
}
export const SECRET = 'dashboard-test-secret-0123456789';

export function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// A PNG whose header claims 100000 x 100000 pixels: accepted by its magic bytes, refused by the job.
export function bombPng() {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const ihdr = Buffer.alloc(17);
  ihdr.write('IHDR', 0, 'latin1');
  ihdr.writeUInt32BE(100000, 4);
  ihdr.writeUInt32BE(100000, 8);
  ihdr.set([8, 2, 0, 0, 0], 12);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(13);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(ihdr));
  return Buffer.concat([Buffer.from(sig), len, ihdr, crc, Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82])]);
}

// Starts `imgest-server [args]` and resolves with the first capture of `ready` in its stdout.
export async function startProcess(args, env, ready) {
  const child = spawn(bin, args, {
    env: { PATH: process.env.PATH, JWT_SECRET_KEY: SECRET, IMGEST_PORT: '0', RUST_LOG: 'imgest_server=warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const found = await new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`imgest-server ${args.join(' ')} exited with ${code}`)));
    lines.on('line', (line) => {
      const m = line.match(ready);
      if (m) resolve(m[1]);
    });
  });
  return { child, found };
}

export async function startServer(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'imgest-dash-'));
  const { child, found } = await startProcess([], {
    DATABASE_PATH: join(dir, 'db.sqlite'), STORAGE_PATH: join(dir, 'storage'), ...env,
  }, /^imgest-server listening on (\S+)/);
  return { child, base: found, dir };
}

// Uploads as user `dashboard` to the server at `base`: `upload(name, bytes) → {status, body}`.
export function uploader(base) {
  const bearer = token('dashboard');
  return async (name, bytes) => {
    const form = new FormData();
    form.append('file', new Blob([bytes]), name);
    const r = await fetch(`${base}/api/v1/images`, { method: 'POST', body: form, headers: { Authorization: `Bearer ${bearer}` } });
    return { status: r.status, body: await r.json() };
  };
}

// Debian's Chromium, headless, with no network of its own.
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A token for `user`, signed by the binary with the tests' secret.
export function token(user) {
  return execFileSync(bin, ['token', '--user', user], { env: { JWT_SECRET_KEY: SECRET } }).toString().trim();
}
