// Channels over the Centrifugo client protocol (protocol.md part A), against
// the real binary: publish permissions and errors, publication fields
// (offset, info, time), presence with multi-tab users and join/leave,
// history queries, recovery (complete, trimmed, stale epoch, flag bit 2),
// the subscribe-reply-before-pushes ordering under a publication storm,
// every server API method, and RPC / token `channels` server-side subs.
// Real client: npm `centrifuge` 5.8 on npm `ws`; exact wire checks use a
// raw protocol client (npm `ws` speaking JSON commands by hand).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { engineDelayed, startPlaza } from './lib/server.mjs';
import { sleep, withTimeout } from './lib/raw.mjs';
import { signJwt } from './lib/jwt.mjs';
import { rawClient } from './lib/proto.mjs';

const SECRET = 'proto-channels-test-secret-0123456789abcdef';
const API_KEY = 'proto-channels-api-key';

// ---------------------------------------------------------------- helpers

const jwt = (claims) => signJwt(claims, 'HS256', SECRET);
const userToken = (sub, extra = {}) => jwt({ sub, exp: Math.floor(Date.now() / 1000) + 3600, ...extra });

const allowSub = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true,
  // anonymous clients (most tests connect without a token) pass the for_client /
  // for_subscriber rules of the namespaces that set them
  allow_publish_for_anonymous: true, allow_presence_for_anonymous: true, allow_history_for_anonymous: true };
const CONFIG = {
  workers: 2,
  client: {
    allow_anonymous_connect_without_token: true,
    token_hmac_secret_key: SECRET,
    command_rate_limit: 0,
    recovery_max_publications: 1000000,
  },
  api: { key: API_KEY },
  channel: {
    options: { ...allowSub },                       // top level: subscribe only
    namespaces: [
      { name: 'chat', ...allowSub, presence: true, join_leave: true, history_size: 100,
        allow_publish_for_subscriber: true, allow_presence_for_subscriber: true,
        allow_history_for_subscriber: true },
      { name: 'ro', ...allowSub, history_size: 10 },                 // no client publish
      { name: 'rec', ...allowSub, history_size: 1000, allow_history_for_subscriber: true },
      { name: 'small', ...allowSub, history_size: 10 },
      { name: 'fast', ...allowSub, history_size: 1000000, allow_publish_for_client: true },
      { name: 'nohist', ...allowSub, allow_history_for_subscriber: true,
        allow_publish_for_subscriber: true, presence: false },
    ],
  },
};

let srv;

// POST /api/<method>; returns { status, body (parsed JSON or text) }.
async function api(method, params, { key = API_KEY, raw, httpMethod = 'POST', headers = {} } = {}) {
  const h = { 'Content-Type': 'application/json', ...headers };
  if (key !== null) h['X-API-Key'] = key;
  // channels and info describe the node asked: with two nodes on Redis
  // (E2E_ENGINE=redis) that is the one holding the test's connections
  const base = (method === 'channels' || method === 'info') && srv.localUrl ? srv.localUrl : srv.url;
  const res = await fetch(`${base}/api/${method}`, {
    method: httpMethod, headers: h,
    body: httpMethod === 'GET' ? undefined : (raw ?? JSON.stringify(params ?? {})),
  });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}
// API call that must succeed; returns its result.
async function apiOk(method, params) {
  const r = await api(method, params);
  assert.equal(r.status, 200, `${method}: HTTP ${r.status}`);
  assert.ok(r.body.result, `${method}: ${JSON.stringify(r.body)}`);
  return r.body.result;
}

// A raw protocol client (lib/proto.mjs): JSON commands by hand, every
// reply and push recorded in arrival order, pings answered.
const raw = ({ token, connect = true, url = srv.wsUrl } = {}) => rawClient(url, { token, connect });

// centrifuge-js client on npm ws.
function centrifuge(opts = {}) {
  const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, minReconnectDelay: 500, maxReconnectDelay: 1000, ...opts });
  c.on('error', () => {});
  return c;
}
async function connected(opts) {
  const c = centrifuge(opts);
  const id = new Promise((r) => c.once('connected', (ctx) => r(ctx.client)));
  c.connect();
  await c.ready(5000);
  c.clientId = await id;
  return c;
}
// Subscription recording its publications and subscribed contexts.
async function subscribed(c, channel, opts = {}) {
  const s = c.newSubscription(channel, opts);
  s.pubs = [];
  s.ctxs = [];
  s.on('publication', (ctx) => s.pubs.push(ctx));
  s.on('subscribed', (ctx) => s.ctxs.push(ctx));
  s.on('error', () => {});
  s.subscribe();
  await s.ready(5000);
  return s;
}
async function until(cond, ms = 5000, what = 'condition') {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(10);
  }
}
const closeOf = (c, ms = 5000) => withTimeout(c.closed, ms, 'close');
const closeAll = (...cs) => { for (const c of cs) { try { c.disconnect ? c.disconnect() : c.ws.close(); } catch { /* gone */ } } };

before(async () => { srv = await startPlaza({ noEcho: true, config: CONFIG }); });
after(async () => { await srv.stop(); });

// ------------------------------------------------------- subscribe/publish

