// 10,000 concurrent idle WebSocket connections to one server (2 workers)
// and a fan-out of one message to all of them. The client side is one Node
// process with bare TCP sockets (a minimal upgrade and frame parser, see
// lib/raw.mjs) rather than 10,000 `ws` objects. Needs an fd limit above
// ~10,500 for the test process and for plaza, which inherits it:
//   ulimit -n 20000 && node --test tests/e2e/scale.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { startPlaza, metrics } from './lib/server.mjs';
import { frame, closePayload, parseFrames } from './lib/raw.mjs';

const N = Number(process.env.PLAZA_SCALE_CONNS || 10000);
const BATCH = 500;
// Source addresses 127.0.0.2..127.0.0.11: each has its own ephemeral port
// space, so 10k connections (and their TIME_WAITs) do not crowd the
// machine's single 127.0.0.1 range that other tests share.
const SOURCES = Array.from({ length: 10 }, (_, i) => `127.0.0.${i + 2}`);
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function fdLimit(pid = 'self') {
  const m = readFileSync(`/proc/${pid}/limits`, 'utf8').match(/^Max open files\s+(\d+|unlimited)/m);
  return !m ? 0 : m[1] === 'unlimited' ? Infinity : Number(m[1]);
}
const NEED = N + 500;
const limit = fdLimit();
const skip = limit < NEED
  ? `fd limit ${limit} < ${NEED}: run with \`ulimit -n 20000\` (or higher) before node`
  : false;

const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t) => new Promise((r) => setTimeout(r, t));

// One lean client connection: upgrade by hand, then collect text messages,
// answer pings, note close frames, errors and the end of the socket.
class Lite {
  constructor(port, localAddress) {
    this.port = port;
    this.localAddress = localAddress;
    this.texts = [];
    this.other = [];        // unexpected frames: [opcode, length]
    this.closeCode = null;
    this.error = null;
    this.ended = false;
    this.buf = null;
    this.upgraded = false;
  }

