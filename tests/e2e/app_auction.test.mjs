// The auction demo app (web/auction/) in a real browser against the demo
// config: a lot opened in one page shows in the other with its bid box
// prefilled at the minimum; bids go both ways (price, leader, next
// minimum), a too-low or malformed bid and a bad "open a lot" form are
// refused in the page and change nothing on the server, the other page
// measures the bid latency, a reload shows the same, and a bid in the last
// 10 s extends the lot, which then ends and refuses bids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoServer, openApp, click, signIn, WAIT } from './lib/apps.mjs';


const env = demoServer();

const openPage = (context, errors) => openApp(env.plaza, context, '/auction/', errors);

const lotSel = (id) => `#lots article[data-lot="${id}"]`;
const lotMsg = (page, id, re) => page.waitForFunction(([sel, src]) =>
  new RegExp(src).test(document.querySelector(sel + ' .lotmsg')?.textContent || ''), [lotSel(id), re.source], WAIT);
const lots = (page) => page.evaluate(() => window.app.lots());

async function openLot(page, title, start, step) {
  await page.fill('#open-title', title);
  await page.fill('#open-start', String(start));
  await page.fill('#open-increment', String(step));
  await click(page, '#open-go');
  await page.waitForFunction((t) => document.getElementById('open-msg').textContent.includes('Opened: "' + t + '"'), title, WAIT);
  const lot = (await lots(page)).find((l) => l.title === title);
  if (lot) return lot.id;
  await page.waitForFunction((t) => window.app.lots().some((l) => l.title === t), title, WAIT);
  return (await lots(page)).find((l) => l.title === title).id;
}

test('open a lot, bid both ways, bad bids and bad lots refused, latency measured, a reload the same', async () => {
  const errors = [];
  const ca = await env.browser.newContext(), cb = await env.browser.newContext();
  const a = await openPage(ca, errors), b = await openPage(cb, errors);
  await signIn(a, 'Ann', '#e50000');
  await signIn(b, 'Bob', '#0083c7');
  await a.waitForSelector('#empty:not([hidden])', WAIT);

  // Ann opens a lot: Bob sees it, the bid box prefilled with the start price
  const id = await openLot(a, 'Red bicycle', 100, 10);
  await b.waitForSelector(lotSel(id), WAIT);
  assert.match(await b.textContent(`${lotSel(id)} .title`), /Red bicycle/);
  assert.equal(await b.getAttribute(lotSel(id), 'data-price'), '100');
  assert.equal(await b.inputValue(`${lotSel(id)} input.amount`), '100');
  assert.match(await b.textContent(`${lotSel(id)} .countdown`), /ends in [12]:\d\d/);

  // Bob bids the minimum: Ann sees him lead, her box at the next minimum
  await click(b, `${lotSel(id)} button.bid`);
  await lotMsg(b, id, /Your bid of 100 leads/);
  await a.waitForSelector(`${lotSel(id)}[data-bids="1"]`, WAIT);
  assert.match(await a.textContent(`${lotSel(id)} .leader`), /leader: Bob · 1 bid/);
  assert.equal(await a.inputValue(`${lotSel(id)} input.amount`), '110');

  // too low: the server says so, the page says it in words, nothing changes
  await a.fill(`${lotSel(id)} input.amount`, '105');
  await click(a, `${lotSel(id)} button.bid`);
  await lotMsg(a, id, /Too low: the next bid must be at least 110/);
  // not a number: refused in the page
  await a.fill(`${lotSel(id)} input.amount`, '12.5');
  await click(a, `${lotSel(id)} button.bid`);
  await lotMsg(a, id, /Type a whole number of at least 110/);
  // Bob leads: he may not outbid himself
  await click(b, `${lotSel(id)} button.bid`);
  await lotMsg(b, id, /You lead already \(at 100\)/);

  // Ann bids 120: Bob sees it (the second bid: the refused ones never happened)
  await a.fill(`${lotSel(id)} input.amount`, '120');
  await click(a, `${lotSel(id)} button.bid`);
  await lotMsg(a, id, /Your bid of 120 leads/);
  await b.waitForSelector(`${lotSel(id)}[data-price="120"]`, WAIT);
  assert.equal(await b.getAttribute(lotSel(id), 'data-bids'), '2');
  assert.match(await b.textContent(`${lotSel(id)} .leader`), /leader: Ann · 2 bids/);
  assert.equal(await b.inputValue(`${lotSel(id)} input.amount`), '130');

  // the latency of the bids each page saw, against the goal
  await b.waitForFunction(() => window.app.latency().n >= 1, null, WAIT);
  const lat = await b.evaluate(() => window.app.latency());
  assert.ok(lat.p50 >= 0 && lat.p99 >= lat.p50, JSON.stringify(lat));
  assert.match(await b.textContent('#lat-p50'), /^\d+ ms$/);
  assert.match(await b.textContent('#lat-verdict'), /300 ms goal/);

  // a bad "open a lot": refused in the page, no lot appears anywhere
  await a.fill('#open-title', '   ');
  await click(a, '#open-go');
  await a.waitForFunction(() => /Say what is for sale/.test(document.getElementById('open-msg').textContent), null, WAIT);
  await a.fill('#open-title', 'Blue kite');
  await a.fill('#open-start', 'cheap');
  await click(a, '#open-go');
  await a.waitForFunction(() => /Start price: a whole number/.test(document.getElementById('open-msg').textContent), null, WAIT);
  await a.fill('#open-start', '50');
  await a.fill('#open-title', 'x'.repeat(81));
  await click(a, '#open-go');
  await a.waitForFunction(() => /too long/.test(document.getElementById('open-msg').textContent), null, WAIT);
  // the server refuses what the form would not send (a title over 80 characters)
  const raw = await a.evaluate(() => window.app.client.rpc('auction.open',
    { channel: 'auction:main', title: 'y'.repeat(81), start_price: 1, increment: 1, duration_ms: 60000 })
    .then(() => 'taken', (e) => e.code + ' ' + e.message));
  assert.match(raw, /^107 .*title: 1 to 80 characters/);
  assert.deepEqual((await lots(b)).map((l) => l.title), ['Red bicycle']);

  // a reload shows the same lot, price and leader
  await b.reload();
  await b.waitForSelector(`${lotSel(id)}[data-price="120"]`, WAIT);
  assert.match(await b.textContent(`${lotSel(id)} .leader`), /leader: Ann · 2 bids/);
  assert.equal(await b.inputValue(`${lotSel(id)} input.amount`), '130');

  // signed out: the lots go; in again (the subscription recovers, nothing
  // changed meanwhile): the same lot
  await click(b, '#signin-out');
  await b.waitForSelector('#signin-needed:not([hidden])', WAIT);
  assert.equal(await b.isVisible(lotSel(id)), false);
  await signIn(b, 'Bob', '#0083c7');
  await b.waitForSelector(`${lotSel(id)}[data-price="120"]`, { ...WAIT, state: 'visible' });
  assert.deepEqual(errors, []);
  await ca.close();
  await cb.close();
});