describe('subscribe and publish', () => {
  test('client publish reaches every subscriber with offset, publisher info and time', async () => {
    const a = await connected({ token: userToken('alice') });
    const b = await connected({ token: userToken('bob') });
    const anon = await connected();
    const sa = await subscribed(a, 'chat:pub');
    const sb = await subscribed(b, 'chat:pub');
    const sn = await subscribed(anon, 'chat:pub');
    const r = await raw();
    const sr = await r.cmd({ subscribe: { channel: 'chat:pub', recoverable: true, positioned: true } });
    assert.equal(sr.subscribe.offset ?? 0, 0);
    const t0 = Date.now();
    await sa.publish({ text: 'hi', n: 1 });
    await sb.publish({ text: 'yo', n: 2 });
    for (const s of [sa, sb, sn]) await until(() => s.pubs.length === 2, 5000, 'two publications');
    const t1 = Date.now();
    for (const s of [sa, sb, sn]) {
      assert.deepEqual(s.pubs.map((p) => p.data), [{ text: 'hi', n: 1 }, { text: 'yo', n: 2 }]);
      assert.deepEqual(s.pubs.map((p) => p.offset), [1, 2]);
      assert.deepEqual(s.pubs[0].info, { user: 'alice', client: a.clientId });
      assert.deepEqual(s.pubs[1].info, { user: 'bob', client: b.clientId });
    }
    // Wire: the pub push carries offset, info and the server time in ms.
    await r.waitFor((m) => m.push?.pub?.offset === 2);
    const pubs = r.pushes('chat:pub', 'pub');
    assert.equal(pubs.length, 2);
    assert.deepEqual(pubs[0].info, { user: 'alice', client: a.clientId });
    for (const p of pubs) {
      assert.equal(typeof p.time, 'number', 'pub.time: ' + JSON.stringify(p));
      assert.ok(p.time >= t0 - 1000 && p.time <= t1 + 1000, `time ${p.time} not in [${t0}, ${t1}]`);
    }
    closeAll(a, b, anon, r);
  });

  test('publish errors: not allowed 103, unknown namespace 102, invalid name 107', async () => {
    const r = await raw({ token: userToken('errs') });
    const sub = await r.cmd({ subscribe: { channel: 'ro:x' } });
    assert.deepEqual(sub.subscribe, {});
    const err = async (channel) => (await r.cmd({ publish: { channel, data: { a: 1 } } })).error;
    assert.equal((await err('ro:x')).code, 103);                   // subscribed, no permission
    assert.equal((await err('lobby')).code, 103);                  // top level: no publish
    assert.equal((await err('chat:notsubscribed')).code, 103);     // subscriber-only permission
    assert.equal((await err('nope:x')).code, 102);                 // unknown namespace
    assert.equal((await err(':x')).code, 102);                     // empty namespace
    assert.equal((await err('bad channel')).code, 107);            // space
    assert.equal((await err('bad\u00e9')).code, 107);              // not ASCII
    assert.equal((await err('x'.repeat(256))).code, 107);          // longer than max_length
    assert.deepEqual(await err('ro:x'), { code: 103, message: 'permission denied' });
    // subscribe errors for the same names
    assert.equal((await r.cmd({ subscribe: { channel: 'nope:x' } })).error.code, 102);
    assert.equal((await r.cmd({ subscribe: { channel: 'bad channel' } })).error.code, 107);
    assert.equal((await r.cmd({ subscribe: { channel: 'ro:x' } })).error.code, 105);
    // nothing was published to ro:x
    const h = await apiOk('history', { channel: 'ro:x', limit: -1 });
    assert.deepEqual(h.publications, []);
    assert.equal(h.offset, 0);
    // the real client sees the same codes
    const c = await connected({ token: userToken('errs2') });
    await assert.rejects(c.publish('nope:x', { a: 1 }), (e) => e.code === 102);
    await assert.rejects(c.publish('lobby', { a: 1 }), (e) => e.code === 103);
    closeAll(r, c);
  });

  test('API publish reaches subscribers; result has offset and epoch', async () => {
    const r = await raw();
    const sr = await r.cmd({ subscribe: { channel: 'rec:api', recoverable: true, positioned: true } });
    const epoch = sr.subscribe.epoch;
    assert.equal(typeof epoch, 'string');
    assert.ok(epoch.length > 0);
    const c = await connected();
    const s = await subscribed(c, 'rec:api', { recoverable: true, positioned: true });
    const t0 = Date.now();
    const res1 = await apiOk('publish', { channel: 'rec:api', data: { n: 1 } });
    const res2 = await apiOk('publish', { channel: 'rec:api', data: { n: 2 } });
    assert.deepEqual(res1, { offset: 1, epoch });
    assert.deepEqual(res2, { offset: 2, epoch });
    await r.waitFor((m) => m.push?.pub?.offset === 2);
    const pubs = r.pushes('rec:api', 'pub');
    assert.deepEqual(pubs.map((p) => [p.data, p.offset, p.info]), [[{ n: 1 }, 1, undefined], [{ n: 2 }, 2, undefined]]);
    for (const p of pubs) assert.ok(p.time >= t0 - 1000 && p.time <= Date.now() + 1000, 'time ' + p.time);
    await until(() => s.pubs.length === 2);
    assert.deepEqual(s.pubs.map((p) => [p.data, p.offset]), [[{ n: 1 }, 1], [{ n: 2 }, 2]]);
    // a channel without history: no offset/epoch, the push still has time
    const r2 = await raw();
    await r2.cmd({ subscribe: { channel: 'nohist:p' } });
    const res3 = await apiOk('publish', { channel: 'nohist:p', data: 'plain' });
    assert.deepEqual(res3, {});
    const p = (await r2.waitFor((m) => m.push?.channel === 'nohist:p')).push.pub;
    assert.equal(p.data, 'plain');
    assert.equal(p.offset, undefined);
    assert.equal(typeof p.time, 'number');
    closeAll(r, r2, c);
  });
});

// ----------------------------------------------------------------- presence

