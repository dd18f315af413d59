// Map channels (issue 12; ../shared/map-subscriptions.md) against the real
// binary: the unmodified centrifuge client's newMapSubscription (state,
// live updates and removals, SDK publish/remove, pagination with a small
// page size while writes go on, recovery after a reconnect and after
// unsubscribe, 112 -> resync from scratch, TTL removals), the server API's
// map methods (conditional writes, racing compare-and-set), and the exact
// wire (raw protocol client) for replies and refusals.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { apiCall, rawClient } from './lib/proto.mjs';
import { sleep } from './lib/raw.mjs';
import { hs256 } from './lib/jwt.mjs';

const KEY = 'maps-api-key';
const open = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true };
const config = {
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0 },
  api: { key: KEY },
  engine: { sweep_interval_ms: 50 },
  channel: {
    namespaces: [
      { name: 'lots', ...open, subscription_type: 'map', map: { mode: 'persistent', stream_size: 1000 },
        allow_publish_for_subscriber: true, allow_publish_for_anonymous: true,
        allow_remove_for_subscriber: true, allow_remove_for_anonymous: true },
      { name: 'short', ...open, subscription_type: 'map', map: { mode: 'persistent', stream_size: 3 } },
      { name: 'rec', ...open, subscription_type: 'map', map: { mode: 'recoverable', key_ttl_ms: 400 } },
      { name: 'eph', ...open, subscription_type: 'map', map: { mode: 'ephemeral', key_ttl_ms: 400 } },
      { name: 'paged', ...open, subscription_type: 'map',
        map: { mode: 'persistent', stream_size: 1000, default_page_size: 3, max_page_size: 5 } },
      { name: 'own', ...open, subscription_type: 'map', map: { mode: 'persistent' }, client_key: 'client_id',
        allow_publish_for_client: true, allow_publish_for_anonymous: true },
      { name: 'ro', ...open, subscription_type: 'map', map: { mode: 'persistent' } },
      { name: 'chat', ...open },
    ],
  },
};

let srv;
const api = async (method, params) => {
  const r = await apiCall(srv.url, method, params, { key: KEY });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};
const apiOk = async (method, params) => {
  const b = await api(method, params);
  assert.equal(b.error, undefined, JSON.stringify(b));
  return b.result;
};

const until = async (cond, ms = 5000, what = 'condition') => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timeout: ' + what);
    await sleep(10);
  }
};

// A centrifuge client with a map subscription whose view of the map is
// kept as the client's events describe it.
function mapView(channel, opts = {}) {
  const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 200 });
  const s = opts.presence === 'clients' ? c.newMapClientsSubscription(channel, opts)
    : c.newMapSubscription(channel, { minResubscribeDelay: 50, maxResubscribeDelay: 200, ...opts });
  const v = { c, s, map: new Map(), subscribed: [], syncs: 0, updates: [], errors: [], unsubscribed: [] };
  s.on('subscribed', (ctx) => {
    v.subscribed.push(ctx);
    if (!ctx.recovered) { v.map = new Map(); for (const e of ctx.state || []) v.map.set(e.key, e.data); }
  });
  s.on('sync', (ctx) => { v.syncs++; v.map = new Map(ctx.entries.map((e) => [e.key, e.data])); });
  s.on('update', (ctx) => {
    v.updates.push(ctx);
    if (ctx.removed) v.map.delete(ctx.key);
    else v.map.set(ctx.key, ctx.data);
  });
  s.on('error', (ctx) => v.errors.push(ctx));
  c.on('connected', (ctx) => { v.client = ctx.client; });
  s.on('unsubscribed', (ctx) => v.unsubscribed.push(ctx));
  v.start = async (ms = 5000) => {
    const n = v.subscribed.length;
    c.connect();
    s.subscribe();
    await until(() => v.subscribed.length > n, ms, 'subscribed ' + channel);
  };
  v.close = () => c.disconnect();
  v.obj = () => Object.fromEntries([...v.map.entries()].sort());
  return v;
}

