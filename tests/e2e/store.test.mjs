// The durable store (store.path): real binary, real files. A restart keeps
// offsets, epochs and history and a subscribed client recovers across it;
// kill -9 under publish load loses nothing acknowledged (sync) and never
// reuses an offset a subscriber saw; async changes the epoch of exactly the
// channels whose lost tail a subscriber saw; backup, restore at a time,
// check and repair work as docs/operations.md says; a full disk fails
// publishes with a clear error while reads go on, and a read-only or
// damaged store is refused at start with a clear error.
//
// STORE_KILL_RUNS (default 3; `scripts/test --long` sets 20) kill -9 runs
// per durability mode. The disk tests mount a small tmpfs and need root;
// elsewhere they are skipped with a message.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, writeSync, closeSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';
import { startPlaza, plazaBin, metrics } from './lib/server.mjs';
import { apiCall, rawClient } from './lib/proto.mjs';
import { sleep, withTimeout } from './lib/raw.mjs';

const KILL_RUNS = Number(process.env.STORE_KILL_RUNS || 3);
const isRoot = process.getuid && process.getuid() === 0;
const dirs = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
function tempDir() {
  const d = mkdtempSync(path.join(tmpdir(), 'plaza-store-'));
  dirs.push(d);
  return d;
}

const config = {
  api: { insecure: true },
  client: { allow_anonymous_connect_without_token: true, command_rate_limit: 0 },
  channel: {
    namespaces: [{
      name: 'chat', history_size: 1000, history_ttl_ms: 3600000, force_recovery: true,
      allow_subscribe_for_anonymous: true, allow_subscribe_for_client: true,
      allow_publish_for_anonymous: true, allow_presence_for_anonymous: true, allow_history_for_anonymous: true,
      allow_publish_for_subscriber: true, allow_history_for_subscriber: true,
    }, { name: 'live', history_size: 0, allow_subscribe_for_anonymous: true },
    { name: 'lots', subscription_type: 'map', map: { mode: 'persistent', stream_size: 100 },
      allow_subscribe_for_anonymous: true },
    { name: 'here', subscription_type: 'map', map: { mode: 'recoverable', key_ttl_ms: 1500, stream_size: 100 },
      allow_subscribe_for_anonymous: true }],
  },
};

function start(store, { port, durability = 'sync', extra = [], cfg = config } = {}) {
  // the store lives under the memory engine: this file runs on it even in
  // the delayed-engine pass of the suite
  const args = ['--set', 'engine.type=memory', '--set', `store.durability=${durability}`, '--set', 'store.commit_window_us=300',
                '--set', 'store.lease_idle_ms=300', '--set', 'engine.sweep_interval_ms=100', ...extra];
  if (port) args.push('--port', String(port));
  return startPlaza({ config: cfg, noEcho: true, store, args });
}