describe('presence', () => {
  test('two users, one in two tabs: stats, presence list, join and leave pushes', async () => {
    const ch = 'chat:room';
    const a1 = await connected({ token: userToken('alice') });
    const a2 = await connected({ token: userToken('alice') });
    const b = await connected({ token: userToken('bob') });
    const s1 = await subscribed(a1, ch);
    const s2 = await subscribed(a2, ch);
    const sb = await subscribed(b, ch);
    assert.deepEqual(await s1.presenceStats(), { numUsers: 2, numClients: 3 });
    const pres = await sb.presence();
    assert.deepEqual(pres.clients, {
      [a1.clientId]: { user: 'alice', client: a1.clientId },
      [a2.clientId]: { user: 'alice', client: a2.clientId },
      [b.clientId]: { user: 'bob', client: b.clientId },
    });
    // server API agrees
    assert.deepEqual(await apiOk('presence_stats', { channel: ch }), { num_clients: 3, num_users: 2 });
    const ap = await apiOk('presence', { channel: ch });
    assert.deepEqual(Object.keys(ap.presence).sort(), [a1.clientId, a2.clientId, b.clientId].sort());
    assert.equal(ap.presence[b.clientId].user, 'bob');

    // observer with join_leave (user carol): sees joins and leaves
    const obs = await raw({ token: userToken('carol') });
    const so = await obs.cmd({ subscribe: { channel: ch, join_leave: true } });
    assert.ok(so.subscribe);
    await obs.waitFor((m) => m.push?.join?.info?.client === obs.client);  // its own join
    assert.deepEqual(await apiOk('presence_stats', { channel: ch }), { num_clients: 4, num_users: 3 });

    // a third alice tab joins, then closes cleanly
    const a3 = await connected({ token: userToken('alice') });
    await subscribed(a3, ch);
    const j = await obs.waitFor((m) => m.push?.join?.info?.client === a3.clientId);
    assert.deepEqual(j.push, { channel: ch, join: { info: { user: 'alice', client: a3.clientId } } });
    a3.disconnect();
    const l = await obs.waitFor((m) => m.push?.leave?.info?.client === a3.clientId, 2000);
    assert.deepEqual(l.push, { channel: ch, leave: { info: { user: 'alice', client: a3.clientId } } });

    // a tab that unsubscribes (connection stays): leave too
    const a4 = await connected({ token: userToken('alice') });
    const s4 = await subscribed(a4, ch);
    await obs.waitFor((m) => m.push?.join?.info?.client === a4.clientId);
    s4.unsubscribe();
    await obs.waitFor((m) => m.push?.leave?.info?.client === a4.clientId, 2000);
    a4.disconnect();

    // a raw bob tab whose socket dies without a Close frame
    const bt = await raw({ token: userToken('bob') });
    await bt.cmd({ subscribe: { channel: ch } });
    await obs.waitFor((m) => m.push?.join?.info?.client === bt.client);
    assert.deepEqual(await apiOk('presence_stats', { channel: ch }), { num_clients: 5, num_users: 3 });
    const t0 = Date.now();
    bt.kill();
    const l2 = await obs.waitFor((m) => m.push?.leave?.info?.client === bt.client, 2000);
    assert.ok(Date.now() - t0 < 1000, `leave after ${Date.now() - t0} ms`);
    assert.deepEqual(l2.push.leave.info, { user: 'bob', client: bt.client });
    assert.deepEqual(await apiOk('presence_stats', { channel: ch }), { num_clients: 4, num_users: 3 });

    // alice's first tab leaves: alice is still there through a2
    a1.disconnect();
    await obs.waitFor((m) => m.push?.leave?.info?.client === a1.clientId, 2000);
    assert.deepEqual(await s2.presenceStats(), { numUsers: 3, numClients: 3 });
    const left = Object.values((await s2.presence()).clients).map((i) => i.user).sort();
    assert.deepEqual(left, ['alice', 'bob', 'carol']);
    // exactly one join and one leave per client seen by the observer
    const joins = obs.pushes(ch, 'join').map((x) => x.info.client);
    const leaves = obs.pushes(ch, 'leave').map((x) => x.info.client);
    assert.deepEqual(joins, [obs.client, a3.clientId, a4.clientId, bt.client]);
    assert.deepEqual(leaves, [a3.clientId, a4.clientId, bt.client, a1.clientId]);
    closeAll(a2, b, obs);
  });

  test('presence on a channel without presence: 108', async () => {
    const r = await raw();
    await r.cmd({ subscribe: { channel: 'nohist:pr' } });
    assert.equal((await r.cmd({ presence: { channel: 'nohist:pr' } })).error.code, 108);
    assert.equal((await r.cmd({ presence_stats: { channel: 'nohist:pr' } })).error.code, 108);
    assert.equal((await api('presence', { channel: 'nohist:pr' })).body.error.code, 108);
    closeAll(r);
  });
});

// ------------------------------------------------------------------ history

describe('history', () => {
  test('limit, since, reverse, wrong epoch 112, no history 108', async () => {
    const ch = 'chat:hist';
    const r = await raw();
    await r.cmd({ subscribe: { channel: ch } });
    const t0 = Date.now();
    let epoch;
    for (let i = 1; i <= 5; i++) epoch = (await apiOk('publish', { channel: ch, data: { i } })).epoch;
    const hist = async (h) => (await r.cmd({ history: { channel: ch, ...h } }));
    const offs = (res) => (res.history.publications || []).map((p) => p.offset);
    // limit 0 / omitted: only the top
    const top = await hist({});
    assert.deepEqual(top.history, { epoch, offset: 5 });
    assert.deepEqual(offs(await hist({ limit: 2 })), [1, 2]);
    assert.deepEqual(offs(await hist({ limit: -1 })), [1, 2, 3, 4, 5]);
    assert.deepEqual(offs(await hist({ limit: 2, reverse: true })), [5, 4]);
    assert.deepEqual(offs(await hist({ limit: -1, since: { offset: 2, epoch } })), [3, 4, 5]);
    assert.deepEqual(offs(await hist({ limit: 2, since: { offset: 2, epoch } })), [3, 4]);
    assert.deepEqual(offs(await hist({ limit: -1, since: { offset: 4, epoch }, reverse: true })), [3, 2, 1]);
    assert.deepEqual(offs(await hist({ limit: 1, since: { offset: 4, epoch }, reverse: true })), [3]);
    assert.deepEqual(offs(await hist({ limit: -1, since: { offset: 5, epoch } })), []);
    const all = await hist({ limit: -1 });
    assert.equal(all.history.epoch, epoch);
    assert.equal(all.history.offset, 5);
    assert.deepEqual(all.history.publications.map((p) => p.data), [1, 2, 3, 4, 5].map((i) => ({ i })));
    for (const p of all.history.publications) {
      assert.equal(typeof p.time, 'number');
      assert.ok(p.time >= t0 - 1000 && p.time <= Date.now() + 1000);
    }
    const bad = await hist({ limit: -1, since: { offset: 2, epoch: 'notTheEpoch' } });
    assert.equal(bad.error.code, 112);
    // no history in the namespace
    await r.cmd({ subscribe: { channel: 'nohist:h' } });
    assert.equal((await r.cmd({ history: { channel: 'nohist:h', limit: -1 } })).error.code, 108);
    // not subscribed -> permission denied
    assert.equal((await r.cmd({ history: { channel: 'chat:other', limit: -1 } })).error.code, 103);
    // real client
    const c = await connected();
    const s = await subscribed(c, ch);
    const h = await s.history({ limit: 3, since: { offset: 1, epoch }, reverse: false });
    assert.deepEqual(h.publications.map((p) => p.offset), [2, 3, 4]);
    assert.equal(h.epoch, epoch);
    assert.equal(h.offset, 5);
    await assert.rejects(s.history({ limit: 1, since: { offset: 1, epoch: 'zzz' } }), (e) => e.code === 112);
    closeAll(r, c);
  });
});

