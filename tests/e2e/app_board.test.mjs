// The board app (web/board/, issue 13) in real Chromium against the demo
// config (deploy/demo.json): a signed-in page paints through the UI and a
// second page (anonymous, watching) sees the pixel live; a reload shows the
// same board; painting without signing in, during the cooldown (another tab
// of the same user: the server's 111) and out of the board show a clear
// error and change nothing on the server; zoom and pan (buttons, wheel,
// drag, two-finger pinch) move the view without painting; a page that fell
// too far behind loads a fresh snapshot when it reconnects.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.mjs';
import { startPlaza, repoRoot } from './lib/server.mjs';

const WAIT = { timeout: 10000 };
const DEMO = path.join(repoRoot, 'deploy/demo.json');
const CH = 'board:main';

let browser, plaza;
before(async () => {
  plaza = await startPlaza({ noEcho: true, args: ['--config', DEMO] });
  browser = await launchChromium();
});
after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (plaza) await plaza.stop();
});

async function openBoard(srv, errors, opts = {}) {
  const context = opts.context || await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: !!opts.touch });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  const resp = await page.goto(srv.url + '/board/');
  assert.equal(resp.status(), 200);
  await page.waitForFunction(() => window.app && window.app.subscribed && window.app.state.loads > 0, null, WAIT);
  return { context, page };
}

async function signIn(page, name, color) {
  await page.fill('#signin-name', name);
  await page.fill('#signin-color', color);
  await page.click('#signin-go');
  await page.waitForSelector('#signin-who', WAIT);
  await page.waitForFunction(() => window.Plaza.session && window.app.client.state === 'connected' && window.app.subscribed, null, WAIT);
}

async function clickPixel(page, x, y) {
  const pt = await page.evaluate(([x, y]) => window.app.screenPoint(x, y), [x, y]);
  await page.mouse.click(pt.x, pt.y);
}

