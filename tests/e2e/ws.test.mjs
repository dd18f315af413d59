// WebSocket tests with the npm `ws` client (plus raw sockets where the wire
// bytes matter) against the real binary's --debug-echo handler: echo,
// message size limit, fragmentation, permessage-deflate, ping/pong, the
// close handshake, server keep-alive pings, slow consumers and broadcast.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import WebSocket from 'ws';
import { startPlaza, metrics } from './lib/server.mjs';
import {
  frame, closePayload, rawWs, expectClose, deflateMessage, inflateMessage,
  sleep, withTimeout,
} from './lib/raw.mjs';

const OP = { CONT: 0, TEXT: 1, BIN: 2, CLOSE: 8, PING: 9, PONG: 10 };
const MiB = 1024 * 1024;

// Opens a ws client; resolves once open. Records every message in
// ws.inbox ({ data: Buffer, isBinary }) and the response headers of the
// upgrade in ws.upgradeHeaders.
async function connect(url, opts = {}) {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
  ws.inbox = [];
  ws.waiters = [];
  ws.on('message', (data, isBinary) => {
    ws.inbox.push({ data, isBinary });
    for (const w of ws.waiters.splice(0)) w();
  });
  ws.on('upgrade', (res) => { ws.upgradeHeaders = res.headers; });
  ws.closedP = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  ws.on('error', (e) => { ws.lastError = e; });
  await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 5000, 'ws open');
  return ws;
}

// Waits until ws.inbox has at least n messages.
async function received(ws, n, ms = 10000) {
  const t0 = Date.now();
  while (ws.inbox.length < n) {
    if (ws.readyState >= WebSocket.CLOSING) throw new Error(`closed after ${ws.inbox.length}/${n} messages`);
    if (Date.now() - t0 > ms) throw new Error(`timeout: ${ws.inbox.length}/${n} messages`);
    await new Promise((r) => { ws.waiters.push(r); setTimeout(r, 50); });
  }
  return ws.inbox;
}

async function roundTrip(ws, data, opts) {
  const n = ws.inbox.length;
  ws.send(data, opts);
  await received(ws, n + 1);
  return ws.inbox[n];
}

const closeOf = (ws, ms = 5000) => withTimeout(ws.closedP, ms, 'ws close');

// Compressible, not trivially so: repeated JSON-ish records.
function compressible(n) {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `{"id":${i},"name":"user-${i % 97}","text":"lorem ipsum dolor sit amet"},`;
  return s.slice(0, n);
}

