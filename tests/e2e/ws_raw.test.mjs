// Raw-TCP WebSocket tests: malformed frames, UTF-8 checks, close codes,
// odd write patterns and handshake failures, against the real binary with
// the --debug-echo handler. Every protocol violation must get the exact
// close code from RFC 6455 and then a closed TCP connection.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startPlaza } from './lib/server.mjs';
import {
  frame, closePayload, rawWs, expectClose, httpRaw, writeByteByByte, sleep,
  withTimeout, parseFrames,
} from './lib/raw.mjs';

const OP = { CONT: 0, TEXT: 1, BIN: 2, CLOSE: 8, PING: 9, PONG: 10 };

// Sends bytes on a fresh upgraded connection and expects a Close frame with
// `code`, followed by the TCP connection closing. No data frame may be
// echoed before it unless allowEcho.
async function expectViolation(port, bytes, code, { allowEcho = false, open } = {}) {
  const c = await rawWs(port, open);
  for (const b of [].concat(bytes)) c.send(b);
  const f = await expectClose(c);
  assert.equal(f.code, code, `close code (reason "${f.reason}")`);
  if (!allowEcho)
    assert.deepEqual(c.frames.filter((x) => x.opcode !== OP.CLOSE).map((x) => x.opcode), []);
  assert.equal(f.fin, true);
  assert.equal(f.rsv1, false);
  return { c, f };
}

// Sends a message and waits for its echo frame (opcode op).
async function echo(c, op, payload) {
  const n = c.frames.length;
  c.send(frame(op, payload));
  const f = await c.waitFor((x, i) => i >= n && x.opcode === op);
  assert.ok(f, 'echo expected, connection closed');
  return f;
}

describe('frame-level violations (default config)', () => {
  let srv;
  before(async () => { srv = await startPlaza(); });
  after(async () => { await srv.stop(); });

  test('unmasked client frame -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, 'hello', { mask: false }), 1002);
  });

  test('RSV1 without negotiated extension -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, 'hello', { rsv: 4 }), 1002);
  });

  test('RSV2 -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, 'hello', { rsv: 2 }), 1002);
  });

  test('RSV3 -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, 'hello', { rsv: 1 }), 1002);
  });

  test('reserved data opcode 3 -> 1002', async () => {
    await expectViolation(srv.port, frame(3, 'hello'), 1002);
  });

  test('reserved control opcode 0xB -> 1002', async () => {
    await expectViolation(srv.port, frame(0xb, 'hello'), 1002);
  });

  test('fragmented ping (FIN=0) -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.PING, 'ab', { fin: false }), 1002);
  });

  test('ping with 126-byte payload -> 1002', async () => {
    const { c } = await expectViolation(srv.port, frame(OP.PING, Buffer.alloc(126, 0x61)), 1002);
    assert.equal(c.frames.filter((x) => x.opcode === OP.PONG).length, 0);
  });

  test('ping with 125-byte payload is answered with the same payload', async () => {
    const c = await rawWs(srv.port);
    const payload = crypto.randomBytes(125);
    c.send(frame(OP.PING, payload));
    const f = await c.waitFor((x) => x.opcode === OP.PONG);
    assert.ok(f);
    assert.deepEqual(f.payload, payload);
    c.sock.destroy();
  });

  test('continuation without a started message -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.CONT, 'hello'), 1002);
  });

  test('new text frame inside a fragmented message -> 1002', async () => {
    await expectViolation(srv.port, [frame(OP.TEXT, 'hel', { fin: false }), frame(OP.TEXT, 'lo')], 1002);
  });

  test('new binary frame inside a fragmented text message -> 1002', async () => {
    await expectViolation(srv.port, [frame(OP.TEXT, 'hel', { fin: false }), frame(OP.BIN, 'lo')], 1002);
  });

  test('RSV1 on a continuation frame (no extension) -> 1002', async () => {
    await expectViolation(srv.port, [frame(OP.TEXT, 'hel', { fin: false }), frame(OP.CONT, 'lo', { rsv: 4 })], 1002);
  });

  test('64-bit length with the top bit set -> 1002', async () => {
    const h = Buffer.from([0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]);
    await expectViolation(srv.port, h, 1002);
  });

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]) {
    test(`close frame with invalid code ${code} -> 1002`, async () => {
      await expectViolation(srv.port, frame(OP.CLOSE, closePayload(code, 'x')), 1002);
    });
  }

  test('close frame with a 1-byte payload -> 1002', async () => {
    await expectViolation(srv.port, frame(OP.CLOSE, Buffer.from([0x03])), 1002);
  });

  for (const code of [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4000, 4999]) {
    test(`valid close code ${code} is echoed`, async () => {
      const c = await rawWs(srv.port);
      c.send(frame(OP.CLOSE, closePayload(code, 'bye')));
      const f = await expectClose(c);
      assert.equal(f.code, code);
      assert.equal(c.frames.length, 1);
    });
  }

  test('close frame without payload is answered with an empty Close', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.CLOSE));
    const f = await expectClose(c);
    assert.equal(f.payload.length, 0);
  });

  test('close frame split across writes (control frame reassembly)', async () => {
    const c = await rawWs(srv.port);
    const b = frame(OP.CLOSE, closePayload(4321, 'reason text'));
    c.send(b.subarray(0, 9));
    await sleep(30);
    c.send(b.subarray(9));
    const f = await expectClose(c);
    assert.equal(f.code, 4321);
  });
});