// The server's board (GET /boards/<ch>, 4 bits per pixel).
async function serverBoard(srv) {
  const res = await fetch(`${srv.url}/boards/${CH}`, { cache: 'no-store' });
  assert.equal(res.status, 200);
  const width = Number(res.headers.get('X-Board-Width'));
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    bytes, offset: Number(res.headers.get('X-Board-Offset')),
    pixel(x, y) { const v = bytes[y * Math.ceil(width / 2) + (x >> 1)]; return x & 1 ? v & 15 : v >> 4; },
  };
}
async function eventuallyServerPixel(srv, x, y, color) {
  const t0 = Date.now();
  for (;;) {
    const b = await serverBoard(srv);
    if (b.pixel(x, y) === color) return b;
    if (Date.now() - t0 > 10000) assert.fail(`server pixel (${x},${y}) is ${b.pixel(x, y)}, not ${color}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a pixel painted in one page shows live in another (watching anonymously), on the server, and after a reload', async () => {
  const errors = [];
  const a = await openBoard(plaza, errors), b = await openBoard(plaza, errors);
  await signIn(a.page, 'Ann', '#e50000');
  await a.page.click('#palette button[data-color="12"]');
  assert.equal(await a.page.getAttribute('#palette button[data-color="12"]', 'aria-checked'), 'true');
  await clickPixel(a.page, 10, 20);
  await a.page.waitForFunction(() => /painted \(10, 20\)/.test(document.getElementById('place-msg').textContent), null, WAIT);
  // the cooldown timer runs, then says ready again
  await a.page.waitForFunction(() => document.getElementById('cooldown').dataset.state === 'ready', null, WAIT);
  await b.page.waitForFunction(() => window.app.pixel(10, 20) === 12, null, WAIT);
  assert.equal(await b.page.textContent('#seen').then(Number) >= 1, true);
  await eventuallyServerPixel(plaza, 10, 20, 12);
  await b.page.reload();
  await b.page.waitForFunction(() => window.app && window.app.subscribed && window.app.state.loads > 0, null, WAIT);
  assert.equal(await b.page.evaluate(() => window.app.pixel(10, 20)), 12);
  // the reload of the signed-in page keeps the name (localStorage) and the board
  await a.page.reload();
  await a.page.waitForFunction(() => window.Plaza.session && window.app.subscribed && window.app.pixel(10, 20) === 12, null, WAIT);
  assert.match(await a.page.textContent('#signin-who'), /Ann/);
  assert.deepEqual(errors, []);
  await a.context.close();
  await b.context.close();
});

test('painting without signing in, during the cooldown, or off the board shows a clear error and changes nothing', async () => {
  const errors = [];
  const anon = await openBoard(plaza, errors);
  await anon.page.click('#palette button[data-color="3"]');
  await clickPixel(anon.page, 30, 30);
  await anon.page.waitForFunction(() => /Sign in/.test(document.getElementById('place-msg').textContent), null, WAIT);
  assert.match(await anon.page.textContent('#error'), /Sign in first/);

  // Two tabs of one user (one browser context: one localStorage user id)
  // share the cooldown on the server: the second tab is refused with 111.
  const a1 = await openBoard(plaza, errors);
  await signIn(a1.page, 'Cleo', '#02be01');
  const a2 = await openBoard(plaza, errors, { context: a1.context });
  await a2.page.waitForFunction(() => window.Plaza.session && window.app.subscribed, null, WAIT);
  assert.equal(await a2.page.evaluate(() => window.Plaza.session.user), await a1.page.evaluate(() => window.Plaza.session.user));
  await a1.page.click('#palette button[data-color="6"]');
  await a2.page.click('#palette button[data-color="9"]');
  let refused = false;
  for (let i = 0; i < 5 && !refused; i++) {
    await a1.page.waitForFunction(() => document.getElementById('cooldown').dataset.state === 'ready', null, WAIT);
    await clickPixel(a1.page, 40 + i, 40);
    await a1.page.waitForFunction((i) => document.getElementById('place-msg').textContent === `painted (${40 + i}, 40)`, i, WAIT);
    await clickPixel(a2.page, 40 + i, 41);
    await a2.page.waitForFunction(() => /painted|Too many/.test(document.getElementById('place-msg').textContent), null, WAIT);
    refused = /Too many requests: wait \d\.\d s \(cooldown\)/.test(await a2.page.textContent('#place-msg'));
    if (refused) {
      assert.equal(await a2.page.evaluate(() => document.getElementById('cooldown').dataset.state), 'wait');
      const b = await eventuallyServerPixel(plaza, 40 + i, 40, 6);
      assert.notEqual(b.pixel(40 + i, 41), 9, 'the refused pixel is not on the server');
    }
  }
  assert.ok(refused, 'the second tab was refused during the shared cooldown');

  // off the board and a colour outside the palette: the page says why
  await a1.page.waitForFunction(() => document.getElementById('cooldown').dataset.state === 'ready', null, WAIT);
  const before = await serverBoard(plaza);
  const r = await a1.page.evaluate(() => window.app.place(256, 0, 1));
  assert.equal(r.code, 107);
  assert.equal(await a1.page.textContent('#place-msg'), 'Bad request: x: out of the board (0 to 255).');
  await a1.page.evaluate(() => window.app.place(0, 0, 16));
  assert.match(await a1.page.textContent('#place-msg'), /^Bad request: color: not in the palette/);
  assert.match(await a1.page.textContent('#error'), /color: not in the palette/);
  await new Promise((res) => setTimeout(res, 1200));   // past the snapshot cache's max age
  const after = await serverBoard(plaza);
  assert.equal(after.offset, before.offset, 'nothing was published');
  assert.deepEqual(after.bytes, before.bytes);
  assert.deepEqual(errors, []);
  await anon.context.close();
  await a1.context.close();
});

test('zoom and pan (buttons, wheel, drag, pinch) move the view and do not paint', async () => {
  const errors = [];
  const p = await openBoard(plaza, errors, { touch: true });
  await signIn(p.page, 'Dan', '#0083c7');
  const view = () => p.page.evaluate(() => ({ ...window.app.state.view }));
  const v0 = await view();
  await p.page.click('#zoom-in');
  const v1 = await view();
  assert.ok(v1.scale > v0.scale * 1.5, `zoomed in: ${v0.scale} -> ${v1.scale}`);
  const box = await p.page.locator('#board').boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  await p.page.mouse.move(cx, cy);
  await p.page.mouse.wheel(0, -300);
  await p.page.waitForFunction((s) => window.app.state.view.scale > s, v1.scale, WAIT);
  const v2 = await view();
  // drag: the view moves by the drag, nothing is painted
  await p.page.mouse.move(cx, cy);
  await p.page.mouse.down();
  await p.page.mouse.move(cx + 40, cy + 30, { steps: 5 });
  await p.page.mouse.move(cx + 80, cy + 60, { steps: 5 });
  await p.page.mouse.up();
  const v3 = await view();
  assert.ok(Math.abs(v3.tx - v2.tx - 80) < 2 && Math.abs(v3.ty - v2.ty - 60) < 2, JSON.stringify([v2, v3]));
  assert.equal(await p.page.textContent('#place-msg'), '');
  // two-finger pinch (touch events through CDP): fingers apart = zoom in
  const cdp = await p.context.newCDPSession(p.page);
  const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: pts.map(([x, y], id) => ({ x, y, id })) });
  await touch('touchStart', [[cx - 20, cy], [cx + 20, cy]]);
  for (let d = 30; d <= 100; d += 10) await touch('touchMove', [[cx - d, cy], [cx + d, cy]]);
  await touch('touchEnd', []);
  const v4 = await view();
  assert.ok(v4.scale > v3.scale * 2, `pinched: ${v3.scale} -> ${v4.scale}`);
  assert.equal(await p.page.textContent('#place-msg'), '', 'a pinch does not paint');
  // a one-finger tap paints (the view is zoomed: screenPoint follows it)
  const pt = await p.page.evaluate(() => window.app.screenPoint(77, 77));
  const inside = pt.x > box.x && pt.x < box.x + box.width && pt.y > box.y && pt.y < box.y + box.height;
  if (!inside) await p.page.click('#zoom-fit');
  const pt2 = await p.page.evaluate(() => window.app.screenPoint(77, 77));
  await p.page.touchscreen.tap(pt2.x, pt2.y);
  await p.page.waitForFunction(() => document.getElementById('place-msg').textContent === 'painted (77, 77)', null, WAIT);
  await p.page.click('#zoom-fit');
  const v5 = await view();
  assert.ok(Math.abs(v5.scale - v0.scale) < 1e-6, 'fit restores the whole board');
  assert.deepEqual(errors, []);
  await p.context.close();
});

test('a page that fell too far behind loads a fresh snapshot when it reconnects', async () => {
  // The demo config with a short board history, so 30 writes while the page
  // is offline are more than the stream keeps.
  const cfg = JSON.parse(readFileSync(DEMO, 'utf8'));
  for (const ns of cfg.channel.namespaces) if (ns.name === 'board') ns.history_size = 10;
  const dir = mkdtempSync(path.join(tmpdir(), 'plaza-board-'));
  writeFileSync(path.join(dir, 'demo.json'), JSON.stringify(cfg));
  const srv = await startPlaza({ noEcho: true, args: ['--config', path.join(dir, 'demo.json')] });
  try {
    const errors = [];
    const p = await openBoard(srv, errors);
    const loads = await p.page.evaluate(() => window.app.state.loads);
    await p.page.evaluate(() => window.app.client.disconnect());
    await p.page.waitForFunction(() => document.getElementById('status').dataset.state === 'offline', null, WAIT);
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${srv.url}/boards/${CH}/pixels`, {
        method: 'PUT', headers: { 'X-API-Key': 'demo-api-key' }, body: JSON.stringify({ x: i, y: 5, color: 13 }),
      });
      assert.equal(res.status, 200, await res.text());
    }
    await p.page.evaluate(() => window.app.client.connect());
    await p.page.waitForFunction((n) => window.app.state.loads > n && window.app.subscribed, loads, WAIT);
    await p.page.waitForFunction(() => [0, 15, 29].every((x) => window.app.pixel(x, 5) === 13), null, WAIT);
    // and it follows live again from the new snapshot
    const res = await fetch(`${srv.url}/boards/${CH}/pixels`, {
      method: 'PUT', headers: { 'X-API-Key': 'demo-api-key' }, body: JSON.stringify({ x: 100, y: 100, color: 4 }),
    });
    assert.equal(res.status, 200);
    await p.page.waitForFunction(() => window.app.pixel(100, 100) === 4, null, WAIT);
    assert.deepEqual(errors, []);
    await p.context.close();
  } finally {
    await srv.stop();
  }
});