describe('echo and size limit (default config)', () => {
  let srv;
  before(async () => { srv = await startPlaza(); });
  after(async () => { await srv.stop(); });

  test('text and binary messages are echoed with their type', async () => {
    const ws = await connect(srv.wsUrl);
    const t = await roundTrip(ws, 'héllo wörld ✓');
    assert.equal(t.isBinary, false);
    assert.equal(t.data.toString(), 'héllo wörld ✓');
    const bin = crypto.randomBytes(1000);
    const b = await roundTrip(ws, bin);
    assert.equal(b.isBinary, true);
    assert.deepEqual(b.data, bin);
    const e = await roundTrip(ws, '');
    assert.equal(e.isBinary, false);
    assert.equal(e.data.length, 0);
    ws.close();
    await closeOf(ws);
  });

  test('messages of exactly 1 MiB (the default limit) go both ways', async () => {
    const ws = await connect(srv.wsUrl);
    const bin = crypto.randomBytes(MiB);
    const b = await roundTrip(ws, bin);
    assert.equal(b.isBinary, true);
    assert.equal(b.data.length, MiB);
    assert.ok(b.data.equals(bin), '1 MiB binary echo differs');
    const text = compressible(MiB);
    const t = await roundTrip(ws, text);
    assert.equal(t.isBinary, false);
    assert.equal(t.data.toString(), text);
    ws.close(1000);
    assert.equal((await closeOf(ws)).code, 1000);
  });

  test('1 MiB + 1 byte is closed with 1009', async () => {
    const ws = await connect(srv.wsUrl);
    ws.send(Buffer.alloc(MiB + 1, 7));
    const c = await closeOf(ws);
    assert.equal(c.code, 1009);
    assert.equal(ws.inbox.length, 0);
  });

  test('fragmented 1 MiB + 1 byte is closed with 1009', async () => {
    const ws = await connect(srv.wsUrl);
    ws.send(Buffer.alloc(MiB / 2, 1), { fin: false });
    ws.send(Buffer.alloc(MiB / 2 + 1, 2), { fin: true });
    const c = await closeOf(ws);
    assert.equal(c.code, 1009);
    assert.equal(ws.inbox.length, 0);
  });

  test('fragmented messages arrive whole', async () => {
    const ws = await connect(srv.wsUrl);
    ws.send('Hello, ', { fin: false });
    ws.send('fragmented ', { fin: false });
    ws.send('wörld', { fin: true });
    await received(ws, 1);
    assert.equal(ws.inbox[0].isBinary, false);
    assert.equal(ws.inbox[0].data.toString(), 'Hello, fragmented wörld');

    // a UTF-8 character split across fragments
    const euro = Buffer.from('€');
    ws.send(Buffer.concat([Buffer.from('price: '), euro.subarray(0, 1)]), { binary: false, fin: false });
    ws.send(euro.subarray(1), { binary: false, fin: true });
    await received(ws, 2);
    assert.equal(ws.inbox[1].data.toString(), 'price: €');

    // 64 binary fragments of 8 KiB
    const parts = Array.from({ length: 64 }, () => crypto.randomBytes(8192));
    parts.forEach((p, i) => ws.send(p, { binary: true, fin: i === parts.length - 1 }));
    await received(ws, 3);
    assert.equal(ws.inbox[2].isBinary, true);
    assert.ok(ws.inbox[2].data.equals(Buffer.concat(parts)));
    assert.equal(ws.inbox.length, 3);
    ws.close();
    await closeOf(ws);
  });

  test('client ping gets a pong with the same payload', async () => {
    const ws = await connect(srv.wsUrl);
    const payload = crypto.randomBytes(125);
    const pong = new Promise((r) => ws.once('pong', r));
    ws.ping(payload);
    assert.deepEqual(await withTimeout(pong, 3000, 'pong'), payload);
    const pong2 = new Promise((r) => ws.once('pong', r));
    ws.ping();
    assert.equal((await withTimeout(pong2, 3000, 'empty pong')).length, 0);
    ws.close();
    await closeOf(ws);
  });

  test('close handshake: client 4000 "bye" -> server echoes 4000', async () => {
    const ws = await connect(srv.wsUrl);
    ws.close(4000, 'bye');
    const c = await closeOf(ws);
    assert.equal(c.code, 4000);

    // the same on the wire, and the TCP connection ends afterwards
    const r = await rawWs(srv.port);
    r.send(frame(OP.CLOSE, closePayload(4000, 'bye')));
    const f = await expectClose(r);
    assert.equal(f.code, 4000);
    assert.equal(r.frames.length, 1);
  });

  test('with compression off (default) no extension is negotiated', async () => {
    const ws = await connect(srv.wsUrl, { perMessageDeflate: true });
    assert.equal(ws.extensions, '');
    assert.equal(ws.upgradeHeaders['sec-websocket-extensions'], undefined);
    const text = compressible(100000);
    const t = await roundTrip(ws, text);
    assert.equal(t.data.toString(), text);
    ws.close();
    await closeOf(ws);
  });
});

describe('websocket.max_message_bytes configured (2 MiB)', () => {
  let srv;
  before(async () => { srv = await startPlaza({ args: ['--set', `websocket.max_message_bytes=${2 * MiB}`] }); });
  after(async () => { await srv.stop(); });

  test('2 MiB echoes, 2 MiB + 1 gets 1009', async () => {
    const ws = await connect(srv.wsUrl);
    const bin = crypto.randomBytes(2 * MiB);
    const b = await roundTrip(ws, bin);
    assert.ok(b.data.equals(bin));
    ws.send(Buffer.alloc(2 * MiB + 1));
    assert.equal((await closeOf(ws)).code, 1009);
  });
});