describe('UTF-8 validation', () => {
  let srv;
  before(async () => { srv = await startPlaza(); });
  after(async () => { await srv.stop(); });

  test('invalid byte (0xFF) in a text message -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0x61, 0xff, 0x62])), 1007);
  });

  test('truncated sequence at message end -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0x61, 0xe2, 0x82])), 1007);
  });

  test('overlong encoding C0 AF -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0xc0, 0xaf])), 1007);
  });

  test('overlong 3-byte encoding E0 80 AF -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0xe0, 0x80, 0xaf])), 1007);
  });

  test('surrogate ED A0 80 -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0x61, 0xed, 0xa0, 0x80])), 1007);
  });

  test('code point above U+10FFFF (F4 90 80 80) -> 1007', async () => {
    await expectViolation(srv.port, frame(OP.TEXT, Buffer.from([0xf4, 0x90, 0x80, 0x80])), 1007);
  });

  test('invalid byte after a long ASCII run -> 1007', async () => {
    const b = Buffer.concat([Buffer.alloc(1000, 0x61), Buffer.from([0x80]), Buffer.alloc(100, 0x62)]);
    await expectViolation(srv.port, frame(OP.TEXT, b), 1007);
  });

  test('4-byte character split across fragments, second fragment invalid -> 1007', async () => {
    // U+1F600 is F0 9F 98 80; the continuation fragment breaks it.
    await expectViolation(srv.port, [
      frame(OP.TEXT, Buffer.from([0x61, 0xf0, 0x9f]), { fin: false }),
      frame(OP.CONT, Buffer.from([0x28, 0x80])),
    ], 1007);
  });

  test('invalid first fragment is rejected before the message ends -> 1007', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.TEXT, Buffer.from([0x61, 0xc3, 0x28]), { fin: false }));
    const f = await expectClose(c);
    assert.equal(f.code, 1007);
  });

  test('valid 4-byte character split across fragments is echoed whole', async () => {
    const c = await rawWs(srv.port);
    const text = Buffer.from('a😀b€c', 'utf8');
    // split inside the emoji (after 2 of its 4 bytes) and inside the euro sign
    const parts = [text.subarray(0, 3), text.subarray(3, 7), text.subarray(7, 8), text.subarray(8)];
    c.send(frame(OP.TEXT, parts[0], { fin: false }));
    c.send(frame(OP.CONT, parts[1], { fin: false }));
    c.send(frame(OP.CONT, parts[2], { fin: false }));
    c.send(frame(OP.CONT, parts[3]));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.fin, true);
    assert.deepEqual(f.payload, text);
    c.sock.destroy();
  });

  test('valid multi-byte text in one frame is echoed byte for byte', async () => {
    const c = await rawWs(srv.port);
    const text = Buffer.from('Ünïcødé ✓ 𝄞 \u{10FFFF} \u{FFFF} \u{80}', 'utf8');
    const f = await echo(c, OP.TEXT, text);
    assert.deepEqual(f.payload, text);
    c.sock.destroy();
  });

  test('binary messages are not UTF-8 checked', async () => {
    const c = await rawWs(srv.port);
    const b = Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80, 0xc0]);
    const f = await echo(c, OP.BIN, b);
    assert.deepEqual(f.payload, b);
    c.sock.destroy();
  });

  test('invalid UTF-8 in a close reason -> 1007', async () => {
    const p = Buffer.concat([closePayload(1000), Buffer.from([0x61, 0xff])]);
    await expectViolation(srv.port, frame(OP.CLOSE, p), 1007);
  });

  test('surrogate in a close reason -> 1007', async () => {
    const p = Buffer.concat([closePayload(4000), Buffer.from([0xed, 0xa0, 0x80])]);
    await expectViolation(srv.port, frame(OP.CLOSE, p), 1007);
  });
});

