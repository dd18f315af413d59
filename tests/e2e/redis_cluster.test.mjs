// Plaza nodes on a Redis Cluster (engine.redis.cluster, issue 11): a real
// 3-master cluster started by the test (redis-cli --cluster create), three
// Plaza nodes each given a different seed, the unmodified centrifuge
// client on one node and the server API on the others. Channels spread
// over every master, publications travel by sharded pub/sub (SPUBLISH), in
// offset order, exactly once; presence and join/leave cross nodes; a slot
// moved to another master while publishing (MOVED/ASK followed, the
// channel subscribed again on its new master) loses nothing; a master
// killed makes /healthz name it and fails its channels at once while the
// other masters' channels go on.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { startRedisCluster, redisQuery } from './lib/redis.mjs';
import { apiCall } from './lib/proto.mjs';
import { sleep } from './lib/raw.mjs';

const KEY = 'cluster-api-key';
const open = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true };
const config = {
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0 },
  api: { key: KEY },
  channel: {
    presence_ttl_ms: 3000,
    namespaces: [
      { name: 'chat', ...open, presence: true, join_leave: true, force_push_join_leave: true,
        history_size: 1000, history_ttl_ms: 600000, force_recovery: true, allow_presence_for_anonymous: true,
        allow_presence_for_subscriber: true, allow_history_for_subscriber: true, allow_history_for_anonymous: true },
      { name: 'lots', ...open, subscription_type: 'map', map: { mode: 'recoverable', key_ttl_ms: 1500, stream_size: 100 } },
    ],
  },
};

const until = async (cond, ms = 8000, what = 'condition') => {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(20);
  }
};

const api = (n, method, params) => apiCall(n.url, method, params, { key: KEY });
const healthz = async (n) => {
  const r = await fetch(n.url + '/healthz');
  return { status: r.status, text: await r.text() };
};

function client(n, channels) {
  const c = new Centrifuge(n.wsUrl, { websocket: WebSocket, minReconnectDelay: 100, maxReconnectDelay: 300 });
  const v = { c, pubs: new Map(), joins: [], leaves: [], subscribed: new Map() };
  for (const ch of channels) {
    const s = c.newSubscription(ch, { joinLeave: true, minResubscribeDelay: 100, maxResubscribeDelay: 300 });
    v.pubs.set(ch, []);
    s.on('publication', (ctx) => v.pubs.get(ch).push(ctx));
    s.on('join', (ctx) => v.joins.push(ctx.info));
    s.on('leave', (ctx) => v.leaves.push(ctx.info));
    s.on('subscribed', (ctx) => v.subscribed.set(ch, ctx));
    s.subscribe();
  }
  c.on('error', () => {});
  c.connect();
  return v;
}

// Publishes until accepted (a publish may fail while a slot moves: the
// client is told, and tries again, as a real publisher would).
async function publish(n, channel, data) {
  for (let i = 0; i < 100; i++) {
    const r = await api(n, 'publish', { channel, data });
    if (r.status === 200) return r.body.result;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    await sleep(20);
  }
  throw new Error('publish never accepted');
}

