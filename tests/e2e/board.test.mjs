// Pixel boards (issue 12) against the real binary: GET /boards/<channel>
// (bitfield and PNG, ETag, Cache-Control, the cache's period), PUT
// /boards/<channel>/pixels with the API key and with user tokens (bounds,
// colour, body and auth errors change nothing; the cooldown answers 429 with
// retry_after), the board.put RPC from the unmodified centrifuge client
// (permissions, cooldown 111), batching (the writes of a few milliseconds
// in one publication, in write order), and a viewer that loads the snapshot
// and catches up from its offset ending where a fresh snapshot is; and
// across kill -9 with the durable store.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inflateSync } from 'node:zlib';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { sleep } from './lib/raw.mjs';
import { hs256, nowS } from './lib/jwt.mjs';

const KEY = 'board-api-key';
const SECRET = 'board-secret-board-secret-board-secret';
const open = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true, history_size: 1000,
  history_ttl_ms: 600000 };
const config = {
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0, token_hmac_secret_key: SECRET },
  api: { key: KEY },
  channel: {
    namespaces: [
      { name: 'b', ...open, allow_publish_for_client: true,
        board: { width: 64, height: 64, batch_ms: 30, max_age_ms: 200 } },
      { name: 'cool', ...open, allow_publish_for_subscriber: true,
        board: { width: 64, height: 64, cooldown_ms: 60000, max_age_ms: 50 } },
      { name: 'wide', ...open, allow_publish_for_client: true,
        board: { width: 100, height: 80, bits: 8, palette: '#000000,#ff0000,#00ff00', max_age_ms: 50 } },
      { name: 'chat', ...open },
    ],
  },
};

let srv;
const tok = (sub) => hs256({ sub, exp: nowS() + 3600 }, SECRET);
const until = async (cond, ms = 5000, what = 'condition') => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(10);
  }
};