// ----------------------------------------------------------------- recovery

// Cuts the real client's socket without a Close frame.
function cut(c) { c._transport._transport.terminate(); }

async function batchPublish(channel, from, n) {
  const commands = [];
  for (let i = from; i < from + n; i++) commands.push({ publish: { channel, data: { seq: i } } });
  const res = await apiOk('batch', { commands });
  assert.equal(res.replies.length, n);
  for (const rep of res.replies) assert.ok(rep.publish, JSON.stringify(rep));
  return res.replies;
}

describe('recovery', () => {
  test('reconnecting client recovers 100 missed publications in order, once', async () => {
    const ch = 'rec:hundred';
    const c = await connected();
    const s = await subscribed(c, ch, { recoverable: true, positioned: true });
    assert.equal(s.ctxs[0].wasRecovering, false);
    assert.equal(s.ctxs[0].recoverable, true);
    const epoch = s.ctxs[0].streamPosition.epoch;
    await batchPublish(ch, 1, 3);
    await until(() => s.pubs.length === 3);
    const connecting = new Promise((r) => c.once('connecting', r));
    cut(c);
    await withTimeout(connecting, 3000, 'client notices the cut');
    const replies = await batchPublish(ch, 4, 100);
    assert.deepEqual(replies.at(-1).publish, { offset: 103, epoch });
    await until(() => s.ctxs.length === 2, 8000, 'resubscribed');
    const ctx = s.ctxs[1];
    assert.equal(ctx.wasRecovering, true);
    assert.equal(ctx.recovered, true);
    assert.equal(ctx.hasRecoveredPublications, true);
    assert.deepEqual(ctx.streamPosition, { offset: 3, epoch });
    await until(() => s.pubs.length >= 103, 5000, '103 publications');
    await apiOk('publish', { channel: ch, data: { seq: 104 } });
    await until(() => s.pubs.length >= 104, 5000, 'live publication');
    await sleep(100);
    assert.equal(s.pubs.length, 104);
    assert.deepEqual(s.pubs.map((p) => p.offset), Array.from({ length: 104 }, (_, i) => i + 1));
    assert.deepEqual(s.pubs.map((p) => p.data.seq), Array.from({ length: 104 }, (_, i) => i + 1));
    c.disconnect();
  });

  test('history trimmed while away: recovered=false, nothing replayed', async () => {
    const ch = 'small:trim';
    const c = await connected();
    const s = await subscribed(c, ch, { recoverable: true, positioned: true });
    const epoch = s.ctxs[0].streamPosition.epoch;
    await batchPublish(ch, 1, 2);
    await until(() => s.pubs.length === 2);
    const connecting = new Promise((r) => c.once('connecting', r));
    cut(c);
    await withTimeout(connecting, 3000, 'client notices the cut');
    await batchPublish(ch, 3, 50);                       // keeps 43..52
    await until(() => s.ctxs.length === 2, 8000, 'resubscribed');
    assert.equal(s.ctxs[1].wasRecovering, true);
    assert.equal(s.ctxs[1].recovered, false);
    assert.equal(s.ctxs[1].hasRecoveredPublications, false);
    assert.deepEqual(s.ctxs[1].streamPosition, { offset: 52, epoch });
    await apiOk('publish', { channel: ch, data: { seq: 53 } });
    await until(() => s.pubs.length === 3, 5000, 'live publication');
    await sleep(100);
    assert.deepEqual(s.pubs.map((p) => p.offset), [1, 2, 53]);
    c.disconnect();
  });

  test('raw resubscribe: stale epoch not recovered; flag bit 2 gives 112', async () => {
    const ch = 'rec:epoch';
    const r = await raw();
    const first = await r.cmd({ subscribe: { channel: ch, recoverable: true, positioned: true, flag: 1 } });
    const epoch = first.subscribe.epoch;
    assert.equal(first.subscribe.recoverable, true);
    assert.equal(first.subscribe.positioned, true);
    assert.equal(first.subscribe.was_recovering, undefined);
    await batchPublish(ch, 1, 3);
    await r.waitFor((m) => m.push?.pub?.offset === 3);
    assert.deepEqual(await r.cmd({ unsubscribe: { channel: ch } }), { id: r.nextId - 1, unsubscribe: {} });
    const sub = (extra) => r.cmd({ subscribe: { channel: ch, recoverable: true, positioned: true, recover: true, ...extra } });
    const unsub = () => r.cmd({ unsubscribe: { channel: ch } });

    // wrong epoch: not recovered, position = top, no publications
    const stale = (await sub({ offset: 1, epoch: 'staleEp1' })).subscribe;
    assert.equal(stale.was_recovering, true);
    assert.ok(!stale.recovered, JSON.stringify(stale));
    assert.equal(stale.epoch, epoch);
    assert.equal(stale.offset, 3);
    assert.ok(!stale.publications || stale.publications.length === 0);
    await unsub();
    // same offset, right epoch: recovered with 2..3
    const ok = (await sub({ offset: 1, epoch })).subscribe;
    assert.equal(ok.was_recovering, true);
    assert.equal(ok.recovered, true);
    assert.equal(ok.offset, 1);
    assert.deepEqual(ok.publications.map((p) => [p.offset, p.data.seq]), [[2, 2], [3, 3]]);
    for (const p of ok.publications) assert.equal(typeof p.time, 'number');
    await unsub();
    // no epoch in the request: not checked, offsets decide
    const noEpoch = (await sub({ offset: 2 })).subscribe;
    assert.equal(noEpoch.recovered, true);
    assert.equal(noEpoch.epoch, epoch);
    assert.deepEqual(noEpoch.publications.map((p) => p.offset), [3]);
    await unsub();
    // at the top: recovered, nothing to send
    const atTop = (await sub({ offset: 3, epoch })).subscribe;
    assert.equal(atTop.recovered, true);
    assert.equal(atTop.offset, 3);
    assert.ok(!atTop.publications || atTop.publications.length === 0);
    await unsub();
    // flag bit 2 (rejectUnrecovered, value 2; centrifuge-js sends 1|2): 112
    const rej = await sub({ offset: 1, epoch: 'staleEp1', flag: 3 });
    assert.deepEqual(rej.error, { code: 112, message: rej.error.message });
    assert.equal(rej.error.code, 112);
    // the failed subscribe left no subscription behind
    const again = await sub({ offset: 1, epoch, flag: 3 });
    assert.equal(again.subscribe.recovered, true, JSON.stringify(again));
    await unsub();
    // trimmed position with flag 2 -> 112, without -> recovered:false
    const small = 'small:flag';
    const f0 = await r.cmd({ subscribe: { channel: small, recoverable: true, positioned: true } });
    const sepoch = f0.subscribe.epoch;
    await r.cmd({ unsubscribe: { channel: small } });
    await batchPublish(small, 1, 30);
    const t1 = await r.cmd({ subscribe: { channel: small, recoverable: true, positioned: true, recover: true, offset: 5, epoch: sepoch, flag: 2 } });
    assert.equal(t1.error?.code, 112, JSON.stringify(t1));
    const t2 = await r.cmd({ subscribe: { channel: small, recoverable: true, positioned: true, recover: true, offset: 5, epoch: sepoch, flag: 1 } });
    assert.equal(t2.subscribe.was_recovering, true);
    assert.ok(!t2.subscribe.recovered);
    assert.equal(t2.subscribe.offset, 30);
    // flag bit 2 without recover: an ordinary subscribe
    await r.cmd({ unsubscribe: { channel: small } });
    const t3 = await r.cmd({ subscribe: { channel: small, recoverable: true, positioned: true, flag: 3 } });
    assert.equal(t3.subscribe.offset, 30);
    assert.equal(t3.subscribe.was_recovering, undefined);
    closeAll(r);
  });
});