describe('message size limit (websocket.max_message_bytes=1000)', () => {
  let srv;
  before(async () => { srv = await startPlaza({ args: ['--set', 'websocket.max_message_bytes=1000'] }); });
  after(async () => { await srv.stop(); });

  test('message of exactly the limit is echoed', async () => {
    const c = await rawWs(srv.port);
    const b = crypto.randomBytes(1000);
    const f = await echo(c, OP.BIN, b);
    assert.deepEqual(f.payload, b);
    c.sock.destroy();
  });

  test('single frame one byte over the limit -> 1009', async () => {
    await expectViolation(srv.port, frame(OP.BIN, Buffer.alloc(1001)), 1009);
  });

  test('fragments summing to one byte over the limit -> 1009', async () => {
    await expectViolation(srv.port, [
      frame(OP.TEXT, Buffer.alloc(600, 0x61), { fin: false }),
      frame(OP.CONT, Buffer.alloc(401, 0x61)),
    ], 1009);
  });

  test('fragments summing to exactly the limit are echoed', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.TEXT, Buffer.alloc(600, 0x61), { fin: false }));
    c.send(frame(OP.CONT, Buffer.alloc(400, 0x62)));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.payload.toString(), 'a'.repeat(600) + 'b'.repeat(400));
    c.sock.destroy();
  });

  test('over-limit length is rejected from the header alone -> 1009', async () => {
    // Only the header of a 2^40-byte frame is sent.
    const h = Buffer.from([0x82, 0x80 | 127, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    await expectViolation(srv.port, h, 1009);
  });

  test('limit is per message: many messages below it are fine', async () => {
    const c = await rawWs(srv.port);
    for (let i = 0; i < 5; i++) {
      const f = await echo(c, OP.BIN, Buffer.alloc(900, i));
      assert.equal(f.payload.length, 900);
      assert.equal(f.payload[0], i);
    }
    c.sock.destroy();
  });
});