async function put(s, channel, body, { key, token, raw } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers['X-API-Key'] = key;
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(`${s.url}/boards/${encodeURIComponent(channel)}/pixels`,
    { method: 'PUT', headers, body: raw ?? JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

async function snapshot(s, channel, { png = false, etag } = {}) {
  const headers = etag ? { 'If-None-Match': etag } : {};
  const res = await fetch(`${s.url}/boards/${encodeURIComponent(channel)}${png ? '?format=png' : ''}`, { headers });
  const buf = Buffer.from(await res.arrayBuffer());
  const h = (n) => res.headers.get(n);
  return { status: res.status, buf, etag: h('etag'), cache: h('cache-control'), type: h('content-type'),
    offset: Number(h('x-board-offset')), epoch: h('x-board-epoch'), width: Number(h('x-board-width')),
    height: Number(h('x-board-height')), bits: Number(h('x-board-bits')), palette: h('x-board-palette') };
}

// The colour of (x, y) in a bitfield (rows of ceil(w*bits/8) bytes, left pixel high nibble).
function pixel(buf, w, bits, x, y) {
  const row = Math.ceil(w * bits / 8);
  if (bits === 8) return buf[y * row + x];
  const v = buf[y * row + (x >> 1)];
  return x & 1 ? v & 15 : v >> 4;
}
function setPixel(buf, w, bits, x, y, c) {
  const row = Math.ceil(w * bits / 8);
  if (bits === 8) { buf[y * row + x] = c; return; }
  const i = y * row + (x >> 1);
  buf[i] = x & 1 ? (buf[i] & 0xf0) | c : (buf[i] & 0x0f) | (c << 4);
}

function viewer(channel, opts = {}) {
  const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 200,
    ...(opts.token ? { token: opts.token } : {}) });
  const s = c.newSubscription(channel, { recoverable: true, positioned: true, ...(opts.since ? { since: opts.since } : {}) });
  const v = { c, s, pubs: [], subscribed: [] };
  s.on('publication', (ctx) => v.pubs.push(ctx));
  s.on('subscribed', (ctx) => v.subscribed.push(ctx));
  c.on('error', () => {});
  c.connect();
  s.subscribe();
  return v;
}

describe('boards', () => {
  before(async () => { srv = await startPlaza({ noEcho: true, config }); });
  after(async () => { await srv.stop(); });

  test('a new board is blank: bitfield with its geometry, palette, position and cache headers', async () => {
    const s = await snapshot(srv, 'b:blank');
    assert.equal(s.status, 200);
    assert.equal(s.type, 'application/octet-stream');
    assert.equal(s.buf.length, 64 * 64 / 2);
    assert.ok(s.buf.every((b) => b === 0));
    assert.deepEqual([s.width, s.height, s.bits], [64, 64, 4]);
    assert.equal(s.palette.split(',').length, 16);
    assert.equal(s.palette.split(',')[5], '#e50000');
    assert.equal(s.offset, 0);
    assert.ok(s.epoch.length > 0);
    assert.match(s.cache, /public, max-age=0/);
    assert.match(s.etag, /^".+-0-raw"$/);
    const again = await snapshot(srv, 'b:blank', { etag: s.etag });
    assert.equal(again.status, 304);
    assert.equal(again.buf.length, 0);
  });

  test('bad writes get clear errors and change nothing', async () => {
    const ch = 'b:bad';
    const cases = [
      [{ x: 64, y: 0, color: 1 }, 400, /x: out of the board \(0 to 63\)/],
      [{ x: 0, y: -1, color: 1 }, 400, /y: out of the board/],
      [{ x: 0, y: 0, color: 16 }, 400, /color: not in the palette \(0 to 15\)/],
      [{ x: 0, y: 0 }, 400, /color required/],
      [{ x: '1', y: 0, color: 1 }, 400, /x: expected an integer/],
    ];
    for (const [body, status, msg] of cases) {
      const r = await put(srv, ch, body, { key: KEY });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 107);
      assert.match(r.body.error.message, msg);
    }
    const notJson = await put(srv, ch, null, { key: KEY, raw: '{"x":1,' });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.error.message, /expected a JSON object/);
    const noAuth = await put(srv, ch, { x: 1, y: 1, color: 1 });
    assert.equal(noAuth.status, 401);
    assert.match(noAuth.body.error.message, /API key or a user's connection token/);
    const badTok = await put(srv, ch, { x: 1, y: 1, color: 1 }, { token: hs256({ sub: 'eve' }, 'wrong-secret-wrong-secret-wrong') });
    assert.equal(badTok.status, 401);
    const wrongKey = await put(srv, ch, { x: 1, y: 1, color: 1 }, { key: 'nope' });
    assert.equal(wrongKey.status, 401);
    const notBoard = await put(srv, 'chat:x', { x: 1, y: 1, color: 1 }, { key: KEY });
    assert.equal(notBoard.status, 404);
    assert.match(notBoard.body.error.message, /not a board/);
    const unknown = await put(srv, 'nope:x', { x: 1, y: 1, color: 1 }, { key: KEY });
    assert.equal(unknown.status, 404);
    const badFormat = await fetch(`${srv.url}/boards/b:bad?format=gif`);
    assert.equal(badFormat.status, 400);
    const del = await fetch(`${srv.url}/boards/b:bad`, { method: 'DELETE' });
    assert.equal(del.status, 405);
    const s = await snapshot(srv, ch);
    assert.equal(s.offset, 0, 'nothing was published');
    assert.ok(s.buf.every((b) => b === 0), 'nothing was written');
  });

  test('writes reach viewers live, batched, in order; the snapshot follows at most max-age late', async () => {
    const ch = 'b:live';
    const v = viewer(ch);
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    const first = await snapshot(srv, ch);
    const writes = [];
    for (let i = 0; i < 40; i++) writes.push({ x: i, y: i % 7, color: (i % 15) + 1 });
    writes.push({ x: 50, y: 50, color: 2 }, { x: 50, y: 50, color: 9 });   // racing writes of one pixel
    const answers = await Promise.all(writes.map((w) => put(srv, ch, w, { key: KEY })));
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    const offsets = new Set(answers.map((a) => a.body.result.offset));
    assert.ok(offsets.size < writes.length / 4, `batched: ${offsets.size} publications for ${writes.length} writes`);
    await until(() => v.pubs.reduce((n, p) => n + p.data.p.length / 3, 0) === writes.length, 5000, 'all pixels');
    const seen = v.pubs.flatMap((p) => { const t = []; for (let i = 0; i < p.data.p.length; i += 3) t.push(p.data.p.slice(i, i + 3)); return t; });
    const order = (list) => list.map((w) => `${w[0]},${w[1]},${w[2]}`).sort().join(' ');
    assert.equal(order(seen), order(writes.map((w) => [w.x, w.y, w.color])));
    // the two writes of (50,50): the one viewers saw last is the one the board keeps
    const at5050 = seen.filter(([x, y]) => x === 50 && y === 50).map((t) => t[2]);
    assert.equal(at5050.length, 2);
    assert.deepEqual(v.pubs.map((p) => p.offset), [...offsets].sort((a, b) => a - b));
    // the cached snapshot is served until max-age passes, then it moves
    const cached = await snapshot(srv, ch);
    assert.ok(cached.offset === first.offset || cached.offset === Math.max(...offsets));
    await sleep(250);
    const fresh = await snapshot(srv, ch);
    assert.equal(fresh.offset, Math.max(...offsets));
    assert.notEqual(fresh.etag, first.etag);
    for (const w of writes.slice(0, 40)) assert.equal(pixel(fresh.buf, 64, 4, w.x, w.y), w.color);
    assert.equal(pixel(fresh.buf, 64, 4, 50, 50), at5050[1]);
    v.c.disconnect();
  });

  test('a viewer loads the snapshot, then catches up from its offset to where everyone is', async () => {
    const ch = 'b:catchup';
    for (let i = 0; i < 10; i++) await put(srv, ch, { x: i, y: 0, color: 1 }, { key: KEY });
    await sleep(250);
    const snap = await snapshot(srv, ch);
    assert.equal(snap.offset > 0, true);
    // more writes after the snapshot, while the viewer is not there yet
    for (let i = 0; i < 10; i++) await put(srv, ch, { x: i, y: 1, color: 2 + (i % 3) }, { key: KEY });
    const board = Buffer.from(snap.buf);
    const v = viewer(ch, { since: { offset: snap.offset, epoch: snap.epoch } });
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    assert.equal(v.subscribed[0].recovered, true);
    await until(() => v.pubs.reduce((n, p) => n + p.data.p.length / 3, 0) === 10, 5000, 'caught up');
    for (const p of v.pubs) for (let i = 0; i < p.data.p.length; i += 3) setPixel(board, 64, 4, ...p.data.p.slice(i, i + 3));
    await sleep(250);
    const now = await snapshot(srv, ch);
    assert.ok(board.equals(now.buf), 'snapshot + deltas = the board now');
    v.c.disconnect();
  });

  test('PNG: indexed colour of the board\'s depth and palette, its own ETag', async () => {
    await put(srv, 'wide:png', { x: 99, y: 79, color: 2 }, { key: KEY });
    await put(srv, 'wide:png', { x: 0, y: 0, color: 1 }, { key: KEY });
    await sleep(100);
    const s = await snapshot(srv, 'wide:png', { png: true });
    assert.equal(s.status, 200);
    assert.equal(s.type, 'image/png');
    assert.deepEqual([...s.buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
    assert.equal(s.buf.toString('ascii', 12, 16), 'IHDR');
    assert.equal(s.buf.readUInt32BE(16), 100);
    assert.equal(s.buf.readUInt32BE(20), 80);
    assert.equal(s.buf[24], 8, 'bit depth');
    assert.equal(s.buf[25], 3, 'palette colour');
    assert.match(s.etag, /-png"$/);
    // the palette chunk, and the pixels once inflated (filter byte + row)
    const chunks = {};
    for (let o = 8; o < s.buf.length;) {
      const len = s.buf.readUInt32BE(o), type = s.buf.toString('ascii', o + 4, o + 8);
      chunks[type] = Buffer.concat([chunks[type] || Buffer.alloc(0), s.buf.subarray(o + 8, o + 8 + len)]);
      o += 12 + len;
    }
    assert.deepEqual([...chunks.PLTE], [0, 0, 0, 255, 0, 0, 0, 255, 0]);
    const rows = inflateSync(chunks.IDAT);
    assert.equal(rows.length, 80 * 101);
    assert.equal(rows[1], 1);                      // (0,0)
    assert.equal(rows[79 * 101 + 1 + 99], 2);     // (99,79)
    const raw = await snapshot(srv, 'wide:png');
    assert.equal(raw.buf.length, 100 * 80);
    assert.notEqual(raw.etag, s.etag);
    const wrong = await put(srv, 'wide:png', { x: 0, y: 0, color: 3 }, { key: KEY });
    assert.match(wrong.body.error.message, /color: not in the palette \(0 to 2\)/);
  });

  test('cooldown per user: HTTP 429 with retry_after, RPC 111; the API key has none', async () => {
    const ch = 'cool:main';
    const alice = tok('alice');
    const ok = await put(srv, ch, { x: 1, y: 1, color: 3 }, { token: alice });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const again = await put(srv, ch, { x: 2, y: 1, color: 3 }, { token: alice });
    assert.equal(again.status, 429);
    assert.equal(again.body.error.code, 111);
    assert.ok(again.body.error.retry_after > 55000 && again.body.error.retry_after <= 60000);
    assert.ok(Number(again.headers.get('retry-after')) >= 56);
    const bob = await put(srv, ch, { x: 2, y: 1, color: 3 }, { token: tok('bob') });
    assert.equal(bob.status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await put(srv, ch, { x: i, y: 5, color: 1 }, { key: KEY })).status, 200);
    // RPC: only subscribers may write here (allow_publish_for_subscriber)
    const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, token: tok('carol') });
    c.connect();
    await c.ready(5000);
    await assert.rejects(c.rpc('board.put', { channel: ch, x: 0, y: 0, color: 1 }), (e) => e.code === 103);
    const s = c.newSubscription(ch);
    s.subscribe();
    await s.ready(5000);
    const r = await c.rpc('board.put', { channel: ch, x: 0, y: 0, color: 1 });
    assert.ok(r.data.offset > 0);
    await assert.rejects(c.rpc('board.put', { channel: ch, x: 0, y: 1, color: 1 }),
      (e) => e.code === 111 && /cooldown: retry after \d+ ms/.test(e.message));
    await assert.rejects(c.rpc('board.put', { channel: ch, x: 64, y: 0, color: 1 }),
      (e) => e.code === 107 && /x: out of the board/.test(e.message));
    await assert.rejects(c.rpc('board.put', { x: 0, y: 0, color: 1 }), (e) => e.code === 107);
    await assert.rejects(c.rpc('board.put', { channel: 'chat:x', x: 0, y: 0, color: 1 }), (e) => e.code === 108);
    await sleep(100);
    const snap = await snapshot(srv, ch);
    assert.equal(pixel(snap.buf, 64, 4, 0, 0), 1);
    assert.equal(pixel(snap.buf, 64, 4, 0, 1), 0, 'the refused write changed nothing');
    assert.equal(pixel(snap.buf, 64, 4, 2, 1), 3);
    c.disconnect();
  });

  test('anonymous clients write only where allowed; an anonymous token cannot write over HTTP', async () => {
    const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket });
    c.connect();
    await c.ready(5000);
    await assert.rejects(c.rpc('board.put', { channel: 'b:anon', x: 0, y: 0, color: 1 }), (e) => e.code === 103);
    c.disconnect();
    const r = await put(srv, 'b:anon', { x: 0, y: 0, color: 1 }, { token: hs256({ sub: '' }, SECRET) });
    assert.equal(r.status, 401);
    assert.match(r.body.error.message, /anonymous/);
  });
});

