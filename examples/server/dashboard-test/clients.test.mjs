// Browser clients in a real Chromium: a page on another origin listed in CORS_ORIGINS uploads
// with fetch, polls the job and shows the thumbnail through its signed URL in an <img>; the
// same page on an unlisted origin is refused. And /docs: Swagger UI served by the binary,
// authorized with a token, sending a real request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { targetDir, ready, startServer, launchChromium, token } from './helpers.mjs';

// The front end: makes a 640 x 480 PNG on a canvas, uploads it to `api` with `token`, polls the
// job, then shows the thumbnail by its signed URL. Reports on <body data-result / data-error>.
const PAGE = `<!doctype html><meta charset="utf-8"><title>front end</title>
<body><img id="thumb" alt="">
<script type="module">
const q = new URLSearchParams(location.hash.slice(1));
const api = q.get('api'), auth = { Authorization: 'Bearer ' + q.get('token') };
try {
  const canvas = Object.assign(document.createElement('canvas'), { width: 640, height: 480 });
  const g = canvas.getContext('2d');
  const grad = g.createLinearGradient(0, 0, 640, 480);
  grad.addColorStop(0, '#c03'); grad.addColorStop(1, '#06c');
  g.fillStyle = grad; g.fillRect(0, 0, 640, 480);
  const blob = await new Promise((r) => canvas.toBlob(r, 'image/png'));
  const form = new FormData();
  form.append('file', blob, 'canvas.png');
  const up = await fetch(api + '/api/v1/images', { method: 'POST', body: form,
    headers: { ...auth, 'Idempotency-Key': crypto.randomUUID() } });
  if (up.status !== 202) throw new Error('upload: ' + up.status + ' ' + await up.text());
  const accepted = await up.json();
  const requestId = up.headers.get('X-Request-Id');
  let job;
  for (let i = 0; i < 600; i++) {
    job = await (await fetch(api + accepted.status_url, { headers: auth })).json();
    if (job.status === 'done' || job.status === 'failed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (job.status !== 'done') throw new Error('job: ' + JSON.stringify(job));
  const image = await (await fetch(api + accepted.image_url, { headers: auth })).json();
  const thumb = image.variants.find((v) => v.name === 'thumbnail');
  const img = document.getElementById('thumb');
  await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = () => reject(new Error('img failed')); img.src = api + thumb.signed_url; });
  document.body.dataset.result = JSON.stringify({ naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    width: thumb.width, height: thumb.height, requestId, jobRequestId: job.request_id, signedUrl: thumb.signed_url });
} catch (e) {
  document.body.dataset.error = String(e);
}
</script>`;

// Serves PAGE at / on 127.0.0.1 (reachable as http://127.0.0.1:PORT and http://localhost:PORT,
// two different origins).
async function pageServer() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

async function runPage(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.result || document.body.dataset.error, null, { timeout: 90000 });
  const out = await page.evaluate(() => ({ result: document.body.dataset.result, error: document.body.dataset.error }));
  assert.deepEqual(errors, []);
  return { page, ...out };
}

test('a page on a listed origin uploads and shows the thumbnail; an unlisted origin is refused', { skip: !ready && 'needs the imgest-server binary and Debian chromium' }, async () => {
  const pages = await pageServer();
  const port = pages.address().port;
  const listed = `http://127.0.0.1:${port}`;
  const { child, base } = await startServer({ CORS_ORIGINS: `https://elsewhere.example,${listed}` });
  let browser;
  try {
    const bearer = token('browser');
    browser = await launchChromium();
    const hash = `#api=${encodeURIComponent(base)}&token=${bearer}`;
    const ok = await runPage(browser, `${listed}/${hash}`);
    assert.equal(ok.error, undefined, ok.error);
    const r = JSON.parse(ok.result);
    assert.deepEqual([r.naturalWidth, r.naturalHeight], [r.width, r.height]);
    assert.deepEqual([r.width, r.height], [150, 113]);
    // The page could read the exposed request id, and the job carries it.
    assert.match(r.requestId, /^[0-9a-f-]{36}$/);
    assert.equal(r.jobRequestId, r.requestId);
    assert.match(r.signedUrl, /\?expires=\d+&sig=/);
    const artifacts = process.env.IMGEST_ARTIFACTS ?? join(targetDir, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    await ok.page.screenshot({ path: join(artifacts, 'cors-page.png') });

    const before = (await (await fetch(`${base}/api/v1/health/stats`)).json()).storage.total_images;
    assert.equal(before, 1);
    // The same page from an origin that is not listed: the browser refuses the preflight, so the
    // upload is never sent.
    const refused = await runPage(browser, `http://localhost:${port}/${hash}`);
    assert.equal(refused.result, undefined);
    assert.match(refused.error, /Failed to fetch/);
    const after = (await (await fetch(`${base}/api/v1/health/stats`)).json()).storage.total_images;
    assert.equal(after, 1);
  } finally {
    await browser?.close();
    child.kill('SIGKILL');
    pages.close();
  }
});

test('/docs is an interactive page: authorize with a token, try a call', { skip: !ready && 'needs the imgest-server binary and Debian chromium' }, async () => {
  const { child, base } = await startServer();
  let browser;
  try {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
    const offsite = [];
    page.on('request', (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
    await page.goto(`${base}/docs`);
    await page.waitForSelector('.opblock', { timeout: 30000 });
    const operations = await page.$$eval('.opblock-summary-path', (els) => els.map((e) => e.textContent.replace(/\u200b/g, '')));
    for (const path of ['/api/v1/images', '/api/v1/images/{id}/{variant}', '/api/v1/health/stats']) {
      assert.ok(operations.includes(path), `${path} not in ${operations}`);
    }
    // Authorize with a bearer token.
    await page.click('.btn.authorize');
    await page.fill('.modal-ux input', token('docs-user'));
    await page.click('.modal-ux .btn.modal-btn.auth.authorize');
    await page.click('.modal-ux .btn-done');
    // Try GET /api/v1/images: a real request with the token.
    const op = page.locator('.opblock-get', { has: page.locator('.opblock-summary-path', { hasText: /^\/api\/v1\/images$/ }) });
    await op.locator('.opblock-summary').click();
    await op.locator('.try-out__btn').click();
    await op.locator('.execute').click();
    const status = op.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 30000 });
    assert.equal((await status.textContent()).trim(), '200');
    const body = await op.locator('.live-responses-table .response-col_description pre').first().textContent();
    assert.equal(JSON.parse(body).total, 0);
    // The error shape is documented in the schema list.
    const schemas = await page.$$eval('section.models .json-schema-2020-12__title', (els) => els.map((e) => e.textContent));
    assert.ok(schemas.includes('ErrorBody'), `schemas: ${schemas}`);
    assert.deepEqual(offsite, []);
    const artifacts = process.env.IMGEST_ARTIFACTS ?? join(targetDir, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'docs.png'), fullPage: false });
  } finally {
    await browser?.close();
    child.kill('SIGKILL');
  }
});