// The server's state of a map, read through the API (all pages).
async function serverState(channel) {
  const r = await apiOk('map_read_state', { channel });
  return Object.fromEntries(r.publications.map((p) => [p.key, p.data]).sort());
}

before(async () => { srv = await startPlaza({ noEcho: true, config }); });
after(async () => { await srv.stop(); });

describe('map subscriptions with the centrifuge client', () => {
  test('an empty map, then live updates and removals from the server API', async () => {
    const v = mapView('lots:empty');
    await v.start();
    assert.deepEqual(v.subscribed[0].state ?? [], []);
    assert.equal(v.subscribed[0].recoverable, true);
    const r1 = await apiOk('map_publish', { channel: 'lots:empty', key: 'a', data: { price: 10 } });
    assert.equal(r1.offset, 1);
    assert.equal(typeof r1.epoch, 'string');
    await apiOk('map_publish', { channel: 'lots:empty', key: 'b', data: { price: 20 }, tags: { by: 'api' } });
    await apiOk('map_remove', { channel: 'lots:empty', key: 'a' });
    await until(() => v.updates.length === 3, 5000, 'three updates');
    assert.deepEqual(v.updates.map((u) => [u.key, !!u.removed]), [['a', false], ['b', false], ['a', true]]);
    assert.deepEqual(v.updates[1].tags, { by: 'api' });
    assert.deepEqual(v.obj(), { b: { price: 20 } });
    v.close();
  });

  test('a pre-seeded map arrives as the subscribed state; SDK publish and remove', async () => {
    for (const k of ['x', 'y', 'z']) await apiOk('map_publish', { channel: 'lots:seeded', key: k, data: { k } });
    const v = mapView('lots:seeded');
    const w = mapView('lots:seeded');
    await v.start();
    await w.start();
    assert.deepEqual(v.subscribed[0].state.map((e) => e.key).sort(), ['x', 'y', 'z']);
    assert.deepEqual(v.obj(), { x: { k: 'x' }, y: { k: 'y' }, z: { k: 'z' } });
    await v.s.publish('n', { k: 'new' });
    await v.s.remove('x');
    await until(() => w.updates.length === 2 && v.updates.length === 2, 5000, 'both see both');
    assert.deepEqual(w.obj(), { n: { k: 'new' }, y: { k: 'y' }, z: { k: 'z' } });
    assert.deepEqual(v.obj(), w.obj());
    assert.equal(w.updates[0].info.client, v.client);              // the writer's ClientInfo
    assert.equal(w.updates[1].info, undefined);                    // a removal carries none
    assert.deepEqual(await serverState('lots:seeded'), w.obj());
    v.close();
    w.close();
  });

  test('pagination with a small page size while writes go on: the state ends exact', async () => {
    for (let i = 0; i < 23; i++) await apiOk('map_publish', { channel: 'paged:p', key: `k${String(i).padStart(2, '0')}`, data: i });
    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) {
        const k = `k${String(i % 30).padStart(2, '0')}`;
        if (i % 4 === 3) await apiOk('map_remove', { channel: 'paged:p', key: k });
        else await apiOk('map_publish', { channel: 'paged:p', key: k, data: 1000 + i });
        i++;
      }
    })();
    const views = [];
    for (let n = 0; n < 5; n++) {
      const v = mapView('paged:p', { pageSize: 2 });
      // pages of 2 chase a writer that does not stop: on the delayed engine
      // under a sanitizer that can take more than 5 s (it ends: the pages
      // go faster than the writes)
      await v.start(20000);
      views.push(v);
    }
    writing = false;
    await writer;
    await apiOk('map_publish', { channel: 'paged:p', key: 'last', data: 'end' });
    const want = await serverState('paged:p');
    for (const v of views) {
      await until(() => v.map.get('last') === 'end', 5000, 'last write');
      assert.deepEqual(v.obj(), want);
      v.close();
    }
  });

  test('recovery after a reconnect and after unsubscribe: nothing missed, nothing twice', async () => {
    await apiOk('map_publish', { channel: 'lots:rec', key: 'a', data: 1 });
    const v = mapView('lots:rec');
    await v.start();
    v.c.disconnect();
    await apiOk('map_publish', { channel: 'lots:rec', key: 'b', data: 2 });
    await apiOk('map_publish', { channel: 'lots:rec', key: 'a', data: 3 });
    await apiOk('map_remove', { channel: 'lots:rec', key: 'b' });
    v.c.connect();
    await until(() => v.subscribed.length === 2, 5000, 'resubscribed');
    assert.equal(v.subscribed[1].recovered, true);
    await until(() => v.updates.length === 3, 5000, 'missed changes');
    assert.deepEqual(v.obj(), { a: 3 });
    assert.equal(v.syncs, 1);                        // only the first load
    v.s.unsubscribe();
    await apiOk('map_publish', { channel: 'lots:rec', key: 'c', data: 4 });
    v.s.subscribe();
    await until(() => v.subscribed.length === 3, 5000, 'subscribed again');
    assert.equal(v.subscribed[2].recovered, true);
    await until(() => v.map.get('c') === 4);
    assert.deepEqual(v.obj(), await serverState('lots:rec'));
    v.close();
  });

  test('a stream too short to recover from: 112, then a fresh state (from scratch)', async () => {
    await apiOk('map_publish', { channel: 'short:s', key: 'a', data: 1 });
    const v = mapView('short:s');
    await v.start();
    v.c.disconnect();
    for (let i = 0; i < 6; i++) await apiOk('map_publish', { channel: 'short:s', key: `k${i}`, data: i });
    await apiOk('map_remove', { channel: 'short:s', key: 'a' });
    v.c.connect();
    await until(() => v.subscribed.length === 2, 8000, 'subscribed after 112');
    assert.equal(v.subscribed[1].recovered, false);
    assert.deepEqual(v.obj(), await serverState('short:s'));
    assert.equal(v.map.has('a'), false);
    v.close();
  });

  test('key TTL: an expired key is a removal update (recoverable and ephemeral)', async () => {
    for (const ch of ['rec:t', 'eph:t']) {
      const v = mapView(ch);
      await v.start();
      await apiOk('map_publish', { channel: ch, key: 'here', data: true });
      await until(() => v.map.has('here'), 3000, 'write');
      const t0 = Date.now();
      await until(() => v.updates.some((u) => u.removed && u.key === 'here'), 3000, 'expiry of ' + ch);
      assert.ok(Date.now() - t0 >= 250, 'not before its TTL');
      assert.deepEqual(v.obj(), {});
      assert.equal(v.subscribed[0].recoverable, ch === 'rec:t');
      v.close();
    }
  });

  test('client_key: a client writes only its own entry', async () => {
    const v = mapView('own:o');
    await v.start();
    await v.s.publish('someone-else', { hi: 1 });
    await until(() => v.updates.length === 1);
    assert.equal(v.updates[0].key, v.updates[0].info.client);
    v.close();
  });
});

