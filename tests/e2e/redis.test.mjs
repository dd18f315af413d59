// Several Plaza nodes on one Redis (engine.type = redis, issue 11): a real
// redis-server started by the test on a free port, two Plaza nodes, the
// unmodified centrifuge client on one and the server API on the other.
// Publications cross nodes in offset order with history and recovery;
// presence, presence_stats and join/leave cross nodes; the server API's
// subscribe/unsubscribe/disconnect reach a connection on another node; a stalled Redis
// (SIGSTOP) fails calls with a timeout; Redis stopped makes
// publishes fail at once with a clear error while clients stay connected,
// and Redis back (empty) makes them work again with a new epoch. (Maps and
// boards: maps.test.mjs and board.test.mjs run on two nodes on Redis in
// scripts/test.)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { startRedis, redisCommand } from './lib/redis.mjs';
import { apiCall } from './lib/proto.mjs';
import { sleep } from './lib/raw.mjs';

const KEY = 'redis-api-key';
const open = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true };
const config = {
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0 },
  api: { key: KEY },
  channel: {
    namespaces: [
      { name: 'chat', ...open, presence: true, join_leave: true, force_push_join_leave: true,
        history_size: 100, history_ttl_ms: 600000, force_recovery: true, allow_presence_for_anonymous: true,
        allow_presence_for_subscriber: true, allow_history_for_subscriber: true, allow_history_for_anonymous: true },
      { name: 'live', ...open },
    ],
  },
};

const until = async (cond, ms = 5000, what = 'condition') => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(20);
  }
};

let redis, a, b;
const node = (r) => startPlaza({ noEcho: true, config, single: true, args: ['--set', 'engine.type=redis', '--set', `engine.redis.address=${r.address}`] });
const api = async (n, method, params) => (await apiCall(n.url, method, params, { key: KEY }));

function client(n, channel, opts = {}) {
  const c = new Centrifuge(n.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 300 });
  const s = c.newSubscription(channel, { joinLeave: true, minResubscribeDelay: 100, maxResubscribeDelay: 300, ...opts });
  const v = { c, s, pubs: [], joins: [], leaves: [], subscribed: [], disconnects: 0 };
  s.on('publication', (ctx) => v.pubs.push(ctx));
  s.on('join', (ctx) => v.joins.push(ctx.info));
  s.on('leave', (ctx) => v.leaves.push(ctx.info));
  s.on('subscribed', (ctx) => v.subscribed.push(ctx));
  c.on('disconnected', () => { v.disconnects++; });
  c.on('connected', (ctx) => { v.client = ctx.client; });
  c.on('error', () => {});
  c.connect();
  s.subscribe();
  return v;
}

