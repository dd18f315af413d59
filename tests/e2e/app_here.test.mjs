// The "here" demo app (web/here/) in a real browser against the demo
// config: people grouped by region with "you have N tabs open", a shared
// light that both pages and a reload show, waves that the recipient gets
// as a toast and everyone in the feed (also after a reload, from history),
// a too-long greeting refused in the page and never delivered, and a killed
// page (no clean close) leaving the list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoServer, openApp, click, signIn, WAIT } from './lib/apps.mjs';

const GONE = { timeout: 15000 };    // the 10 s key TTL, if the close is not seen

const env = demoServer();

const openPage = (context, errors) => openApp(env.plaza, context, '/here/', errors);

const person = (user) => `#regions li[data-user="${user}"]`;
const inRegion = (region, user) => `#regions section[data-region="${region}"] li[data-user="${user}"]`;
const feedText = (page) => page.textContent('#feed');

test('people by region, tabs, the light, waves, a reload, a killed page', async () => {
  const errors = [];
  const ca = await env.browser.newContext(), cb = await env.browser.newContext();
  const a = await openPage(ca, errors), b = await openPage(cb, errors);
  await signIn(a, 'Ann', '#e50000');
  await signIn(b, 'Bob', '#0083c7');
  const ua = await a.evaluate(() => window.app.me()), ub = await b.evaluate(() => window.app.me());

  // both in the region of the node ("local" in the demo config), under its heading
  await a.waitForSelector(inRegion('local', ub), WAIT);
  await b.waitForSelector(inRegion('local', ua), WAIT);
  assert.match(await b.textContent('#regions section[data-region="local"] h3'), /local/);
  assert.match(await a.textContent(person(ub)), /Bob/);
  await a.waitForFunction(() => /You have 1 tab open/.test(document.getElementById('tabs').textContent), null, WAIT);

  // a second tab of Ann's: "2 tabs" for her, and in Bob's page
  const a2 = await openPage(ca, errors);
  await a2.waitForSelector('#signin-who', WAIT);
  await a.waitForFunction(() => /You have 2 tabs open/.test(document.getElementById('tabs').textContent), null, WAIT);
  await a2.waitForFunction(() => /You have 2 tabs open/.test(document.getElementById('tabs').textContent), null, WAIT);
  await b.waitForSelector(`${person(ua)}[data-tabs="2"]`, WAIT);

  // the light: set on in one page, every page shows it (and the background)
  await click(a, '#light-on');
  await b.waitForFunction(() => document.body.classList.contains('lit'), null, WAIT);
  assert.match(await b.textContent('#light-state'), /on.*by Ann/);
  await click(b, '#light-off');
  await a.waitForFunction(() => document.body.classList.contains('dark'), null, WAIT);
  await a2.waitForFunction(() => window.app.light().on === false && window.app.light().by === 'Bob', null, WAIT);
  await click(a, '#light-on');
  await b.waitForFunction(() => window.app.light().on === true, null, WAIT);

  // a wave: Bob gets a toast, both feeds show it
  await a.fill('#greet-text', 'Hi Bob, nice to see you');
  await click(a, `${person(ub)} button.wave`);
  await b.waitForSelector('#toasts .toast.hi', WAIT);
  assert.match(await b.textContent('#toasts .toast.hi'), /Ann waves at you: Hi Bob, nice to see you/);
  await b.waitForSelector('#feed li.tome', WAIT);
  await a.waitForFunction(() => /Ann → Bob/.test(document.getElementById('feed').textContent), null, WAIT);
  assert.equal(await a.$(`${person(ua)} button.wave`), null, 'no waving at yourself');

  // a too-long greeting: said so in the page, nobody gets it
  await a.fill('#greet-text', 'x'.repeat(600));
  await click(a, `${person(ub)} button.wave`);
  await a.waitForFunction(() => /too long/.test(document.getElementById('greet-msg').textContent), null, WAIT);
  // an empty one: refused before it leaves the page
  await a.fill('#greet-text', '   ');
  await click(a, `${person(ub)} button.wave`);
  await a.waitForFunction(() => /Type a greeting/.test(document.getElementById('greet-msg').textContent), null, WAIT);
  // a marker wave after them: once it is in, the refused ones would have been before it
  await a.fill('#greet-text', 'marker');
  await click(a, `${person(ub)} button.wave`);
  await b.waitForFunction(() => /marker/.test(document.getElementById('feed').textContent), null, WAIT);
  assert.equal(await b.$$eval('#feed li', (l) => l.length), 2);
  assert.doesNotMatch(await feedText(b), /xxxx/);

  // a reload: the same light, the same feed (from history), the same people
  await b.reload();
  await b.waitForFunction(() => window.app.light().on === true, null, WAIT);
  assert.match(await b.textContent('#light-state'), /by Ann/);
  await b.waitForFunction(() => document.querySelectorAll('#feed li').length === 2, null, WAIT);
  assert.match(await feedText(b), /Hi Bob, nice to see you/);
  await b.waitForSelector(`${person(ua)}[data-tabs="2"]`, WAIT);
  assert.equal((await b.$$('#toasts .toast')).length, 0, 'no toast for old waves');

  // killed pages go away (by the closed socket, or by the TTL at the latest)
  const cdp = await ca.newCDPSession(a2);
  cdp.send('Page.crash').catch(() => {});
  await a.waitForFunction(() => /You have 1 tab open/.test(document.getElementById('tabs').textContent), null, GONE);
  const cdp2 = await ca.newCDPSession(a);
  cdp2.send('Page.crash').catch(() => {});
  await b.waitForFunction((u) => !document.querySelector(`#regions li[data-user="${u}"]`), ua, GONE);
  assert.deepEqual(await b.evaluate(() => window.app.users()), [ub]);
  assert.deepEqual(errors, []);
  await ca.close().catch(() => {});
  await cb.close();
});

test('signed out: asked to sign in, no switch; signed in again: the same people', async () => {
  const errors = [];
  const c = await env.browser.newContext(), ce = await env.browser.newContext();
  const p = await openPage(c, errors);
  await p.waitForSelector('#signin-needed:not([hidden])', WAIT);
  assert.equal(await p.isVisible('#light-on'), false, 'no switch to press before signing in');

  const e = await openPage(ce, errors);
  await signIn(e, 'Eve', '#820080');
  const ue = await e.evaluate(() => window.app.me());
  await signIn(p, 'Dee', '#02be01');
  await p.waitForSelector(person(ue), WAIT);
  // out: the lists go, the sign-in prompt comes
  await click(p, '#signin-out');
  await p.waitForSelector('#signin-needed:not([hidden])', WAIT);
  assert.equal(await p.isVisible('#regions'), false);
  const up = await p.evaluate(() => window.app.me());
  await e.waitForFunction((u) => !document.querySelector(`#regions li[data-user="${u}"]`), up, WAIT);
  // in again (the subscriptions recover): Eve, who never changed, is still listed
  await signIn(p, 'Dee', '#02be01');
  await p.waitForSelector(person(ue), WAIT);
  await p.waitForFunction(() => /You have 1 tab open/.test(document.getElementById('tabs').textContent), null, WAIT);
  await e.waitForSelector(person(up), WAIT);
  assert.equal(await p.isVisible('#error'), false);
  assert.deepEqual(errors, []);
  await c.close();
  await ce.close();
});
