// The monitoring page in a real Chromium: a server with finished and failed jobs, the page's
// numbers against /api/v1/health/stats, the failure's code, a screenshot as an artifact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { root, targetDir, ready, bombPng, startProcess, startServer, uploader, launchChromium } from './helpers.mjs';

test('dashboard in Chromium matches /api/v1/health/stats', { skip: !ready && 'needs the imgest-server binary and Debian chromium' }, async () => {
  const { child, base } = await startServer();
  const upload = uploader(base);
  let browser;
  try {
    const sample = readFileSync(join(root, 'examples', 'cli', 'sample', 'sunrise.jpg'));
    for (const [name, bytes, expected] of [
      ['sunrise.jpg', sample, 202], ['again.jpg', sample, 202], ['bomb.png', bombPng(), 202],
      ['page.jpg', Buffer.from('<!doctype html><p>not an image'), 415],
    ]) {
      const r = await upload(name, bytes);
      assert.equal(r.status, expected, `${name}: ${JSON.stringify(r.body)}`);
    }
    // Every job ends.
    let stats;
    for (let i = 0; ; i++) {
      stats = await (await fetch(`${base}/api/v1/health/stats`)).json();
      if (stats.status_breakdown.queued + stats.status_breakdown.processing === 0) break;
      assert.ok(i < 600, 'jobs did not finish');
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(stats.status_breakdown.done, 2);
    assert.equal(stats.status_breakdown.failed, 1);

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    const offsite = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30000 });
    const shown = await page.evaluate(() => ({
      queue: document.getElementById('queue-depth').textContent,
      byStatus: Object.fromEntries([...document.querySelectorAll('[data-status]')].map((e) => [e.dataset.status, e.textContent])),
      completed: document.getElementById('completed-24h').textContent,
      timedOut: document.getElementById('timed-out-24h').textContent,
      workers: document.getElementById('workers').textContent,
      images: document.getElementById('images').textContent,
      hour: document.getElementById('hour-total').textContent,
      failures: [...document.querySelectorAll('#failures tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
    }));
    stats = await (await fetch(`${base}/api/v1/health/stats`)).json();
    assert.equal(shown.queue, String(stats.status_breakdown.queued));
    for (const s of ['queued', 'processing', 'done', 'failed']) {
      assert.equal(shown.byStatus[s], String(stats.status_breakdown[s]), s);
    }
    assert.equal(shown.completed, String(stats.performance_24h.completed_24h));
    assert.equal(shown.timedOut, String(stats.performance_24h.timed_out_24h));
    assert.equal(shown.workers, `${stats.workers.busy} / ${stats.workers.total}`);
    assert.equal(shown.images, String(stats.storage.total_images));
    assert.equal(shown.hour, '3');
    // The bars are drawn to scale: all of the last hour's jobs are in the newest bucket.
    const bars = await page.$$eval('#bars .col', (cols) => cols.map((c) => Math.round(c.getBoundingClientRect().height > 0 && [...c.children].reduce((h, b) => h + b.getBoundingClientRect().height, 0))));
    assert.equal(bars.length, 12);
    assert.deepEqual(bars.slice(0, 11), Array(11).fill(0));
    assert.ok(bars[11] >= 100, `newest bucket ${bars[11]} px`);
    assert.equal(shown.failures.length, 1);
    assert.equal(shown.failures[0][1], 'limit_exceeded');
    // It refreshes itself: a new upload shows up without a reload.
    assert.equal((await upload('third.jpg', sample)).status, 202);
    await page.waitForFunction(() => document.querySelector('[data-status="done"]').textContent === '3', null, { timeout: 30000 });
    assert.deepEqual(errors, []);
    assert.deepEqual(offsite, []);
    const artifacts = process.env.IMGEST_ARTIFACTS ?? join(targetDir, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
    console.log(`dashboard screenshot: ${join(artifacts, 'dashboard.png')}`);
  } finally {
    await browser?.close();
    child.kill('SIGKILL');
  }
});

// With REDIS_URL the page lists the worker processes from their heartbeats and the Redis queue.
const redisBin = '/usr/bin/redis-server';
const redisReady = ready && existsSync(redisBin);
if (process.env.IMGEST_REQUIRE_SCALE === '1' && !redisReady) {
  throw new Error(`IMGEST_REQUIRE_SCALE=1 but ${redisBin} is missing`);
}

test('dashboard lists the Redis workers', { skip: !redisReady && 'needs redis-server, the server binary and chromium' }, async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const redisDir = mkdtempSync(join(tmpdir(), 'imgest-dash-redis-'));
  const redis = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', redisDir], { stdio: 'ignore' });
  const children = [redis];
  let browser;
  try {
    await new Promise((r) => setTimeout(r, 300));
    const env = { REDIS_URL: `redis://127.0.0.1:${port}/`, IMGEST_HEARTBEAT_SECS: '1', IMGEST_WORKERS: '1' };
    const { child, base, dir } = await startServer(env);
    children.push(child);
    // Workers on the same SQLite file and storage folder as the API.
    const shared = { ...env, DATABASE_PATH: join(dir, 'db.sqlite'), STORAGE_PATH: join(dir, 'storage') };
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const w = await startProcess(['worker'], shared, /^imgest-server worker (\S+) consuming/);
      children.push(w.child);
      ids.push(w.found);
    }
    const upload = uploader(base);
    const sample = readFileSync(join(root, 'examples', 'cli', 'sample', 'sunrise.jpg'));
    for (let i = 0; i < 4; i++) {
      assert.equal((await upload(`s${i}.jpg`, sample)).status, 202);
    }
    let stats;
    for (let i = 0; ; i++) {
      stats = await (await fetch(`${base}/api/v1/health/stats`)).json();
      if (stats.status_breakdown.done === 4 && stats.workers.live.length === 2) break;
      assert.ok(i < 600, `jobs or heartbeats missing: ${JSON.stringify(stats)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(stats.queue.backend, 'redis');
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    await page.goto(`${base}/dashboard`);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30000 });
    // Within a refresh or two, every worker's done count adds up to the 4 jobs.
    await page.waitForFunction(() => [...document.querySelectorAll('#worker-list tr')]
      .reduce((n, tr) => n + Number(tr.children[3]?.textContent ?? 0), 0) === 4, null, { timeout: 30000 });
    const shown = await page.evaluate(() => ({
      backend: document.getElementById('queue-backend').textContent,
      waiting: document.getElementById('queue-waiting').textContent,
      rows: [...document.querySelectorAll('#worker-list tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
    }));
    assert.equal(shown.backend, 'redis');
    assert.equal(shown.waiting, '0');
    assert.deepEqual(shown.rows.map((r) => r[0]).sort(), [...ids].sort());
    for (const row of shown.rows) assert.equal(row[2], '0 / 1');
    const artifacts = process.env.IMGEST_ARTIFACTS ?? join(targetDir, 'artifacts');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'dashboard-redis.png'), fullPage: true });
    console.log(`dashboard screenshot: ${join(artifacts, 'dashboard-redis.png')}`);
  } finally {
    await browser?.close();
    for (const c of children) c.kill('SIGKILL');
  }
});
