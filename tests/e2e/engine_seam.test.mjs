// The engine seam from the outside (docs/ARCHITECTURE.md, "The engine
// seam"): answers that come later and in order (pipelined API requests, a
// client's commands one at a time), engine failures as clear errors (the
// test-only delayed engine fails the channels of engine.delay_fail_prefix),
// bounded queues whose overflow makes subscribers reconnect and recover,
// stream metadata freed once a channel has neither history nor
// subscribers, 32-bit subscription counts, and history limits checked.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { engineDelayed, startPlaza, metrics } from './lib/server.mjs';
import { sleep } from './lib/raw.mjs';
import { apiCall, rawClient } from './lib/proto.mjs';

const KEY = 'engine-seam-key';
const anyone = { allow_subscribe_for_client: true, allow_subscribe_for_anonymous: true,
  // anonymous clients (most tests connect without a token) pass the for_client /
  // for_subscriber rules of the namespaces that set them
  allow_publish_for_anonymous: true, allow_presence_for_anonymous: true, allow_history_for_anonymous: true };
const config = (extra = {}) => ({
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0, ...(extra.client || {}) },
  api: { key: KEY },
  channel: {
    options: { ...anyone },
    namespaces: [
      { name: 'h', ...anyone, history_size: 1000, force_recovery: true,
        allow_publish_for_subscriber: true, allow_history_for_subscriber: true,
        presence: true, allow_presence_for_subscriber: true },
      { name: 't', ...anyone, history_size: 1, history_ttl_ms: 200 },
      { name: 'fail', ...anyone, history_size: 10, force_recovery: true, presence: true,
        allow_publish_for_client: true, allow_presence_for_subscriber: true,
        allow_history_for_subscriber: true },
    ],
    ...(extra.channel || {}),
  },
  ...(extra.top || {}),
});

// Starts a server on a given engine; null when this build has no such
// engine (the delayed one exists only in builds with PLAZA_TEST_ENGINES).
async function serverOn(engine, cfg, args = []) {
  try {
    return await startPlaza({ noEcho: true, config: cfg, args: ['--set', `engine.type=${engine}`, ...args] });
  } catch (e) {
    if (/unknown engine "delayed"/.test(e.message)) return null;
    throw e;
  }
}

