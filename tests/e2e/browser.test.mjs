// A real browser (headless Chromium through playwright-core) against the
// real server: the test page web/tests/echo.html is served by Plaza from the
// repository's web root, opens a native WebSocket to /connection/websocket
// (the --debug-echo handler), sends text and binary messages up to 256 KiB
// and compares the echoes. Once without and once with permessage-deflate,
// and once more to see the close code when the server is stopped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from './lib/browser.mjs';
import { startPlaza, metrics, repoRoot } from './lib/server.mjs';

const PAGE = '/tests/echo.html';
const pageFile = path.join(repoRoot, 'web', PAGE);

let browser;

before(async () => {
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
});

// Runs fn(plaza, page) with a fresh server and browser context; both are
// torn down whatever happens. The page is already loaded from Plaza.
async function withPage(plazaOpts, fn) {
  const plaza = await startPlaza(plazaOpts);
  let context;
  try {
    context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    const resp = await page.goto(plaza.url + PAGE);
    assert.equal(resp.status(), 200, 'test page status');
    await page.waitForFunction(() => typeof window.plazaEcho === 'object');
    await fn(plaza, page);
    assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    if (context) await context.close().catch(() => {});
    await plaza.stop();
  }
}

function assertAllEchoed(out) {
  const bad = out.results.filter((r) => !r.ok);
  assert.deepEqual(bad, [], 'echoes that did not match what was sent');
  assert.equal(out.results.length, 10);
  assert.equal(out.extra, 0, 'unexpected extra messages');
  assert.equal(out.errors, 0, 'WebSocket error events');
  assert.equal(out.close, null, 'socket closed during the run');
  assert.ok(out.results.some((r) => r.sent.kind === 'binary' && r.sent.len === 256 * 1024));
  assert.ok(out.results.some((r) => r.sent.kind === 'text' && r.sent.len === 256 * 1024));
}

test('Plaza serves the browser test page from the web root', async () => {
  const plaza = await startPlaza();
  try {
    const res = await fetch(plaza.url + PAGE);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(await res.text(), readFileSync(pageFile, 'utf8'));
  } finally {
    await plaza.stop();
  }
});

test('browser WebSocket echo, compression off', { timeout: 60000 }, async () => {
  await withPage({}, async (plaza, page) => {
    const hs = await page.evaluate(() => window.plazaEcho.open());
    assert.equal(hs.extensions, '', 'no extension negotiated by default');
    assert.equal(hs.readyState, 1);
    const before = await metrics(plaza.url);
    const out = await page.evaluate(() => window.plazaEcho.run());
    assertAllEchoed(out);
    const m = await metrics(plaza.url);
    assert.equal(m['plaza_connections{state="websocket"}'], 1);
    assert.equal(m.plaza_ws_messages_received_total - before.plaza_ws_messages_received_total, 10);
    const sent = m.plaza_bytes_sent_total - before.plaza_bytes_sent_total;
    assert.ok(sent >= out.sentBytes, `uncompressed echo sent ${sent} < ${out.sentBytes} payload bytes`);
    await page.evaluate(() => window.plazaEcho.close(1000, 'done'));
  });
});

test('browser WebSocket echo, permessage-deflate on', { timeout: 60000 }, async () => {
  await withPage({ args: ['--set', 'websocket.compression=true'] }, async (plaza, page) => {
    const hs = await page.evaluate(() => window.plazaEcho.open());
    assert.match(hs.extensions, /permessage-deflate/);
    const before = await metrics(plaza.url);
    const out = await page.evaluate(() => window.plazaEcho.run());
    assertAllEchoed(out);
    const m = await metrics(plaza.url);
    // The page's payload is mostly compressible (all but 256 KiB of random
    // bytes), so both directions must carry far fewer bytes than sent.
    const sent = m.plaza_bytes_sent_total - before.plaza_bytes_sent_total;
    const recv = m.plaza_bytes_received_total - before.plaza_bytes_received_total;
    assert.ok(sent < out.sentBytes / 2, `server sent ${sent} bytes for ${out.sentBytes} payload bytes`);
    assert.ok(recv < out.sentBytes / 2, `server received ${recv} bytes for ${out.sentBytes} payload bytes`);
    // A second round on the same connection (deflate context takeover).
    assertAllEchoed(await page.evaluate(() => window.plazaEcho.run()));
    await page.evaluate(() => window.plazaEcho.close(1000, 'done'));
  });
});

test('browser sees close code 1001 when the server is stopped', { timeout: 60000 }, async () => {
  await withPage({}, async (plaza, page) => {
    await page.evaluate(() => window.plazaEcho.open());
    const out = await page.evaluate(() => window.plazaEcho.run());
    assertAllEchoed(out);
    const t0 = Date.now();
    const [res, ev] = await Promise.all([
      plaza.stop(),
      page.evaluate(() => window.plazaEcho.closed),
    ]);
    const ms = Date.now() - t0;
    assert.equal(ev.code, 1001, `close event ${JSON.stringify(ev)}`);
    assert.equal(ev.reason, 'server shutting down');
    assert.equal(ev.wasClean, true);
    assert.equal(res.code, 0, `plaza exit status ${JSON.stringify(res)}`);
    // The browser answers the Close, so the shutdown must not need the
    // 5 s shutdown timeout to force it.
    console.log(`shutdown with a browser connected took ${ms} ms`);
    assert.ok(ms < 4500, `shutdown took ${ms} ms`);
    assert.doesNotMatch(plaza.logs(), /shutdown timeout/);
  });
});
