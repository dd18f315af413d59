// Takes the screenshots of the five apps for the docs (docs/img/*.png):
// starts build/plaza on deploy/demo.json (memory only, a free port), opens
// each app in a few Chromium contexts signed in as different people, does
// what a visitor would do, and saves one desktop-sized screenshot per app
// and phone-sized ones of two of them.
//
//   node scripts/screenshots.mjs            (after scripts/build build)
//
// Not a test: it only fails if a page cannot be driven at all.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { launchChromium } from '../tests/e2e/lib/browser.mjs';
import { startPlaza, repoRoot } from '../tests/e2e/lib/server.mjs';

const OUT = path.join(repoRoot, 'docs/img');
const DESKTOP = { width: 1100, height: 760 };
const PHONE = { width: 390, height: 800 };
const KEY = 'demo-api-key';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
mkdirSync(OUT, { recursive: true });

const plaza = await startPlaza({ noEcho: true, args: ['--config', path.join(repoRoot, 'deploy/demo.json'),
  '--set', 'client.command_rate_limit=0'] });
const browser = await launchChromium();
const people = {
  ann: { name: 'Ann', color: '#e50000' }, bob: { name: 'Bob', color: '#0083c7' },
  chen: { name: 'Chen', color: '#02be01' }, dina: { name: 'Dina', color: '#820080' },
};

async function open(who, url, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  const p = people[who];
  await context.addInitScript(([id, name, color]) => {
    localStorage.setItem('plaza.user', id);
    localStorage.setItem('plaza.name', name);
    localStorage.setItem('plaza.color', color);
  }, ['u-' + who, p.name, p.color]);
  const page = await context.newPage();
  await page.goto(plaza.url + url);
  await page.waitForSelector('.status[data-state="online"]', { timeout: 10000 });
  return page;
}

async function token(who) {
  const r = await fetch(plaza.url + '/v1/sign-in', { method: 'POST',
    body: JSON.stringify({ user: 'u-' + who, ...people[who] }) });
  return (await r.json()).token;
}

const api = (path, body, headers = { 'X-API-Key': KEY }) =>
  fetch(plaza.url + path, { method: body === undefined ? 'GET' : path.startsWith('/v1/spaces') ? 'PUT' : 'POST',
    headers, body: body === undefined ? undefined : JSON.stringify(body) }).then((r) => r.json());

async function shot(page, name) {
  await sleep(400);
  await page.screenshot({ path: path.join(OUT, name + '.png') });
  console.log('wrote docs/img/' + name + '.png');
}

try {
  // presence: three people in the lobby and a kiosk over HTTP
  const pa = await open('ann', '/presence/?space=lobby');
  await open('bob', '/presence/?space=lobby');
  await open('chen', '/presence/?space=lobby');
  await api('/v1/spaces/lobby/users/kiosk', { name: 'Lobby kiosk', color: '#e59500' });
  await shot(pa, 'presence');

  // chat: a conversation, someone typing
  const ca = await open('ann', '/chat/#general');
  const cb = await open('bob', '/chat/#general');
  for (const [page, text] of [[ca, 'Morning! Is the release still on for today?'], [cb, 'Yes, 3 pm. The build is green.'],
    [ca, 'Great, I will tell the support team.'], [cb, 'Reload the page: the history is all there.']]) {
    await page.fill('#text', text);
    await page.click('#send-go');
    await sleep(350);
  }
  await cb.type('#text', 'One more th');
  await shot(ca, 'chat');
  const cp = await open('dina', '/chat/#general', PHONE);
  await shot(cp, 'chat-phone');

  // board: a small picture written by a backend, viewed live
  const font = {   // 5x7 letters
    P: ['XXXX.', 'X...X', 'X...X', 'XXXX.', 'X....', 'X....', 'X....'],
    L: ['X....', 'X....', 'X....', 'X....', 'X....', 'X....', 'XXXXX'],
    A: ['.XXX.', 'X...X', 'X...X', 'XXXXX', 'X...X', 'X...X', 'X...X'],
    Z: ['XXXXX', '....X', '...X.', '..X..', '.X...', 'X....', 'XXXXX'],
  };
  const ba = await open('ann', '/board/');
  const pixels = [];
  [...'PLAZA'].forEach((ch, i) => font[ch].forEach((row, y) => [...row].forEach((c, x) => {
    if (c !== 'X') return;
    for (let dy = 0; dy < 6; dy++) for (let dx = 0; dx < 6; dx++)
      pixels.push({ x: 32 + i * 40 + x * 6 + dx, y: 90 + y * 6 + dy, color: [5, 6, 8, 12, 13][i] });
  })));
  for (let x = 0; x < 256; x++) for (let y = 150; y < 166; y++)
    if ((x * 7 + y * 3) % 5 < 3) pixels.push({ x, y, color: 2 + Math.floor(x / 18) % 14 });
  for (let i = 0; i < 600; i++) pixels.push({ x: (i * 97) % 256, y: 190 + (i * 31) % 50, color: 1 + (i % 15) });
  const writes = [];
  for (let i = 0; i < pixels.length; i += 200)
    await Promise.all(pixels.slice(i, i + 200).map((p) => api('/boards/board:main/pixels', p)));
  await Promise.all(writes);
  await shot(ba, 'board');
  const bp = await open('bob', '/board/', PHONE);
  await shot(bp, 'board-phone');

  // auction: three lots, a few bids from two people
  const aa = await open('ann', '/auction/');
  const lots = [['Vintage road bike', 120, 10, 600000], ['Signed first edition', 40, 5, 300000], ['Espresso machine', 80, 5, 45000]];
  const ids = [];
  for (const [title, start_price, increment, duration_ms] of lots)
    ids.push((await api('/auctions/auction:main/lots', { title, start_price, increment, duration_ms, user: 'house',
      name: 'The house' })).result.lot);
  const bearer = async (who) => ({ Authorization: 'Bearer ' + await token(who) });
  const hb = await bearer('bob'), hc = await bearer('chen');
  for (const [lot, amounts] of [[ids[0], [120, 130, 140, 150]], [ids[1], [40, 45]], [ids[2], [80, 85, 90]]]) {
    let i = 0;
    for (const amount of amounts) {
      await api(`/auctions/auction:main/lots/${lot}/bids`, { amount }, i++ % 2 ? hc : hb);
      await sleep(120);
    }
  }
  await shot(aa, 'auction');

  // here: people in the region, one with two tabs, the light on, a greeting
  const ha = await open('ann', '/here/');
  const h2 = await open("bob", "/here/");
  await open('bob', '/here/');
  const h3 = await open("chen", "/here/");
  await ha.click('#light-on');
  await h2.bringToFront();
  await h2.fill("#greet-text", "Hello from Lisbon!");
  await h2.click("button.wave[data-to=\"u-ann\"]");
  await h3.bringToFront();
  await h3.fill("#greet-text", "Good morning, everyone");
  await h3.click("button.wave[data-to=\"u-bob\"]");
  await ha.bringToFront();
  await shot(ha, 'here');
} finally {
  await browser.close();
  await plaza.stop();
}