describe('permessage-deflate (websocket.compression=true)', () => {
  let srv;
  before(async () => { srv = await startPlaza({ args: ['--set', 'websocket.compression=true'] }); });
  after(async () => { await srv.stop(); });

  const deflateOffer = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' };

  test('ws client negotiates it with server_no_context_takeover', async () => {
    const ws = await connect(srv.wsUrl, { perMessageDeflate: true });
    assert.match(ws.extensions, /permessage-deflate/);
    const h = ws.upgradeHeaders['sec-websocket-extensions'];
    assert.match(h, /^permessage-deflate\b/);
    assert.match(h, /server_no_context_takeover/);
    const t = await roundTrip(ws, 'small');
    assert.equal(t.data.toString(), 'small');
    ws.close();
    await closeOf(ws);
  });

  test('big compressible messages echo correctly and are compressed both ways', async () => {
    const ws = await connect(srv.wsUrl, { perMessageDeflate: true });
    const text = compressible(MiB);
    const bin = Buffer.from(compressible(512 * 1024).replaceAll('e', '\u00e9'), 'latin1');
    const m0 = await metrics(srv.url);
    for (let i = 0; i < 3; i++) {
      const t = await roundTrip(ws, text);
      assert.equal(t.isBinary, false);
      assert.equal(t.data.length, text.length);
      assert.equal(t.data.toString(), text);
      const b = await roundTrip(ws, bin);
      assert.equal(b.isBinary, true);
      assert.ok(b.data.equals(bin));
    }
    const m1 = await metrics(srv.url);
    const payload = 3 * (text.length + bin.length);
    const sent = m1.plaza_bytes_sent_total - m0.plaza_bytes_sent_total;
    const recv = m1.plaza_bytes_received_total - m0.plaza_bytes_received_total;
    // includes the first /metrics response (a few KB)
    assert.ok(sent < payload / 10, `server sent ${sent} bytes for ${payload} payload bytes`);
    assert.ok(recv < payload / 10, `server received ${recv} bytes for ${payload} payload bytes`);
    ws.close();
    await closeOf(ws);
  });

  test('fragmented compressed message from the ws client arrives whole', async () => {
    const ws = await connect(srv.wsUrl, { perMessageDeflate: { threshold: 0 } });
    const parts = [compressible(30000), '✓ middle ✓', compressible(70000)];
    parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
    await received(ws, 1);
    assert.equal(ws.inbox[0].isBinary, false);
    assert.equal(ws.inbox[0].data.toString(), parts.join(''));
    ws.close();
    await closeOf(ws);
  });

  test('raw client: response has RSV1 and inflates to the message', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    assert.match(c.head, /\r\nSec-WebSocket-Extensions: permessage-deflate[^\r]*server_no_context_takeover/i);
    const text = compressible(20000);
    c.send(frame(OP.TEXT, text));                         // uncompressed in
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.rsv1, true, 'large echo should be compressed');
    assert.ok(f.payload.length < text.length / 5, `compressed to ${f.payload.length}`);
    assert.equal(inflateMessage(f.payload).toString(), text);

    // compressed in (RSV1), two messages: each echo inflates on its own
    // (server_no_context_takeover)
    for (let i = 0; i < 2; i++) {
      c.send(frame(OP.BIN, deflateMessage(Buffer.from(text)), { rsv: 4 }));
      const g = await c.waitFor((x, j) => j > c.frames.indexOf(f) + i && x.opcode === OP.BIN);
      assert.ok(g);
      assert.equal(g.rsv1, true);
      assert.equal(inflateMessage(g.payload).toString(), text);
    }

    // below compression_min_bytes (128): sent plain
    c.send(frame(OP.TEXT, 'short'));
    const s = await c.waitFor((x) => x.opcode === OP.TEXT && !x.rsv1);
    assert.ok(s);
    assert.equal(s.payload.toString(), 'short');

    // incompressible: sent plain (compression would not make it smaller)
    const rnd = crypto.randomBytes(4000);
    c.send(frame(OP.BIN, rnd));
    const r = await c.waitFor((x) => x.opcode === OP.BIN && !x.rsv1);
    assert.ok(r);
    assert.ok(r.payload.equals(rnd));
    c.sock.destroy();
  });

  test('fragmented compressed message (RSV1 on the first frame only) echoes', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    const text = compressible(50000);
    const z = deflateMessage(Buffer.from(text));
    const cut = Math.floor(z.length / 3);
    c.send(frame(OP.TEXT, z.subarray(0, cut), { rsv: 4, fin: false }));
    c.send(frame(OP.PING, 'x'));
    c.send(frame(OP.CONT, z.subarray(cut, 2 * cut), { fin: false }));
    c.send(frame(OP.CONT, z.subarray(2 * cut)));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(inflateMessage(f.payload).toString(), text);
    c.sock.destroy();
  });

  test('client context takeover: second message referencing the first inflates', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    // one raw deflate stream across two messages (the client keeps context)
    const d = zlib.createDeflateRaw();
    const chunks = [];
    d.on('data', (x) => chunks.push(x));
    const flush = () => new Promise((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, r));
    const msg = compressible(3000);
    const out = [];
    for (let i = 0; i < 2; i++) {
      d.write(msg);
      await flush();
      const z = Buffer.concat(chunks.splice(0));
      assert.ok(z.subarray(-4).equals(Buffer.from([0, 0, 0xff, 0xff])));
      out.push(z.subarray(0, -4));
    }
    d.close();
    assert.ok(out[1].length < out[0].length / 4, 'second message should use the window');
    c.send(frame(OP.TEXT, out[0], { rsv: 4 }));
    c.send(frame(OP.TEXT, out[1], { rsv: 4 }));
    await c.waitFor(() => c.frames.filter((x) => x.opcode === OP.TEXT).length === 2);
    const texts = c.frames.filter((x) => x.opcode === OP.TEXT);
    assert.equal(texts.length, 2);
    for (const t of texts) assert.equal((t.rsv1 ? inflateMessage(t.payload) : t.payload).toString(), msg);
    c.sock.destroy();
  });

  test('zip bomb (50 MB of zeros in one compressed message) -> 1009', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    const z = deflateMessage(Buffer.alloc(50 * 1000 * 1000));
    assert.ok(z.length < 100000);
    const m0 = await metrics(srv.url);
    c.send(frame(OP.BIN, z, { rsv: 4 }));
    const f = await expectClose(c);
    assert.equal(f.code, 1009);
    assert.equal(c.frames.filter((x) => x.opcode !== OP.CLOSE).length, 0);
    const m1 = await metrics(srv.url);
    assert.equal((m1['plaza_ws_close_sent_total{code="1009"}'] ?? 0) - (m0['plaza_ws_close_sent_total{code="1009"}'] ?? 0), 1);
  });

  test('compressed message inflating to exactly the limit is accepted', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    const msg = Buffer.alloc(MiB, 0x61);
    c.send(frame(OP.TEXT, deflateMessage(msg), { rsv: 4 }));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    const got = f.rsv1 ? inflateMessage(f.payload) : f.payload;
    assert.equal(got.length, MiB);
    assert.ok(got.equals(msg));
    // one byte more is over
    c.send(frame(OP.TEXT, deflateMessage(Buffer.alloc(MiB + 1, 0x61)), { rsv: 4 }));
    const cl = await expectClose(c);
    assert.equal(cl.code, 1009);
  });

  test('incompressible 1 MiB message from a deflate client is accepted (limit is after inflation)', async () => {
    // The ws client compresses every message over 1 KiB; random data grows
    // a little on the wire (stored blocks), yet the message is exactly the
    // limit once inflated.
    const ws = await connect(srv.wsUrl, { perMessageDeflate: true });
    const bin = crypto.randomBytes(MiB);
    const b = await roundTrip(ws, bin);
    assert.ok(b.data.equals(bin));
    ws.send(crypto.randomBytes(MiB + 1));
    assert.equal((await closeOf(ws)).code, 1009);
  });

  test('compressed frame announcing far more than the limit -> 1009 from the header', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    // RSV1 binary frame announcing 2 MiB; only the header is sent
    c.send(Buffer.from([0xc2, 0x80 | 127, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4]));
    assert.equal((await expectClose(c)).code, 1009);
  });

  test('messages ending in a final (BFINAL) block, with client context takeover', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    const msgs = [compressible(5000), 'second ' + compressible(3000), ''];
    for (const m of msgs) c.send(frame(OP.TEXT, zlib.deflateRawSync(Buffer.from(m)), { rsv: 4 }));
    await c.waitFor(() => c.frames.filter((x) => x.opcode === OP.TEXT).length === msgs.length);
    const got = c.frames.filter((x) => x.opcode === OP.TEXT)
      .map((t) => (t.rsv1 ? inflateMessage(t.payload) : t.payload).toString());
    assert.deepEqual(got, msgs);
    c.sock.destroy();
  });

  test('empty compressed messages (no payload, and 0x00) are empty messages', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    c.send(frame(OP.TEXT, Buffer.alloc(0), { rsv: 4 }));
    c.send(frame(OP.BIN, Buffer.from([0x00]), { rsv: 4 }));
    c.send(frame(OP.TEXT, deflateMessage(Buffer.alloc(0)), { rsv: 4 }));
    await c.waitFor(() => c.frames.length === 3);
    assert.deepEqual(c.frames.map((x) => [x.opcode, x.payload.length]), [[OP.TEXT, 0], [OP.BIN, 0], [OP.TEXT, 0]]);
    c.sock.destroy();
  });

  test('server_max_window_bits below 15: accepted, and the server then sends uncompressed', async () => {
    const c = await rawWs(srv.port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=10' } });
    assert.match(c.head, /\r\nSec-WebSocket-Extensions: permessage-deflate[^\r]*server_max_window_bits=10/i);
    const text = compressible(20000);
    c.send(frame(OP.TEXT, deflateMessage(Buffer.from(text)), { rsv: 4 }));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.rsv1, false);
    assert.equal(f.payload.toString(), text);
    c.sock.destroy();
  });

  test('an unacceptable offer is declined, a later acceptable one taken', async () => {
    const c = await rawWs(srv.port, { headers: {
      'Sec-WebSocket-Extensions': 'permessage-deflate; bogus_param, permessage-deflate; client_no_context_takeover' } });
    const ext = /\r\nSec-WebSocket-Extensions: ([^\r]*)/i.exec(c.head)?.[1];
    assert.ok(ext, 'no extension negotiated');
    assert.match(ext, /client_no_context_takeover/);
    assert.doesNotMatch(ext, /bogus/);
    c.sock.destroy();
    const d = await rawWs(srv.port, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=16' } });
    assert.doesNotMatch(d.head, /sec-websocket-extensions/i);
    d.sock.destroy();
  });

  test('broadcast to a mix of deflate and plain clients', async () => {
    const z = await Promise.all([0, 1].map(() => rawWs(srv.port, { headers: deflateOffer })));
    const p = await rawWs(srv.port);
    const ws = await connect(srv.wsUrl, { perMessageDeflate: true });
    const text = compressible(40000);
    p.send(frame(OP.TEXT, 'broadcast:' + text));
    for (const c of z) {
      const f = await c.waitFor((x) => x.opcode === OP.TEXT);
      assert.ok(f);
      assert.equal(f.rsv1, true);
      assert.equal(inflateMessage(f.payload).toString(), text);
    }
    const f = await p.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.rsv1, false);
    assert.equal(f.payload.toString(), text);
    await received(ws, 1);
    assert.equal(ws.inbox[0].data.toString(), text);
    for (const c of [...z, p]) c.sock.destroy();
    ws.close();
    await closeOf(ws);
  });

  test('invalid deflate data -> 1007', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    c.send(frame(OP.BIN, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), { rsv: 4 }));
    const f = await expectClose(c);
    assert.equal(f.code, 1007);
  });

  test('compressed text that inflates to invalid UTF-8 -> 1007', async () => {
    const c = await rawWs(srv.port, { headers: deflateOffer });
    c.send(frame(OP.TEXT, deflateMessage(Buffer.from([0x61, 0xed, 0xa0, 0x80])), { rsv: 4 }));
    const f = await expectClose(c);
    assert.equal(f.code, 1007);
  });

  test('client without the offer: no extension, and RSV1 frames -> 1002', async () => {
    const ws = await connect(srv.wsUrl, { perMessageDeflate: false });
    assert.equal(ws.extensions, '');
    assert.equal(ws.upgradeHeaders['sec-websocket-extensions'], undefined);
    const text = compressible(10000);
    assert.equal((await roundTrip(ws, text)).data.toString(), text);
    ws.close();
    await closeOf(ws);

    const c = await rawWs(srv.port);
    assert.doesNotMatch(c.head, /sec-websocket-extensions/i);
    c.send(frame(OP.TEXT, deflateMessage(Buffer.from(text)), { rsv: 4 }));
    assert.equal((await expectClose(c)).code, 1002);
  });
});

