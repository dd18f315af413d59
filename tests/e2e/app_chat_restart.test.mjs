// The chat app (web/chat/, issue 13) across a restart of Plaza with the
// durable store (issue 10), on the demo config: a message sent from the
// page before the restart is still in the room after it; the open page
// reconnects by itself, shows what was sent while it was reconnecting, and
// shows everything once, again after a reload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.mjs';
import { freePort } from './lib/redis.mjs';
import { startPlaza, repoRoot } from './lib/server.mjs';

const WAIT = { timeout: 15000 };
const DEMO = path.join(repoRoot, 'deploy/demo.json');

test('a room\'s messages survive a restart; the open page reconnects and misses nothing', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'plaza-chat-'));
  const port = await freePort();
  // the store lives under the memory engine, whatever engine the pass uses
  const args = ['--config', DEMO, '--port', String(port), '--set', 'engine.type=memory'];
  let plaza = await startPlaza({ noEcho: true, store: dir, args });
  const browser = await launchChromium();
  const errors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    await context.addInitScript(() => {
      localStorage.setItem('plaza.user', 'u-ann');
      localStorage.setItem('plaza.name', 'Ann');
      localStorage.setItem('plaza.color', '#e50000');
    });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${plaza.url}/chat/#general`);
    const ready = () => page.waitForFunction(() => window.app.subscribed && window.app.room === 'general'
      && !document.getElementById('text').disabled, null, WAIT);
    await ready();
    await page.fill('#text', 'sent before the restart');
    await page.click('#send-go');
    const shown = (text) => page.waitForFunction((t) => document.getElementById('messages').textContent.includes(t),
      text, WAIT);
    await shown('sent before the restart');

    assert.equal((await plaza.stop()).code, 0);
    await page.waitForSelector('.status:not([data-state="online"])', WAIT);
    plaza = await startPlaza({ noEcho: true, store: dir, args });
    // published by a backend before the page is back: the page must recover it
    const r = await fetch(`${plaza.url}/api/publish`, { method: 'POST', headers: { 'X-API-Key': 'demo-api-key' },
      body: JSON.stringify({ channel: 'chat:general', data: { text: 'sent while the page was away', nick: 'backend' } }) });
    assert.equal(r.status, 200);
    await page.waitForSelector('.status[data-state="online"]', WAIT);
    await ready();
    await shown('sent while the page was away');
    await page.fill('#text', 'sent after the restart');
    await page.click('#send-go');
    await shown('sent after the restart');

    const count = (t) => page.evaluate((s) => [...document.querySelectorAll('#messages li')]
      .filter((li) => li.textContent.includes(s)).length, t);
    for (const t of ['sent before the restart', 'sent while the page was away', 'sent after the restart'])
      assert.equal(await count(t), 1, t + ' shown once');
    await page.reload();
    await ready();
    for (const t of ['sent before the restart', 'sent while the page was away', 'sent after the restart']) {
      await shown(t);
      assert.equal(await count(t), 1, t + ' shown once after a reload');
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close().catch(() => {});
    await plaza.stop();
  }
});
