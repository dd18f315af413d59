// The chat app (web/chat/, issue 13) in real Chromium against the demo
// config (deploy/demo.json): two signed-in pages see each other's messages,
// "… is typing" and presence; a reload shows the history; a room added in
// one page appears in the other; an oversize message, a burst past the rate
// limit and a bad room name show a clear error and change nothing on the
// server; a ?token= nick is used and a bad token is refused; the moderation
// panel disconnects a user (the page says so) and clears a room everywhere;
// a crashed page leaves the room's presence.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { launchChromium } from './lib/browser.mjs';
import { startPlaza, repoRoot } from './lib/server.mjs';

const WAIT = { timeout: 10000 };
const DEMO = path.join(repoRoot, 'deploy/demo.json');

let browser, plaza;
before(async () => {
  plaza = await startPlaza({ noEcho: true, args: ['--config', DEMO] });
  browser = await launchChromium();
});
after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (plaza) await plaza.stop();
});

async function api(method, params, key = 'demo-api-key') {
  const res = await fetch(`${plaza.url}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(params),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}
async function history(channel) {
  const r = await api('history', { channel, limit: -1 });
  assert.ok(r.body && r.body.result, JSON.stringify(r));
  return r.body.result.publications;
}

// A page in its own browser context (its own localStorage: its own user),
// or another tab of `context` (the same user, signed in by what it remembers).
async function openChat(errors, { name, color = '#0083c7', room = 'general', query = '', context: shared } = {}) {
  const context = shared || await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  const resp = await page.goto(`${plaza.url}/chat/${query}#${room}`);
  assert.equal(resp.status(), 200);
  if (name) {
    await page.fill('#signin-name', name);
    await page.fill('#signin-color', color);
    await page.click('#signin-go');
    await page.waitForSelector('#signin-who', WAIT);
    await page.waitForFunction((room) => window.app.subscribed && window.app.room === room
      && !document.getElementById('text').disabled, room, WAIT);
  } else if (shared && !query) {
    await page.waitForFunction((room) => window.app.subscribed && window.app.room === room, room, WAIT);
  }
  return { context, page };
}

async function say(page, text) {
  await page.fill('#text', text);
  await page.click('#send-go');
}

test('two people chat: messages, typing, presence, and the history after a reload', async () => {
  const errors = [];
  const ann = await openChat(errors, { name: 'Ann', color: '#e50000', room: 'lobby1' });
  const bob = await openChat(errors, { name: 'Bob', color: '#02be01', room: 'lobby1' });
  await ann.page.waitForFunction(() => document.getElementById('here').textContent === '2 here', null, WAIT);
  await bob.page.waitForFunction(() => window.app.people().map((p) => p.name).sort().join() === 'Ann,Bob', null, WAIT);

  await ann.page.fill('#text', 'hel');
  await ann.page.type('#text', 'lo');
  await bob.page.waitForFunction(() => document.getElementById('typing').textContent === 'Ann is typing…', null, WAIT);
  await ann.page.press('#text', 'Enter');
  await bob.page.waitForFunction(() => window.app.messages().some((m) => m.text === 'hello' && m.name === 'Ann'), null, WAIT);
  await bob.page.waitForFunction(() => document.getElementById('typing').textContent === '', null, WAIT);
  assert.equal(await ann.page.inputValue('#text'), '');
  await say(bob.page, 'hi Ann <b>not bold</b>');
  await ann.page.waitForFunction(() => window.app.messages().some((m) => m.name === 'Bob' && m.text === 'hi Ann <b>not bold</b>'), null, WAIT);
  assert.equal(await ann.page.locator('#messages b').count(), 0, 'user text is text, not HTML');

  // the server says who wrote it (the token's name), and the page kept sent_at
  const pubs = await history('chat:lobby1');
  assert.deepEqual(pubs.map((p) => p.data.text), ['hello', 'hi Ann <b>not bold</b>']);
  assert.equal(pubs[0].info.conn_info.name, 'Ann');
  assert.equal(typeof pubs[0].data.sent_at, 'number');

  await bob.page.reload();
  await bob.page.waitForFunction(() => window.app && window.app.subscribed
    && window.app.messages().map((m) => m.text).join('|') === 'hello|hi Ann <b>not bold</b>', null, WAIT);
  assert.match(await bob.page.textContent('#signin-who'), /Bob/);
  // offline for a moment: the reconnect recovers what was missed
  await bob.page.evaluate(() => window.app.client.disconnect());
  await say(ann.page, 'while you were away');
  await ann.page.waitForFunction(() => window.app.messages().some((m) => m.text === 'while you were away'), null, WAIT);
  await bob.page.evaluate(() => window.app.client.connect());
  await bob.page.waitForFunction(() => window.app.messages().map((m) => m.text).join('|') === 'hello|hi Ann <b>not bold</b>|while you were away'
    && /messages you missed/.test(document.getElementById('messages').textContent), null, WAIT);
  assert.deepEqual(errors, []);
  await ann.context.close();
  await bob.context.close();
});

test('rooms: one added in a page shows in the other; a bad name is refused and not added', async () => {
  const errors = [];
  const ann = await openChat(errors, { name: 'Ann2' });
  const bob = await openChat(errors, { name: 'Bob2' });
  await bob.page.fill('#room-name', 'games');
  await bob.page.click('#room-add');
  await ann.page.waitForSelector('#rooms a[data-room="games"]', WAIT);
  await bob.page.waitForFunction(() => window.app.room === 'games' && window.app.subscribed, null, WAIT);
  await say(bob.page, 'anyone for chess?');
  await ann.page.click('#rooms a[data-room="games"]');
  await ann.page.waitForFunction(() => window.app.room === 'games'
    && window.app.messages().some((m) => m.text === 'anyone for chess?'), null, WAIT);

  await ann.page.fill('#room-name', 'Bad Room!');
  await ann.page.click('#room-add');
  assert.match(await ann.page.textContent('#room-msg'), /Room names are 1 to 32 characters/);
  const state = await api('map_read_state', { channel: 'chatrooms:index' });
  assert.deepEqual(state.body.result.publications.map((p) => p.key), ['games']);
  assert.deepEqual(state.body.result.publications[0].data, { title: 'games' });
  assert.deepEqual(errors, []);
  await ann.context.close();
  await bob.context.close();
});

test('an oversize message and a burst past the rate limit show why, and are not stored', async () => {
  const errors = [];
  const cat = await openChat(errors, { name: 'Cat', room: 'limits' });
  await say(cat.page, 'x'.repeat(2100));
  await cat.page.waitForFunction(() => /larger than 2048 bytes/.test(document.getElementById('send-msg').textContent), null, WAIT);
  assert.equal(await cat.page.textContent('#send-msg'), 'Bad request: data: larger than 2048 bytes.');
  assert.equal((await cat.page.inputValue('#text')).length, 2100, 'the text stays in the box');
  assert.deepEqual(await history('chat:limits'), []);

  // 2 per second, bursts of 5: ten at once cannot all pass
  await cat.page.evaluate(() => {
    for (let i = 0; i < 10; i++) {
      document.getElementById('text').value = 'burst ' + i;
      document.getElementById('send-go').click();
    }
  });
  await cat.page.waitForFunction(() => /^Too many requests: wait \d+\.\d s \(at most 2 per second\)\.$/
    .test(document.getElementById('send-msg').textContent), null, WAIT);
  const stored = (await history('chat:limits')).map((p) => p.data.text);
  assert.ok(stored.length >= 5 && stored.length < 10, `stored ${stored.length}`);
  assert.deepEqual(errors, []);
  await cat.context.close();
});

test('a ?token= gives the nick; a bad token is refused in plain words', async () => {
  const errors = [];
  const res = await fetch(`${plaza.url}/v1/sign-in`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: 'u-tokentest', name: 'Tess', color: '#820080' }),
  });
  assert.equal(res.status, 200);
  const { token } = await res.json();
  const t = await openChat(errors, { query: '?token=' + encodeURIComponent(token), room: 'tokens' });
  await t.page.waitForFunction(() => window.app.subscribed && !document.getElementById('text').disabled, null, WAIT);
  assert.match(await t.page.textContent('#signin-who'), /Tess \(token\)/);
  await say(t.page, 'by token');
  await t.page.waitForFunction(() => window.app.messages().some((m) => m.name === 'Tess' && m.text === 'by token'), null, WAIT);
  assert.equal((await history('chat:tokens'))[0].info.user, 'u-tokentest');

  const bad = await openChat(errors, { query: '?token=not.a.token', room: 'tokens', context: t.context });
  await bad.page.waitForFunction(() => /Your token was refused/.test(document.getElementById('error').textContent), null, WAIT);
  assert.equal(await bad.page.getAttribute('#status', 'data-state'), 'offline');
  assert.equal(await bad.page.isDisabled('#text'), true);
  assert.deepEqual(errors, []);
  await t.context.close();
});