test('a bid in the last 10 s extends the lot; an ended lot refuses bids', async () => {
  const errors = [];
  const ca = await env.browser.newContext(), cb = await env.browser.newContext();
  const a = await openPage(ca, errors), b = await openPage(cb, errors);
  await signIn(a, 'Ann', '#e50000');
  await signIn(b, 'Bob', '#0083c7');
  await a.waitForFunction(() => window.app.client.state === 'connected' && document.getElementById('signin-needed').hidden, null, WAIT);
  // the shortest lot the server opens (10 s): any bid is in its last 10 s
  const opened = await a.evaluate(() => window.app.client.rpc('auction.open',
    { channel: 'auction:main', title: 'Quick one', start_price: 5, increment: 1, duration_ms: 10000 }).then((r) => r.data));
  const id = opened.lot;
  await b.waitForSelector(lotSel(id), WAIT);
  await click(b, `${lotSel(id)} button.bid`);
  await lotMsg(b, id, /leads \(the lot was extended by 10 s\)/);
  await a.waitForFunction((i) => window.app.lots().find((l) => l.id === i)?.ends_at > 0, id, WAIT);
  const lot = (await lots(a)).find((l) => l.id === id);
  assert.ok(lot.ends_at > opened.ends_at, 'the end moved');
  // it ends (within ~10 s), says so, and refuses a bid
  await a.waitForSelector(`${lotSel(id)}[data-ended="true"]`, { timeout: 15000 });
  assert.match(await a.textContent(`${lotSel(id)} .countdown`), /ended/);
  assert.match(await a.textContent(`${lotSel(id)} .leader`), /won by Bob/);
  assert.equal(await a.isDisabled(`${lotSel(id)} button.bid`), true);
  const late = await a.evaluate((i) => window.app.client.rpc('auction.bid', { channel: 'auction:main', lot: i, amount: 100 })
    .then(() => 'taken', (e) => e.code + ' ' + e.message), id);
  assert.match(late, /^107 .*lot: ended/);
  assert.deepEqual(errors, []);
  await ca.close();
  await cb.close();
});