// ------------------------------------------------------------------ ordering

describe('ordering', () => {
  test('subscribe reply precedes pushes of the channel during a publication storm', async () => {
    const ch = 'fast:storm';
    const pub = await raw();
    const sub = await raw();
    let stop = false, sent = 0;
    // client publisher: up to 400 publishes in flight, 50 per frame
    const pumpClient = (async () => {
      while (!stop) {
        if (sent - pub.replies < 400) {
          const cmds = [];
          for (let i = 0; i < 50; i++) cmds.push({ id: pub.nextId++, publish: { channel: ch, data: { k: sent + i } } });
          sent += 50;
          pub.send(...cmds);
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    // API publisher on another connection (likely another worker thread)
    let apiPubs = 0;
    const pumpApi = (async () => {
      while (!stop) {
        const commands = Array.from({ length: 20 }, () => ({ publish: { channel: ch, data: { api: 1 } } }));
        await apiOk('batch', { commands });
        apiPubs += 20;
      }
    })();
    let recoveredPubs, livePubs;
    try {
      ({ recoveredPubs, livePubs } = await stormCycles(pub, sub, ch));
    } finally {
      stop = true;
      await pumpClient;
      await pumpApi.catch(() => {});
    }
    // nothing for the channel after the last unsubscribe reply
    await sleep(100);
    const lastUnsub = sub.msgs.findLastIndex((m) => m.unsubscribe);
    assert.deepEqual(sub.msgs.slice(lastUnsub + 1).filter((m) => m.push?.channel === ch), []);
    assert.ok(recoveredPubs > 0, 'some publications were recovered');
    assert.ok(livePubs > 0, 'some publications arrived live');
    assert.ok(apiPubs > 0);
    const errors = pub.msgs.filter((m) => m.error);
    assert.deepEqual(errors, []);
    closeAll(pub, sub);
  });
});

// Subscribes (recovering from the last position), lets publications flow a
// little, unsubscribes, and checks each cycle's slice of messages: nothing
// of the channel before the subscribe reply, then contiguous offsets
// through the recovered and the live publications.
async function stormCycles(pub, sub, ch) {
    // (a client's publishes run one at a time: far fewer per second when
    // every engine answer comes 0..20 ms late)
    await until(() => pub.replies > (engineDelayed ? 100 : 500), 10000, 'publications flowing');

    let pos = null;
    let recoveredPubs = 0, livePubs = 0;
    const cycles = 25;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const from = sub.msgs.length;
      const req = { channel: ch, recoverable: true, positioned: true };
      if (pos) Object.assign(req, { recover: true, offset: pos.offset, epoch: pos.epoch });
      const reply = await sub.cmd({ subscribe: req });
      await sleep(cycle % 5 * 4);
      const ur = await sub.cmd({ unsubscribe: { channel: ch } });
      assert.deepEqual(ur.unsubscribe, {});
      const slice = sub.msgs.slice(from, sub.msgs.indexOf(ur));
      const iReply = slice.indexOf(reply);
      assert.ok(iReply >= 0);
      const early = slice.slice(0, iReply).filter((m) => m.push?.channel === ch);
      assert.deepEqual(early, [], `cycle ${cycle}: pushes before the subscribe reply`);
      const res = reply.subscribe;
      assert.ok(res, JSON.stringify(reply));
      let last;
      if (pos) {
        assert.equal(res.was_recovering, true);
        assert.equal(res.recovered, true, `cycle ${cycle}: not recovered`);
        assert.equal(res.epoch, pos.epoch);
        assert.equal(res.offset, pos.offset);
        last = pos.offset;
        for (const p of res.publications || []) {
          assert.equal(p.offset, last + 1, `cycle ${cycle}: recovered offsets not contiguous`);
          assert.equal(typeof p.time, 'number');
          last = p.offset;
          recoveredPubs++;
        }
      } else {
        last = res.offset ?? 0;
      }
      for (const m of slice.slice(iReply + 1)) {
        if (m.push?.channel !== ch) continue;
        assert.ok(m.push.pub, JSON.stringify(m));
        assert.equal(m.push.pub.offset, last + 1, `cycle ${cycle}: live offset after ${last}`);
        last = m.push.pub.offset;
        livePubs++;
      }
      pos = { offset: last, epoch: res.epoch };
    }
    return { recoveredPubs, livePubs };
}

// ---------------------------------------------------------------- server API

describe('server API', () => {
  test('broadcast: per-channel results, errors per entry', async () => {
    const r = await raw();
    await r.cmd({ subscribe: { channel: 'chat:b1' } });
    await r.cmd({ subscribe: { channel: 'nohist:b2' } });
    const res = await apiOk('broadcast', { channels: ['chat:b1', 'nohist:b2', 'bad channel', 'nope:x'], data: { b: 1 } });
    assert.equal(res.responses.length, 4);
    assert.equal(res.responses[0].result.offset, 1);
    assert.equal(typeof res.responses[0].result.epoch, 'string');
    assert.deepEqual(res.responses[1], { result: {} });
    assert.equal(res.responses[2].error.code, 107);
    assert.equal(res.responses[3].error.code, 102);
    await r.waitFor((m) => m.push?.channel === 'chat:b1');
    await r.waitFor((m) => m.push?.channel === 'nohist:b2');
    assert.deepEqual(r.pushes('chat:b1', 'pub').map((p) => [p.data, p.offset]), [[{ b: 1 }, 1]]);
    assert.deepEqual(r.pushes('nohist:b2', 'pub').map((p) => p.data), [{ b: 1 }]);
    assert.equal((await api('broadcast', { data: 1 })).body.error.code, 107);
    closeAll(r);
  });

  test('subscribe: server-side subscription of a connected user, then publications', async () => {
    const c = await connected({ token: userToken('srvsub') });
    const subs = [];
    const pubs = [];
    c.on('subscribed', (ctx) => subs.push(ctx));
    c.on('publication', (ctx) => pubs.push(ctx));
    const r = await raw({ token: userToken('srvsub') });
    assert.deepEqual(await apiOk('subscribe', { user: 'srvsub', channel: 'chat:srv' }), {});
    await until(() => subs.length === 1, 3000, 'server-side subscribed');
    assert.equal(subs[0].channel, 'chat:srv');
    assert.equal(subs[0].recoverable, true);           // history namespace
    const sp = await r.waitFor((m) => m.push?.subscribe);
    assert.equal(sp.push.channel, 'chat:srv');
    assert.equal(sp.push.subscribe.recoverable, true);
    assert.equal(typeof sp.push.subscribe.epoch, 'string');
    await apiOk('publish', { channel: 'chat:srv', data: { hello: 'srv' } });
    await until(() => pubs.length === 1, 3000, 'server-side publication');
    assert.equal(pubs[0].channel, 'chat:srv');
    assert.deepEqual(pubs[0].data, { hello: 'srv' });
    assert.equal(pubs[0].offset, 1);
    const pp = await r.waitFor((m) => m.push?.pub);
    assert.ok(r.msgs.indexOf(sp) < r.msgs.indexOf(pp), 'subscribe push before pub');
    assert.deepEqual(pp.push.pub.data, { hello: 'srv' });
    // the server-side sub counts in the channel
    const chs = await apiOk('channels', { pattern: 'chat:srv' });
    assert.deepEqual(chs, { channels: { 'chat:srv': { num_clients: 2 } } });
    // unknown user: ok, nothing happens; invalid channel -> 107
    assert.deepEqual(await apiOk('subscribe', { user: 'nobody', channel: 'chat:srv' }), {});
    assert.equal((await api('subscribe', { user: 'srvsub', channel: 'nope:x' })).body.error.code, 102);
    assert.equal((await api('subscribe', { channel: 'chat:x' })).body.error.code, 107);
    closeAll(c, r);
  });

  test('unsubscribe: unsubscribe push code 2000, no more publications', async () => {
    const r = await raw({ token: userToken('unsub-u') });
    await r.cmd({ subscribe: { channel: 'chat:u' } });
    const c = await connected({ token: userToken('unsub-u') });
    const s = await subscribed(c, 'chat:u');
    const unsubscribed = new Promise((res) => s.once('unsubscribed', res));
    assert.deepEqual(await apiOk('unsubscribe', { user: 'unsub-u', channel: 'chat:u' }), {});
    const u = await r.waitFor((m) => m.push?.unsubscribe);
    assert.equal(u.push.channel, 'chat:u');
    assert.equal(u.push.unsubscribe.code, 2000);
    assert.equal(typeof u.push.unsubscribe.reason, 'string');
    const uctx = await withTimeout(unsubscribed, 3000, 'real client unsubscribed');
    assert.equal(uctx.code, 2000);
    await apiOk('publish', { channel: 'chat:u', data: 1 });
    await sleep(200);
    assert.deepEqual(r.pushes('chat:u', 'pub'), []);
    assert.equal(s.pubs.length, 0);
    assert.deepEqual(await apiOk('channels', { pattern: 'chat:u' }), { channels: {} });
    closeAll(r, c);
  });

  test('disconnect: default 3503, custom code and reason; refresh expired closes 3005', async () => {
    const d1 = await raw({ token: userToken('disc-1') });
    assert.deepEqual(await apiOk('disconnect', { user: 'disc-1' }), {});
    assert.equal((await closeOf(d1)).code, 3503);
    const d2 = await raw({ token: userToken('disc-2') });
    await apiOk('disconnect', { user: 'disc-2', disconnect: { code: 4501, reason: 'bye now' } });
    assert.deepEqual(await closeOf(d2), { code: 4501, reason: 'bye now' });
    // only the named client of a user
    const d3a = await raw({ token: userToken('disc-3') });
    const d3b = await raw({ token: userToken('disc-3') });
    await apiOk('disconnect', { user: 'disc-3', client: d3a.client });
    assert.equal((await closeOf(d3a)).code, 3503);
    await sleep(100);
    assert.equal(d3b.isClosed, undefined);
    // real client: terminal disconnect
    const c = await connected({ token: userToken('disc-4') });
    const dis = new Promise((r) => c.once('disconnected', r));
    await apiOk('disconnect', { user: 'disc-4' });
    assert.equal((await withTimeout(dis, 3000, 'disconnected')).code, 3503);
    // refresh expired: 3005
    const e = await raw({ token: userToken('refr-1') });
    assert.deepEqual(await apiOk('refresh', { user: 'refr-1', expired: true }), {});
    assert.equal((await closeOf(e)).code, 3005);
    // refresh with a new expiry keeps the connection
    const e2 = await raw({ token: userToken('refr-2') });
    await apiOk('refresh', { user: 'refr-2', expire_at: Math.floor(Date.now() / 1000) + 3600 });
    const rr = await e2.cmd({ rpc: { method: 'plaza.time' } });
    assert.ok(rr.rpc);
    assert.equal((await api('disconnect', { user: 'x', disconnect: { code: 1000 } })).body.error.code, 107);
    closeAll(d3b, e2);
  });

  test('presence, presence_stats, history, history_remove, channels, info', async () => {
    const ch = 'chat:apiq';
    const r1 = await raw({ token: userToken('q1') });
    const r2 = await raw({ token: userToken('q2') });
    await r1.cmd({ subscribe: { channel: ch } });
    await r2.cmd({ subscribe: { channel: ch } });
    await r2.cmd({ subscribe: { channel: 'rec:apiq-other' } });
    const p = await apiOk('presence', { channel: ch });
    assert.deepEqual(p, { presence: {
      [r1.client]: { user: 'q1', client: r1.client },
      [r2.client]: { user: 'q2', client: r2.client },
    } });
    assert.deepEqual(await apiOk('presence_stats', { channel: ch }), { num_clients: 2, num_users: 2 });
    assert.deepEqual(await apiOk('presence_stats', { channel: 'chat:empty-room' }), { num_clients: 0, num_users: 0 });
    // history
    let epoch;
    for (let i = 1; i <= 4; i++) epoch = (await apiOk('publish', { channel: ch, data: { i } })).epoch;
    const h = await apiOk('history', { channel: ch, limit: -1 });
    assert.equal(h.offset, 4);
    assert.equal(h.epoch, epoch);
    assert.deepEqual(h.publications.map((x) => [x.offset, x.data.i]), [[1, 1], [2, 2], [3, 3], [4, 4]]);
    const h2 = await apiOk('history', { channel: ch, limit: 2, reverse: true });
    assert.deepEqual(h2.publications.map((x) => x.offset), [4, 3]);
    const h3 = await apiOk('history', { channel: ch, limit: -1, since: { offset: 2, epoch } });
    assert.deepEqual(h3.publications.map((x) => x.offset), [3, 4]);
    const h0 = await apiOk('history', { channel: ch });
    assert.deepEqual(h0, { publications: [], offset: 4, epoch });
    assert.equal((await api('history', { channel: ch, limit: -1, since: { offset: 2, epoch: 'bad' } })).body.error.code, 112);
    assert.equal((await api('history', { channel: 'nohist:x', limit: -1 })).body.error.code, 108);
    // history_remove keeps the top
    assert.deepEqual(await apiOk('history_remove', { channel: ch }), {});
    assert.deepEqual(await apiOk('history', { channel: ch, limit: -1 }), { publications: [], offset: 4, epoch });
    assert.deepEqual(await apiOk('publish', { channel: ch, data: { i: 5 } }), { offset: 5, epoch });
    assert.deepEqual((await apiOk('history', { channel: ch, limit: -1 })).publications.map((x) => x.offset), [5]);
    // channels
    const all = await apiOk('channels', {});
    assert.equal(all.channels[ch].num_clients, 2);
    assert.equal(all.channels['rec:apiq-other'].num_clients, 1);
    assert.deepEqual(await apiOk('channels', { pattern: 'chat:apiq*' }), { channels: { [ch]: { num_clients: 2 } } });
    assert.deepEqual(await apiOk('channels', { pattern: 'rec:apiq-*' }), { channels: { 'rec:apiq-other': { num_clients: 1 } } });
    // info
    const info = await apiOk('info', {});
    assert.equal(info.nodes.length, 1);
    const n = info.nodes[0];
    assert.equal(typeof n.uid, 'string');
    assert.equal(typeof n.version, 'string');
    assert.ok(n.num_clients >= 2);
    assert.ok(n.num_users >= 2);
    assert.ok(n.num_channels >= 2);
    assert.equal(typeof n.uptime, 'number');
    closeAll(r1, r2);
  });

  test('batch: replies in order, errors per command', async () => {
    const res = await apiOk('batch', { commands: [
      { publish: { channel: 'rec:batch', data: { x: 1 } } },
      { publish: { channel: 'rec:batch', data: { x: 2 } } },
      { history: { channel: 'rec:batch', limit: -1 } },
      { nosuch: {} },
      { publish: { data: 1 } },
      { presence_stats: { channel: 'chat:batch' } },
    ] });
    const rep = res.replies;
    assert.equal(rep.length, 6);
    assert.equal(rep[0].publish.offset, 1);
    assert.equal(rep[1].publish.offset, 2);
    assert.equal(rep[1].publish.epoch, rep[0].publish.epoch);
    assert.deepEqual(rep[2].history.publications.map((p) => p.data), [{ x: 1 }, { x: 2 }]);
    assert.equal(rep[3].error.code, 104);
    assert.equal(rep[4].error.code, 107);
    assert.match(rep[4].error.message, /channel/);
    assert.deepEqual(rep[5], { presence_stats: { num_clients: 0, num_users: 0 } });
  });

  test('errors: malformed JSON 107, missing field 107 naming it, unknown method 104, key 401, GET 405', async () => {
    const bad = await api('publish', null, { raw: '{"channel": "chat:x", ' });
    assert.equal(bad.status, 200);
    assert.equal(bad.body.error.code, 107);
    const miss = await api('publish', { data: { a: 1 } });
    assert.equal(miss.body.error.code, 107);
    assert.match(miss.body.error.message, /channel/);
    const missData = await api('publish', { channel: 'chat:x' });
    assert.equal(missData.body.error.code, 107);
    assert.match(missData.body.error.message, /data/);
    const missUser = await api('disconnect', {});
    assert.equal(missUser.body.error.code, 107);
    assert.match(missUser.body.error.message, /user/);
    const typed = await api('publish', { channel: 5, data: 1 });
    assert.equal(typed.body.error.code, 107);
    assert.match(typed.body.error.message, /channel/);
    const unknown = await api('frobnicate', {});
    assert.equal(unknown.status, 200);
    assert.equal(unknown.body.error.code, 104);
    assert.equal((await api('publish', { channel: 'chat:x', data: 1 }, { key: 'wrong' })).status, 401);
    assert.equal((await api('publish', { channel: 'chat:x', data: 1 }, { key: null })).status, 401);
    assert.equal((await api('info', {}, { key: null, headers: { Authorization: `apikey ${API_KEY}` } })).status, 200);
    const get = await api('info', null, { httpMethod: 'GET' });
    assert.equal(get.status, 405);
    // none of the refused publishes went through
    assert.deepEqual((await apiOk('history', { channel: 'chat:x', limit: -1 })).publications, []);
  });
});

// --------------------------------------------------------------------- rpc

describe('rpc and token channels', () => {
  test('rpc: unknown method 108 (no handler), plaza.time', async () => {
    const r = await raw();
    const u = await r.cmd({ rpc: { method: 'no.such.method', data: {} } });
    assert.equal(u.error.code, 108);
    const t0 = Date.now();
    const t = await r.cmd({ rpc: { method: 'plaza.time', data: {} } });
    assert.equal(typeof t.rpc.data.time, 'number');
    assert.ok(Math.abs(t.rpc.data.time - t0) < 2000, `time ${t.rpc.data.time} vs ${t0}`);
    const c = await connected();
    const res = await c.rpc('plaza.time', {});
    assert.ok(Math.abs(res.data.time - Date.now()) < 2000);
    await assert.rejects(c.rpc('nope', {}), (e) => e.code === 108);
    closeAll(r, c);
  });

  test('token channels claim: server-side subs in the connect reply, publications delivered', async () => {
    const token = userToken('eve', { channels: ['chat:eve', 'rec:eve', 'nope:x'] });
    const r = await raw({ token });
    const subs = r.connectReply.subs;
    assert.deepEqual(Object.keys(subs).sort(), ['chat:eve', 'rec:eve']);
    assert.equal(subs['rec:eve'].recoverable, true);
    assert.equal(typeof subs['rec:eve'].epoch, 'string');
    const c = centrifuge({ token });
    const subscribedCtx = [];
    const pubs = [];
    c.on('subscribed', (ctx) => subscribedCtx.push(ctx));
    c.on('publication', (ctx) => pubs.push(ctx));
    c.connect();
    await c.ready(5000);
    await until(() => subscribedCtx.length === 2, 3000, 'two server-side subs');
    assert.deepEqual(subscribedCtx.map((x) => x.channel).sort(), ['chat:eve', 'rec:eve']);
    const res = await apiOk('publish', { channel: 'rec:eve', data: { to: 'eve' } });
    assert.equal(res.offset, 1);
    await until(() => pubs.length === 1, 3000, 'publication');
    assert.deepEqual([pubs[0].channel, pubs[0].data, pubs[0].offset], ['rec:eve', { to: 'eve' }, 1]);
    const p = await r.waitFor((m) => m.push?.pub);
    assert.deepEqual(p.push.channel, 'rec:eve');
    assert.deepEqual(p.push.pub.data, { to: 'eve' });
    assert.equal(typeof p.push.pub.time, 'number');
    // presence of the server-side sub in chat:eve (presence namespace)
    assert.deepEqual(await apiOk('presence_stats', { channel: 'chat:eve' }), { num_clients: 2, num_users: 1 });
    closeAll(r, c);
  });

  test('token channels: the real client recovers server-side subs through connect subs', async () => {
    const token = userToken('frank', { channels: ['rec:frank'] });
    const c = centrifuge({ token });
    const ctxs = [];
    const offs = [];
    c.on('subscribed', (ctx) => ctxs.push(ctx));
    c.on('publication', (ctx) => { if (ctx.channel === 'rec:frank') offs.push(ctx.offset); });
    c.connect();
    await c.ready(5000);
    await until(() => ctxs.length === 1, 3000, 'server-side sub');
    const epoch = ctxs[0].streamPosition.epoch;
    await batchPublish('rec:frank', 1, 3);
    await until(() => offs.length === 3, 3000, 'three publications');
    const connecting = new Promise((r) => c.once('connecting', r));
    cut(c);
    await withTimeout(connecting, 3000, 'client notices the cut');
    await batchPublish('rec:frank', 4, 20);
    await until(() => ctxs.length === 2, 8000, 'resubscribed on reconnect');
    assert.equal(ctxs[1].wasRecovering, true);
    assert.equal(ctxs[1].recovered, true);
    assert.deepEqual(ctxs[1].streamPosition, { offset: 3, epoch });
    await until(() => offs.length === 23, 3000, '23 publications');
    await sleep(100);
    assert.deepEqual(offs, Array.from({ length: 23 }, (_, i) => i + 1));
    c.disconnect();
  });
});