describe('answers later, in order', () => {
  let srv;
  before(async () => { srv = await startPlaza({ noEcho: true, config: config() }); });
  after(async () => { await srv.stop(); });

  test('pipelined API requests on one connection are answered in order', async () => {
    const body = (m, p) => { const j = JSON.stringify(p); return `POST /api/${m} HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nContent-Length: ${Buffer.byteLength(j)}\r\n\r\n${j}`; };
    const sock = net.connect(srv.port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => { got += d; });
    await new Promise((r) => sock.once('connect', r));
    sock.write(body('publish', { channel: 'h:pipe', data: { n: 1 } }) + body('history', { channel: 'h:pipe', limit: -1 }) +
               body('publish', { channel: 'h:pipe', data: { n: 2 } }) + body('info', {}));
    const t0 = Date.now();
    while ((got.match(/HTTP\/1\.1 200/g) || []).length < 4 && Date.now() - t0 < 5000) await sleep(20);
    sock.destroy();
    const bodies = got.split(/HTTP\/1\.1 200 OK\r\n/).slice(1).map((r) => JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4)));
    assert.equal(bodies.length, 4, got);
    assert.equal(bodies[0].result.offset, 1);
    assert.deepEqual(bodies[1].result.publications.map((p) => p.data), [{ n: 1 }]);
    assert.equal(bodies[2].result.offset, 2);
    assert.ok(bodies[3].result.nodes);
  });

  test("a client's commands run one at a time, in order, across frames", async () => {
    const c = await rawClient(srv.wsUrl);
    const ch = 'h:order';
    c.send({ id: 10, subscribe: { channel: ch } }, { id: 11, publish: { channel: ch, data: 'a' } },
           { id: 12, history: { channel: ch, limit: -1 } });
    c.send({ id: 13, publish: { channel: ch, data: 'b' } }, { id: 14, presence_stats: { channel: ch } });
    await c.waitFor((m) => m.id === 14);
    const ids = c.msgs.filter((m) => m.id >= 10).map((m) => m.id);
    assert.deepEqual(ids, [10, 11, 12, 13, 14]);
    const hist = c.msgs.find((m) => m.id === 12).history;
    assert.deepEqual(hist.publications.map((p) => p.data), ['a']);
    await c.waitFor((m) => m.push?.pub?.data === 'b');   // events may come after the replies
    const i10 = c.msgs.findIndex((m) => m.id === 10);
    const firstPush = c.msgs.findIndex((m) => m.push?.channel === ch);
    assert.ok(firstPush > i10, 'no push before the subscribe reply');
    assert.deepEqual(c.pushes(ch, 'pub').map((p) => [p.data, p.offset]), [['a', 1], ['b', 2]]);
    assert.deepEqual(c.msgs.find((m) => m.id === 14).presence_stats, { num_clients: 1, num_users: 1 });
    c.close();
  });

  test('history limits: a negative limit other than -1 is error 107 (API and client)', async () => {
    const r = await apiCall(srv.url, 'history', { channel: 'h:lim', limit: -5 }, { key: KEY });
    assert.equal(r.status, 200);
    assert.equal(r.body.error.code, 107);
    assert.match(r.body.error.message, /^limit: /);
    const all = await apiCall(srv.url, 'history', { channel: 'h:lim', limit: -1 }, { key: KEY });
    assert.deepEqual(all.body.result.publications, []);
    const c = await rawClient(srv.wsUrl);
    await c.cmd({ subscribe: { channel: 'h:lim' } });
    const rep = await c.cmd({ history: { channel: 'h:lim', limit: -7 } });
    assert.equal(rep.error.code, 107);
    c.close();
  });
});

describe('bounded queues', () => {
  test('a full worker inbox makes the channel\'s subscribers reconnect (3010) and recovery fills the gap', async () => {
    // One worker, an inbox of 16: a batch of 200 publications, answered in
    // one loop turn, overflows it. (The memory engine: the delayed one
    // trickles its events in and would not overflow.)
    const srv = await serverOn('memory', config({ top: { workers: 1 }, channel: { max_queued_events: 16 } }));
    try {
      const ch = 'h:burst';
      const c = await rawClient(srv.wsUrl);
      const sub = (await c.cmd({ subscribe: { channel: ch } })).subscribe;
      const commands = Array.from({ length: 200 }, (_, i) => ({ publish: { channel: ch, data: { i } } }));
      const res = await apiCall(srv.url, 'batch', { commands }, { key: KEY });
      assert.equal(res.body.result.replies.length, 200);
      const { code } = await c.closed;
      assert.equal(code, 3010);
      const seen = c.pushes(ch, 'pub').map((p) => p.offset);
      assert.ok(seen.length < 200, `got ${seen.length} live`);
      seen.forEach((o, k) => assert.equal(o, k + 1, 'live offsets contiguous up to the gap'));
      // reconnect and recover from the last offset received
      const last = seen.length ? seen[seen.length - 1] : 0;
      const c2 = await rawClient(srv.wsUrl);
      const rec = (await c2.cmd({ subscribe: { channel: ch, recover: true, offset: last, epoch: sub.epoch } })).subscribe;
      assert.equal(rec.recovered, true);
      assert.deepEqual(rec.publications.map((p) => p.offset), Array.from({ length: 200 - last }, (_, k) => last + k + 1));
      const m = await metrics(srv.url);
      assert.ok(m['plaza_resyncs_total{reason="inbox_full"}'] >= 1);
      assert.ok(m.plaza_events_refused_total >= 1);
      c2.close();
    } finally {
      await srv.stop();
    }
  });

  test('stream metadata of channels without history or subscribers is freed', async () => {
    const srv = await startPlaza({ noEcho: true, config: config(), args: ['--set', 'engine.sweep_interval_ms=50'] });
    try {
      // (a batch runs its publishes one after the other: fewer when each
      // engine answer comes 0..20 ms late)
      const n = engineDelayed ? 200 : 3000;
      const commands = Array.from({ length: n }, (_, i) => ({ publish: { channel: `t:n${i}`, data: i } }));
      const r = await apiCall(srv.url, 'batch', { commands }, { key: KEY });
      assert.equal(r.body.result.replies.filter((x) => x.publish?.offset === 1).length, n);
      let m = await metrics(srv.url);
      assert.ok(m.plaza_engine_streams >= 1, 'streams while history lives');
      const t0 = Date.now();
      while ((m.plaza_engine_streams || m.plaza_engine_channels) && Date.now() - t0 < 10000) {
        await sleep(100);
        m = await metrics(srv.url);
      }
      assert.equal(m.plaza_engine_streams, 0);
      assert.equal(m.plaza_engine_channels, 0);
      // a channel with a subscriber keeps its epoch through an empty history
      const c = await rawClient(srv.wsUrl);
      const s = (await c.cmd({ subscribe: { channel: 't:kept', positioned: true, recoverable: true } })).subscribe;
      await apiCall(srv.url, 'publish', { channel: 't:kept', data: 1 }, { key: KEY });
      await sleep(600);                               // TTL 200 ms, sweeps every 50 ms
      const again = await apiCall(srv.url, 'publish', { channel: 't:kept', data: 2 }, { key: KEY });
      assert.equal(again.body.result.epoch, s.epoch);
      assert.equal(again.body.result.offset, 2);
      c.close();
    } finally {
      await srv.stop();
    }
  });
});