describe('three nodes on a 3-master Redis Cluster', () => {
  let cluster, nodes;
  before(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    nodes = [];
    for (const seed of cluster.seeds) {
      nodes.push(await startPlaza({ noEcho: true, config, single: true,
        args: ['--set', 'engine.type=redis', '--set', 'engine.redis.cluster=true', '--set', `engine.redis.address=${seed}`] }));
    }
    for (const n of nodes) await until(async () => (await healthz(n)).status === 200, 8000, 'healthy');
  });
  after(async () => {
    for (const n of nodes || []) await n.stop();
    await cluster?.stop();
  });

  test('channels spread over every master; clients on every node get each publication once, in order, by sharded pub/sub', async () => {
    const chans = Array.from({ length: 24 }, (_, i) => `chat:c-${i}`);
    const viewers = nodes.map((n) => client(n, chans));          // a client on every node
    await until(() => viewers.every((v) => v.subscribed.size === chans.length), 8000, 'all subscribed');
    for (let i = 1; i <= 5; i++) {
      for (const ch of chans) {
        const r = await publish(nodes[i % 3], ch, { ch, i });
        assert.equal(r.offset, i);
      }
    }
    for (const v of viewers) {
      await until(() => chans.every((ch) => v.pubs.get(ch).length >= 5), 8000, 'every publication delivered');
      await sleep(100);                                           // nothing more comes
      for (const ch of chans) {
        assert.deepEqual(v.pubs.get(ch).map((p) => p.offset), [1, 2, 3, 4, 5], ch);
        assert.ok(v.pubs.get(ch).every((p, k) => p.data.ch === ch && p.data.i === k + 1));
      }
    }
    // each channel's keys on the master of its slot, every master used
    const held = [];
    for (const m of cluster.nodes) {
      const keys = await redisQuery(m.port, 'KEYS', '{plaza:chat:c-*}.m');
      held.push(keys.length);
      for (const k of keys) assert.equal(await cluster.owner(await cluster.slot(k)), m, k);
    }
    assert.ok(held.every((k) => k > 0), `every master holds channels (${held})`);
    assert.equal(held.reduce((a, b) => a + b, 0), chans.length);
    // events travel on shard channels, on the channel's master only
    const slot = await cluster.slot('{plaza:chat:c-0}.m');
    const owner = await cluster.owner(slot);
    for (const m of cluster.nodes) {
      const shard = await redisQuery(m.port, 'PUBSUB', 'SHARDCHANNELS', '{plaza:chat:c-0}*');
      assert.deepEqual(shard, m === owner ? ['{plaza:chat:c-0}.e'] : [], `shard channels on ${m.port}`);
      assert.deepEqual(await redisQuery(m.port, 'PUBSUB', 'CHANNELS', 'plaza.*'), []);
    }
    // history is the same whichever node asks
    const h = await Promise.all(nodes.map(async (n) => (await api(n, 'history', { channel: 'chat:c-3', limit: -1 })).body.result));
    assert.deepEqual(h[0], h[1]);
    assert.deepEqual(h[0], h[2]);
    assert.equal(h[0].publications.length, 5);
    for (const x of viewers) x.c.disconnect();
  });

  test('presence, presence_stats and join/leave cross nodes on the cluster', async () => {
    const w = client(nodes[0], ['chat:room']);
    await until(() => w.subscribed.size === 1, 8000, 'watcher');
    const x = client(nodes[1], ['chat:room']);
    const y = client(nodes[2], ['chat:room']);
    await until(() => x.subscribed.size === 1 && y.subscribed.size === 1, 8000, 'x and y');
    await until(() => w.joins.length >= 2, 8000, 'joins on node 0');
    for (const n of nodes) {
      const p = await api(n, 'presence', { channel: 'chat:room' });
      assert.equal(Object.keys(p.body.result.presence).length, 3);
      const st = await api(n, 'presence_stats', { channel: 'chat:room' });
      assert.equal(st.body.result.num_clients, 3);
    }
    x.c.disconnect();
    await until(() => w.leaves.length >= 1, 8000, 'leave on node 0');
    y.c.disconnect();
    w.c.disconnect();
  });

  test('a map channel across nodes: writes on two nodes, a subscriber on the third, TTL removals', async () => {
    const c = new Centrifuge(nodes[2].wsUrl, { websocket: WebSocket });
    const s = c.newMapSubscription('lots:a');
    const view = new Map(), removed = [];
    let subscribed = 0;
    s.on('subscribed', (ctx) => { subscribed++; for (const e of ctx.state || []) view.set(e.key, e.data); });
    s.on('update', (ctx) => { if (ctx.removed) { view.delete(ctx.key); removed.push(ctx.key); } else view.set(ctx.key, ctx.data); });
    c.connect();
    s.subscribe();
    await until(() => subscribed === 1, 8000, 'map subscribed');
    const w = async (n, key, data, extra = {}) => (await api(n, 'map_publish', { channel: 'lots:a', key, data, ...extra })).body;
    const r1 = await w(nodes[0], 'k1', { v: 1 });
    const r2 = await w(nodes[1], 'k2', { v: 2 });
    assert.equal(r2.result.offset, r1.result.offset + 1);
    // compare-and-set on the key's offset, from another node
    const stale = await w(nodes[1], 'k1', { v: 9 }, { expected_offset: r1.result.offset + 5 });
    assert.equal(stale.result.suppress_reason, 'position_mismatch');
    const cas = await w(nodes[1], 'k1', { v: 3 }, { expected_offset: r1.result.offset });
    assert.equal(cas.result.suppressed, undefined);
    await until(() => view.get('k1')?.v === 3 && view.get('k2')?.v === 2, 8000, 'updates on node 2');
    for (const n of nodes) {
      const st = (await api(n, 'map_read_state', { channel: 'lots:a' })).body.result;
      assert.deepEqual(st.publications.map((p) => [p.key, p.data.v]), [['k1', 3], ['k2', 2]]);
    }
    await until(() => removed.length === 2, 8000, 'both keys expired and their removals pushed');
    assert.equal(view.size, 0);
    c.disconnect();
  });

  test('a slot moved to another master while publishing: nothing lost, nothing twice, the channel follows', async () => {
    const ch = 'chat:moving';
    const slot = await cluster.slot(`{plaza:${ch}}.m`);
    const from = await cluster.owner(slot);
    const to = cluster.nodes.find((m) => m !== from);
    const v = client(nodes[1], [ch]);
    await until(() => v.subscribed.size === 1, 8000, 'subscribed');
    let n = 0, moving = true;
    const publisher = (async () => {
      while (moving || n < 60) await publish(nodes[(n++) % 3], ch, { i: n });
    })();
    await until(() => n >= 20, 8000, 'publishing');
    await cluster.migrate(slot, to);
    await until(() => n >= 40, 8000, 'publishing after the move');
    moving = false;
    await publisher;
    assert.equal(await cluster.owner(slot), to);
    await until(() => v.pubs.get(ch).length === n, 10000, `all ${n} delivered (got ${v.pubs.get(ch).length})`);
    assert.deepEqual(v.pubs.get(ch).map((p) => p.offset), Array.from({ length: n }, (_, i) => i + 1));
    assert.equal(new Set(v.pubs.get(ch).map((p) => p.data.i)).size, n);
    // the keys and the shard subscription are on the new master now
    assert.equal((await redisQuery(to.port, 'EXISTS', `{plaza:${ch}}.m`)), 1);
    assert.equal((await redisQuery(from.port, 'EXISTS', `{plaza:${ch}}.m`)) instanceof Error, true);
    await until(async () => (await redisQuery(to.port, 'PUBSUB', 'SHARDCHANNELS', `{plaza:${ch}}*`)).length === 1,
      8000, 'subscribed on the new master');
    const more = await publish(nodes[0], ch, { i: n + 1 });
    assert.equal(more.offset, n + 1);
    await until(() => v.pubs.get(ch).length === n + 1, 8000, 'live on the new master');
    v.c.disconnect();
  });

  test('a master killed: /healthz names it, its channels fail at once, the others go on', async () => {
    const victim = cluster.nodes[2];
    const chans = Array.from({ length: 24 }, (_, i) => `chat:k-${i}`);
    const owners = await Promise.all(chans.map(async (ch) => cluster.owner(await cluster.slot(`{plaza:${ch}}.m`))));
    const dead = chans.filter((_, i) => owners[i] === victim), alive = chans.filter((_, i) => owners[i] !== victim);
    assert.ok(dead.length && alive.length);
    await victim.stop();
    for (const n of nodes) {
      await until(async () => (await healthz(n)).status === 503, 8000, 'degraded');
      assert.match((await healthz(n)).text, new RegExp(`redis cluster node 127\\.0\\.0\\.1:${victim.port} unreachable`));
    }
    const t0 = Date.now();
    const r = await api(nodes[0], 'publish', { channel: dead[0], data: {} });
    assert.equal(r.status, 503);
    assert.match(r.body.error.message, /engine unavailable/);
    assert.ok(Date.now() - t0 < 500, 'failed at once');
    assert.equal((await api(nodes[1], 'publish', { channel: alive[0], data: {} })).status, 200);
  });
});
