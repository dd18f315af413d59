// Client protocol: authentication, limits, protocol violations and pings
// (protocol.md A4, A9-A11; docs/configuration.md client.*), against the real
// binary with the real protocol handler (noEcho). The npm `centrifuge` client
// is used wherever it can express the case, so its reactions (reconnect or
// not, getToken, refresh) are checked too; raw JSON clients (npm ws) and raw
// frames (lib/raw.mjs) cover what it cannot send.
import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { startPlaza } from './lib/server.mjs';
import { frame, closePayload, rawWs, sleep, withTimeout } from './lib/raw.mjs';
import { signJwt, hs256, rs256, es256, noneToken, verifyHs, nowS } from './lib/jwt.mjs';

const SECRET = 'hs-secret-' + crypto.randomBytes(12).toString('hex');
const OP = { TEXT: 1, BIN: 2, CLOSE: 8 };

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// A WebSocket class for centrifuge that counts sockets opened, `{}` pings
// received and `{}` pongs sent (one class per client).
function countingWebSocket() {
  class W extends WebSocket {
    constructor(...args) {
      super(...args);
      W.opened++;
      this.on('message', (d) => { if (String(d) === '{}') W.pings++; });
      this.on('close', (code) => { W.closeCodes.push(code); });
    }
    send(data, ...rest) {
      if (data === '{}') W.pongs++;
      return super.send(data, ...rest);
    }
  }
  W.opened = 0;
  W.pings = 0;
  W.pongs = 0;
  W.closeCodes = [];
  return W;
}

let live = [];   // centrifuge clients to disconnect after each test

// A centrifuge client with fast reconnects; records its events in c.log.
function mkClient(url, opts = {}) {
  const W = countingWebSocket();
  const c = new Centrifuge(url, {
    websocket: W, minReconnectDelay: 100, maxReconnectDelay: 300, timeout: 4000, ...opts,
  });
  c.W = W;
  c.log = [];
  for (const ev of ['connecting', 'connected', 'disconnected', 'error'])
    c.on(ev, (ctx) => c.log.push([ev, ctx]));
  live.push(c);
  return c;
}

// A subscription that records its events in s.log (an 'error' listener is
// needed anyway: an unhandled 'error' event would throw).
function mkSub(c, channel, opts = {}) {
  const s = c.newSubscription(channel, { minResubscribeDelay: 100, maxResubscribeDelay: 300, ...opts });
  s.log = [];
  for (const ev of ['subscribing', 'subscribed', 'unsubscribed', 'error', 'join', 'leave'])
    s.on(ev, (ctx) => s.log.push([ev, ctx]));
  return s;
}

// Resolves with the context of the next `ev` of emitter.
const nextEvent = (emitter, ev, ms = 5000) =>
  withTimeout(new Promise((r) => emitter.once(ev, r)), ms, `event ${ev}`);

const events = (x, ev) => x.log.filter(([e]) => e === ev).map(([, ctx]) => ctx);

afterEach(() => {
  for (const c of live) { try { c.disconnect(); } catch { /* gone */ } }
  live = [];
});

// A JSON client on npm ws: c.log holds { at, msg } for every JSON object
// received (frames split on \n), c.closed resolves { code, reason, at }.
async function jsonWs(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.log = [];
  ws.texts = [];
  const waiters = new Set();
  const wake = () => { for (const w of [...waiters]) w(); };
  ws.on('message', (d, isBinary) => {
    const at = Date.now();
    ws.texts.push(String(d));
    if (!isBinary) {
      for (const line of String(d).trim().split('\n'))
        if (line.trim()) ws.log.push({ at, msg: JSON.parse(line) });
    }
    wake();
  });
  ws.closed = new Promise((r) => ws.on('close', (code, reason) => {
    ws.closeInfo = { code, reason: String(reason), at: Date.now() };
    r(ws.closeInfo);
    wake();
  }));
  ws.on('error', () => {});
  await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); ws.once('close', () => j(new Error('closed before open'))); }), 5000, 'ws open');
  ws.cmd = (...cmds) => ws.send(cmds.map((c) => JSON.stringify(c)).join('\n'));
  // Waits for the first logged entry matching pred.
  ws.waitEntry = async (pred, ms = 5000) => {
    const t0 = Date.now();
    for (;;) {
      const e = ws.log.find((x) => pred(x.msg));
      if (e) return e;
      if (ws.closeInfo) throw new Error('closed ' + JSON.stringify(ws.closeInfo) + ' while waiting; got ' + JSON.stringify(ws.log.map((x) => x.msg)));
      if (Date.now() - t0 > ms) throw new Error('timeout waiting; got ' + JSON.stringify(ws.log.map((x) => x.msg)));
      let w;
      await new Promise((r) => { w = r; waiters.add(r); setTimeout(r, 50); });
      waiters.delete(w);
    }
  };
  ws.waitMsg = async (pred, ms) => (await ws.waitEntry(pred, ms)).msg;
  ws.reply = (id, ms) => ws.waitMsg((m) => m.id === id, ms);
  ws.call = (cmd, ms) => { ws.cmd(cmd); return ws.reply(cmd.id, ms); };
  return ws;
}

// Opens a JSON client and sends connect (token optional); returns [ws, reply].
async function connectRaw(url, token) {
  const ws = await jsonWs(url);
  const reply = await ws.call({ id: 1, connect: token ? { token } : {} });
  return [ws, reply];
}

const closeOf = (ws, ms = 5000) => withTimeout(ws.closed, ms, 'close');

// Asserts that ws is still open now.
function assertOpen(ws, what) {
  assert.equal(ws.closeInfo, undefined, `${what}: closed ${JSON.stringify(ws.closeInfo)}`);
  assert.equal(ws.readyState, WebSocket.OPEN, what);
}