describe('map writes from the server API', () => {
  test('conditional writes: key_mode, version, idempotency, compare-and-set', async () => {
    const ch = 'lots:cond';
    const w = (p) => apiOk('map_publish', { channel: ch, data: {}, ...p });
    const r = await w({ key: 'k', key_mode: 'if_new' });
    assert.equal(r.suppressed, undefined);
    assert.deepEqual(await w({ key: 'k', key_mode: 'if_new' }), { offset: r.offset, epoch: r.epoch, suppressed: true, suppress_reason: 'key_exists' });
    assert.equal((await w({ key: 'none', key_mode: 'if_exists' })).suppress_reason, 'key_not_found');
    assert.equal((await w({ key: 'v', version: 2 })).suppressed, undefined);
    assert.equal((await w({ key: 'v', version: 1 })).suppress_reason, 'version');
    assert.equal((await w({ key: 'i', idempotency_key: 'once' })).suppressed, undefined);
    assert.equal((await w({ key: 'i', idempotency_key: 'once' })).suppress_reason, 'idempotency');
    assert.equal((await apiOk('map_remove', { channel: ch, key: 'none' })).suppress_reason, 'key_not_found');
    const k = (await apiOk('map_read_state', { channel: ch, key: 'k' })).publications[0];
    assert.equal((await w({ key: 'k', expected_offset: k.offset + 100 })).suppress_reason, 'position_mismatch');
    assert.equal((await w({ key: 'k', expected_offset: k.offset })).suppressed, undefined);
    assert.equal((await apiOk('map_stats', { channel: ch })).num_keys, 3);
  });

  test('racing compare-and-set: exactly one of N writers that saw one offset wins', async () => {
    const ch = 'lots:auction';
    const start = await apiOk('map_publish', { channel: ch, key: 'lot1', data: { price: 100 } });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => apiOk('map_publish', {
      channel: ch, key: 'lot1', data: { price: 101 + i }, expected_offset: start.offset,
    })));
    const winners = results.filter((r) => !r.suppressed);
    assert.equal(winners.length, 1);
    assert.ok(results.filter((r) => r.suppressed).every((r) => r.suppress_reason === 'position_mismatch'));
    const st = (await apiOk('map_read_state', { channel: ch, key: 'lot1' })).publications[0];
    assert.equal(st.offset, winners[0].offset);
  });

  test('read_state pages, read_stream, clear; refusals name the field', async () => {
    const ch = 'lots:pages';
    for (const k of ['c', 'a', 'b', 'd']) await apiOk('map_publish', { channel: ch, key: k, data: k });
    const p1 = await apiOk('map_read_state', { channel: ch, limit: 3 });
    assert.deepEqual(p1.publications.map((p) => p.key), ['a', 'b', 'c']);
    assert.equal(p1.cursor, 'c');
    const p2 = await apiOk('map_read_state', { channel: ch, limit: 3, cursor: p1.cursor });
    assert.deepEqual(p2.publications.map((p) => p.key), ['d']);
    assert.equal(p2.cursor, undefined);
    const s = await apiOk('map_read_stream', { channel: ch, since: { offset: 2, epoch: p1.epoch }, limit: -1 });
    assert.deepEqual(s.publications.map((p) => [p.key, p.offset]), [['b', 3], ['d', 4]]);
    await apiOk('map_clear', { channel: ch });
    assert.equal((await apiOk('map_stats', { channel: ch })).num_keys, 0);
    const after = await apiOk('map_read_stream', { channel: ch, since: { offset: 4 }, limit: -1 });
    assert.equal(after.publications.length, 4);
    assert.ok(after.publications.every((p) => p.removed === true && p.data === undefined));

    const err = async (m, p, code, re) => {
      const b = await api(m, p);
      assert.equal(b.error?.code, code, JSON.stringify(b));
      assert.match(b.error.message, re);
    };
    await err('map_publish', { channel: 'chat:x', key: 'k', data: 1 }, 107, /channel: not a map channel/);
    await err('map_publish', { channel: ch, data: 1 }, 107, /key required/);
    await err('map_publish', { channel: ch, key: '', data: 1 }, 107, /key: must not be empty/);
    await err('map_publish', { channel: ch, key: 'k' }, 107, /data required/);
    await err('map_publish', { channel: ch, key: 'k', data: 1, key_mode: 'always' }, 107, /key_mode/);
    await err('map_publish', { channel: ch, key: 'k', data: 1, version: -1 }, 107, /version/);
    await err('map_publish', { channel: 'nope:x', key: 'k', data: 1 }, 102, /unknown namespace/);
    await err('map_read_state', { channel: ch, epoch: 'other' }, 112, /epoch/);
    await err('map_remove', { channel: ch }, 107, /key required/);
  });
});