describe('stream handling', () => {
  let srv;
  before(async () => { srv = await startPlaza(); });
  after(async () => { await srv.stop(); });

  test('ping between fragments is answered and the message still delivered', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.TEXT, 'Hello, ', { fin: false }));
    c.send(frame(OP.PING, 'mid'));
    c.send(frame(OP.CONT, 'fragmented ', { fin: false }));
    c.send(frame(OP.PONG, 'unsolicited'));
    c.send(frame(OP.CONT, 'world'));
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.payload.toString(), 'Hello, fragmented world');
    const pongs = c.frames.filter((x) => x.opcode === OP.PONG);
    assert.equal(pongs.length, 1);
    assert.equal(pongs[0].payload.toString(), 'mid');
    // the pong comes before the message (it was sent first)
    assert.ok(c.frames.indexOf(pongs[0]) < c.frames.indexOf(f));
    c.sock.destroy();
  });

  test('ping split across writes inside a fragmented message', async () => {
    const c = await rawWs(srv.port);
    const ping = frame(OP.PING, 'abcdefgh');
    c.send(Buffer.concat([frame(OP.BIN, Buffer.from([1, 2]), { fin: false }), ping.subarray(0, 5)]));
    await sleep(20);
    c.send(Buffer.concat([ping.subarray(5), frame(OP.CONT, Buffer.from([3]))]));
    const f = await c.waitFor((x) => x.opcode === OP.BIN);
    assert.ok(f);
    assert.deepEqual([...f.payload], [1, 2, 3]);
    const p = c.frames.find((x) => x.opcode === OP.PONG);
    assert.equal(p.payload.toString(), 'abcdefgh');
    c.sock.destroy();
  });

  test('byte-at-a-time writes: handshake and frames', async () => {
    const c = await rawWs(srv.port, { byteByByte: true });
    assert.match(c.head, /^HTTP\/1\.1 101 /);
    const msgs = [
      frame(OP.TEXT, 'tiny'),
      frame(OP.BIN, crypto.randomBytes(200)),          // 16-bit length
      frame(OP.TEXT, 'frag-', { fin: false }),
      frame(OP.PING, 'p'),
      frame(OP.CONT, 'mented ✓'),
      frame(OP.TEXT, ''),
    ];
    await writeByteByByte(c.sock, Buffer.concat(msgs));
    await c.waitFor(() => c.frames.filter((x) => x.opcode === OP.TEXT || x.opcode === OP.BIN).length === 4);
    const data = c.frames.filter((x) => x.opcode === OP.TEXT || x.opcode === OP.BIN);
    assert.equal(data[0].payload.toString(), 'tiny');
    assert.equal(data[1].opcode, OP.BIN);
    assert.equal(data[1].payload.length, 200);
    assert.equal(data[2].payload.toString(), 'frag-mented ✓');
    assert.equal(data[3].payload.length, 0);
    assert.equal(c.frames.find((x) => x.opcode === OP.PONG).payload.toString(), 'p');
    c.sock.destroy();
  });

  test('byte-at-a-time 64-bit length frame', async () => {
    const c = await rawWs(srv.port);
    const payload = crypto.randomBytes(70000);
    const b = frame(OP.BIN, payload);
    await writeByteByByte(c.sock, b.subarray(0, 20));
    c.send(b.subarray(20));
    const f = await c.waitFor((x) => x.opcode === OP.BIN);
    assert.ok(f);
    assert.deepEqual(f.payload, payload);
    c.sock.destroy();
  });

  test('500 small messages in one write are all echoed in order', async () => {
    const c = await rawWs(srv.port);
    const bufs = [];
    for (let i = 0; i < 500; i++) bufs.push(frame(i % 2 ? OP.BIN : OP.TEXT, `msg-${i}`));
    c.send(Buffer.concat(bufs));
    await c.waitFor(() => c.frames.length >= 500);
    assert.equal(c.frames.length, 500);
    c.frames.forEach((f, i) => {
      assert.equal(f.opcode, i % 2 ? OP.BIN : OP.TEXT);
      assert.equal(f.payload.toString(), `msg-${i}`);
    });
    c.sock.destroy();
  });

  test('data after the client Close frame is ignored', async () => {
    const c = await rawWs(srv.port);
    c.send(Buffer.concat([
      frame(OP.TEXT, 'before'),
      frame(OP.CLOSE, closePayload(1000)),
      frame(OP.TEXT, 'after'),
      frame(OP.PING, 'after'),
    ]));
    const f = await expectClose(c);
    assert.equal(f.code, 1000);
    assert.deepEqual(c.frames.map((x) => [x.opcode, x.opcode === OP.CLOSE ? '' : x.payload.toString()]),
      [[OP.TEXT, 'before'], [OP.CLOSE, '']]);
  });

  test('data written after the close handshake in a later write is ignored', async () => {
    const c = await rawWs(srv.port);
    c.send(frame(OP.CLOSE, closePayload(1001)));
    await c.waitFor((x) => x.opcode === OP.CLOSE);
    if (!c.sock.destroyed) c.send(frame(OP.TEXT, 'late'));
    await withTimeout(c.closed, 5000, 'TCP close');
    assert.deepEqual(c.frames.map((x) => x.opcode), [OP.CLOSE]);
  });

  test('frames in the same write as the upgrade request are processed', async () => {
    const net = await import('node:net');
    const sock = net.connect(srv.port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    const k = crypto.randomBytes(16).toString('base64');
    sock.write(Buffer.concat([
      Buffer.from(`GET /connection/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${k}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      frame(OP.TEXT, 'first'), frame(OP.BIN, Buffer.from([9, 8, 7])), frame(OP.CLOSE, closePayload(1000)),
    ]));
    await withTimeout(new Promise((r) => sock.on('close', r)), 5000, 'close');
    const i = buf.indexOf('\r\n\r\n');
    assert.match(buf.subarray(0, i).toString(), /^HTTP\/1\.1 101 /);
    const { frames, rest } = parseFrames(buf.subarray(i + 4));
    assert.equal(rest.length, 0);
    assert.deepEqual(frames.map((f) => [f.opcode, f.opcode === OP.CLOSE ? f.code : [...f.payload]]),
      [[OP.TEXT, [...Buffer.from('first')]], [OP.BIN, [9, 8, 7]], [OP.CLOSE, 1000]]);
  });

  test('payload lengths around the 7/16/64-bit header boundaries echo intact', async () => {
    const c = await rawWs(srv.port);
    for (const n of [125, 126, 127, 65535, 65536, 65537]) {
      const b = crypto.randomBytes(n);
      const f = await echo(c, OP.BIN, b);
      assert.equal(f.payload.length, n);
      assert.ok(f.payload.equals(b), `payload of ${n} bytes differs`);
    }
    c.sock.destroy();
  });

  test('a masked frame with an all-zero mask key is accepted', async () => {
    const c = await rawWs(srv.port);
    const b = Buffer.concat([Buffer.from([0x81, 0x80 | 5, 0, 0, 0, 0]), Buffer.from('zeros')]);
    c.send(b);
    const f = await c.waitFor((x) => x.opcode === OP.TEXT);
    assert.ok(f);
    assert.equal(f.payload.toString(), 'zeros');
    c.sock.destroy();
  });

  test('empty text and binary messages are echoed', async () => {
    const c = await rawWs(srv.port);
    const t = await echo(c, OP.TEXT, '');
    assert.equal(t.payload.length, 0);
    const b = await echo(c, OP.BIN, Buffer.alloc(0));
    assert.equal(b.payload.length, 0);
    c.sock.destroy();
  });
});

describe('handshake over raw HTTP', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ config: { websocket: { allowed_origins: ['https://good.example'] } } });
  });
  after(async () => { await srv.stop(); });

  const key = () => crypto.randomBytes(16).toString('base64');
  const req = (port, headers, { method = 'GET', path = '/connection/websocket', body = '' } = {}) => {
    const h = { Host: `127.0.0.1:${port}`, Upgrade: 'websocket', Connection: 'Upgrade',
      'Sec-WebSocket-Key': key(), 'Sec-WebSocket-Version': '13', ...headers };
    return `${method} ${path} HTTP/1.1\r\n` +
      Object.entries(h).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n' + body;
  };
  const accept = (k) => crypto.createHash('sha1').update(k + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

  test('valid upgrade gets 101 with the right Sec-WebSocket-Accept', async () => {
    const k = key();
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Key': k }));
    assert.equal(r.status, 101);
    assert.equal(r.headers['sec-websocket-accept'], accept(k));
    assert.equal(r.headers.upgrade.toLowerCase(), 'websocket');
    assert.equal(r.headers.connection.toLowerCase(), 'upgrade');
    assert.equal(r.headers['sec-websocket-extensions'], undefined);
  });

  test('RFC 6455 sample key gives the sample accept value', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }));
    assert.equal(r.status, 101);
    assert.equal(r.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  test('Sec-WebSocket-Version 8 -> 426 with Sec-WebSocket-Version: 13', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Version': '8' }));
    assert.equal(r.status, 426);
    assert.equal(r.headers['sec-websocket-version'], '13');
    assert.equal(r.headers['sec-websocket-accept'], undefined);
  });

  test('missing Sec-WebSocket-Version -> 426', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Version': undefined }));
    assert.equal(r.status, 426);
    assert.equal(r.headers['sec-websocket-version'], '13');
  });

  for (const [name, k] of [
    ['12 bytes', crypto.randomBytes(12).toString('base64')],
    ['17 bytes', crypto.randomBytes(17).toString('base64')],
    ['not base64', 'not-a-valid-key-at-all!!'],
    ['empty', ''],
  ]) {
    test(`bad Sec-WebSocket-Key (${name}) -> 400`, async () => {
      const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Key': k }));
      assert.equal(r.status, 400);
      assert.equal(r.headers['sec-websocket-accept'], undefined);
    });
  }

  test('token lists and case: "Connection: keep-alive, Upgrade", "Upgrade: WebSocket" -> 101', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Connection: 'keep-alive, Upgrade', Upgrade: 'WebSocket' }));
    assert.equal(r.status, 101);
  });

  test('HTTP/1.0 upgrade -> 400', async () => {
    const r = await httpRaw(srv.port, req(srv.port, {}).replace('HTTP/1.1', 'HTTP/1.0'));
    assert.equal(r.status, 400);
  });

  test('missing Sec-WebSocket-Key -> 400', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Key': undefined }));
    assert.equal(r.status, 400);
  });

  test('missing Upgrade header -> 400', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Upgrade: undefined }));
    assert.equal(r.status, 400);
    assert.equal(r.headers['sec-websocket-accept'], undefined);
  });

  test('Upgrade: h2c instead of websocket -> 400', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Upgrade: 'h2c' }));
    assert.equal(r.status, 400);
  });

  test('missing Connection: Upgrade -> 400', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Connection: 'keep-alive' }));
    assert.equal(r.status, 400);
  });

  test('POST upgrade -> 400 or 405', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Content-Length': '0' }, { method: 'POST' }));
    assert.ok(r.status === 400 || r.status === 405, `status ${r.status}`);
    assert.equal(r.headers['sec-websocket-accept'], undefined);
  });

  test('origin not in allowed_origins -> 403', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Origin: 'https://evil.example' }));
    assert.equal(r.status, 403);
    assert.equal(r.headers['sec-websocket-accept'], undefined);
  });

  test('allowed origin -> 101', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Origin: 'https://good.example' }));
    assert.equal(r.status, 101);
  });

  test('allowed origin with a different port -> 403', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { Origin: 'https://good.example:8443' }));
    assert.equal(r.status, 403);
  });

  test('offered Sec-WebSocket-Protocol is not echoed', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Protocol': 'chat, superchat' }));
    assert.equal(r.status, 101);
    assert.equal(r.headers['sec-websocket-protocol'], undefined);
    assert.doesNotMatch(r.head, /sec-websocket-protocol/i);
  });

  test('permessage-deflate offered with compression off: no extension header', async () => {
    const r = await httpRaw(srv.port, req(srv.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }));
    assert.equal(r.status, 101);
    assert.doesNotMatch(r.head, /sec-websocket-extensions/i);
  });

  test('connection is usable after a 101 written byte by byte', async () => {
    const c = await rawWs(srv.port, { byteByByte: true, headers: { Origin: 'https://good.example' } });
    assert.match(c.head, /^HTTP\/1\.1 101 /);
    const f = await echo(c, OP.TEXT, 'ok');
    assert.equal(f.payload.toString(), 'ok');
    c.sock.destroy();
  });
});
