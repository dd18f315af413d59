// The presence demo app (web/presence/) in a real browser against the demo
// config: two people see each other in a space (one row per user, tabs
// counted), a reload shows the same, a killed tab (no clean close) goes
// away within the key TTL, the HTTP presence API (/v1/spaces) round-trips
// with the page, and bad input is refused in the page without touching
// the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoServer, openApp, click, signIn, WAIT } from './lib/apps.mjs';

const GONE = { timeout: 15000 };    // the 10 s key TTL, if the close is not seen
const KEY = { 'X-API-Key': 'demo-api-key' };

const env = demoServer();

const openPage = (context, space, errors) =>
  openApp(env.plaza, context, '/presence/' + (space === undefined ? '' : '?space=' + space), errors);

const row = (user) => `#people li[data-user="${user}"]:not([data-leaving])`;

async function api(method, p, { headers = KEY, body } = {}) {
  const res = await fetch(env.plaza.url + p, {
    method, headers: { ...headers, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

async function crash(context, page) {
  const cdp = await context.newCDPSession(page);
  cdp.send('Page.crash').catch(() => {});     // the renderer dies: no Close frame, no unload
}

test('two people see each other, tabs are counted, a reload shows the same, killed tabs go away', async () => {
  const errors = [];
  const ca = await env.browser.newContext(), cb = await env.browser.newContext();
  const a = await openPage(ca, 'p1', errors), b = await openPage(cb, 'p1', errors);
  await signIn(a, 'Ann', '#e50000');
  const ua = await a.evaluate(() => window.app.me());
  await a.waitForSelector(row(ua), WAIT);             // Ann is in before Bob comes
  await signIn(b, 'Bob', '#0083c7');
  const ub = await b.evaluate(() => window.app.me());
  assert.notEqual(ua, ub);

  // each sees both, by name, the own row marked
  await a.waitForSelector(row(ub), WAIT);
  await b.waitForSelector(row(ua), WAIT);
  assert.match(await b.textContent(row(ua)), /Ann/);
  assert.match(await b.textContent(row(ub)), /Bob.*you/);
  assert.match(await b.textContent(row(ua)), /since \d/);
  assert.doesNotMatch(await b.textContent('#people'), /null|undefined/);
  assert.equal(await b.textContent('#count'), '2');

  // a second tab of Ann's (same browser profile: same user, signed in already)
  const a2 = await openPage(ca, 'p1', errors);
  await a2.waitForSelector('#signin-who', WAIT);
  await b.waitForSelector(`${row(ua)}[data-tabs="2"]`, WAIT);
  assert.match(await b.textContent(row(ua)), /2 tabs/);
  assert.equal(await b.textContent('#count'), '2', 'one row per user');
  await a.waitForFunction(() => /Bob joined/.test(document.getElementById('events').textContent), null, WAIT);
  await b.waitForFunction(() => /Ann now has 2 tabs/.test(document.getElementById('events').textContent), null, WAIT);

  // a reload shows the same people
  await b.reload();
  await b.waitForSelector(`${row(ua)}[data-tabs="2"]`, WAIT);
  await b.waitForSelector(row(ub), WAIT);
  assert.equal(await b.textContent('#count'), '2');

  // a killed tab goes away (by the closed socket, or by the TTL at the latest)
  await crash(ca, a2);
  await b.waitForSelector(`${row(ua)}[data-tabs="1"]`, GONE);
  await crash(ca, a);
  await b.waitForFunction((u) => !document.querySelector(`#people li[data-user="${u}"]:not([data-leaving])`), ua, GONE);
  await b.waitForFunction(() => /Ann left/.test(document.getElementById('events').textContent), null, WAIT);
  assert.deepEqual(await b.evaluate(() => window.app.users().map((u) => u.name)), ['Bob']);
  assert.deepEqual(errors, []);
  await ca.close().catch(() => {});
  await cb.close();
});

test('the HTTP presence API round-trips with the page', async () => {
  const errors = [];
  const cb = await env.browser.newContext();
  const b = await openPage(cb, 'p2', errors);
  await signIn(b, 'Bea', '#02be01');
  const ub = await b.evaluate(() => window.app.me());
  await b.waitForSelector(row(ub), WAIT);
  // the panel shows the curl lines for this space
  assert.match(await b.textContent('#curl'), /\/v1\/spaces\/p2\/users\/robot-1/);

  // a bot is here over HTTP: the page lists it
  let r = await api('PUT', '/v1/spaces/p2/users/bot-1', { body: { name: 'Robo', color: '#00aa00' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.result.created, true);
  await b.waitForSelector(`${row('bot-1')}[data-http="true"]`, WAIT);
  assert.match(await b.textContent(row('bot-1')), /Robo.*via HTTP/);
  r = await api('PUT', '/v1/spaces/p2/users/bot-1', { body: { name: 'Robo', color: '#00aa00' } });
  assert.equal(r.status, 200);
  assert.equal(r.body.result.created, false, 'a heartbeat');

  // the page's own tab is in the HTTP list
  r = await api('GET', '/v1/spaces/p2/users');
  assert.equal(r.status, 200);
  const users = r.body.result.users;
  assert.ok(users.some((u) => u.key === 'http:bot-1' && u.data.name === 'Robo'), JSON.stringify(users));
  const tab = users.find((u) => u.key !== 'http:bot-1');
  assert.ok(tab, JSON.stringify(users));
  assert.equal(tab.info.user, ub);

  // a user's token: may read, and put only itself
  const token = await b.evaluate(() => window.Plaza.session.token);
  const bearer = { Authorization: 'Bearer ' + token };
  assert.equal((await api('GET', '/v1/spaces/p2/users', { headers: bearer })).status, 200);
  r = await api('PUT', '/v1/spaces/p2/users/bot-1', { headers: bearer, body: { name: 'Evil' } });
  assert.equal(r.status, 403, JSON.stringify(r.body));
  r = await api('PUT', `/v1/spaces/p2/users/${ub}`, { headers: bearer, body: { name: 'Bea (curl)' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  await b.waitForSelector(`${row(ub)}[data-http="true"][data-tabs="1"]`, WAIT);
  assert.equal(await b.textContent('#count'), '2', 'the tab and the HTTP entry are one user');
  r = await api('PUT', '/v1/spaces/p2/users/bot-1', { headers: {}, body: { name: 'x' } });
  assert.equal(r.status, 401);
  assert.equal(typeof r.body.error.message, 'string');

  // DELETE: gone from the page
  r = await api('DELETE', '/v1/spaces/p2/users/bot-1');
  assert.equal(r.status, 200);
  await b.waitForFunction(() => !document.querySelector('#people li[data-user="bot-1"]:not([data-leaving])'), null, WAIT);
  await b.waitForFunction(() => /Robo left/.test(document.getElementById('events').textContent), null, WAIT);
  r = await api('GET', '/v1/spaces/p2/users');
  assert.ok(!r.body.result.users.some((u) => u.key === 'http:bot-1'));
  assert.deepEqual(errors, []);
  await cb.close();
});

test('bad input: a bad space name is refused in the page; a refused sign-in lists nobody', async () => {
  const errors = [];
  const c = await env.browser.newContext();
  // a bad space in the URL: said so, the lobby instead
  const p = await openPage(c, encodeURIComponent('no spaces!'), errors);
  await p.waitForSelector('#error:not([hidden])', WAIT);
  assert.match(await p.textContent('#error'), /not a space name/);
  assert.equal(await p.evaluate(() => window.app.space), 'lobby');

  // an empty name: the sign-in box says why, and the space does not list us
  await p.fill('#signin-name', '   ');
  await click(p, '#signin-go');
  await p.waitForFunction(() => /name/i.test(document.getElementById('signin-msg')?.textContent || ''), null, WAIT);
  assert.equal(await p.isVisible('#signin-needed'), true);

  // a bad name in the space form: a message, no navigation
  await signIn(p, 'Cyd', '#820080');
  await p.fill('#space-input', 'bad space');
  await click(p, '#space-go');
  await p.waitForFunction(() => /Not a space name/.test(document.getElementById('space-msg').textContent), null, WAIT);
  assert.equal(new URL(p.url()).searchParams.get('space'), 'no spaces!');
  const r = await api('GET', '/v1/spaces/bad%20space/users');
  assert.equal(r.status, 400, 'not a space at all');
  // a good one navigates
  await p.fill('#space-input', 'p3');
  await click(p, '#space-go');
  await p.waitForURL(/space=p3/, WAIT);
  const me = await p.evaluate(() => window.app.me());
  await p.waitForSelector(row(me), WAIT);
  const list = (await api('GET', '/v1/spaces/p3/users')).body.result.users;
  assert.deepEqual(list.map((u) => u.info.user), [me]);
  assert.deepEqual(errors, []);
  await c.close();
});
