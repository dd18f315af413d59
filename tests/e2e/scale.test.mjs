// Scale: 10,000 concurrent idle WebSocket connections to one server (2
// workers) and a fan-out of one message to all of them, then closing them
// (gauges and fds back to the start); a fan-out with permessage-deflate to
// 2,000 connections; a graceful shutdown with 10,000 open. The client side
// is one Node
// process with bare TCP sockets (a minimal upgrade and frame parser, see
// lib/raw.mjs) rather than 10,000 `ws` objects. Needs an fd limit above
// ~10,500 for the test process and for plaza, which inherits it:
//   ulimit -n 20000 && node --test tests/e2e/scale.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
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

// Warnings and errors in plaza's log, but for the debug_echo notice.
const logProblems = (log) => log.split('\n').filter((l) => /\b(WARN|ERROR)\b/.test(l) && !/debug_echo is on/.test(l));
const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (t) => new Promise((r) => setTimeout(r, t));
// Resolves with p's value, or with onTimeout after t ms (the timer is
// cleared either way, so it does not hold the process open).
function within(p, t, onTimeout) {
  let timer;
  return Promise.race([p, new Promise((r) => { timer = setTimeout(() => r(onTimeout), t); })])
    .finally(() => clearTimeout(timer));
}

const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// One lean client connection: upgrade by hand, then collect text messages,
// answer pings, note close frames, errors and the end of the socket. With
// deflate, it offers permessage-deflate with server_no_context_takeover, so
// each compressed message inflates on its own (RFC 7692 7.2.2).
class Lite {
  constructor(port, localAddress, { deflate = false } = {}) {
    this.port = port;
    this.localAddress = localAddress;
    this.deflate = deflate;
    this.compressed = 0;    // messages that arrived with RSV1
    this.texts = [];
    this.other = [];        // unexpected frames: [opcode, length]
    this.closeCode = null;
    this.error = null;
    this.ended = false;
    this.buf = null;
    this.upgraded = false;
  }

  close(code, reason = '') {
    this.closeSent = true;
    this.sock.write(frame(8, closePayload(code, reason)));
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
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        (this.deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits\r\n' : '') +
        '\r\n'));
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
          const ext = /^Sec-WebSocket-Extensions: *(.*)$/im.exec(head);
          const extOk = this.deflate
            ? !!ext && /^permessage-deflate\b/.test(ext[1]) && /server_no_context_takeover/.test(ext[1])
            : !ext;
          if (!/^HTTP\/1\.1 101 /.test(head) || !head.includes(`Sec-WebSocket-Accept: ${accept}`) || !extOk) {
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
          if (f.opcode === 1 && f.fin && (!f.rsv1 || this.deflate)) {
            let data = f.payload;
            if (f.rsv1) {
              this.compressed++;
              try { data = zlib.inflateRawSync(Buffer.concat([data, DEFLATE_TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH }); } catch (e) { this.other.push([1, data.length, 'inflate: ' + e.message]); continue; }
            }
            this.texts.push(data.toString());
            if (this.onText) this.onText();
          }
          else if (f.opcode === 9) sock.write(frame(10, f.payload));
          else if (f.opcode === 8) {
            this.closeCode = f.code ?? 1005;
            if (!this.closeSent) this.close(f.code ?? 1000);   // answer the server's Close
          }
          else this.other.push([f.opcode, f.payload.length, f.rsv1 ? 'rsv1' : '']);
        }
      });
    });
  }
}

// Opens n connections into conns, BATCH at a time (the listen backlog is
// 1024 per worker); fails on the first batch with a failed connection.
async function connectAll(port, n, conns, optsFor = () => ({})) {
  for (let i = 0; i < n; i += BATCH) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + BATCH); j++) {
      const c = new Lite(port, SOURCES[j % SOURCES.length], optsFor(j));
      conns.push(c);
      batch.push(c.open());
    }
    const res = await Promise.allSettled(batch);
    const failed = res.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0,
      `${failed.length} of connections ${i}..${i + batch.length - 1} failed: ${failed[0]?.reason?.stack}`);
  }
}