describe('server keep-alive pings (ping_interval_ms=300, pong_timeout_ms=300)', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ args: ['--set', 'websocket.ping_interval_ms=300', '--set', 'websocket.pong_timeout_ms=300'] });
  });
  after(async () => { await srv.stop(); });

  test('a ws client that answers pings stays connected for 2 s', async () => {
    const ws = await connect(srv.wsUrl);
    let pings = 0;
    ws.on('ping', () => { pings++; });
    await sleep(2000);
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.ok(pings >= 3, `only ${pings} pings in 2 s`);
    assert.equal((await roundTrip(ws, 'still here')).data.toString(), 'still here');
    ws.close();
    await closeOf(ws);
  });

  test('a raw client that never answers is dropped within 1.5 s', async () => {
    const m0 = await metrics(srv.url);
    const t0 = Date.now();
    const c = await rawWs(srv.port);
    await withTimeout(c.closed, 1500, 'server dropping a client that ignores pings');
    const dt = Date.now() - t0;
    assert.ok(dt >= 500, `dropped after only ${dt} ms`);
    assert.ok(c.frames.some((f) => f.opcode === OP.PING), 'no ping received');
    const m1 = await metrics(srv.url);
    assert.equal(m1.plaza_idle_timeouts_total - m0.plaza_idle_timeouts_total, 1);
  });

  test('a raw client that keeps sending data but no pongs is not dropped', async () => {
    const c = await rawWs(srv.port);
    for (let i = 0; i < 10; i++) {
      c.send(frame(OP.TEXT, `tick ${i}`));
      await sleep(150);
    }
    assert.equal(c.isClosed(), false);
    assert.equal(c.frames.filter((f) => f.opcode === OP.TEXT).length, 10);
    c.sock.destroy();
  });
});

