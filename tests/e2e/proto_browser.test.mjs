// The demo page (web/index.html + web/app.js) in a real browser against the
// real server speaking the Centrifugo client protocol: headless Chromium
// (playwright-core) loads the page from Plaza, which also serves the
// unmodified centrifuge client at /vendor/centrifuge.js. Plaza runs with the
// demo configuration (deploy/demo.json, on a free port). Two pages join the
// lobby demo:lobby; a message typed in one appears in the other, a
// publication through the server API appears in both, presence counts both
// connections, and closing one page shows a leave in the other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from './lib/browser.mjs';
import { startPlaza, repoRoot } from './lib/server.mjs';

const API_KEY = 'demo-api-key';
const WAIT = { timeout: 10000 };

let browser;
let plaza;

before(async () => {
  const config = JSON.parse(readFileSync(path.join(repoRoot, 'deploy/demo.json'), 'utf8'));
  delete config.port;
  plaza = await startPlaza({ noEcho: true, config });
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (plaza) await plaza.stop();
});

// Texts of the page's #messages items (optionally only those of one class).
function messages(page, cls) {
  return page.$$eval('#messages li', (lis, c) =>
    lis.filter((li) => !c || li.className === c).map((li) => li.textContent), cls);
}

async function waitForMessage(page, text, cls) {
  await page.waitForFunction(([t, c]) =>
    [...document.querySelectorAll('#messages li')].some((li) =>
      (!c || li.className === c) && li.textContent.includes(t)), [text, cls], WAIT);
}

async function openDemo(context, errors) {
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  const resp = await page.goto(plaza.url + '/');
  assert.equal(resp.status(), 200, 'demo page status');
  await page.waitForSelector('body[data-subscribed]', WAIT);
  return page;
}

test('/vendor/centrifuge.js is served as JavaScript', async () => {
  const res = await fetch(plaza.url + '/vendor/centrifuge.js');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^(text|application)\/javascript\b/);
  const body = await res.text();
  assert.equal(body, readFileSync(path.join(repoRoot, 'web/vendor/centrifuge.js'), 'utf8'));
});

test('demo lobby: chat, API publication, presence, leave', { timeout: 30000 }, async () => {
  const errors = [];
  const ctx1 = await browser.newContext();
  const ctx2 = await browser.newContext();
  try {
    const page1 = await openDemo(ctx1, errors);
    const page2 = await openDemo(ctx2, errors);
    for (const p of [page1, page2])
      assert.equal(await p.textContent('#status'), 'connected');

    // Typed in page 1, shown in page 2 (and in page 1: the publisher is a
    // subscriber too).
    await page1.fill('#name', 'alice');
    await page1.fill('#msg', 'hello from page 1');
    await page1.click('#send button');
    await waitForMessage(page2, 'alice: hello from page 1', 'pub');
    await waitForMessage(page1, 'alice: hello from page 1', 'pub');

    // Published by a backend through the server API, shown in both pages.
    const res = await fetch(plaza.url + '/api/publish', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
      body: JSON.stringify({ channel: 'demo:lobby', data: { name: 'backend', text: 'hello from the API' } }),
    });
    assert.equal(res.status, 200);
    const reply = await res.json();
    assert.ok(reply.result, `API reply ${JSON.stringify(reply)}`);
    assert.equal(reply.result.offset, 2, 'second publication of the channel');
    assert.equal(typeof reply.result.epoch, 'string');
    await waitForMessage(page1, 'backend: hello from the API', 'pub');
    await waitForMessage(page2, 'backend: hello from the API', 'pub');
    // Each publication exactly once on each page.
    for (const p of [page1, page2])
      assert.deepEqual(await messages(p, 'pub'), ['alice: hello from page 1', 'backend: hello from the API']);

    // Presence: one anonymous user with two connections.
    await page2.waitForFunction(() =>
      /\b2 connections\b/.test(document.getElementById('counts').textContent), null, WAIT);
    assert.equal(await page2.textContent('#counts'), '1 users, 2 connections');

    // Closing page 1 ends its connection: page 2 gets a leave push.
    const leftBefore = (await messages(page2, 'note')).filter((t) => t.endsWith(' left')).length;
    await page1.close();
    await page2.waitForFunction((n) =>
      [...document.querySelectorAll('#messages li.note')]
        .filter((li) => li.textContent.endsWith(' left')).length > n, leftBefore, WAIT);
    await page2.waitForFunction(() =>
      /\b1 connections\b/.test(document.getElementById('counts').textContent), null, WAIT);

    assert.deepEqual(errors, [], 'uncaught errors in the pages');
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    await ctx1.close().catch(() => {});
    await ctx2.close().catch(() => {});
  }
});