test(`${N} idle WebSocket connections and a fan-out to all of them`, { skip, timeout: 240000 }, async (t) => {
  const plaza = await startPlaza({ args: ['--set', 'workers=2'] });
  const conns = [];
  try {
    const plazaLimit = fdLimit(plaza.proc.pid);
    assert.ok(plazaLimit >= NEED, `plaza's fd limit is ${plazaLimit}, needs ${NEED}`);
    const fdsBefore = openFds(plaza.proc.pid);
    const m0 = await metrics(plaza.url);

    // ---- connect, BATCH at a time ----
    let t0 = process.hrtime.bigint();
    await connectAll(plaza.port, N, conns);
    const connectMs = ms(t0);
    console.log(`scale: connected ${N} in ${connectMs.toFixed(0)} ms (${(N / connectMs * 1000).toFixed(0)} conn/s)`);

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
    const timedOut = await within(all.then(() => false), 30000, true);
    const fanoutMs = last ? Number(last - t0) / 1e6 : NaN;
    await sleep(300);        // let duplicates, if any, arrive
    const missing = conns.filter((c) => c.texts.length === 0).length;
    const dup = conns.filter((c) => c.texts.length > 1).length;
    const wrong = conns.filter((c) => c.texts.some((x) => x !== payload)).length;
    const closed = conns.filter((c) => c.ended || c.closeCode !== null || c.error).length;
    const other = conns.filter((c) => c.other.length).length;
    console.log(`scale: fan-out of ${payload.length} bytes to ${N} in ${fanoutMs.toFixed(1)} ms`);
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
      if (i % 2 === 0) c.close(1000, 'bye');
      else c.sock.destroy();
    }
    const allEnded = await within(Promise.all(ends).then(() => true), 30000, false);
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
    console.log(`scale: closed ${N} in ${closeMs.toFixed(0)} ms`);
    assert.equal(m3['plaza_connections{state="websocket"}'], 0, 'websocket gauge after closing');
    assert.equal(m3['plaza_connections{state="closing"}'], 0, 'closing gauge after closing');
    assert.ok(m3['plaza_connections{state="http"}'] <= 1);
    const fdsAfter = openFds(plaza.proc.pid);
    assert.ok(fdsAfter <= fdsBefore + 2, `plaza holds ${fdsAfter} fds after closing, ${fdsBefore} before`);
    assert.equal(m3.plaza_ws_messages_received_total - m0.plaza_ws_messages_received_total, 1);
    assert.deepEqual(logProblems(plaza.logs()), []);
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    for (const c of conns) c.sock?.destroy();
    await plaza.stop(30000);
  }
});