// Writes text to a fresh temp file; returns its path.
function tempFile(name, text) {
  const dir = mkdtempSync(path.join(tmpdir(), 'plaza-keys-'));
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

// Asserts a centrifuge client ends disconnected with code (terminal: no
// second socket is opened within settleMs).
async function assertTerminal(c, code, settleMs = 800, { wasConnected = false } = {}) {
  if (c.state !== 'disconnected') await nextEvent(c, 'disconnected');
  const d = events(c, 'disconnected');
  assert.equal(d.length, 1, JSON.stringify(c.log));
  assert.equal(d[0].code, code, JSON.stringify(d[0]));
  await sleep(settleMs);
  assert.equal(c.state, 'disconnected');
  assert.equal(c.W.opened, 1, 'client must not reconnect');
  assert.equal(events(c, 'connected').length, wasConnected ? 1 : 0);
}

// The ClientInfo fields of a centrifuge presence/join entry (the client also
// keeps the wire names conn_info/chan_info on the object).
function info(x) {
  const o = { client: x.client, user: x.user };
  if (x.connInfo !== undefined) o.connInfo = x.connInfo;
  if (x.chanInfo !== undefined) o.chanInfo = x.chanInfo;
  return o;
}

// ---------------------------------------------------------------------------
// The JWT helper itself
// ---------------------------------------------------------------------------

describe('jwt helper', () => {
  test('HS tokens verify; ES256 signature is raw r||s (64 bytes)', () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const t = signJwt({ sub: 'u' }, alg, 'k');
      assert.ok(verifyHs(t, 'k'), alg);
      assert.ok(!verifyHs(t, 'other'), alg);
    }
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const t = es256({ sub: 'u' }, privateKey);
    const [h, p, s] = t.split('.');
    const sig = Buffer.from(s, 'base64url');
    assert.equal(sig.length, 64);
    assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig));
    assert.equal(noneToken({ sub: 'u' }).split('.')[2], '');
    assert.deepEqual(JSON.parse(Buffer.from(noneToken({}).split('.')[0], 'base64url')), { alg: 'none', typ: 'JWT' });
  });
});

// ---------------------------------------------------------------------------
// Anonymous connect allowed
// ---------------------------------------------------------------------------

describe('anonymous connect allowed', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: { allow_anonymous_connect_without_token: true },
        channel: {
          options: { allow_subscribe_for_anonymous: true, presence: true, allow_presence_for_subscriber: true,
                     allow_presence_for_anonymous: true },
          namespaces: [
            // the for_client rules, but not for anonymous clients
            { name: 'users', allow_subscribe_for_anonymous: true, presence: true, history_size: 10,
              allow_publish_for_client: true, allow_presence_for_client: true, allow_history_for_client: true,
              allow_publish_for_subscriber: true, allow_presence_for_subscriber: true, allow_history_for_subscriber: true },
            // and with the for_anonymous options: subscribed or not
            { name: 'all', presence: true, history_size: 10,
              allow_publish_for_client: true, allow_presence_for_client: true, allow_history_for_client: true,
              allow_publish_for_anonymous: true, allow_presence_for_anonymous: true, allow_history_for_anonymous: true },
          ],
        },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('for_client / for_subscriber rules need for_anonymous for anonymous clients', async () => {
    const { rawClient } = await import('./lib/proto.mjs');
    const r = await rawClient(srv.wsUrl);
    const ops = (ch) => [{ publish: { channel: ch, data: { x: 1 } } }, { presence: { channel: ch } },
      { presence_stats: { channel: ch } }, { history: { channel: ch, limit: -1 } }];
    for (const op of ops('users:a')) assert.equal((await r.cmd(op)).error?.code, 103, JSON.stringify(op));
    assert.ok((await r.cmd({ subscribe: { channel: 'users:a' } })).subscribe);
    for (const op of ops('users:a')) assert.equal((await r.cmd(op)).error?.code, 103, 'subscribed: ' + JSON.stringify(op));
    // allowed without subscribing: any client, anonymous included
    assert.deepEqual((await r.cmd(ops('all:b')[0])).publish, {});
    assert.deepEqual((await r.cmd(ops('all:b')[1])).presence, { presence: {} });
    assert.deepEqual((await r.cmd(ops('all:b')[2])).presence_stats, { num_clients: 0, num_users: 0 });
    const h = (await r.cmd(ops('all:b')[3])).history;
    assert.equal(h.publications.length, 1);
    assert.deepEqual(h.publications[0].data, { x: 1 });
    r.close();
  });

  test('centrifuge client without token connects as user ""', async () => {
    const c = mkClient(srv.wsUrl);
    const s = mkSub(c, 'lobby');
    const connected = nextEvent(c, 'connected');
    c.connect();
    const ctx = await connected;
    assert.match(ctx.client, /^[0-9a-f-]{36}$/);
    s.subscribe();
    await nextEvent(s, 'subscribed');
    const p = await s.presence();
    assert.deepEqual(Object.keys(p.clients), [ctx.client]);
    assert.equal(p.clients[ctx.client].user, '');
    assert.equal(p.clients[ctx.client].connInfo, undefined);
  });

  test('raw connect without token: reply has client, no expires', async () => {
    const [ws, reply] = await connectRaw(srv.wsUrl);
    assert.equal(reply.error, undefined);
    assert.match(reply.connect.client, /^[0-9a-f-]{36}$/);
    assert.equal(reply.connect.expires, undefined);
    assert.equal(reply.connect.ttl, undefined);
    ws.close();
  });
});

// ---------------------------------------------------------------------------
// HMAC tokens: connect, refusals, expiry at connect, refresh, sub tokens
// ---------------------------------------------------------------------------