describe('slow consumer (max_outbound_bytes=65536)', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ args: ['--set', 'websocket.max_outbound_bytes=65536'] });
  });
  after(async () => { await srv.stop(); });

  test('a client that stops reading is dropped; a reading one gets everything', async () => {
    const slow = await rawWs(srv.port);
    slow.sock.pause();
    const fast = await connect(srv.wsUrl);
    const m0 = await metrics(srv.url);
    const filler = 'x'.repeat(16 * 1024);
    const msg = (i) => `${String(i).padStart(6, '0')}:${filler}`;
    let sent = 0, detectedAt = -1;
    // One at a time: the limit counts bytes queued before the worker's
    // deferred flush, so a burst of >4 x 16 KiB read at once would trip it
    // for the reading client too.
    while (sent < 4000) {
      fast.send(`broadcast:${msg(sent++)}`);
      await received(fast, sent);
      if (detectedAt < 0 && sent % 64 === 0) {
        const m = await metrics(srv.url);
        if (m.plaza_slow_consumer_disconnects_total > m0.plaza_slow_consumer_disconnects_total) detectedAt = sent;
      }
      if (detectedAt >= 0 && sent >= detectedAt + 64) break;
    }
    assert.ok(detectedAt > 0, `no slow consumer detected after ${sent} broadcasts of 16 KiB`);
    const m1 = await metrics(srv.url);
    assert.equal(m1.plaza_slow_consumer_disconnects_total - m0.plaza_slow_consumer_disconnects_total, 1);

    // the reading client got every broadcast, in order, intact
    assert.equal(fast.readyState, WebSocket.OPEN);
    assert.equal(fast.inbox.length, sent);
    fast.inbox.forEach((m, i) => assert.ok(m.data.toString() === msg(i), `broadcast ${i} differs`));

    // the slow one, once it reads again: a gap-free prefix, then Close 1008
    slow.sock.resume();
    const cf = await slow.waitFor((x) => x.opcode === OP.CLOSE, 10000);
    assert.ok(cf, 'slow consumer got no Close frame');
    assert.equal(cf.code, 1008);
    assert.equal(cf.reason, 'slow consumer');
    slow.send(frame(OP.CLOSE, closePayload(1000)));
    await withTimeout(slow.closed, 5000, 'slow consumer TCP close');
    const data = slow.frames.filter((x) => x.opcode === OP.TEXT);
    assert.ok(data.length < sent);
    data.forEach((f, i) => assert.ok(f.payload.toString() === msg(i), `slow frame ${i} differs`));
    assert.equal(slow.frames.at(-1), cf);

    // and the fast one still works
    assert.equal((await roundTrip(fast, 'after')).data.toString(), 'after');
    fast.close();
    await closeOf(fast);
  });
});