describe('the wire, by hand', () => {
  test('live reply shape; pages with cursor; refusals', async () => {
    for (const k of ['a', 'b', 'c', 'd', 'e']) await apiOk('map_publish', { channel: 'paged:w', key: k, data: k });
    const r = await rawClient(srv.wsUrl);
    const p1 = await r.cmd({ subscribe: { channel: 'paged:w', type: 1, phase: 2, flag: 1 } });
    assert.equal(p1.subscribe.phase, 2);
    assert.equal(p1.subscribe.cursor, 'c');
    assert.equal(p1.subscribe.offset, 5);
    assert.deepEqual(p1.subscribe.state.map((e) => e.key), ['a', 'b', 'c']);
    await apiOk('map_publish', { channel: 'paged:w', key: 'e', data: 'E' });        // offset 6
    await apiOk('map_publish', { channel: 'paged:w', key: 'f', data: 'f' });        // offset 7
    const p2 = await r.cmd({ subscribe: { channel: 'paged:w', type: 1, phase: 2, flag: 1, cursor: 'c',
                                          offset: 5, epoch: p1.subscribe.epoch } });
    assert.equal(p2.subscribe.phase, undefined);                                     // live
    assert.deepEqual(p2.subscribe.state.map((e) => e.key), ['d']);                  // e changed after 5
    assert.deepEqual(p2.subscribe.publications.map((e) => [e.key, e.offset]), [['e', 6], ['f', 7]]);
    assert.equal(p2.subscribe.offset, 7);
    assert.equal(p2.subscribe.recoverable, true);
    await apiOk('map_remove', { channel: 'paged:w', key: 'a' });
    const push = await r.waitFor((m) => m.push?.pub?.key === 'a');
    assert.deepEqual({ ...push.push.pub, time: 0 }, { key: 'a', removed: true, offset: 8, time: 0 });

    const codes = async (sub) => (await r.cmd({ subscribe: sub })).error?.code;
    assert.equal(await codes({ channel: 'paged:w', type: 1, phase: 2 }), 105);       // already
    assert.equal(await codes({ channel: 'lots:t', type: 2, phase: 2 }), 107);        // not map_clients
    assert.equal(await codes({ channel: 'chat:t', type: 1, phase: 2 }), 107);        // a stream channel
    assert.equal(await codes({ channel: 'lots:t', type: 1, phase: 2, tf: { op: 'eq' } }), 107);
    assert.equal(await codes({ channel: 'eph:t', type: 1, phase: 1, offset: 0 }), 107);  // no stream
    assert.equal(await codes({ channel: 'lots:t', type: 1, phase: 1, offset: 5, epoch: 'zz', recover: true }), 112);
    assert.equal(await codes({ channel: 'lots:t', type: 1, phase: 2, cursor: 'a', offset: 1, epoch: 'zz' }), 112);
    const pub = async (p) => (await r.cmd({ publish: { channel: 'lots:t', type: 1, ...p } })).error?.code;
    assert.equal(await pub({ data: 1 }), 107);                                         // no key
    assert.equal(await pub({ key: 'k', data: 1 }), 103);                               // not subscribed
    assert.equal((await r.cmd({ publish: { channel: 'ro:t', type: 1, key: 'k', data: 1 } })).error?.code, 103);
    assert.equal((await r.cmd({ publish: { channel: 'chat:t', type: 1, key: 'k', data: 1 } })).error?.code, 107);
    assert.equal((await r.cmd({ publish: { channel: 'lots:t', data: 1 } })).error?.code, 107);  // not a map write
    r.close();
  });

  test('stream pages (phase 1) up to the live reply', async () => {
    const ch = 'paged:s';
    for (let i = 1; i <= 12; i++) await apiOk('map_publish', { channel: ch, key: 'k' + (i % 4), data: i });
    const r = await rawClient(srv.wsUrl);
    const epoch = (await apiOk('map_read_state', { channel: ch, limit: 0 })).epoch;
    let offset = 0;
    const seen = [];
    for (let n = 0; n < 10; n++) {
      const rep = (await r.cmd({ subscribe: { channel: ch, type: 1, phase: 1, offset, epoch, limit: 5 } })).subscribe;
      seen.push(...rep.publications.map((p) => p.offset));
      offset = rep.offset;
      if (rep.phase === undefined) break;
      assert.equal(rep.phase, 1);
    }
    assert.deepEqual(seen, Array.from({ length: 12 }, (_, i) => i + 1));
    assert.equal(offset, 12);
    r.close();
  });
});