describe('HMAC tokens (anonymous refused)', () => {
  let srv;
  const tok = (claims) => hs256(claims, SECRET);
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: {
          token_hmac_secret_key: SECRET,
          // > 1 s: centrifuge refreshes at ttl (whole seconds from now), so
          // up to 1 s after exp (Centrifugo's default grace is 25 s).
          expired_close_delay_ms: 1500,
        },
        channel: {
          options: { allow_subscribe_for_client: true },
          namespaces: [
            { name: 'pres', presence: true, join_leave: true, allow_subscribe_for_client: true, allow_presence_for_subscriber: true },
            { name: 'prot', protected: true, presence: true, allow_presence_for_subscriber: true },
          ],
        },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('no token and anonymous not allowed: close 3501, client disconnected 3501', async () => {
    const c = mkClient(srv.wsUrl);
    c.connect();
    await assertTerminal(c, 3501);
    assert.deepEqual(c.W.closeCodes, [3501]);
  });

  test('raw: connect without token gets no reply, close 3501', async () => {
    const ws = await jsonWs(srv.wsUrl);
    ws.cmd({ id: 1, connect: {} });
    const cl = await closeOf(ws);
    assert.equal(cl.code, 3501);
    assert.equal(ws.log.length, 0, JSON.stringify(ws.texts));
  });

  test('HS256 connect: sub and info appear as user and conn_info in presence and join', async () => {
    const a = mkClient(srv.wsUrl, { token: tok({ sub: 'alice', info: { name: 'Alice', n: 1 } }) });
    const b = mkClient(srv.wsUrl, { token: tok({ sub: 'bob', info: { name: 'Bob', tags: ['x', 'y'] } }) });
    const sa = mkSub(a, 'pres:room', { joinLeave: true });
    const sb = mkSub(b, 'pres:room');
    const aConn = nextEvent(a, 'connected');
    a.connect();
    const aId = (await aConn).client;
    sa.subscribe();
    await nextEvent(sa, 'subscribed');
    const join = new Promise((r) => sa.on('join', (ctx) => { if (ctx.info.client !== aId) r(ctx); }));
    const bConn = nextEvent(b, 'connected');
    b.connect();
    const bId = (await bConn).client;
    sb.subscribe();
    await nextEvent(sb, 'subscribed');
    const j = await withTimeout(join, 5000, 'join of bob');
    assert.equal(j.info.client, bId);
    assert.equal(j.info.user, 'bob');
    assert.deepEqual(j.info.connInfo, { name: 'Bob', tags: ['x', 'y'] });
    assert.equal(j.info.chanInfo, undefined);
    const p = await sa.presence();
    assert.deepEqual(Object.keys(p.clients).sort(), [aId, bId].sort());
    assert.deepEqual(info(p.clients[aId]), { client: aId, user: 'alice', connInfo: { name: 'Alice', n: 1 } });
    assert.deepEqual(info(p.clients[bId]), { client: bId, user: 'bob', connInfo: { name: 'Bob', tags: ['x', 'y'] } });
    const st = await sb.presenceStats();
    assert.deepEqual(st, { numClients: 2, numUsers: 2 });
  });

  test('HS384 and HS512 tokens connect; same claims with a wrong secret do not', async () => {
    for (const alg of ['HS384', 'HS512']) {
      const [ws, reply] = await connectRaw(srv.wsUrl, signJwt({ sub: 'u-' + alg }, alg, SECRET));
      assert.equal(reply.error, undefined, alg);
      assert.ok(reply.connect.client, alg);
      ws.close();
      const bad = await jsonWs(srv.wsUrl);
      bad.cmd({ id: 1, connect: { token: signJwt({ sub: 'u-' + alg }, alg, SECRET + 'x') } });
      assert.equal((await closeOf(bad)).code, 3500, alg);
    }
  });

  test('bad signature: close 3500, centrifuge client does not reconnect', async () => {
    let asked = 0;
    const c = mkClient(srv.wsUrl, {
      token: hs256({ sub: 'mallory' }, SECRET + '-wrong'),
      getToken: async () => { asked++; return hs256({ sub: 'mallory' }, SECRET + '-wrong'); },
    });
    c.connect();
    await assertTerminal(c, 3500);
    assert.deepEqual(c.W.closeCodes, [3500]);
    assert.equal(asked, 0, 'getToken must not be called for an invalid token');
  });

  test('tampered payload (signature of other claims): 3500', async () => {
    const good = tok({ sub: 'user1' });
    const [h, , s] = good.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')}.${s}`;
    const ws = await jsonWs(srv.wsUrl);
    ws.cmd({ id: 1, connect: { token: forged } });
    assert.equal((await closeOf(ws)).code, 3500);
    assert.equal(ws.log.length, 0);
  });

  test('connection token with a channel claim, nbf in the future, sub not a string: 3500', async () => {
    for (const claims of [{ sub: 'u', channel: 'lobby' }, { sub: 'u', nbf: nowS() + 60 }, { sub: 42 }]) {
      const ws = await jsonWs(srv.wsUrl);
      ws.cmd({ id: 1, connect: { token: tok(claims) } });
      assert.equal((await closeOf(ws)).code, 3500, JSON.stringify(claims));
      assert.equal(ws.log.length, 0);
    }
  });

  test('alg none: 3500 (empty and non-empty signature segment)', async () => {
    const c = mkClient(srv.wsUrl, { token: noneToken({ sub: 'root' }) });
    c.connect();
    await assertTerminal(c, 3500, 300);
    for (const t of [noneToken({ sub: 'root' }), noneToken({ sub: 'root' }, 'c2ln'),
      // A real HS256 signature behind an alg:none header.
      noneToken({ sub: 'root' }, tok({ sub: 'root' }).split('.')[2])]) {
      const ws = await jsonWs(srv.wsUrl);
      ws.cmd({ id: 1, connect: { token: t } });
      assert.equal((await closeOf(ws)).code, 3500, t);
    }
  });

  test('expired token at connect: error 109, centrifuge gets a fresh token and connects', async () => {
    // Raw: a reply with error 109, the socket stays open.
    const ws = await jsonWs(srv.wsUrl);
    const r = await ws.call({ id: 1, connect: { token: tok({ sub: 'late', exp: nowS() - 10 }) } });
    assert.equal(r.error?.code, 109, JSON.stringify(r));
    assert.equal(r.connect, undefined);
    await sleep(100);
    assertOpen(ws, 'after 109');
    // The same socket may connect with a good token afterwards.
    const r2 = await ws.call({ id: 2, connect: { token: tok({ sub: 'late' }) } });
    assert.ok(r2.connect?.client, JSON.stringify(r2));
    ws.close();

    let asked = 0;
    const c = mkClient(srv.wsUrl, {
      token: tok({ sub: 'late', exp: nowS() - 10 }),
      getToken: async () => { asked++; return tok({ sub: 'late', exp: nowS() + 600 }); },
    });
    const s = mkSub(c, 'pres:x');
    s.subscribe();
    const connected = nextEvent(c, 'connected', 8000);
    c.connect();
    await connected;
    const errs = events(c, 'error');
    assert.equal(errs.length, 1, JSON.stringify(errs));
    assert.equal(errs[0].type, 'connect');
    assert.equal(errs[0].error.code, 109);
    assert.equal(asked, 1);
    assert.equal(c.W.opened, 2);
    await nextEvent(s, 'subscribed');
    const p = await s.presence();
    assert.deepEqual(Object.values(p.clients).map((x) => x.user), ['late']);
  });

  test('refresh: token with exp in 3 s, getToken gives fresh ones: same connection after 6 s', async () => {
    let asked = 0;
    const exp0 = nowS() + 3;
    const c = mkClient(srv.wsUrl, {
      token: tok({ sub: 'fresh', exp: exp0 }),
      getToken: async () => { asked++; return tok({ sub: 'fresh', exp: nowS() + 3 }); },
    });
    const connected = nextEvent(c, 'connected');
    c.connect();
    const id = (await connected).client;
    await sleep(6000);   // past exp0 + grace (at most exp0 + 1.5 s)
    assert.ok(Date.now() > exp0 * 1000 + 2000);
    assert.equal(c.state, 'connected');
    assert.ok(asked >= 1, `getToken called ${asked} times`);
    assert.equal(c.W.opened, 1);
    assert.deepEqual(c.W.closeCodes, []);
    assert.equal(events(c, 'disconnected').length, 0);
    assert.equal(events(c, 'connecting').length, 1);   // the initial one only
    assert.deepEqual(events(c, 'error'), []);
    const r = await c.rpc('plaza.time', {});   // the connection still works
    assert.ok(r.data.time > 0);
    assert.equal(c._client, id);               // same client id (connection never replaced)
  });

  test('raw refresh: reply shape; another user in the refresh token: 3500', async () => {
    const [ws, rep] = await connectRaw(srv.wsUrl, tok({ sub: 'r', exp: nowS() + 100 }));
    assert.equal(rep.connect.expires, true);
    assert.ok(rep.connect.ttl >= 99 && rep.connect.ttl <= 100, JSON.stringify(rep));
    const r = await ws.call({ id: 2, refresh: { token: tok({ sub: 'r', exp: nowS() + 200 }) } });
    assert.equal(r.refresh.client, rep.connect.client);
    assert.equal(r.refresh.expires, true);
    assert.ok(r.refresh.ttl >= 199 && r.refresh.ttl <= 200, JSON.stringify(r));
    ws.cmd({ id: 3, refresh: { token: tok({ sub: 'someone-else', exp: nowS() + 200 }) } });
    assert.equal((await closeOf(ws)).code, 3500);
  });

  // -- subscription tokens --

  test('protected namespace: subscribe without token -> error 103, unsubscribed', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u1' }) });
    const s = mkSub(c, 'prot:room');
    s.subscribe();
    c.connect();
    const u = await nextEvent(s, 'unsubscribed');
    assert.equal(u.code, 103);
    assert.equal(s.state, 'unsubscribed');
    assert.equal(c.state, 'connected');
    // Raw: the reply is error 103 and the connection stays.
    const [ws] = await connectRaw(srv.wsUrl, tok({ sub: 'u1' }));
    const r = await ws.call({ id: 2, subscribe: { channel: 'prot:room' } });
    assert.equal(r.error?.code, 103, JSON.stringify(r));
    assert.equal(r.error.temporary, undefined);
    // The same connection may still subscribe where no token is needed.
    const r2 = await ws.call({ id: 3, subscribe: { channel: 'lobby' } });
    assert.ok(r2.subscribe, JSON.stringify(r2));
    assertOpen(ws, 'after 103');
    ws.close();
  });

  test('protected namespace: valid sub token -> subscribed, chan_info in presence', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u2', info: { c: 1 } }) });
    let asked = 0;
    const s = mkSub(c, 'prot:room', {
      token: tok({ sub: 'u2', channel: 'prot:room', info: { seat: 7 } }),
      getToken: async () => { asked++; return tok({ sub: 'u2', channel: 'prot:room', info: { seat: 7 } }); },
    });
    s.subscribe();
    const connected = nextEvent(c, 'connected');
    c.connect();
    const id = (await connected).client;
    await nextEvent(s, 'subscribed');
    const p = await s.presence();
    assert.deepEqual(Object.keys(p.clients), [id]);
    assert.deepEqual(info(p.clients[id]), { client: id, user: 'u2', connInfo: { c: 1 }, chanInfo: { seat: 7 } });
    assert.equal(asked, 0);
  });

  test('sub token for another channel: close 3500', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u3' }) });
    const s = mkSub(c, 'prot:a', { token: tok({ sub: 'u3', channel: 'prot:b' }) });
    s.subscribe();
    c.connect();
    await assertTerminal(c, 3500, 500, { wasConnected: true });
    assert.equal(events(s, 'subscribed').length, 0);
  });

  test('sub token for another user: close 3500', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u4' }) });
    const s = mkSub(c, 'prot:a', { token: tok({ sub: 'not-u4', channel: 'prot:a' }) });
    s.subscribe();
    c.connect();
    await assertTerminal(c, 3500, 500, { wasConnected: true });
    assert.equal(events(s, 'subscribed').length, 0);
  });

  test('sub token with a bad signature: error 103 (connection stays)', async () => {
    const [ws] = await connectRaw(srv.wsUrl, tok({ sub: 'u5' }));
    const r = await ws.call({ id: 2, subscribe: { channel: 'prot:a', token: hs256({ sub: 'u5', channel: 'prot:a' }, 'nope') } });
    assert.equal(r.error?.code, 103, JSON.stringify(r));
    const r2 = await ws.call({ id: 3, subscribe: { channel: 'prot:a', token: noneToken({ sub: 'u5', channel: 'prot:a' }) } });
    assert.equal(r2.error?.code, 103, JSON.stringify(r2));
    assertOpen(ws, 'after bad sub tokens');
    ws.close();
  });

  test('expired sub token: error 109, the client gets a new one with getToken and subscribes', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u6' }) });
    let asked = 0;
    const s = mkSub(c, 'prot:exp', {
      token: tok({ sub: 'u6', channel: 'prot:exp', exp: nowS() - 5 }),
      getToken: async () => { asked++; return tok({ sub: 'u6', channel: 'prot:exp', exp: nowS() + 600, info: { v: 2 } }); },
    });
    s.subscribe();
    const subscribed = nextEvent(s, 'subscribed', 8000);
    c.connect();
    await subscribed;
    const errs = events(s, 'error');
    assert.equal(errs.length, 1, JSON.stringify(errs));
    assert.equal(errs[0].error.code, 109);
    assert.equal(asked, 1);
    assert.equal(c.W.opened, 1);
    const p = await s.presence();
    assert.deepEqual(Object.values(p.clients).map((x) => x.chanInfo), [{ v: 2 }]);
    // Raw: the reply is error 109.
    const [ws] = await connectRaw(srv.wsUrl, tok({ sub: 'u6' }));
    const r = await ws.call({ id: 2, subscribe: { channel: 'prot:exp', token: tok({ sub: 'u6', channel: 'prot:exp', exp: nowS() - 5 }) } });
    assert.equal(r.error?.code, 109, JSON.stringify(r));
    ws.close();
  });

  test('sub token with exp in 2 s, getToken gives fresh ones: still subscribed after 5 s', async () => {
    const c = mkClient(srv.wsUrl, { token: tok({ sub: 'u7' }) });
    let asked = 0;
    const s = mkSub(c, 'prot:long', {
      token: tok({ sub: 'u7', channel: 'prot:long', exp: nowS() + 2 }),
      getToken: async () => { asked++; return tok({ sub: 'u7', channel: 'prot:long', exp: nowS() + 2 }); },
    });
    s.subscribe();
    const subscribed = nextEvent(s, 'subscribed');
    c.connect();
    await subscribed;
    await sleep(5000);
    assert.equal(s.state, 'subscribed');
    assert.ok(asked >= 1, `getToken called ${asked} times`);
    assert.equal(events(s, 'subscribed').length, 1, JSON.stringify(s.log));
    assert.equal(events(s, 'subscribing').length, 1);
    assert.deepEqual(events(s, 'error'), []);
    assert.equal(c.W.opened, 1);
  });
});