describe('broadcast across worker threads (workers=2)', () => {
  let srv;
  before(async () => { srv = await startPlaza({ args: ['--set', 'workers=2'] }); });
  after(async () => { await srv.stop(); });

  test('every one of 50 clients receives each broadcast', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => connect(srv.wsUrl)));
    const m = await metrics(srv.url);
    assert.equal(m['plaza_connections{state="websocket"}'], 50);
    for (const [i, sender] of [[0, 0], [1, 49], [2, 25]]) {
      clients[sender].send(`broadcast:hello ${i}`);
      await Promise.all(clients.map((c) => received(c, i + 1)));
    }
    for (const c of clients) {
      assert.deepEqual(c.inbox.map((x) => x.data.toString()), ['hello 0', 'hello 1', 'hello 2']);
      assert.ok(c.inbox.every((x) => !x.isBinary));
    }
    // many concurrent broadcasters: everyone gets all of them
    clients.forEach((c, i) => c.send(`broadcast:from ${i}`));
    await Promise.all(clients.map((c) => received(c, 53)));
    for (const c of clients) {
      const got = c.inbox.slice(3).map((x) => x.data.toString()).sort();
      assert.deepEqual(got, clients.map((_, i) => `from ${i}`).sort());
    }
    await Promise.all(clients.map((c) => { c.close(); return closeOf(c); }));
  });
});

describe('shutdown', () => {
  test('SIGTERM closes open WebSocket connections with 1001 and exits 0', async () => {
    const srv = await startPlaza();
    const ws = await connect(srv.wsUrl);
    const raw = await rawWs(srv.port);
    const closed = closeOf(ws, 10000);
    const stopping = srv.stop();
    const f = await raw.waitFor((x) => x.opcode === OP.CLOSE, 5000);
    assert.ok(f);
    assert.equal(f.code, 1001);
    raw.send(frame(OP.CLOSE, closePayload(1001)));
    assert.equal((await closed).code, 1001);
    const res = await stopping;
    assert.equal(res.code, 0);
    await withTimeout(raw.closed, 5000, 'raw TCP close');
  });
});