test('moderation: a wrong key is refused; disconnect a user by name; clear a room everywhere', async () => {
  const errors = [];
  const mod = await openChat(errors, { name: 'Mia', room: 'modroom' });
  const dan = await openChat(errors, { name: 'Dan', room: 'modroom' });
  await say(dan.page, 'spam spam');
  await mod.page.waitForFunction(() => window.app.messages().some((m) => m.text === 'spam spam'), null, WAIT);
  await mod.page.waitForFunction(() => window.app.people().some((p) => p.name === 'Dan'), null, WAIT);
  await mod.page.click('#mod summary');

  await mod.page.fill('#mod-key', 'wrong-key');
  await mod.page.fill('#mod-user', 'Dan');
  await mod.page.click('#mod-disconnect button');
  await mod.page.waitForFunction(() => document.getElementById('mod-msg').textContent === 'The API key was refused.', null, WAIT);
  assert.equal(await dan.page.getAttribute('#status', 'data-state'), 'online');

  await mod.page.fill('#mod-key', 'demo-api-key');
  await mod.page.click('#mod-disconnect button');
  await mod.page.waitForFunction(() => /^Disconnected Dan \(u-/.test(document.getElementById('mod-msg').textContent), null, WAIT);
  await dan.page.waitForFunction(() => /disconnected by a moderator/.test(document.getElementById('error').textContent), null, WAIT);
  assert.equal(await dan.page.getAttribute('#status', 'data-state'), 'offline');
  assert.equal(await dan.page.isDisabled('#text'), true);
  await mod.page.waitForFunction(() => !window.app.people().some((p) => p.name === 'Dan'), null, WAIT);

  const other = await openChat(errors, { room: 'modroom', context: mod.context });   // Mia's second tab
  await other.page.waitForFunction(() => window.app.messages().length === 1, null, WAIT);
  await mod.page.click('#mod-clear');
  await mod.page.waitForFunction(() => document.getElementById('mod-msg').textContent === 'Cleared the history of #modroom.', null, WAIT);
  for (const p of [mod.page, other.page]) {
    await p.waitForFunction(() => window.app.messages().length === 0
      && /cleared this room's history/.test(document.getElementById('messages').textContent), null, WAIT);
  }
  assert.deepEqual((await history('chat:modroom')).map((p) => p.data), [{ type: 'cleared' }]);
  await other.page.reload();
  await other.page.waitForFunction(() => window.app && window.app.subscribed
    && /cleared this room's history/.test(document.getElementById('messages').textContent), null, WAIT);
  assert.equal(await other.page.evaluate(() => window.app.messages().length), 0);
  assert.deepEqual(errors, []);
  await mod.context.close();
  await dan.context.close();
});

test('a crashed page leaves the room: its user is gone from the other page\'s list', async () => {
  const errors = [];
  const ann = await openChat(errors, { name: 'Ann3', room: 'crash' });
  const bob = await openChat(errors, { name: 'Bob3', room: 'crash' });
  await ann.page.waitForFunction(() => window.app.people().map((p) => p.name).sort().join() === 'Ann3,Bob3', null, WAIT);
  const cdp = await bob.context.newCDPSession(bob.page);
  cdp.send('Page.crash').catch(() => {});   // no unload, no Close frame from the page
  await ann.page.waitForFunction(() => window.app.people().map((p) => p.name).join() === 'Ann3'
    && /Bob3 left/.test(document.getElementById('messages').textContent), null, WAIT);
  assert.equal(await ann.page.textContent('#here'), '1 here');
  assert.deepEqual(errors, []);
  await ann.context.close();
  await bob.context.close().catch(() => {});
});