describe('presence as live maps (map_clients, map_users)', () => {
  const SECRET = 'maps-presence-secret';
  let psrv;
  before(async () => {
    psrv = await startPlaza({
      noEcho: true,
      config: {
        client: { token_hmac_secret_key: SECRET, command_rate_limit: 0 },
        engine: { sweep_interval_ms: 50 },
        channel: {
          namespaces: [
            { name: 'room', allow_subscribe_for_client: true,
              map_clients_presence_channel_prefix: 'pc:', map_users_presence_channel_prefix: 'pu:' },
            { name: 'pc', allow_subscribe_for_client: true, subscription_type: 'map_clients',
              map: { mode: 'recoverable', key_ttl_ms: 600 } },
            { name: 'pu', allow_subscribe_for_client: true, subscription_type: 'map_users',
              map: { mode: 'ephemeral', key_ttl_ms: 600 } },
          ],
        },
      },
    });
  });
  after(async () => { await psrv.stop(); });

  const token = (user) => hs256({ sub: user, exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
  function member(user) {
    const c = new Centrifuge(psrv.wsUrl, { websocket: WebSocket, token: token(user) });
    const s = c.newSubscription('room:1');
    const m = { c, s, client: null };
    c.on('connected', (ctx) => { m.client = ctx.client; });
    m.join = async () => {
      const done = new Promise((r) => s.once('subscribed', r));
      c.connect();
      s.subscribe();
      await done;
    };
    return m;
  }
  function watch(kind) {
    const c = new Centrifuge(psrv.wsUrl, { websocket: WebSocket, token: token('watcher') });
    const s = kind === 'clients' ? c.newMapClientsSubscription('pc:room:1') : c.newMapUsersSubscription('pu:room:1');
    const w = { c, s, map: new Map(), removed: [] };
    s.on('subscribed', (ctx) => { if (!ctx.recovered) w.map = new Map((ctx.state || []).map((e) => [e.key, e.info])); });
    s.on('sync', (ctx) => { w.map = new Map(ctx.entries.map((e) => [e.key, e.info])); });
    s.on('update', (u) => { if (u.removed) { w.map.delete(u.key); w.removed.push(u.key); } else w.map.set(u.key, u.info); });
    w.start = async () => {
      const done = new Promise((r) => s.once('subscribed', r));
      c.connect();
      s.subscribe();
      await done;
    };
    return w;
  }

  test('who is here, tabs per user, leave and expiry, refreshed while connected', async () => {
    const tab1 = member('alice'), tab2 = member('alice');
    await tab1.join();                                  // before the watchers: in their state
    const clients = watch('clients'), users = watch('users');
    await clients.start();
    await users.start();
    await tab2.join();
    const bob = await rawClient(psrv.wsUrl, { token: token('bob') });   // killed below
    assert.ok((await bob.cmd({ subscribe: { channel: 'room:1' } })).subscribe);
    await until(() => clients.map.size === 3 && users.map.size === 2, 5000, 'three clients, two users');
    const tabs = {};
    for (const info of clients.map.values()) tabs[info.user] = (tabs[info.user] || 0) + 1;
    assert.deepEqual(tabs, { alice: 2, bob: 1 });
    assert.equal(clients.map.get(tab1.client).client, tab1.client);
    assert.deepEqual([...users.map.keys()].sort(), ['alice', 'bob']);

    await sleep(1500);                                  // 2.5 TTLs: refreshes keep everyone
    assert.equal(clients.map.size, 3);
    assert.equal(users.map.size, 2);

    tab2.c.disconnect();                                // a tab closes: its entry goes at once
    await until(() => clients.removed.includes(tab2.client), 3000, 'tab2 removed');
    assert.equal(users.map.has('alice'), true);         // alice is still here (tab1)
    bob.kill();                                         // a killed connection: no close frame
    await until(() => clients.removed.includes(bob.client), 3000, 'bob removed');
    await until(() => !users.map.has('bob'), 3000, 'bob expires from the users map');
    await sleep(700);
    assert.deepEqual([...users.map.keys()], ['alice']);
    for (const x of [tab1, clients, users]) x.c.disconnect();
  });
});
