// Raw TCP helpers for tests that must send bytes no real client would: a
// masked-frame encoder, a frame decoder for what the server sends, and a
// connection that performs the upgrade by hand.
import net from 'node:net';
import crypto from 'node:crypto';
import zlib from 'node:zlib';

export function frame(opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, mask = true, len } = {}) {
  payload = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const n = len ?? payload.length;
  const parts = [Buffer.from([(fin ? 0x80 : 0) | (rsv << 4) | opcode])];
  const m = mask ? 0x80 : 0;
  if (n < 126) parts.push(Buffer.from([m | n]));
  else if (n < 65536) { const b = Buffer.alloc(3); b[0] = m | 126; b.writeUInt16BE(n, 1); parts.push(b); }
  else { const b = Buffer.alloc(9); b[0] = m | 127; b.writeBigUInt64BE(BigInt(n), 1); parts.push(b); }
  if (mask) {
    const key = crypto.randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
    parts.push(key, body);
  } else parts.push(payload);
  return Buffer.concat(parts);
}

export function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

// Parses server frames out of a buffer; returns { frames, rest }.
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  while (buf.length - off >= 2) {
    const b0 = buf[off], b1 = buf[off + 1];
    let n = b1 & 0x7f, h = 2;
    if (n === 126) { if (buf.length - off < 4) break; n = buf.readUInt16BE(off + 2); h = 4; }
    else if (n === 127) { if (buf.length - off < 10) break; n = Number(buf.readBigUInt64BE(off + 2)); h = 10; }
    if (buf.length - off < h + n) break;
    const payload = buf.subarray(off + h, off + h + n);
    const f = { fin: !!(b0 & 0x80), rsv1: !!(b0 & 0x40), opcode: b0 & 0x0f, payload };
    if (f.opcode === 8 && payload.length >= 2) { f.code = payload.readUInt16BE(0); f.reason = payload.subarray(2).toString(); }
    frames.push(f);
    off += h + n;
  }
  return { frames, rest: buf.subarray(off) };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Rejects with an Error naming `what` if p does not settle within ms.
export function withTimeout(p, ms, what = 'operation') {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, j) => { t = setTimeout(() => j(new Error(`timeout after ${ms} ms: ${what}`)), ms); }),
  ]);
}

// Writes buf one byte per write, waiting delayMs (0: setImmediate) between
// bytes, so the server sees every possible split point.
export async function writeByteByByte(sock, buf, delayMs = 0) {
  buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf);
  for (let i = 0; i < buf.length; i++) {
    sock.write(buf.subarray(i, i + 1));
    await (delayMs ? sleep(delayMs) : new Promise((r) => setImmediate(r)));
  }
}

// Deflates one message the way a permessage-deflate sender does: sync flush,
// trailing 00 00 ff ff removed (RFC 7692 7.2.1).
export function deflateMessage(data) {
  const z = zlib.deflateRawSync(Buffer.isBuffer(data) ? data : Buffer.from(data),
    { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  if (!z.subarray(-4).equals(TAIL)) throw new Error('deflate output lacks sync tail');
  return z.subarray(0, z.length - 4);
}

// Inverse of deflateMessage (for RSV1 frames the server sends).
export function inflateMessage(payload) {
  return zlib.inflateRawSync(Buffer.concat([payload, TAIL]), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
}
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

// Sends a raw HTTP request (string or Buffer) and reads until the server
// closes the connection or the response head plus Content-Length body is
// in. Returns { status, headers (lower-case names; repeated names joined
// with ", "), head, body, raw }.
export async function httpRaw(port, request, ms = 5000) {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  sock.write(request);
  let buf = Buffer.alloc(0);
  const done = new Promise((resolve) => {
    const check = () => {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return false;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(buf.subarray(0, i).toString());
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1'))?.[1]);
      if (status === 101 || (m && buf.length >= i + 4 + Number(m[1]))) { resolve(); return true; }
      return false;
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); check(); });
    sock.on('close', resolve);
  });
  await withTimeout(done, ms, 'HTTP response');
  sock.destroy();
  const raw = buf.toString('latin1');
  const i = raw.indexOf('\r\n\r\n');
  const head = i < 0 ? raw : raw.slice(0, i);
  const lines = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(lines[0])?.[1] ?? NaN);
  const headers = {};
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c < 0) continue;
    const k = l.slice(0, c).trim().toLowerCase(), v = l.slice(c + 1).trim();
    headers[k] = k in headers ? headers[k] + ', ' + v : v;
  }
  return { status, headers, head, body: i < 0 ? '' : raw.slice(i + 4), raw };
}

// Opens a TCP connection, upgrades it, and collects frames. Returns
// { sock, head, frames (array, grows), send(buf), closed (promise),
//   waitFor(pred), isClosed() }.
// Options: headers (added to / overriding the defaults), path, and
// byteByByte (write the upgrade request one byte per write).
export async function rawWs(port, { headers = {}, path = '/connection/websocket', byteByByte = false } = {}) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  const key = crypto.randomBytes(16).toString('base64');
  const h = { Host: `127.0.0.1:${port}`, Upgrade: 'websocket', Connection: 'Upgrade',
    'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13', ...headers };
  const req = `GET ${path} HTTP/1.1\r\n` + Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
  if (byteByByte) writeByteByByte(sock, req); else sock.write(req);
  let buf = Buffer.alloc(0);
  let head = null;
  const frames = [];
  const waiters = [];
  const closed = new Promise((r) => sock.on('close', r));
  sock.on('error', () => {});
  const headDone = new Promise((resolve, reject) => {
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!head) {
        const i = buf.indexOf('\r\n\r\n');
        if (i < 0) return;
        head = buf.subarray(0, i).toString();
        buf = buf.subarray(i + 4);
        resolve(head);
      }
      const r = parseFrames(buf);
      buf = r.rest;
      frames.push(...r.frames);
      for (const w of waiters.splice(0)) w();
    });
    sock.on('close', () => { if (!head) reject(new Error('closed before handshake')); for (const w of waiters.splice(0)) w(); });
  });
  await headDone;
  const waitFor = async (pred, ms = 5000) => {
    const t0 = Date.now();
    for (;;) {
      const f = frames.find(pred);
      if (f) return f;
      if (sock.destroyed && !frames.find(pred)) return null;
      if (Date.now() - t0 > ms) throw new Error('timeout waiting for frame; got ' + JSON.stringify(frames.map((x) => [x.opcode, x.code])));
      await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
    }
  };
  let isClosed = false;
  closed.then(() => { isClosed = true; });
  return { sock, head, frames, closed, waitFor, send: (b) => sock.write(b), isClosed: () => isClosed };
}

// Waits for the server's Close frame and then for the TCP connection to
// close. Returns the Close frame (with .code/.reason when it has a
// payload); throws if either does not happen within ms.
export async function expectClose(c, ms = 5000) {
  const f = await c.waitFor((x) => x.opcode === 8, ms);
  if (!f) throw new Error('connection closed without a Close frame; frames: ' +
    JSON.stringify(c.frames.map((x) => [x.opcode, x.payload.length])));
  await withTimeout(c.closed, ms, 'TCP close after Close frame');
  return f;
}