describe('boards in the durable store', () => {
  test('acknowledged pixels survive kill -9; a clean stop logs the board; offsets go on', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'plaza-board-'));
    const cfg = { ...config, store: { durability: 'sync' } };
    // the store lives under the memory engine: this test runs on it even
    // in the delayed-engine pass of the suite
    const args = ['--set', 'engine.type=memory'];
    let s = await startPlaza({ noEcho: true, config: cfg, store: dir, args });
    const acked = [];
    for (let i = 0; i < 30; i++) {
      const w = { x: i, y: 2 * (i % 5), color: (i % 15) + 1 };
      const r = await put(s, 'b:durable', w, { key: KEY });
      assert.equal(r.status, 200);
      acked.push([w, r.body.result]);
    }
    const top = Math.max(...acked.map(([, r]) => r.offset));
    s.proc.kill('SIGKILL');
    await s.exited;
    s = await startPlaza({ noEcho: true, config: cfg, store: dir, args });
    let snap = await snapshot(s, 'b:durable');
    assert.equal(snap.offset, top);
    assert.equal(snap.epoch, acked[0][1].epoch);
    for (const [w] of acked) assert.equal(pixel(snap.buf, 64, 4, w.x, w.y), w.color, `pixel ${w.x},${w.y}`);
    const next = await put(s, 'b:durable', { x: 63, y: 63, color: 15 }, { key: KEY });
    assert.equal(next.body.result.offset, top + 1);
    assert.equal((await s.stop()).code, 0);
    s = await startPlaza({ noEcho: true, config: cfg, store: dir, args });
    await sleep(250);
    snap = await snapshot(s, 'b:durable');
    assert.equal(snap.offset, top + 1);
    assert.equal(pixel(snap.buf, 64, 4, 63, 63), 15);
    for (const [w] of acked) assert.equal(pixel(snap.buf, 64, 4, w.x, w.y), w.color);
    await s.stop();
  });
});
