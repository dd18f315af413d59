// The server side of the five apps (issue 13) against the real binary,
// without a browser: sign-in tokens (POST /v1/sign-in), the HTTP presence
// API (/v1/spaces) next to WebSocket presence in one map, auctions
// (auction.open / auction.bid: the rules, racing bids of which exactly one
// wins, order, anti-sniping, the bid interval) and the per-user publish
// limits (publish_rate_limit, max_publication_bytes).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { hs256, nowS } from './lib/jwt.mjs';
import { sleep } from './lib/raw.mjs';

const SECRET = 'apps-secret';
const KEY = 'apps-api-key';
const config = {
  region: 'eu-west',
  client: { allow_anonymous_connect_without_token: true, token_hmac_secret_key: SECRET, sign_in: true,
    command_rate_limit: 0 },
  api: { key: KEY },
  spaces: { namespace: 'space' },
  engine: { sweep_interval_ms: 50 },
  channel: {
    namespaces: [
      { name: 'space', allow_subscribe_for_client: true, map_clients_presence_channel_prefix: 'spacepc:' },
      { name: 'spacepc', subscription_type: 'map_clients', map: { mode: 'recoverable', key_ttl_ms: 1500 },
        allow_subscribe_for_client: true },
      { name: 'auction', subscription_type: 'map', map: { mode: 'persistent', stream_size: 1000 },
        allow_subscribe_for_client: true, auction: { enabled: true, extend_ms: 10000, bid_interval_ms: 100 } },
      { name: 'fast', subscription_type: 'map', map: { mode: 'persistent', stream_size: 1000 },
        allow_subscribe_for_client: true, auction: { enabled: true } },
      { name: 'chat', allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true,
        allow_publish_for_subscriber: true, allow_publish_for_anonymous: true,
        publish_rate_limit: 2, publish_rate_burst: 3, max_publication_bytes: 64 },
    ],
  },
};

let srv;
before(async () => { srv = await startPlaza({ noEcho: true, config }); });
after(async () => { if (srv) assert.equal((await srv.stop()).code, 0); });