// ---------------------------------------------------------------------------
// Connection expiry without refresh
// ---------------------------------------------------------------------------

describe('connection expiry (expired_close_delay_ms 500)', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        // Frequent pings (no pongs needed) wake the connection's timer often.
        client: { token_hmac_secret_key: SECRET, expired_close_delay_ms: 500, ping_interval_ms: 150, pong_timeout_ms: 0 },
        channel: { namespaces: [{ name: 'prot', protected: true }] },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('no refresh: closed 3005 at exp + 500 ms; a refreshed connection stays', async () => {
    const exp = nowS() + 2;
    const [ws, rep] = await connectRaw(srv.wsUrl, hs256({ sub: 'x', exp }, SECRET));
    assert.equal(rep.connect.expires, true);
    assert.ok(rep.connect.ttl >= 1 && rep.connect.ttl <= 2, JSON.stringify(rep));
    const [ws2] = await connectRaw(srv.wsUrl, hs256({ sub: 'x', exp }, SECRET));
    const r = await ws2.call({ id: 2, refresh: { token: hs256({ sub: 'x', exp: nowS() + 60 }, SECRET) } });
    assert.equal(r.refresh?.expires, true, JSON.stringify(r));
    const cl = await closeOf(ws, 6000);
    assert.equal(cl.code, 3005);
    const due = exp * 1000 + 500;
    assert.ok(cl.at >= due - 50, `closed ${due - cl.at} ms before exp + delay`);
    assert.ok(cl.at <= due + 400, `closed ${cl.at - due} ms after exp + delay`);
    await sleep(300);
    assertOpen(ws2, 'refreshed connection');
    ws2.close();
  });

  test('sub token not refreshed: unsubscribe push 2501 at exp + 500 ms; connection stays', async () => {
    const [ws] = await connectRaw(srv.wsUrl, hs256({ sub: 'y' }, SECRET));
    const exp = nowS() + 2;
    const r = await ws.call({ id: 2, subscribe: { channel: 'prot:a', token: hs256({ sub: 'y', channel: 'prot:a', exp }, SECRET) } });
    assert.equal(r.subscribe?.expires, true, JSON.stringify(r));
    assert.ok(r.subscribe.ttl >= 1 && r.subscribe.ttl <= 2, JSON.stringify(r));
    const u = await ws.waitEntry((m) => m.push?.unsubscribe, 6000);
    assert.deepEqual(u.msg.push, { channel: 'prot:a', unsubscribe: { code: 2501, reason: 'subscription expired' } });
    const due = exp * 1000 + 500;
    assert.ok(u.at >= due - 50, `unsubscribed ${due - u.at} ms before exp + delay`);
    assert.ok(u.at <= due + 400, `unsubscribed ${u.at - due} ms after exp + delay`);
    assertOpen(ws, 'after subscription expiry');
    // The channel is free again: a new token subscribes.
    const r2 = await ws.call({ id: 3, subscribe: { channel: 'prot:a', token: hs256({ sub: 'y', channel: 'prot:a' }, SECRET) } });
    assert.ok(r2.subscribe, JSON.stringify(r2));
    ws.close();
  });
});