describe('many subscriptions on one connection', () => {
  test('40,000 subscriptions (past the old 16-bit count), publications reach the last, teardown is quick', async () => {
    const n = 40000;
    const srv = await serverOn('memory', config({ client: { channel_limit: 50000 } }));
    try {
      const c = await rawClient(srv.wsUrl);
      for (let i = 0; i < n; i += 2000) {
        const cmds = [];
        for (let k = i; k < i + 2000; k++) cmds.push({ id: 100 + k, subscribe: { channel: `many${k}` } });
        c.send(...cmds);
      }
      await c.waitFor((m) => m.id === 100 + n - 1, 60000);
      const errors = c.msgs.filter((m) => m.error);
      assert.deepEqual(errors, []);
      assert.equal(c.msgs.filter((m) => m.subscribe).length, n);
      for (const k of [0, 32767, 32768, n - 1]) {
        await apiCall(srv.url, 'publish', { channel: `many${k}`, data: k }, { key: KEY });
        await c.waitFor((m) => m.push?.channel === `many${k}`);
      }
      const extra = await c.cmd({ subscribe: { channel: 'many0' } });
      assert.equal(extra.error.code, 105, 'already subscribed is found among 40,000');
      const info = await apiCall(srv.url, 'info', {}, { key: KEY });
      assert.equal(info.body.result.nodes[0].num_channels, n);
      c.close();
      await c.closed;
      const t0 = Date.now();
      let chans = n;
      while (chans && Date.now() - t0 < 10000) {
        chans = (await apiCall(srv.url, 'info', {}, { key: KEY })).body.result.nodes[0].num_channels;
        if (chans) await sleep(50);
      }
      assert.equal(chans, 0);
    } finally {
      await srv.stop();
    }
  });
});