describe('two nodes on one Redis', () => {
  before(async () => {
    redis = await startRedis();
    a = await node(redis);
    b = await node(redis);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
  });

  test('publications cross nodes in offset order; history and offsets are shared', async () => {
    const v = client(b, 'chat:x');
    await until(() => v.subscribed.length === 1, 5000, 'subscribed on b');
    const results = [];
    for (let i = 1; i <= 20; i++) {
      const r = await api(i % 2 ? a : b, 'publish', { channel: 'chat:x', data: { i } });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      results.push(r.body.result);
    }
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.equal(new Set(results.map((r) => r.epoch)).size, 1);
    await until(() => v.pubs.length === 20, 5000, 'all 20 on b');
    assert.deepEqual(v.pubs.map((p) => p.data.i), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(v.pubs.map((p) => p.offset), Array.from({ length: 20 }, (_, i) => i + 1));
    const h = await api(a, 'history', { channel: 'chat:x', limit: -1 });
    assert.equal(h.body.result.offset, 20);
    assert.equal(h.body.result.epoch, results[0].epoch);
    assert.deepEqual(h.body.result.publications.map((p) => p.data.i), Array.from({ length: 20 }, (_, i) => i + 1));
    const since = await api(b, 'history', { channel: 'chat:x', limit: 5, since: { offset: 15, epoch: results[0].epoch } });
    assert.deepEqual(since.body.result.publications.map((p) => p.offset), [16, 17, 18, 19, 20]);
    const rev = await api(b, 'history', { channel: 'chat:x', limit: 2, reverse: true });
    assert.deepEqual(rev.body.result.publications.map((p) => p.offset), [20, 19]);
    const wrong = await api(b, 'history', { channel: 'chat:x', limit: 5, since: { offset: 15, epoch: 'nope' } });
    assert.equal(wrong.body.error.code, 112);
    // a plain channel without history: delivered, no offset
    const w = client(a, 'live:y');
    await until(() => w.subscribed.length === 1, 5000, 'subscribed live');
    assert.equal((await api(b, 'publish', { channel: 'live:y', data: { hi: 1 } })).status, 200);
    await until(() => w.pubs.length === 1, 5000, 'plain publication');
    v.c.disconnect();
    w.c.disconnect();
  });

  test('a client moving from node b to node a recovers exactly', async () => {
    const v = client(b, 'chat:move');
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    for (let i = 1; i <= 3; i++) await api(a, 'publish', { channel: 'chat:move', data: { i } });
    await until(() => v.pubs.length === 3, 5000, 'first three');
    const last = v.pubs[2];
    v.c.disconnect();
    for (let i = 4; i <= 6; i++) await api(b, 'publish', { channel: 'chat:move', data: { i } });
    const m = client(a, 'chat:move', { since: { offset: last.offset, epoch: v.subscribed[0].streamPosition.epoch } });
    await until(() => m.pubs.length === 3, 5000, 'recovered on a');
    assert.equal(m.subscribed[0].recovered, true);
    assert.deepEqual(m.pubs.map((p) => p.data.i), [4, 5, 6]);
    m.c.disconnect();
  });

  test('presence, presence_stats and join/leave cross nodes', async () => {
    const watcher = client(b, 'chat:room');
    await until(() => watcher.subscribed.length === 1, 5000, 'watcher');
    const x = client(a, 'chat:room');
    await until(() => x.subscribed.length === 1, 5000, 'x');
    await until(() => watcher.joins.length >= 1, 5000, 'join on b');
    const p = await api(b, 'presence', { channel: 'chat:room' });
    assert.equal(Object.keys(p.body.result.presence).length, 2);
    const st = await api(a, 'presence_stats', { channel: 'chat:room' });
    assert.equal(st.body.result.num_clients, 2);
    assert.equal(st.body.result.num_users, 1, 'the anonymous user "" counts once, as on one node');
    x.c.disconnect();
    await until(() => watcher.leaves.length >= 1, 5000, 'leave on b');
    await until(async () => Object.keys((await api(a, 'presence', { channel: 'chat:room' })).body.result.presence).length === 1,
      5000, 'presence without x');
    watcher.c.disconnect();
  });

  test('server API actions reach a connection on another node: subscribe, unsubscribe, disconnect', async () => {
    const c = new Centrifuge(b.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 300 });
    const ev = { subscribed: [], unsubscribed: [], pubs: [], disconnected: [] };
    c.on('subscribed', (ctx) => ev.subscribed.push(ctx.channel));
    c.on('unsubscribed', (ctx) => ev.unsubscribed.push(ctx.channel));
    c.on('publication', (ctx) => ev.pubs.push(ctx.data));
    c.on('disconnected', (ctx) => ev.disconnected.push(ctx.code));
    c.on('error', () => {});
    let id;
    c.on('connected', (ctx) => { id = ctx.client; });
    c.connect();
    await until(() => id, 5000, 'connected to b');
    const who = { user: '', client: id };
    assert.equal((await api(a, 'subscribe', { ...who, channel: 'chat:srv' })).status, 200);
    await until(() => ev.subscribed.includes('chat:srv'), 5000, 'subscribed by the API on a');
    await api(a, 'publish', { channel: 'chat:srv', data: { hello: 1 } });
    await until(() => ev.pubs.length === 1, 5000, 'a publication on the server-side subscription');
    assert.equal((await api(a, 'unsubscribe', { ...who, channel: 'chat:srv' })).status, 200);
    await until(() => ev.unsubscribed.includes('chat:srv'), 5000, 'unsubscribed by the API on a');
    const d = await api(a, 'disconnect', { ...who, disconnect: { code: 4500, reason: 'bye' } });
    assert.equal(d.status, 200, JSON.stringify(d.body));
    await until(() => ev.disconnected.includes(4500), 5000, 'disconnected by the API on a');
  });

  test('a dropped pub/sub connection: the publications missed meanwhile are recovered from history', async () => {
    const v = client(b, 'chat:gap');
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    assert.equal((await api(a, 'publish', { channel: 'chat:gap', data: { n: 1 } })).status, 200);
    await until(() => v.pubs.length === 1, 5000, 'first');
    assert.match(await redisCommand(redis.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub'), /^:[1-9]/);
    for (let n = 2; n <= 4; n++) assert.equal((await api(a, 'publish', { channel: 'chat:gap', data: { n } })).status, 200);
    await until(() => v.pubs.length >= 4, 10000, 'the missed ones recovered');
    assert.deepEqual(v.pubs.map((p) => p.data.n), [1, 2, 3, 4], 'nothing missed, nothing twice, in order');
    assert.equal(v.subscribed.length, 2, 'resubscribed once');
    assert.equal(v.subscribed[1].recovered, true);
    v.c.disconnect();
  });

  test('a stalled Redis (SIGSTOP 2 s): calls fail with "engine timeout" after engine.redis.timeout_ms, clients stay', async () => {
    const v = client(b, 'chat:slow');
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    redis.pause();
    try {
      const t0 = Date.now();
      const r = await api(a, 'publish', { channel: 'chat:slow', data: { n: 1 } });
      const took = Date.now() - t0;
      assert.equal(r.status, 503);
      assert.match(r.body.error.message, /engine timeout/);
      assert.ok(took >= 900 && took < 2000, `answered after the timeout (${took} ms)`);
      const h = await api(b, 'history', { channel: 'chat:slow', limit: 1 });
      assert.equal(h.status, 503);
      await sleep(800);
    } finally {
      redis.resume();
    }
    assert.equal(v.disconnects, 0, 'the client stayed connected');
    // the timed-out publish may still have been applied: "timeout" is an unknown outcome
    const r2 = await api(a, 'publish', { channel: 'chat:slow', data: { n: 2 } });
    assert.equal(r2.status, 200);
    await until(() => v.pubs.some((p) => p.data.n === 2), 5000, 'live again');
    v.c.disconnect();
  });

  test('Redis stopped: publishes fail at once with a clear error, clients stay; Redis back: it works again', async () => {
    const v = client(b, 'chat:down');
    await until(() => v.subscribed.length === 1, 5000, 'subscribed');
    assert.equal((await api(a, 'publish', { channel: 'chat:down', data: { n: 1 } })).status, 200);
    await until(() => v.pubs.length === 1, 5000, 'first');
    const port = redis.port;
    await redis.stop();
    const t0 = Date.now();
    const r = await api(a, 'publish', { channel: 'chat:down', data: { n: 2 } });
    assert.ok(Date.now() - t0 < 2000, 'failed at once');
    assert.equal(r.status, 503);
    assert.match(r.body.error.message, /engine unavailable/);
    await sleep(300);
    assert.equal(v.disconnects, 0, 'the client stayed connected');
    const health = await fetch(a.url + '/healthz');
    assert.equal(health.status, 503);
    assert.match(await health.text(), /^degraded: redis at 127\.0\.0\.1:\d+ unreachable/);
    redis = await startRedis({ port });
    let ok;
    await until(async () => (ok = await api(a, 'publish', { channel: 'chat:down', data: { n: 3 } })).status === 200,
      10000, 'publish works again');
    assert.equal(ok.body.result.offset, 1, 'Redis came back empty: a new stream');
    await until(async () => (await fetch(a.url + '/healthz')).status === 200, 5000, 'healthy again');
    // its subscribers are told the stream is new (not recovered), then get what follows
    await until(() => v.subscribed.length >= 2, 10000, 'resubscribed after Redis came back');
    assert.equal(v.subscribed[v.subscribed.length - 1].recovered, false);
    await until(async () => {
      await api(a, 'publish', { channel: 'chat:down', data: { n: 4 } });
      return v.pubs.some((p) => p.data.n === 4);
    }, 10000, 'the client on b gets publications again');
    v.c.disconnect();
  });
});

test('a node killed with kill -9: its clients leave (a leave pushed on the other nodes) within the TTL; they move and recover', async () => {
  const r = await startRedis();
  const cfg = { ...config, channel: { ...config.channel, presence_ttl_ms: 1500 } };
  const args = ['--set', 'engine.type=redis', '--set', `engine.redis.address=${r.address}`];
  const n1 = await startPlaza({ noEcho: true, config: cfg, args, single: true });
  const n2 = await startPlaza({ noEcho: true, config: cfg, args, single: true });
  try {
    const v = client(n1, 'chat:kill');
    const w = client(n2, 'chat:kill');
    await until(() => v.subscribed.length === 1 && w.subscribed.length === 1, 5000, 'both subscribed');
    const presence = async () => Object.keys((await api(n2, 'presence', { channel: 'chat:kill' })).body.result.presence).length;
    assert.equal(await presence(), 2);
    await api(n2, 'publish', { channel: 'chat:kill', data: { n: 1 } });
    await until(() => v.pubs.length === 1, 5000, 'first on n1');
    const pos = { offset: v.pubs[0].offset, epoch: v.subscribed[0].streamPosition.epoch };
    n1.proc.kill('SIGKILL');
    await n1.exited;
    v.c.disconnect();                               // the client side goes quiet with its node
    const t0 = Date.now();
    // nobody reads presence: n2's sweep finds the entry expired and publishes its leave
    await until(() => w.leaves.length === 1, 5000, 'the dead node\'s client left');
    assert.equal(w.leaves[0].client, v.client, 'the leave is the dead node\'s client');
    assert.ok(Date.now() - t0 < 3000, `within the presence TTL and a sweep (${Date.now() - t0} ms)`);
    assert.equal(await presence(), 1);
    await api(n2, 'publish', { channel: 'chat:kill', data: { n: 2 } });
    const moved = client(n2, 'chat:kill', { since: pos });
    await until(() => moved.pubs.length === 1, 5000, 'recovered on n2');
    assert.equal(moved.subscribed[0].recovered, true);
    assert.equal(moved.pubs[0].data.n, 2);
    moved.c.disconnect();
    w.c.disconnect();
  } finally {
    await n2.stop();
    await r.stop();
  }
});

test('channels sharded over two Redis servers: each channel on one of them, the same one for every node', async () => {
  const r1 = await startRedis(), r2 = await startRedis();
  const args = ['--set', 'engine.type=redis', '--set', `engine.redis.address=${r1.address},${r2.address}`];
  const n1 = await startPlaza({ noEcho: true, config, args, single: true });
  const n2 = await startPlaza({ noEcho: true, config, args, single: true });
  try {
    for (const n of [n1, n2]) await until(async () => (await fetch(n.url + '/healthz')).status === 200, 5000, 'connected');
    const chans = Array.from({ length: 12 }, (_, i) => `chat:shard-${i}`);
    const c = new Centrifuge(n2.wsUrl, { websocket: WebSocket });
    const got = new Map();
    for (const ch of chans) {
      const sub = c.newSubscription(ch);
      sub.on('publication', (ctx) => got.set(ch, ctx.data.ch));
      sub.subscribe();
    }
    c.connect();
    await until(() => chans.every((ch) => c.getSubscription(ch).state === 'subscribed'), 5000, 'all subscribed');
    for (const ch of chans) assert.equal((await api(n1, 'publish', { channel: ch, data: { ch } })).status, 200);
    await until(() => got.size === chans.length, 5000, 'every channel delivered across nodes');
    for (const ch of chans) assert.equal(got.get(ch), ch);
    const keys = async (r) => (await redisCommand(r.port, 'KEYS', '{plaza:chat:shard-*}.m')).match(/shard-\d+/g) || [];
    const k1 = await keys(r1), k2 = await keys(r2);
    assert.ok(k1.length > 0 && k2.length > 0, `both servers hold channels (${k1.length} / ${k2.length})`);
    assert.equal(k1.length + k2.length, chans.length);
    assert.deepEqual(k1.filter((k) => k2.includes(k)), [], 'no channel on both');
    // the history of a channel is the same whichever node asks
    for (const ch of chans.slice(0, 3)) {
      const h1 = (await api(n1, 'history', { channel: ch, limit: -1 })).body.result;
      const h2 = (await api(n2, 'history', { channel: ch, limit: -1 })).body.result;
      assert.deepEqual(h1, h2);
      assert.equal(h1.offset, 1);
    }
    c.disconnect();
  } finally {
    await n1.stop();
    await n2.stop();
    await r1.stop();
    await r2.stop();
  }
});

test('calls in flight are bounded: past engine.redis.max_pending they fail at once', async () => {
  const r = await startRedis();
  const args = ['--set', 'engine.type=redis', '--set', `engine.redis.address=${r.address}`,
    '--set', 'engine.redis.max_pending=20', '--set', 'engine.redis.timeout_ms=3000'];
  const n = await startPlaza({ noEcho: true, config, args, single: true });
  try {
    // a node listens before its Redis connection is up: wait for it
    await until(async () => (await fetch(n.url + '/healthz')).status === 200, 5000, 'connected to Redis');
    assert.equal((await api(n, 'publish', { channel: 'chat:b', data: {} })).status, 200);
    r.pause();
    const t0 = Date.now();
    const all = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      api(n, 'publish', { channel: 'chat:b', data: { i } }).then((x) => ({ ...x, ms: Date.now() - t0 }))));
    r.resume();
    const refused = all.filter((x) => x.status === 503 && /engine unavailable/.test(x.body.error?.message));
    const timedOut = all.filter((x) => x.status === 503 && /engine timeout/.test(x.body.error?.message));
    assert.ok(refused.length >= 30, `most refused at once (${refused.length})`);
    assert.ok(refused.every((x) => x.ms < 1000), 'refused without waiting');
    assert.equal(refused.length + timedOut.length, 60);
    await until(async () => (await api(n, 'publish', { channel: 'chat:b', data: {} })).status === 200, 5000, 'fine again');
  } finally {
    r.resume();
    await n.stop();
    await r.stop();
  }
});