async function signIn(body) {
  const r = await fetch(srv.url + '/v1/sign-in', { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

async function client(user, name = user) {
  const { body } = await signIn({ user, name, color: '#00aa00' });
  const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, token: body.token });
  c.connect();
  await c.ready(5000);
  return c;
}

async function spaces(method, path, { key, token, body } = {}) {
  const headers = {};
  if (key) headers['X-API-Key'] = key;
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(srv.url + '/v1/spaces/' + path, {
    method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

// Resolves with the map's entries (key -> {data, info}) once pred holds.
function watchMap(c, channel, clients = false) {
  const sub = clients ? c.newMapClientsSubscription(channel) : c.newMapSubscription(channel);
  const view = { entries: new Map(), updates: [], sub };
  sub.on('subscribed', (ctx) => {
    if (ctx.recovered) return;
    view.entries = new Map();
    for (const e of ctx.state || []) view.entries.set(e.key, e);
  });
  sub.on('update', (u) => {
    view.updates.push(u);
    if (u.removed) view.entries.delete(u.key); else view.entries.set(u.key, u);
  });
  sub.subscribe();
  view.until = async (pred, ms = 10000) => {
    const end = Date.now() + ms;
    while (!pred(view.entries)) {
      if (Date.now() > end) throw new Error('map did not reach the state: ' + JSON.stringify([...view.entries.keys()]));
      await sleep(20);
    }
  };
  return view;
}

describe('sign-in', () => {
  test('a token for the chosen user and name, with this node\'s region in conn_info', async () => {
    const r = await signIn({ user: 'u-ann_1', name: 'Ann Ö', color: '#E50000' });
    assert.equal(r.status, 200);
    assert.equal(r.body.user, 'u-ann_1');
    assert.equal(r.body.region, 'eu-west');
    assert.equal(r.body.expires_in, 86400);
    const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, token: r.body.token });
    const joined = new Promise((resolve) => {
      const s = c.newSubscription('chat:signin', { joinLeave: true });
      s.on('publication', (ctx) => resolve(ctx.info));
      s.subscribe();
      s.ready(5000).then(() => s.publish({ text: 'hi' }));
    });
    c.connect();
    const info = await joined;
    assert.equal(info.user, 'u-ann_1');
    assert.deepEqual(info.connInfo, { name: 'Ann Ö', color: '#E50000', region: 'eu-west' });
    c.disconnect();
  });

  test('bad fields are 400 naming the field; other methods 405', async () => {
    for (const [body, field] of [
      [{ name: 'A', color: '#000000' }, /^user: /],
      [{ user: 'a b', name: 'A', color: '#000000' }, /^user: /],
      [{ user: 'x'.repeat(65), name: 'A', color: '#000000' }, /^user: /],
      [{ user: 'a', name: '', color: '#000000' }, /^name: /],
      [{ user: 'a', name: '   ', color: '#000000' }, /^name: /],
      [{ user: 'a', name: 'x'.repeat(33), color: '#000000' }, /^name: /],
      [{ user: 'a', name: 'a\nb', color: '#000000' }, /^name: /],
      [{ user: 'a', name: 'A', color: 'red' }, /^color: /],
      [{ user: 'a', name: 'A', color: 7 }, /^color: /],
    ]) {
      const r = await signIn(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 107);
      assert.match(r.body.error.message, field);
    }
    const notJson = await fetch(srv.url + '/v1/sign-in', { method: 'POST', body: '{"user":' });
    assert.equal(notJson.status, 400);
    assert.match((await notJson.json()).error.message, /^body: /);
    const get = await fetch(srv.url + '/v1/sign-in');
    assert.equal(get.status, 405);
  });

  test('off unless client.sign_in; on needs the HMAC secret', async () => {
    const off = await startPlaza({ noEcho: true, single: true });
    try {
      const r = await fetch(off.url + '/v1/sign-in', { method: 'POST', body: '{}' });
      assert.equal(r.status, 404);
      assert.match((await r.json()).error.message, /client\.sign_in/);
    } finally { await off.stop(); }
    await assert.rejects(startPlaza({ noEcho: true, single: true, args: ['--set', 'client.sign_in=true'] }),
      /client\.sign_in.*client\.token_hmac_secret_key/s);
  });
});

describe('the HTTP presence API', () => {
  test('HTTP entries and WebSocket subscribers in one live list; heartbeat, delete, expiry', async () => {
    const ann = await client('ann', 'Ann');
    const view = watchMap(ann, 'spacepc:space:hall', true);
    const s = ann.newSubscription('space:hall');
    s.subscribe();
    await view.until((m) => [...m.values()].some((e) => e.info?.user === 'ann'));
    const wsEntry = [...view.entries.values()].find((e) => e.info.user === 'ann');
    assert.equal(wsEntry.info.connInfo?.name ?? wsEntry.info.conn_info?.name, 'Ann');

    const put = await spaces('PUT', 'hall/users/kiosk', { key: KEY, body: { name: 'Lobby kiosk', color: '#0000ff' } });
    assert.equal(put.status, 201);
    assert.deepEqual(put.body.result, { created: true, ttl_ms: 1500 });
    await view.until((m) => m.has('http:kiosk'));
    assert.deepEqual(view.entries.get('http:kiosk').data, { name: 'Lobby kiosk', color: '#0000ff' });
    const beat = await spaces('PUT', 'hall/users/kiosk', { key: KEY, body: { name: 'Lobby kiosk' } });
    assert.equal(beat.status, 200);
    assert.equal(beat.body.result.created, false);

    const list = await spaces('GET', 'hall/users', { key: KEY });
    assert.equal(list.status, 200);
    const users = list.body.result.users;
    assert.deepEqual(users.map((u) => u.info.user).sort(), ['ann', 'kiosk']);
    const kiosk = users.find((u) => u.key === 'http:kiosk');
    assert.ok(kiosk.time > Date.now() - 60000 && kiosk.offset > 0);
    assert.equal(users.find((u) => u.info.user === 'ann').info.conn_info.name, 'Ann');

    // heartbeats keep it; without them it expires within the TTL
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      assert.equal((await spaces('PUT', 'hall/users/kiosk', { key: KEY, body: {} })).status, 200);
    }
    assert.ok(view.entries.has('http:kiosk'), 'heartbeats kept the entry past its TTL');
    await view.until((m) => !m.has('http:kiosk'), 5000);

    // a user's own token puts and deletes that user
    const { body: bob } = await signIn({ user: 'bob', name: 'Bob', color: '#111111' });
    assert.equal((await spaces('PUT', 'hall/users/bob', { token: bob.token, body: { name: 'Bob' } })).status, 201);
    await view.until((m) => m.has('http:bob'));
    const del = await spaces('DELETE', 'hall/users/bob', { token: bob.token });
    assert.equal(del.status, 200);
    await view.until((m) => !m.has('http:bob'));
    ann.disconnect();
  });

  test('refusals: no or bad credentials 401, another user 403, bad input 400, wrong method 405', async () => {
    const { body: bob } = await signIn({ user: 'bob', name: 'Bob', color: '#111111' });
    const cases = [
      [await spaces('GET', 'hall/users'), 401, /unauthorized/],
      [await spaces('GET', 'hall/users', { key: 'wrong' }), 401, /unauthorized/],
      [await spaces('GET', 'hall/users', { token: 'not.a.jwt' }), 401, /unauthorized/],
      [await spaces('GET', 'hall/users', { token: hs256({ sub: 'x', exp: nowS() - 10 }, SECRET) }), 401, /expired/],
      [await spaces('GET', 'hall/users', { token: hs256({ sub: 'x' }, 'other-secret') }), 401, /unauthorized/],
      [await spaces('PUT', 'hall/users/ann', { token: bob.token, body: {} }), 403, /only that user/],
      [await spaces('PUT', 'hall/users/bob', { token: bob.token, body: '[1]' }), 400, /^body: /],
      [await spaces('PUT', 'hall/users/bob', { token: bob.token, body: '{"a":' }), 400, /^body: /],
      [await spaces('PUT', 'hall/users/bob', { token: bob.token, body: { a: 'x'.repeat(5000) } }), 400, /4096/],
      [await spaces('PUT', 'ha%20ll/users/bob', { key: KEY, body: {} }), 400, /^space: /],
      [await spaces('PUT', 'hall/users/b%2Fb', { key: KEY, body: {} }), 400, /^user: /],
      [await spaces('GET', 'hall/people', { key: KEY }), 400, /^path: /],
      [await spaces('POST', 'hall/users/bob', { key: KEY, body: {} }), 405, /^method: /],
      [await spaces('DELETE', 'hall/users', { key: KEY }), 405, /^method: /],
    ];
    for (const [r, status, msg] of cases) {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.match(r.body.error.message, msg);
    }
    const list = await spaces('GET', 'hall/users', { key: KEY });
    assert.ok(!list.body.result.users.some((u) => u.info.user === 'ann' || u.info.user === 'bob'),
      'the refused calls wrote nothing');
  });
});

describe('auctions', () => {
  const ch = 'auction:main';
  const open = (c, p = {}) => c.rpc('auction.open', { channel: ch, title: 'Bike', start_price: 100, increment: 10,
    duration_ms: 60000, ...p }).then((r) => r.data);
  const bid = (c, lot, amount, channel = ch) => c.rpc('auction.bid', { channel, lot, amount })
    .then((r) => ({ ok: true, ...r.data }), (e) => ({ ok: false, code: e.code, message: e.message }));

  test('bids are checked: the minimum, the increment, the leader, the end, the caller', async () => {
    const ann = await client('ann', 'Ann'), bob = await client('bob', 'Bob');
    const view = watchMap(bob, ch);
    const lot = await open(ann, { duration_ms: 10000 });
    assert.match(lot.lot, /^lot-\d{13}-[0-9a-f]{4}$/);
    await view.until((m) => m.has(lot.lot));
    const d = view.entries.get(lot.lot).data;
    assert.deepEqual({ ...d, ends_at: 0 }, { title: 'Bike', start_price: 100, increment: 10, price: 100, bids: 0,
      leader: null, leader_name: null, ends_at: 0, bid_at: null, opened_by: 'ann', opened_by_name: 'Ann' });

    const below = await bid(bob, lot.lot, 99);
    assert.deepEqual([below.code, below.message], [107, 'bad request (amount: at least 100)']);
    await sleep(110);
    const first = await bid(bob, lot.lot, 100);
    assert.equal(first.ok, true, JSON.stringify(first));
    assert.equal(first.price, 100);
    await sleep(110);
    const again = await bid(bob, lot.lot, 200);
    assert.match(again.message, /you lead already/);
    const small = await bid(ann, lot.lot, 105);
    assert.match(small.message, /at least 110/);
    await sleep(110);
    for (const [p, msg] of [
      [{ lot: lot.lot, amount: 1.5 }, /amount: /], [{ lot: lot.lot }, /amount: /], [{ amount: 200 }, /lot: /],
      [{ lot: 'a b', amount: 200 }, /lot: /], [{ lot: 'lot-none', amount: 200 }, /lot: no such lot/]]) {
      await sleep(110);
      const r = await ann.rpc('auction.bid', { channel: ch, ...p }).catch((e) => e);
      assert.equal(r.code, 107, JSON.stringify(p));
      assert.match(r.message, msg);
    }
    const notAuction = await bid(ann, lot.lot, 500, 'chat:x');
    assert.equal(notAuction.code, 108);
    const anon = new Centrifuge(srv.wsUrl, { websocket: WebSocket });
    anon.connect();
    await anon.ready(5000);
    const a = await bid(anon, lot.lot, 500);
    assert.equal(a.code, 103);
    anon.disconnect();
    for (const [p, msg] of [[{ title: '' }, /title: /], [{ start_price: 0 }, /start_price: /],
      [{ increment: -1 }, /increment: /], [{ duration_ms: 5 }, /duration_ms: /], [{ title: 'x'.repeat(81) }, /title: /]]) {
      const r = await ann.rpc('auction.open', { channel: ch, title: 'T', start_price: 1, increment: 1, duration_ms: 60000, ...p })
        .catch((e) => e);
      assert.equal(r.code, 107, JSON.stringify(p));
      assert.match(r.message, msg);
    }
    // the refused bids changed nothing
    await sleep(200);
    const now = view.entries.get(lot.lot).data;
    assert.equal(now.price, 100);
    assert.equal(now.bids, 1);
    assert.equal(now.leader, 'bob');
    assert.equal(now.leader_name, 'Bob');
    ann.disconnect(); bob.disconnect();
  });

  test('racing bids of the same amount: exactly one wins; every watcher sees the bids in order', async () => {
    const bidders = await Promise.all([...Array(8)].map((_, i) => client('racer' + i)));
    const watchers = bidders.slice(0, 3).map((c) => watchMap(c, 'fast:race'));
    for (const w of watchers) await w.sub.ready(5000);
    const lot = (await bidders[0].rpc('auction.open', { channel: 'fast:race', title: 'Race', start_price: 10,
      increment: 5, duration_ms: 60000 })).data.lot;
    for (const w of watchers) await w.until((m) => m.has(lot));
    let expected = 10;
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all(bidders.map((c) => bid(c, lot, expected, 'fast:race')));
      const winners = results.filter((r) => r.ok);
      assert.equal(winners.length, 1, JSON.stringify(results));
      for (const r of results.filter((x) => !x.ok)) assert.match(r.message, /at least|you lead/);
      expected += 5;
    }
    for (const w of watchers) {
      await w.until((m) => m.get(lot)?.data.bids === 5);
      // the opening may come in the state or as an update: the bids are updates
      const prices = w.updates.filter((u) => u.key === lot && u.data.bids > 0).map((u) => u.data.price);
      assert.deepEqual(prices, [10, 15, 20, 25, 30], 'each winning bid, once, in order');
    }
    for (const c of bidders) c.disconnect();
  });

  test('a bid near the end extends it; after the end bids are refused; one bid per 100 ms', async () => {
    const ann = await client('ann2'), bob = await client('bob2');
    const lot = await open(ann, { duration_ms: 10000 });
    await sleep(20);
    const r = await bid(bob, lot.lot, 100);
    assert.equal(r.extended, true, 'within extend_ms (10 s) of the end');
    assert.ok(r.ends_at >= lot.ends_at && r.ends_at > Date.now() + 9000);
    const quick = await bid(bob, lot.lot, 500);
    assert.equal(quick.code, 111);
    assert.match(quick.message, /one bid per 100 ms/);
    // fast:* has no extension and no interval: a short lot ends
    const short = (await ann.rpc('auction.open', { channel: 'fast:end', title: 'Short', start_price: 1, increment: 1,
      duration_ms: 10000 })).data;
    await sleep(Math.max(0, short.ends_at - Date.now()) + 50);
    const late = await bid(bob, short.lot, 5, 'fast:end');
    assert.match(late.message, /lot: ended/);
    ann.disconnect(); bob.disconnect();
  });
});