describe('engine failures are clear errors', () => {
  let srv;
  before(async () => {
    srv = await serverOn('delayed', config(), ['--set', 'engine.delay_fail_prefix=fail:', '--set', 'engine.delay_max_ms=5']);
  });
  after(async () => { if (srv) await srv.stop(); });

  test('client commands get error 100 (temporary); the server API HTTP 503 with the reason', async (t) => {
    if (!srv) { t.skip('this build has no delayed engine'); return; }
    const c = await rawClient(srv.wsUrl);
    const sub = await c.cmd({ subscribe: { channel: 'fail:a' } });
    assert.deepEqual(sub.error, { code: 100, message: 'internal server error', temporary: true });
    const pub = await c.cmd({ publish: { channel: 'fail:a', data: 1 } });
    assert.equal(pub.error.code, 100);
    // the connection is fine: other channels work
    const ok = await c.cmd({ subscribe: { channel: 'h:fine' } });
    assert.ok(ok.subscribe);
    c.close();
    for (const [method, params] of [['publish', { channel: 'fail:a', data: 1 }], ['history', { channel: 'fail:a' }],
                                    ['presence', { channel: 'fail:a' }], ['presence_stats', { channel: 'fail:a' }],
                                    ['history_remove', { channel: 'fail:a' }]]) {
      const r = await apiCall(srv.url, method, params, { key: KEY });
      assert.equal(r.status, 503, method);
      assert.equal(r.body.error.code, 100, method);
      assert.match(r.body.error.message, /failed: engine unavailable/, method);
    }
    const batch = await apiCall(srv.url, 'batch', { commands: [{ publish: { channel: 'fail:b', data: 1 } }, { publish: { channel: 'h:ok', data: 1 } }] }, { key: KEY });
    assert.equal(batch.status, 200);
    assert.equal(batch.body.result.replies[0].error.code, 100);
    assert.equal(batch.body.result.replies[1].publish.offset, 1);
    const m = await metrics(srv.url);
    assert.ok(m['plaza_engine_errors_total{op="publish"}'] >= 2);
    assert.ok(m['plaza_engine_errors_total{op="subscribe"}'] >= 1);
    assert.ok(m.plaza_engine_failures_total >= 6);
  });
});

describe('engine failures on map channels are clear errors', () => {
  let srv;
  before(async () => {
    const cfg = config();
    cfg.channel.namespaces = [{ name: 'mfail', ...anyone, subscription_type: 'map',
      map: { mode: 'persistent' }, allow_publish_for_client: true }];
    srv = await serverOn('delayed', cfg, ['--set', 'engine.delay_fail_prefix=mfail:', '--set', 'engine.delay_max_ms=5']);
  });
  after(async () => { if (srv) await srv.stop(); });

  test('map subscribe and write get 100; the map API HTTP 503 with the reason', async (t) => {
    if (!srv) { t.skip('this build has no delayed engine'); return; }
    const c = await rawClient(srv.wsUrl);
    for (const phase of [2, 1]) {
      const sub = await c.cmd({ subscribe: { channel: 'mfail:a', type: 1, phase, offset: 0 } });
      assert.deepEqual(sub.error, { code: 100, message: 'internal server error', temporary: true }, `phase ${phase}`);
    }
    const w = await c.cmd({ publish: { channel: 'mfail:a', type: 1, key: 'k', data: 1 } });
    assert.equal(w.error.code, 100);
    assert.match(w.error.message, /engine unavailable/);
    c.close();
    for (const [method, params] of [['map_publish', { channel: 'mfail:a', key: 'k', data: 1 }],
                                    ['map_remove', { channel: 'mfail:a', key: 'k' }],
                                    ['map_read_state', { channel: 'mfail:a' }],
                                    ['map_read_stream', { channel: 'mfail:a' }],
                                    ['map_stats', { channel: 'mfail:a' }], ['map_clear', { channel: 'mfail:a' }]]) {
      const r = await apiCall(srv.url, method, params, { key: KEY });
      assert.equal(r.status, 503, method);
      assert.equal(r.body.error.code, 100, method);
      assert.match(r.body.error.message, /failed: engine unavailable/, method);
    }
  });
});