async function history(srv, channel) {
  const r = await apiCall(srv.url, 'history', { channel, limit: -1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.result;
}

function runPlaza(args) {
  return spawnSync(plazaBin, args, { encoding: 'utf8' });
}

// ------------------------------------------------------------ restart

describe('restart', () => {
  test('offsets, epoch and history survive a clean restart and a kill -9', async () => {
    const dir = tempDir();
    let srv = await start(dir);
    for (let i = 1; i <= 5; i++) {
      const r = await apiCall(srv.url, 'publish', { channel: 'chat:a', data: { i }, tags: { n: String(i) } });
      assert.equal(r.body.result.offset, i);
    }
    const bad = await apiCall(srv.url, 'publish', { channel: 'chat:a', data: 1, tags: { n: 1 } });
    assert.equal(bad.body.error.code, 107);
    assert.match(bad.body.error.message, /tags/);
    const before = await history(srv, 'chat:a');
    await srv.stop();
    srv = await start(dir);
    assert.deepEqual(await history(srv, 'chat:a'), before);
    assert.match(srv.logs(), /5 records replayed/);
    const r = await apiCall(srv.url, 'publish', { channel: 'chat:a', data: { i: 6 } });
    assert.deepEqual([r.body.result.offset, r.body.result.epoch], [6, before.epoch]);
    srv.proc.kill('SIGKILL');
    await srv.exited;
    srv = await start(dir);
    const h = await history(srv, 'chat:a');
    assert.equal(h.offset, 6);
    assert.equal(h.epoch, before.epoch);
    assert.deepEqual(h.publications.map((p) => p.data.i), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(h.publications[4].tags, { n: '5' });       // tags are kept with the data
    assert.match(srv.logs(), /after an unclean stop/);
    await srv.stop();
  });

  test('a subscribed centrifuge client recovers across a restart: nothing missed, nothing twice', async () => {
    const dir = tempDir();
    let srv = await start(dir);
    const port = srv.port;
    const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, minReconnectDelay: 200, maxReconnectDelay: 400 });
    c.on('error', () => {});
    const s = c.newSubscription('chat:room');
    const got = [];
    const ctxs = [];
    const tags = [];
    s.on('publication', (ctx) => { got.push(ctx.data.n); tags.push(ctx.tags?.k); });
    s.on('subscribed', (ctx) => ctxs.push(ctx));
    s.subscribe();
    c.connect();
    await withTimeout(new Promise((r) => s.once('subscribed', r)), 5000, 'subscribed');
    for (let n = 1; n <= 3; n++) await apiCall(srv.url, 'publish', { channel: 'chat:room', data: { n } });
    await withTimeout((async () => { while (got.length < 3) await sleep(20); })(), 5000, 'live 1..3');
    srv.proc.kill('SIGKILL');
    await srv.exited;
    srv = await start(dir, { port });
    // published while the client is away: it must get them from history
    for (let n = 4; n <= 6; n++) await apiCall(srv.url, 'publish', { channel: 'chat:room', data: { n }, tags: { k: `t${n}` } });
    await withTimeout((async () => { while (ctxs.length < 2) await sleep(20); })(), 10000, 'resubscribed');
    await apiCall(srv.url, 'publish', { channel: 'chat:room', data: { n: 7 } });
    await withTimeout((async () => { while (got.length < 7) await sleep(20); })(), 5000, 'all 7');
    await sleep(200);
    assert.equal(ctxs[1].wasRecovering, true);
    assert.equal(ctxs[1].recovered, true);
    assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(tags.slice(3, 6), ['t4', 't5', 't6']);      // recovered with their tags
    c.disconnect();
    await srv.stop();
  });

  test('history_remove is durable; a channel without history is logged but not replayed', async () => {
    const dir = tempDir();
    let srv = await start(dir);
    await apiCall(srv.url, 'publish', { channel: 'chat:r', data: 1 });
    await apiCall(srv.url, 'publish', { channel: 'chat:r', data: 2 });
    assert.equal((await apiCall(srv.url, 'history_remove', { channel: 'chat:r' })).status, 200);
    assert.equal((await apiCall(srv.url, 'publish', { channel: 'live:x', data: 1 })).status, 200);
    await srv.stop();
    srv = await start(dir);
    const h = await history(srv, 'chat:r');
    assert.equal(h.offset, 2);
    assert.equal(h.publications?.length ?? 0, 0);
    assert.equal((await apiCall(srv.url, 'publish', { channel: 'chat:r', data: 3 })).body.result.offset, 3);
    await srv.stop();
    const rows = execFileSync('sqlite3', [path.join(dir, 'plaza.db'), "SELECT count(*) FROM log WHERE channel = 'live:x'"]).toString().trim();
    assert.equal(rows, '1');
  });
});

// ------------------------------------------------------------ kill -9

// Publishes to `channels` from `conc` concurrent API callers until stopped;
// records what was acknowledged. A raw subscriber records what it saw.
async function load(srv, channels, conc) {
  const acked = new Map(channels.map((c) => [c, new Map()]));
  let stop = false;
  let seq = 0;
  const sub = await rawClient(srv.wsUrl);
  for (const ch of channels) await sub.cmd({ subscribe: { channel: ch } });
  const worker = async () => {
    while (!stop) {
      const ch = channels[seq % channels.length];
      const n = ++seq;
      try {
        const r = await apiCall(srv.url, 'publish', { channel: ch, data: { n } });
        if (r.status === 200 && r.body.result) acked.get(ch).set(r.body.result.offset, { n, epoch: r.body.result.epoch });
      } catch { /* the server died mid-request */ }
    }
  };
  const workers = Array.from({ length: conc }, worker);
  return {
    acked, sub,
    seen: () => {
      const m = new Map(channels.map((c) => [c, new Map()]));
      for (const p of sub.msgs) if (p.push?.pub) m.get(p.push.channel)?.set(p.push.pub.offset, p.push.pub.data.n);
      return m;
    },
    async end() { stop = true; await Promise.all(workers); sub.kill(); },
  };
}

async function killRun(durability, run) {
  const dir = tempDir();
  const channels = Array.from({ length: 6 }, (_, i) => `chat:k${run}-${i}`);
  const idle = `chat:k${run}-idle`;
  let srv = await start(dir, { durability });
  await apiCall(srv.url, 'publish', { channel: idle, data: { n: 0 } });
  const idleEpoch = (await history(srv, idle)).epoch;
  await sleep(800);                       // the idle channel's async lease ends
  const l = await load(srv, channels, 16);
  await sleep(300 + Math.floor(Math.random() * 1200));
  srv.proc.kill('SIGKILL');
  await srv.exited;
  await l.end();
  const seen = l.seen();
  srv = await start(dir, { durability });
  let lost = 0;
  for (const ch of channels) {
    const h = await history(srv, ch);
    const pubs = new Map((h.publications || []).map((p) => [p.offset, p.data.n]));
    const offsets = [...pubs.keys()];
    // history is gapless from 1 to the top
    assert.deepEqual(offsets, Array.from({ length: h.offset }, (_, i) => i + 1), `${ch} gapless`);
    const ackedEpochs = new Set([...l.acked.get(ch).values()].map((a) => a.epoch));
    assert.ok(ackedEpochs.size <= 1, `${ch}: one epoch before the kill`);
    const epochBefore = [...ackedEpochs][0];
    const lostTail = [...seen.get(ch).keys()].some((o) => pubs.get(o) !== seen.get(ch).get(o));
    if (durability === 'sync') {
      assert.equal(h.epoch, epochBefore ?? h.epoch, `${ch}: epoch unchanged (sync)`);
      for (const [off, a] of l.acked.get(ch)) assert.equal(pubs.get(off), a.n, `${ch}: acked offset ${off} kept`);
      for (const [off, n] of seen.get(ch)) assert.equal(pubs.get(off), n, `${ch}: delivered offset ${off} kept`);
    } else if (lostTail) {
      lost++;
      assert.notEqual(h.epoch, epochBefore, `${ch}: lost a tail a subscriber saw, so a new epoch`);
    }
    // the next publication continues after the top: no offset is reused
    const next = await apiCall(srv.url, 'publish', { channel: ch, data: { n: -1 } });
    assert.equal(next.body.result.offset, h.offset + 1);
  }
  assert.equal((await history(srv, idle)).epoch, idleEpoch, 'an idle channel keeps its epoch');
  await srv.stop();
  return { lost, acked: [...l.acked.values()].reduce((a, m) => a + m.size, 0) };
}


describe('maps', () => {
  test('map state and its stream survive kill -9; a client recovers across it; conditions hold', async () => {
    const dir = tempDir();
    let srv = await start(dir);
    const port = srv.port;
    const api = async (m, p) => (await apiCall(srv.url, m, p)).body.result;
    await api('map_publish', { channel: 'lots:a', key: 'lot1', data: { price: 100 } });
    await api('map_publish', { channel: 'lots:a', key: 'lot2', data: { price: 50 } });
    await api('map_publish', { channel: 'here:a', key: 'short', data: 1 });
    const c = new Centrifuge(srv.wsUrl, { websocket: WebSocket, minReconnectDelay: 200, maxReconnectDelay: 400 });
    c.on('error', () => {});
    const s = c.newMapSubscription('lots:a', { minResubscribeDelay: 100, maxResubscribeDelay: 300 });
    const map = new Map();
    const subs = [];
    s.on('subscribed', (ctx) => { subs.push(ctx); if (!ctx.recovered) for (const e of ctx.state || []) map.set(e.key, e.data); });
    s.on('update', (u) => { if (u.removed) map.delete(u.key); else map.set(u.key, u.data); });
    c.connect();
    s.subscribe();
    await withTimeout((async () => { while (subs.length < 1) await sleep(20); })(), 5000, 'subscribed');
    const bid = await api('map_publish', { channel: 'lots:a', key: 'lot1', data: { price: 110 } });
    srv.proc.kill('SIGKILL');                 // acked means on disk: nothing of it may be lost
    await srv.exited;
    await sleep(1600);                        // here:a/short expires while Plaza is down
    srv = await start(dir, { port });
    const st = await api('map_read_state', { channel: 'lots:a' });
    assert.deepEqual(st.publications.map((p) => [p.key, p.data.price]), [['lot1', 110], ['lot2', 50]]);
    assert.equal(st.offset, bid.offset);
    assert.equal(st.epoch, bid.epoch);
    // compare-and-set against the offset from before the crash still works
    const cas = await api('map_publish', { channel: 'lots:a', key: 'lot1', data: { price: 120 }, expected_offset: bid.offset });
    assert.equal(cas.suppressed, undefined);
    await api('map_remove', { channel: 'lots:a', key: 'lot2' });
    await withTimeout((async () => { while (subs.length < 2 || map.get('lot1')?.price !== 120 || map.has('lot2')) await sleep(20); })(), 10000, 'recovered');
    assert.equal(subs[1].recovered, true);
    assert.deepEqual(Object.fromEntries(map), { lot1: { price: 120 } });
    // the key that expired while Plaza was down is gone from the state at
    // once, and its removal goes to the stream as a change (once committed)
    assert.equal((await api('map_stats', { channel: 'here:a' })).num_keys, 0);
    const changes = async () => (await api('map_read_stream', { channel: 'here:a', limit: -1 }))
      .publications.map((p) => [p.key, !!p.removed]);
    await withTimeout((async () => { while ((await changes()).length < 2) await sleep(50); })(), 5000, 'expiry in the stream');
    assert.deepEqual(await changes(), [['short', false], ['short', true]]);
    c.disconnect();
    await srv.stop();
    srv = await start(dir);                    // and once more, cleanly
    assert.deepEqual((await api('map_read_state', { channel: 'lots:a' })).publications.map((p) => p.key), ['lot1']);
    await srv.stop();
  });
});

describe('kill -9 under publish load', () => {
  test(`sync: every acked and every delivered publication survives (${KILL_RUNS} runs)`, async () => {
    let total = 0;
    for (let run = 0; run < KILL_RUNS; run++) total += (await killRun('sync', run)).acked;
    assert.ok(total > 0, 'publications were acknowledged');
    console.log(`sync: ${total} acknowledged publications checked over ${KILL_RUNS} runs`);
  });
  test(`async: a channel whose seen tail was lost gets a new epoch (${KILL_RUNS} runs)`, async () => {
    let lost = 0;
    for (let run = 0; run < KILL_RUNS; run++) lost += (await killRun('async', run)).lost;
    console.log(`async: ${lost} channel tails lost and re-epoched over ${KILL_RUNS} runs`);
  });
});

// ------------------------------------------------------ backup and restore

describe('backup and restore at a time', () => {
  test('write, note T, write more, remove history; restore at T gives the history as of T', async () => {
    const dir = tempDir();
    const srv = await start(dir);
    for (let i = 1; i <= 10; i++) await apiCall(srv.url, 'publish', { channel: 'chat:pitr', data: { i } });
    await apiCall(srv.url, 'publish', { channel: 'chat:other', data: { i: 1 } });
    const atT = await history(srv, 'chat:pitr');
    await sleep(30);
    const T = Date.now();
    await sleep(30);
    for (let i = 11; i <= 15; i++) await apiCall(srv.url, 'publish', { channel: 'chat:pitr', data: { i } });
    await apiCall(srv.url, 'history_remove', { channel: 'chat:pitr' });
    await apiCall(srv.url, 'history_remove', { channel: 'chat:other' });
    // an online backup while serving
    const bk = path.join(tempDir(), 'backup');
    const b = runPlaza(['backup', '--store', dir, '--to', bk]);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /backup of .* records/);
    assert.ok(statSync(path.join(bk, 'backup.json')).size > 0);
    await srv.stop();
    // restore from the backup at T, in RFC 3339 form
    const restored = path.join(tempDir(), 'restored');
    const r = runPlaza(['restore', '--from', bk, '--to', restored, '--at', new Date(T).toISOString()]);
    assert.equal(r.status, 0, r.stderr);
    const srv2 = await start(restored);
    const h = await history(srv2, 'chat:pitr');
    assert.deepEqual(h.publications, atT.publications);
    assert.equal(h.offset, 10);
    assert.notEqual(h.epoch, atT.epoch, 'restored channels get a new epoch');
    assert.equal((await history(srv2, 'chat:other')).publications.length, 1);
    await srv2.stop();
    // into an existing store: refused, nothing overwritten
    const again = runPlaza(['restore', '--from', bk, '--to', restored]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exists/);
    const badTime = runPlaza(['restore', '--from', bk, '--to', path.join(tempDir(), 'x'), '--at', 'yesterday']);
    assert.equal(badTime.status, 2);
    assert.match(badTime.stderr, /--at/);
  });

  test('retention keeps the log bounded, the history whole, and refuses a restore before what it covers', async () => {
    const dir = tempDir();
    const cfg = structuredClone(config);
    cfg.channel.namespaces.push({ name: 'small', history_size: 5 });
    const T0 = Date.now();
    let srv = await start(dir, { cfg, extra: ['--set', 'store.restore_window_s=1'] });
    for (let i = 1; i <= 50; i++) await apiCall(srv.url, 'publish', { channel: 'small:x', data: { i } });
    let rows = Infinity;
    for (let t = 0; t < 100 && rows > 5; t++) {
      await sleep(100);
      rows = (await metrics(srv.url)).plaza_store_records;
    }
    assert.equal(rows, 5, 'older than the window and out of history: deleted');
    const h = await history(srv, 'small:x');
    assert.deepEqual(h.publications.map((p) => p.data.i), [46, 47, 48, 49, 50]);
    await srv.stop();
    const r = runPlaza(['restore', '--from', dir, '--to', path.join(tempDir(), 'r'), '--at', String(T0)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /covers every write only from/);
    srv = await start(dir, { cfg });
    assert.deepEqual(await history(srv, 'small:x'), h);
    await srv.stop();
  });

  test('a backup under 10k publications/s completes while acks go on', async () => {
    const dir = tempDir();
    const srv = await start(dir);
    const l = await load(srv, ['chat:b1', 'chat:b2'], 8);
    await sleep(300);
    const b = runPlaza(['backup', '--store', dir, '--to', path.join(tempDir(), 'bk')]);
    assert.equal(b.status, 0, b.stderr);
    const n0 = [...l.acked.values()].reduce((a, m) => a + m.size, 0);
    await sleep(300);
    const n1 = [...l.acked.values()].reduce((a, m) => a + m.size, 0);
    await l.end();
    assert.ok(n1 > n0, 'publishes acknowledged after the backup');
    await srv.stop();
  });
});

// ---------------------------------------------------------- damaged store

describe('damaged or unusable store', () => {
  test('a damaged database is refused at start with the way out; check and repair', async () => {
    const dir = tempDir();
    let srv = await start(dir);
    for (let i = 0; i < 300; i++) await apiCall(srv.url, 'publish', { channel: `chat:d${i % 30}`, data: { pad: 'x'.repeat(200), i } });
    await srv.stop();
    const db = path.join(dir, 'plaza.db');
    const size = statSync(db).size;
    const fd = openSync(db, 'r+');
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, Math.floor(size / 4096 / 2) * 4096);
    closeSync(fd);
    await assert.rejects(start(dir), /damaged.*plaza store check|plaza store check/s);
    const c = runPlaza(['store', 'check', '--store', dir]);
    assert.equal(c.status, 1);
    assert.match(c.stdout, /damaged/);
    const r = runPlaza(['store', 'repair', '--store', dir]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /repaired .* readable records kept/);
    assert.ok(readdirSync(dir).some((f) => f.startsWith('plaza.db.damaged-')), 'the damaged file is kept');
    assert.equal(runPlaza(['store', 'check', '--store', dir]).status, 0);
    srv = await start(dir);
    assert.equal((await apiCall(srv.url, 'publish', { channel: 'chat:d0', data: 1 })).status, 200);
    await srv.stop();
  });

  test('a folder that is not writable is refused at start with a clear error', { skip: !isRoot && 'needs root to mount a read-only tmpfs' }, async () => {
    const mnt = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    try {
      const srv = await start(path.join(mnt, 'store'));
      await apiCall(srv.url, 'publish', { channel: 'chat:ro', data: 1 });
      await srv.stop();
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      await assert.rejects(start(path.join(mnt, 'store')), /store\.path: .*(read-only|readonly)/i);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });

  test('a full disk fails publishes with a clear error, reads go on, nothing acked is lost, it recovers', { skip: !isRoot && 'needs root to mount a small tmpfs' }, async () => {
    const mnt = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    const store = path.join(mnt, 'store');
    try {
      let srv = await start(store);
      const acked = [];
      let refused = null;
      for (let i = 0; i < 4000 && !refused; i++) {
        const r = await apiCall(srv.url, 'publish', { channel: 'chat:full', data: { i, pad: 'y'.repeat(2000) } });
        if (r.status === 200) acked.push([r.body.result.offset, i]);
        else refused = r;
      }
      assert.ok(refused, 'the disk filled up');
      assert.equal(refused.status, 503);
      assert.match(JSON.stringify(refused.body), /durable store unavailable/);
      // reads go on
      const h = await history(srv, 'chat:full');
      assert.equal(h.offset, acked.at(-1)[0]);
      // a client publish gets an error reply too, and the connection stays
      const c = await rawClient(srv.wsUrl);
      await c.cmd({ subscribe: { channel: 'chat:full' } });
      const pr = await c.cmd({ publish: { channel: 'chat:full', data: { pad: 'z'.repeat(2000) } } });
      assert.equal(pr.error?.code, 100, JSON.stringify(pr));
      assert.match(pr.error.message, /durable store unavailable/);
      assert.ok(!c.isClosed);
      // space returns: publishes work again, offsets continue without a gap
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      let ok = null;
      for (let t = 0; t < 50 && !ok; t++) {
        const r = await apiCall(srv.url, 'publish', { channel: 'chat:full', data: { i: 'after' } });
        if (r.status === 200) ok = r; else await sleep(100);
      }
      assert.ok(ok, 'publishes recover');
      assert.equal(ok.body.result.offset, acked.at(-1)[0] + 1);
      c.close();
      await srv.stop();
      srv = await start(store);
      const after = await history(srv, 'chat:full');
      const byOffset = new Map(after.publications.map((p) => [p.offset, p.data.i]));
      for (const [off, i] of acked.slice(-900)) assert.equal(byOffset.get(off), i);   // within history_size
      assert.equal(after.offset, acked.at(-1)[0] + 1);
      await srv.stop();
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});