describe('auctions over HTTP', () => {
  const post = async (path, body, headers = {}) => {
    const r = await fetch(srv.url + '/auctions/' + path, { method: 'POST', headers, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  test('a backend opens a named lot and bids for users with the API key; a user bids with its token', async () => {
    const watcher = await client('watcher');
    const view = watchMap(watcher, 'auction:http');
    const key = { 'X-API-Key': KEY };
    const opened = await post('auction:http/lots', { lot: 'vase', title: 'Vase', start_price: 50, increment: 5,
      duration_ms: 60000, user: 'house', name: 'The house' }, key);
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    assert.equal(opened.body.result.lot, 'vase');
    const taken = await post('auction:http/lots', { lot: 'vase', title: 'Vase', start_price: 1, increment: 1,
      duration_ms: 60000, user: 'house' }, key);
    assert.equal(taken.status, 400);
    assert.match(taken.body.error.message, /lot: taken/);
    const b1 = await post('auction:http/lots/vase/bids', { amount: 50, user: 'carol', name: 'Carol' }, key);
    assert.equal(b1.status, 200, JSON.stringify(b1.body));
    assert.equal(b1.body.result.price, 50);
    const { body: dan } = await signIn({ user: 'dan', name: 'Dan', color: '#123123' });
    const b2 = await post('auction:http/lots/vase/bids', { amount: 52 }, { Authorization: 'Bearer ' + dan.token });
    assert.equal(b2.status, 400);
    assert.match(b2.body.error.message, /at least 55/);
    await sleep(110);
    const b3 = await post('auction:http/lots/vase/bids', { amount: 55 }, { Authorization: 'Bearer ' + dan.token });
    assert.equal(b3.status, 200);
    await view.until((m) => m.get('vase')?.data.bids === 2);
    const d = view.entries.get('vase').data;
    assert.deepEqual([d.price, d.leader, d.leader_name, d.opened_by_name], [55, 'dan', 'Dan', 'The house']);
    for (const [path, body, headers, status, msg] of [
      ['auction:http/lots/vase/bids', { amount: 60 }, {}, 401, /unauthorized/],
      ['auction:http/lots/vase/bids', { amount: 60 }, key, 400, /user: required/],
      ['auction:http/lots/vase/bids', { amount: 'x', user: 'eve' }, key, 400, /amount: /],
      ['auction:http/lots/nope/bids', { amount: 60, user: 'eve' }, key, 400, /no such lot/],
      ['auction:http/lots/vase/offers', { amount: 60, user: 'eve' }, key, 400, /path: /],
      ['chat:x/lots/vase/bids', { amount: 60, user: 'eve' }, key, 404, /not an auction/],
    ]) {
      const r = await post(path, body, headers);
      assert.equal(r.status, status, path + ' ' + JSON.stringify(r.body));
      assert.match(r.body.error.message, msg);
    }
    const get = await fetch(srv.url + '/auctions/auction:http/lots');
    assert.equal(get.status, 405);
    watcher.disconnect();
  });
});

describe('publish limits', () => {
  test('per user per second with a burst, and the largest publication, with messages', async () => {
    const c = await client('talker');
    const s = c.newSubscription('chat:limits');
    s.subscribe();
    await s.ready(5000);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await s.publish({ i }).then(() => 'ok', (e) => e));
    assert.deepEqual(results.slice(0, 3), ['ok', 'ok', 'ok']);
    assert.equal(results[3].code, 111);
    assert.match(results[3].message, /at most 2 per second: retry after \d+ ms/);
    // another connection of the same user shares the bucket
    const c2 = await client('talker');
    const s2 = c2.newSubscription('chat:limits');
    s2.subscribe();
    await s2.ready(5000);
    const shared = await s2.publish({ i: 9 }).catch((e) => e);
    assert.equal(shared.code, 111);
    await sleep(600);
    await s2.publish({ i: 10 });
    const big = await s2.publish({ text: 'x'.repeat(80) }).catch((e) => e);
    assert.equal(big.code, 107);
    assert.match(big.message, /data: larger than 64 bytes/);
    const hist = await s2.history({ limit: -1 }).catch(() => null);
    assert.equal(hist, null, 'chat:limits keeps no history: nothing to check there');
    c.disconnect(); c2.disconnect();
  });
});