// ---------------------------------------------------------------------------
// RSA and ECDSA keys, algorithm confusion
// ---------------------------------------------------------------------------

describe('RS256 (server has only the RSA key)', () => {
  let srv;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: { token_rsa_public_key: tempFile('rsa.pem', pem) },
        channel: { options: { allow_subscribe_for_client: true, presence: true, allow_presence_for_subscriber: true } },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('RS256 connect: sub and info', async () => {
    const c = mkClient(srv.wsUrl, { token: rs256({ sub: 'rsa-user', info: { k: 'rsa' } }, privateKey) });
    const s = mkSub(c, 'lobby');
    s.subscribe();
    const connected = nextEvent(c, 'connected');
    c.connect();
    const id = (await connected).client;
    await nextEvent(s, 'subscribed');
    const p = await s.presence();
    assert.deepEqual(info(p.clients[id]), { client: id, user: 'rsa-user', connInfo: { k: 'rsa' } });
    for (const alg of ['RS384', 'RS512']) {
      const [ws, r] = await connectRaw(srv.wsUrl, signJwt({ sub: 'u' }, alg, privateKey));
      assert.ok(r.connect?.client, alg + ' ' + JSON.stringify(r));
      ws.close();
    }
  });

  test('algorithm confusion: HS256 signed with the RSA public PEM as secret: 3500', async () => {
    const variants = [pem, pem.trim(), Buffer.from(pem)];
    for (const secret of variants) {
      const c = mkClient(srv.wsUrl, { token: hs256({ sub: 'attacker' }, secret) });
      c.connect();
      await assertTerminal(c, 3500, 100);
    }
  });

  test('RS256 from another key, HS256 with no HMAC key, ES256 with no EC key: 3500', async () => {
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const t of [rs256({ sub: 'u' }, other), hs256({ sub: 'u' }, SECRET), es256({ sub: 'u' }, ec),
      signJwt({ sub: 'u' }, 'RS256', privateKey, { alg: 'rs256' })]) {
      const ws = await jsonWs(srv.wsUrl);
      ws.cmd({ id: 1, connect: { token: t } });
      assert.equal((await closeOf(ws)).code, 3500, t);
    }
  });
});