// Fan-out with permessage-deflate on: half the connections negotiate it.
// Three broadcasts in a row (one under compression_min_bytes, one large and
// compressible and sent compressed by the client, one of random base64)
// must reach every connection once each, in order, compressed exactly where
// negotiated and worth it. The compressed frame is built once per message
// and shared by the workers (ws_msg_deflated). This server runs with
// io_uring off, so the one-write-per-socket path is also driven at scale
// (the other tests here batch their writes through the send ring).
const ND = Number(process.env.PLAZA_SCALE_DEFLATE_CONNS || 2000);
const skipD = limit < ND + 500 ? `fd limit ${limit} < ${ND + 500}: raise it with ulimit -n` : false;
test(`fan-out with permessage-deflate to ${ND} connections`, { skip: skipD, timeout: 120000 }, async () => {
  const plaza = await startPlaza({ args: ['--set', 'workers=2', '--set', 'websocket.compression=true',
    '--set', 'io_uring=false'] });
  const conns = [];
  try {
    const t0 = process.hrtime.bigint();
    await connectAll(plaza.port, ND, conns, (j) => ({ deflate: j % 2 === 0 }));
    const connectMs = ms(t0);
    const m1 = await metrics(plaza.url);
    assert.equal(m1['plaza_connections{state="websocket"}'], ND);

    const short = 'short ' + crypto.randomBytes(8).toString('hex');
    const big = ('plaza fan-out, compressible: ' + crypto.randomBytes(4).toString('hex') + '\n').repeat(2048);
    const rnd = crypto.randomBytes(1536).toString('base64');
    const want = [short, big, rnd];
    let got = 0;
    const all = new Promise((resolve) => {
      for (const c of conns) c.onText = () => { if (++got === ND * want.length) resolve(); };
    });
    const sender = conns[0];
    assert.ok(sender.deflate);
    const t1 = process.hrtime.bigint();
    sender.sock.write(frame(1, 'broadcast:' + short));
    const z = zlib.deflateRawSync(Buffer.from('broadcast:' + big), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    assert.ok(z.subarray(-4).equals(DEFLATE_TAIL));
    sender.sock.write(frame(1, z.subarray(0, -4), { rsv: 4 }));     // RSV1: compressed
    sender.sock.write(frame(1, 'broadcast:' + rnd));
    const timedOut = await within(all.then(() => false), 30000, true);
    const fanoutMs = ms(t1);
    await sleep(300);
    console.log(`scale: connected ${ND} in ${connectMs.toFixed(0)} ms; ${want.length} broadcasts ` +
      `(${want.map((w) => w.length).join('/')} bytes) to ${ND} (half deflate) in ${fanoutMs.toFixed(1)} ms`);
    const bad = conns.map((c, i) => ({ i, c })).filter(({ c }) =>
      c.texts.length !== want.length || c.texts.some((x, k) => x !== want[k]) ||
      c.other.length || c.ended || c.closeCode !== null ||
      c.compressed !== (c.deflate ? 2 : 0));
    assert.deepEqual({ timedOut, bad: bad.length }, { timedOut: false, bad: 0 },
      bad.slice(0, 3).map(({ i, c }) => `conn ${i} deflate=${c.deflate}: ${c.texts.length} texts ` +
        `${JSON.stringify(c.texts.map((x) => x.length))}, compressed ${c.compressed}, other ${JSON.stringify(c.other)}, ` +
        `ended ${c.ended}, close ${c.closeCode}`).join('\n'));

    const m2 = await metrics(plaza.url);
    assert.equal(m2['plaza_connections{state="websocket"}'], ND);
    assert.equal(m2.plaza_ws_messages_received_total - m1.plaza_ws_messages_received_total, 3);
    // Compressed sending must show: far fewer bytes than ND/2 plain copies of big.
    const sentBytes = m2.plaza_bytes_sent_total - m1.plaza_bytes_sent_total;
    const plainBytes = ND * (short.length + big.length + rnd.length + 3 * 4);
    assert.ok(sentBytes < plainBytes * 0.75, `sent ${sentBytes} bytes, ${plainBytes} if all plain`);
    assert.deepEqual(logProblems(plaza.logs()), []);
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    for (const c of conns) c.sock?.destroy();
    await plaza.stop(30000);
  }
});

// Graceful shutdown (SIGTERM) with N connections open: every client gets
// Close 1001, answers it, and plaza exits 0 well before the shutdown timeout.
test(`graceful shutdown with ${N} connections open`, { skip, timeout: 120000 }, async () => {
  const plaza = await startPlaza({ args: ['--set', 'workers=2'] });
  const conns = [];
  try {
    await connectAll(plaza.port, N, conns);
    const m = await metrics(plaza.url);
    assert.equal(m['plaza_connections{state="websocket"}'], N);
    const ends = conns.map((c) => new Promise((r) => { if (c.ended) r(); else c.onEnd = r; }));
    const t0 = process.hrtime.bigint();
    const res = await plaza.stop(30000);
    const stopMs = ms(t0);
    const allEnded = await within(Promise.all(ends).then(() => true), 5000, false);
    console.log(`scale: shutdown with ${N} connections took ${stopMs.toFixed(0)} ms`);
    const codes = {};
    for (const c of conns) codes[c.closeCode] = (codes[c.closeCode] || 0) + 1;
    assert.deepEqual(codes, { 1001: N }, 'close codes the clients got');
    assert.ok(allEnded, `${conns.filter((c) => !c.ended).length} sockets not closed by the server`);
    assert.deepEqual(res, { code: 0, signal: null });
    assert.deepEqual(logProblems(plaza.logs()), []);
    assert.ok(stopMs < 5000, `shutdown took ${stopMs} ms (shutdown_timeout_ms is 5000)`);
  } catch (e) {
    e.message += '\n--- plaza log ---\n' + plaza.logs().slice(-4000);
    throw e;
  } finally {
    for (const c of conns) c.sock?.destroy();
    await plaza.stop(30000);
  }
});