  open() {
    return new Promise((resolve, reject) => {
      const key = crypto.randomBytes(16).toString('base64');
      const accept = crypto.createHash('sha1').update(key + GUID).digest('base64');
      const sock = this.sock = net.connect({ port: this.port, host: '127.0.0.1', localAddress: this.localAddress });
      sock.setNoDelay(true);
      sock.on('connect', () => sock.write(
        'GET /connection/websocket HTTP/1.1\r\n' +
        `Host: 127.0.0.1:${this.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
      sock.on('error', (e) => { this.error = e; reject(e); });
      sock.on('close', () => {
        this.ended = true;
        if (!this.upgraded) reject(this.error || new Error('closed before the upgrade'));
        if (this.onEnd) this.onEnd();
      });
      sock.on('data', (d) => {
        this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
        if (!this.upgraded) {
          const i = this.buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          const head = this.buf.subarray(0, i).toString('latin1');
          this.buf = this.buf.subarray(i + 4);
          if (!/^HTTP\/1\.1 101 /.test(head) || !head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
            reject(new Error('bad upgrade response:\n' + head));
            sock.destroy();
            return;
          }
          this.upgraded = true;
          resolve(this);
        }
        const { frames, rest } = parseFrames(this.buf);
        this.buf = rest.length ? rest : null;
        for (const f of frames) {
          if (f.opcode === 1 && f.fin) { this.texts.push(f.payload.toString()); if (this.onText) this.onText(); }
          else if (f.opcode === 9) sock.write(frame(10, f.payload));
          else if (f.opcode === 8) this.closeCode = f.code ?? 1005;
          else this.other.push([f.opcode, f.payload.length]);
        }
      });
    });
  }
}

test(`${N} idle WebSocket connections and a fan-out to all of them`, { skip, timeout: 240000 }, async (t) => {
  const plaza = await startPlaza({ args: ['--set', 'workers=2', '--set', 'log_level=warn'] });
  const conns = [];
  try {
    const plazaLimit = fdLimit(plaza.proc.pid);
    assert.ok(plazaLimit >= NEED, `plaza's fd limit is ${plazaLimit}, needs ${NEED}`);
    const fdsBefore = openFds(plaza.proc.pid);
    const m0 = await metrics(plaza.url);

    // ---- connect, BATCH at a time ----
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i += BATCH) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + BATCH); j++) {
        const c = new Lite(plaza.port, SOURCES[j % SOURCES.length]);
        conns.push(c);
        batch.push(c.open());
      }
      const res = await Promise.allSettled(batch);
      const failed = res.filter((r) => r.status === 'rejected');
      assert.equal(failed.length, 0,
        `${failed.length} of connections ${i}..${i + batch.length - 1} failed: ${failed[0]?.reason?.stack}`);
    }
    const connectMs = ms(t0);
    t.diagnostic(`connected ${N} in ${connectMs.toFixed(0)} ms (${(N / connectMs * 1000).toFixed(0)} conn/s)`);
    console.log(`# scale: connected ${N} in ${connectMs.toFixed(0)} ms (${(N / connectMs * 1000).toFixed(0)} conn/s)`);

    const m1 = await metrics(plaza.url);
    assert.equal(m1['plaza_connections{state="websocket"}'], N, 'websocket gauge after connecting');
    assert.ok(m1['plaza_connections{state="http"}'] <= 1, `http gauge ${m1['plaza_connections{state="http"}']}`);
    assert.equal(m1['plaza_connections{state="closing"}'], 0);
    assert.equal(m1.plaza_ws_handshakes_ok_total - m0.plaza_ws_handshakes_ok_total, N);
    assert.equal(m1.plaza_ws_handshakes_failed_total, 0);
    const fdsOpen = openFds(plaza.proc.pid);
    assert.ok(fdsOpen >= fdsBefore + N, `plaza has ${fdsOpen} fds open, ${fdsBefore} before`);

    // ---- fan-out: one client broadcasts, all N (sender too) get it once ----
    const payload = 'fanout ' + crypto.randomBytes(24).toString('hex') + ' ' + 'x'.repeat(100);
    let got = 0, last = 0n;
    const all = new Promise((resolve) => {
      for (const c of conns) c.onText = () => { last = process.hrtime.bigint(); if (++got === N) resolve(); };
    });
    t0 = process.hrtime.bigint();
    conns[N >> 1].sock.write(frame(1, 'broadcast:' + payload));
    const timedOut = await Promise.race([all.then(() => false), sleep(60000).then(() => true)]);
    const fanoutMs = last ? Number(last - t0) / 1e6 : NaN;
    await sleep(300);        // let duplicates, if any, arrive
    const missing = conns.filter((c) => c.texts.length === 0).length;
    const dup = conns.filter((c) => c.texts.length > 1).length;
    const wrong = conns.filter((c) => c.texts.some((x) => x !== payload)).length;
    const closed = conns.filter((c) => c.ended || c.closeCode !== null || c.error).length;
    const other = conns.filter((c) => c.other.length).length;
    console.log(`# scale: fan-out of ${payload.length} bytes to ${N} in ${fanoutMs.toFixed(1)} ms`);
    t.diagnostic(`fan-out to ${N} in ${fanoutMs.toFixed(1)} ms`);
    assert.deepEqual({ timedOut, missing, dup, wrong, closed, other },
      { timedOut: false, missing: 0, dup: 0, wrong: 0, closed: 0, other: 0 });

    const m2 = await metrics(plaza.url);
    assert.equal(m2['plaza_connections{state="websocket"}'], N, 'websocket gauge after the fan-out');
    assert.equal(m2.plaza_slow_consumer_disconnects_total, 0);

    // ---- close: half with a closing handshake, half by dropping TCP ----
    t0 = process.hrtime.bigint();
    const ends = conns.map((c) => new Promise((r) => { if (c.ended) r(); else c.onEnd = r; }));
    for (let i = 0; i < N; i++) {
      const c = conns[i];
      if (i % 2 === 0) c.sock.write(frame(8, closePayload(1000, 'bye')));
      else c.sock.destroy();
    }
    const allEnded = await Promise.race([Promise.all(ends).then(() => true), sleep(30000).then(() => false)]);
    assert.ok(allEnded, `${conns.filter((c) => !c.ended).length} sockets still open 30 s after closing`);
    const notEchoed = conns.filter((c, i) => i % 2 === 0 && c.closeCode !== 1000).length;
    assert.equal(notEchoed, 0, 'clean closers without the server\'s Close 1000');

    let m3;
    const deadline = Date.now() + 20000;
    for (;;) {
      m3 = await metrics(plaza.url);
      const open = m3['plaza_connections{state="websocket"}'] + m3['plaza_connections{state="closing"}'];
      if (open === 0 || Date.now() > deadline) break;
      await sleep(100);
    }
    const closeMs = ms(t0);
    console.log(`# scale: closed ${N} in ${closeMs.toFixed(0)} ms`);
    assert.equal(m3['plaza_connections{state="websocket"}'], 0, 'websocket gauge after closing');
    assert.equal(m3['plaza_connections{state="closing"}'], 0, 'closing gauge after closing');
    assert.ok(m3['plaza_connections{state="http"}'] <= 1);
    const fdsAfter = openFds(plaza.proc.pid);
    assert.ok(fdsAfter <= fdsBefore + 2, `plaza holds ${fdsAfter} fds after closing, ${fdsBefore} before`);
    assert.equal(m3.plaza_ws_messages_received_total - m0.plaza_ws_messages_received_total, 1);
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    for (const c of conns) c.sock?.destroy();
    await plaza.stop(30000);
  }
});