describe('ES256 (server has only the ECDSA key)', () => {
  let srv;
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: { token_ecdsa_public_key: tempFile('ec.pem', pem) },
        channel: { options: { allow_subscribe_for_client: true, presence: true, allow_presence_for_subscriber: true } },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('ES256 connect: sub and info', async () => {
    const c = mkClient(srv.wsUrl, { token: es256({ sub: 'ec-user', info: { k: 'ec' } }, privateKey) });
    const s = mkSub(c, 'lobby');
    s.subscribe();
    const connected = nextEvent(c, 'connected');
    c.connect();
    const id = (await connected).client;
    await nextEvent(s, 'subscribed');
    const p = await s.presence();
    assert.deepEqual(info(p.clients[id]), { client: id, user: 'ec-user', connInfo: { k: 'ec' } });
  });

  test('HS256 signed with the EC public PEM, ES256 from another key: 3500', async () => {
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const t of [hs256({ sub: 'u' }, pem), es256({ sub: 'u' }, other)]) {
      const ws = await jsonWs(srv.wsUrl);
      ws.cmd({ id: 1, connect: { token: t } });
      assert.equal((await closeOf(ws)).code, 3500, t);
    }
  });
});

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

describe('limits: channels, user connections, command rate', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: {
          token_hmac_secret_key: SECRET,
          allow_anonymous_connect_without_token: true,
          channel_limit: 2,
          user_connection_limit: 1,
          command_rate_limit: 5,
          command_rate_burst: 5,
          rate_limit_close_after: 10,
        },
        channel: { options: { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true } },
      },
    });
  });
  after(async () => { await srv.stop(); });

  test('channel_limit 2: third subscribe gets error 106; a freed slot can be used', async () => {
    const c = mkClient(srv.wsUrl);
    const subs = ['a', 'b', 'c'].map((ch) => mkSub(c, ch));
    for (const s of subs) s.subscribe();
    const third = nextEvent(subs[2], 'unsubscribed');
    c.connect();
    await nextEvent(subs[0], 'subscribed').catch(() => {});
    const u = await third;
    assert.equal(u.code, 106);
    assert.equal(subs[0].state, 'subscribed');
    assert.equal(subs[1].state, 'subscribed');
    subs[0].unsubscribe();
    await sleep(100);
    const ok = nextEvent(subs[2], 'subscribed');
    subs[2].subscribe();
    await ok;
    assert.equal(c.state, 'connected');
  });

  test('user_connection_limit 1: second connection of the user gets error 106 on connect', async () => {
    const a = mkClient(srv.wsUrl, { token: hs256({ sub: 'solo' }, SECRET) });
    const aConn = nextEvent(a, 'connected');
    a.connect();
    await aConn;
    const b = mkClient(srv.wsUrl, { token: hs256({ sub: 'solo' }, SECRET) });
    b.connect();
    await assertTerminal(b, 106, 300);
    const errs = events(b, 'error');
    assert.equal(errs.length, 0, 'a non-temporary connect error is final: ' + JSON.stringify(errs));
    assert.equal(a.state, 'connected');
    // Raw: the reply is error 106, and again for a connect retried on the
    // same socket (each with conn info, which must not leak: ASan build).
    const ws = await jsonWs(srv.wsUrl);
    for (let id = 1; id <= 3; id++) {
      const r = await ws.call({ id, connect: { token: hs256({ sub: 'solo', info: { try: id } }, SECRET) } });
      assert.equal(r.error?.code, 106, JSON.stringify(r));
    }
    // Another user, and anonymous connections, are not limited.
    const [o1] = await connectRaw(srv.wsUrl, hs256({ sub: 'other' }, SECRET));
    const [an1, r1] = await connectRaw(srv.wsUrl);
    const [an2, r2] = await connectRaw(srv.wsUrl);
    assert.ok(r1.connect && r2.connect, JSON.stringify([r1, r2]));
    o1.close(); an1.close(); an2.close();
    // Once the first connection is gone the user may connect again: on the
    // refused socket, but then no third one.
    a.disconnect();
    await sleep(200);
    const r3 = await ws.call({ id: 4, connect: { token: hs256({ sub: 'solo' }, SECRET) } });
    assert.ok(r3.connect?.client, JSON.stringify(r3));
    const w4 = await jsonWs(srv.wsUrl);
    const r4 = await w4.call({ id: 1, connect: { token: hs256({ sub: 'solo' }, SECRET) } });
    assert.equal(r4.error?.code, 106, JSON.stringify(r4));
    ws.close(); w4.close();
  });

  // Odd ids rpc plaza.time, even ids publish to lobby (no publish permission:
  // 103). Both count against the rate limit.
  const burst = (from, n) => Array.from({ length: n }, (_, i) => {
    const id = from + i;
    return id % 2 ? { id, rpc: { method: 'plaza.time', data: {} } } : { id, publish: { channel: 'lobby', data: { i: id } } };
  });

  test('rate limit 5/s burst 5: a burst of 12 in one frame -> 5 answered, 7 x error 111; refills', async () => {
    const [ws] = await connectRaw(srv.wsUrl);
    ws.cmd(...burst(10, 12));
    await ws.reply(21);
    const replies = ws.log.map((x) => x.msg).filter((m) => m.id >= 10);
    assert.equal(replies.length, 12);
    assert.deepEqual(replies.map((m) => m.id), Array.from({ length: 12 }, (_, i) => 10 + i));
    for (const m of replies.slice(0, 5)) {
      if (m.id % 2) assert.ok(m.rpc?.data?.time > 0, JSON.stringify(m));
      else assert.equal(m.error?.code, 103, JSON.stringify(m));
    }
    for (const m of replies.slice(5))
      assert.deepEqual(m.error && { code: m.error.code, temporary: m.error.temporary }, { code: 111, temporary: true }, JSON.stringify(m));
    await sleep(1100);   // 5 tokens back
    ws.cmd(...burst(31, 5));
    await ws.reply(35);
    const later = ws.log.map((x) => x.msg).filter((m) => m.id >= 31);
    assert.equal(later.filter((m) => m.error?.code === 111).length, 0, JSON.stringify(later));
    assertOpen(ws, 'after refill');
    ws.close();
  });

  test('rate_limit_close_after 10: a flood of 20 -> 5 answered, 9 x 111, then close 3013', async () => {
    const [ws] = await connectRaw(srv.wsUrl);
    ws.cmd(...burst(100, 20));
    const cl = await closeOf(ws);
    assert.equal(cl.code, 3013);
    const replies = ws.log.map((x) => x.msg).filter((m) => m.id >= 100);
    assert.deepEqual(replies.map((m) => m.id), Array.from({ length: 14 }, (_, i) => 100 + i));
    assert.equal(replies.filter((m) => m.error?.code === 111).length, 9);
    assert.equal(replies.slice(0, 5).filter((m) => m.error?.code === 111).length, 0);
  });

  test('sustained flood over several frames closes 3013 too', async () => {
    const [ws] = await connectRaw(srv.wsUrl);
    let id = 1000;
    for (let i = 0; i < 40 && !ws.closeInfo; i++) {
      ws.cmd({ id: id++, rpc: { method: 'plaza.time', data: {} } });
      await sleep(5);
    }
    const cl = await closeOf(ws);
    assert.equal(cl.code, 3013);
    // 9 in a row before the close; more if a token refilled in between.
    const n111 = ws.log.filter((x) => x.msg.error?.code === 111).length;
    assert.ok(n111 >= 9, `${n111} x 111`);
  });
});

describe('limits: connection_limit_per_ip 2', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: { client: { allow_anonymous_connect_without_token: true, connection_limit_per_ip: 2 } },
    });
  });
  after(async () => { await srv.stop(); });

  test('third socket from the address is closed 3504; a closed one frees a slot', async () => {
    const [a, ra] = await connectRaw(srv.wsUrl);
    const b = await jsonWs(srv.wsUrl);          // counts even before connect
    assert.ok(ra.connect);
    const c = await jsonWs(srv.wsUrl);
    c.cmd({ id: 1, connect: {} });
    const cl = await closeOf(c);
    assert.equal(cl.code, 3504);
    assert.equal(c.log.length, 0);
    // The centrifuge client treats 3504 as terminal.
    const cc = mkClient(srv.wsUrl);
    cc.connect();
    await assertTerminal(cc, 3504, 300);
    a.close();
    await closeOf(a);
    await sleep(100);
    const [d, rd] = await connectRaw(srv.wsUrl);
    assert.ok(rd.connect?.client, JSON.stringify(rd));
    assertOpen(b, 'second socket');
    b.close(); d.close();
  });
});

// ---------------------------------------------------------------------------
// Protocol violations and stale connections (raw frames)
// ---------------------------------------------------------------------------

describe('protocol violations', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: {
        client: { allow_anonymous_connect_without_token: true, stale_close_delay_ms: 400 },
        channel: { options: { allow_subscribe_for_anonymous: true } },
      },
    });
  });
  after(async () => { await srv.stop(); });

  const text = (obj) => frame(OP.TEXT, typeof obj === 'string' ? obj : JSON.stringify(obj));
  // The server's Close frame, answered with ours so the server closes TCP
  // at once (it waits for the peer's Close otherwise).
  const closeFrame = async (c, ms = 5000) => {
    const f = await c.waitFor((x) => x.opcode === OP.CLOSE, ms);
    assert.ok(f, 'no Close frame before the TCP close');
    c.send(frame(OP.CLOSE, closePayload(f.code)));
    await withTimeout(c.closed, ms, 'TCP close after Close frame');
    return f;
  };
  const texts = (c) => c.frames.filter((f) => f.opcode === OP.TEXT).map((f) => f.payload.toString());

  test('a command before connect: close 3501', async () => {
    const c = await rawWs(srv.port);
    c.send(text({ id: 1, subscribe: { channel: 'lobby' } }));
    const f = await closeFrame(c);
    assert.equal(f.code, 3501);
    assert.deepEqual(texts(c), []);
  });

  test('garbage JSON: close 3501 (before and after connect)', async () => {
    const c = await rawWs(srv.port);
    c.send(text('{"id":1,"connect":{}'));
    assert.equal((await closeFrame(c)).code, 3501);
    assert.deepEqual(texts(c), []);
    const d = await rawWs(srv.port);
    d.send(text({ id: 1, connect: {} }));
    await d.waitFor((x) => x.opcode === OP.TEXT);
    d.send(text('not json at all'));
    assert.equal((await closeFrame(d)).code, 3501);
    assert.equal(texts(d).length, 1);
  });

  test('a second connect: close 3501', async () => {
    const c = await rawWs(srv.port);
    c.send(text({ id: 1, connect: {} }));
    await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(JSON.parse(texts(c)[0]).connect.client);
    c.send(text({ id: 2, connect: {} }));
    assert.equal((await closeFrame(c)).code, 3501);
    assert.equal(texts(c).length, 1);
  });

  test('a second connect in the same frame: close 3501', async () => {
    const c = await rawWs(srv.port);
    c.send(text(JSON.stringify({ id: 1, connect: {} }) + '\n' + JSON.stringify({ id: 2, connect: {} })));
    assert.equal((await closeFrame(c)).code, 3501);
  });

  test('a binary frame: close 3501', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.BIN, JSON.stringify({ id: 1, connect: {} })));
    assert.equal((await closeFrame(c)).code, 3501);
    assert.deepEqual(texts(c), []);
    const d = await rawWs(srv.port);
    d.send(text({ id: 1, connect: {} }));
    await d.waitFor((x) => x.opcode === OP.TEXT);
    d.send(frame(OP.BIN, JSON.stringify({ id: 2, rpc: { method: 'plaza.time' } })));
    assert.equal((await closeFrame(d)).code, 3501);
    assert.equal(texts(d).length, 1);
  });

  test('stale: no connect within stale_close_delay_ms (400): close 3502; a connected socket stays', async () => {
    const t0 = Date.now();
    const c = await rawWs(srv.port);
    const d = await rawWs(srv.port);
    d.send(text({ id: 1, connect: {} }));
    const f = await closeFrame(c, 3000);
    const took = Date.now() - t0;
    assert.equal(f.code, 3502);
    assert.ok(took >= 350 && took < 1500, `closed after ${took} ms`);
    await sleep(600);
    assert.equal(d.isClosed(), false);
    assert.equal(d.frames.filter((x) => x.opcode === OP.CLOSE).length, 0);
    d.sock.destroy();
  });

  test('a connected centrifuge client is not closed as stale', async () => {
    const c = mkClient(srv.wsUrl);
    const connected = nextEvent(c, 'connected');
    c.connect();
    await connected;
    await sleep(700);
    assert.equal(c.state, 'connected');
    assert.equal(c.W.opened, 1);
  });
});

// ---------------------------------------------------------------------------
// Pings
// ---------------------------------------------------------------------------

describe('pings (ping_interval_ms 1000, pong_timeout_ms 500)', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: { client: { allow_anonymous_connect_without_token: true, ping_interval_ms: 1000, pong_timeout_ms: 500 } },
    });
  });
  after(async () => { await srv.stop(); });

  const isPing = (m) => Object.keys(m).length === 0;

  test('raw client gets {} pings; not answering: close 3012 after the pong timeout', async () => {
    const t0 = Date.now();
    const [ws, rep] = await connectRaw(srv.wsUrl);
    assert.equal(rep.connect.ping, 1);
    assert.equal(rep.connect.pong, true);
    const ping = await ws.waitEntry(isPing, 2000);
    assert.ok(ping.at - t0 <= 1200, `first ping after ${ping.at - t0} ms`);
    assert.ok(ws.texts.includes('{}'), 'a ping is exactly {}');
    const cl = await closeOf(ws, 3000);
    assert.equal(cl.code, 3012);
    const wait = cl.at - ping.at;
    assert.ok(wait >= 400 && wait <= 900, `closed ${wait} ms after the ping`);
  });

  test('raw client answering pongs stays connected', async () => {
    const [ws] = await connectRaw(srv.wsUrl);
    let pings = 0;
    ws.on('message', (d) => { if (String(d) === '{}') { pings++; ws.send('{}'); } });
    await sleep(2600);
    assertOpen(ws, 'answering client');
    assert.ok(pings >= 2, `${pings} pings`);
    const r = await ws.call({ id: 2, rpc: { method: 'plaza.time', data: {} } });
    assert.ok(r.rpc.data.time > 0);
    ws.close();
  });

  test('centrifuge client answers pings and stays connected', async () => {
    const c = mkClient(srv.wsUrl);
    const connected = nextEvent(c, 'connected');
    c.connect();
    const id = (await connected).client;
    assert.equal(c._serverPing, 1000);   // connect reply ping:1 (in ms here)
    await sleep(2600);
    assert.equal(c.state, 'connected');
    assert.equal(c._client, id);
    assert.equal(c.W.opened, 1);
    assert.ok(c.W.pings >= 2, `${c.W.pings} pings`);
    assert.ok(c.W.pongs >= 2, `${c.W.pongs} pongs`);
    assert.equal(events(c, 'disconnected').length, 0);
  });
});

describe('pings with pong_timeout_ms 0', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({
      noEcho: true,
      config: { client: { allow_anonymous_connect_without_token: true, ping_interval_ms: 1000, pong_timeout_ms: 0 } },
    });
  });
  after(async () => { await srv.stop(); });

  test('connect reply pong:false; a client that never answers stays', async () => {
    const [ws, rep] = await connectRaw(srv.wsUrl);
    assert.equal(rep.connect.ping, 1);
    assert.equal(rep.connect.pong, false);
    await sleep(2200);
    assertOpen(ws, 'no pongs required');
    assert.ok(ws.log.filter((x) => Object.keys(x.msg).length === 0).length >= 2);
    ws.close();
  });
});
