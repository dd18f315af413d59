// End-to-end tests of TLS: HTTPS requests, keep-alive and pipelining over
// TLS, a wss echo with permessage-deflate and a 1 MiB message, plain HTTP
// sent to the TLS port, and /metrics over TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import https from 'node:https';
import net from 'node:net';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { rawHttp, req } from './lib/http.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'plaza-tls-'));
const key = path.join(dir, 'key.pem');
const cert = path.join(dir, 'cert.pem');
const root = path.join(dir, 'www');
const INDEX = '<!doctype html><p>tls home</p>\n';
const JS = 'console.log("over tls");\n';

let srv;
before(async () => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  mkdirSync(root);
  writeFileSync(path.join(root, 'index.html'), INDEX);
  writeFileSync(path.join(root, 'app.js'), JS);
  srv = await startPlaza({ tls: true, webRoot: root, args: [
    '--set', `tls.cert=${cert}`, '--set', `tls.key=${key}`, '--set', 'websocket.compression=true'] });
  assert.match(srv.logs(), /listening on 127\.0\.0\.1:\d+ \(\d+ workers?, TLS\)/);
});
after(async () => {
  if (srv) assert.equal((await srv.stop()).code, 0);
  rmSync(dir, { recursive: true, force: true });
});

// GET over https with the self-signed certificate accepted.
function get(p, { agent, headers } = {}) {
  return new Promise((resolve, reject) => {
    const r = https.get(srv.url + p, { rejectUnauthorized: false, agent, headers }, (res) => {
      const chunks = [];
      const protocol = res.socket.getProtocol();
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), protocol, reused: r.reusedSocket }));
      res.on('error', reject);
    });
    r.on('error', reject);
  });
}

async function tlsMetrics() {
  const res = await get('/metrics');
  assert.equal(res.status, 200);
  const out = {};
  for (const line of res.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

test('https GET /healthz and static files', async () => {
  const h = await get('/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.body, 'ok\n');
  assert.equal(h.headers['content-type'], 'text/plain; charset=utf-8');
  assert.ok(h.protocol === 'TLSv1.3' || h.protocol === 'TLSv1.2', h.protocol);
  const i = await get('/');
  assert.equal(i.status, 200);
  assert.equal(i.body, INDEX);
  assert.equal(i.headers['cache-control'], 'no-cache');
  const nm = await get('/app.js', { headers: { 'If-None-Match': (await get('/app.js')).headers.etag } });
  assert.equal(nm.status, 304);
  assert.equal(nm.body, '');
});

test('keep-alive over TLS: requests share one connection', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  try {
    const a = await get('/healthz', { agent });
    const b = await get('/app.js', { agent });
    const c = await get('/', { agent });
    assert.equal(a.body, 'ok\n');
    assert.equal(b.body, JS);
    assert.equal(c.body, INDEX);
    assert.equal(a.reused, false);
    assert.equal(b.reused, true);
    assert.equal(c.reused, true);
  } finally { agent.destroy(); }

  // Pipelined over a raw TLS socket, answered in order; then Connection: close.
  const conn = await rawHttp(srv.port, { tls: true });
  conn.send(req('GET', '/app.js') + req('GET', '/healthz') + req('GET', '/', { Connection: 'close' }));
  await conn.waitClosed();
  const rs = conn.responses();
  assert.deepEqual(rs.map((r) => r.body.toString()), [JS, 'ok\n', INDEX]);
  assert.equal(rs[2].headers.connection, 'close');
});

test('wss echo with permessage-deflate, including 1 MiB messages', { timeout: 20000 }, async () => {
  const before_ = await tlsMetrics();
  const ws = new WebSocket(srv.wsUrl, { rejectUnauthorized: false, perMessageDeflate: true, maxPayload: 4 << 20 });
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  assert.match(ws.extensions, /^permessage-deflate/);
  // The next message; fails if the connection closes first.
  const next = () => new Promise((resolve, reject) => {
    const onClose = (code, reason) => reject(new Error(`closed with ${code} ${reason} instead of echoing`));
    ws.once('close', onClose);
    ws.once('message', (d, isBinary) => { ws.off('close', onClose); resolve({ d: Buffer.from(d), isBinary }); });
  });

  let m = next();
  ws.send('hello over tls');
  let got = await m;
  assert.equal(got.isBinary, false);
  assert.equal(got.d.toString(), 'hello over tls');

  // 1 MiB of random bytes (incompressible), binary.
  const rnd = crypto.randomBytes(1 << 20);
  m = next();
  ws.send(rnd);
  got = await m;
  assert.equal(got.isBinary, true);
  assert.equal(got.d.length, rnd.length);
  assert.ok(got.d.equals(rnd), '1 MiB binary echo differs');

  // 1 MiB of compressible text: must travel compressed both ways.
  const mid = await tlsMetrics();
  const text = 'plaza realtime '.repeat(Math.ceil((1 << 20) / 15)).slice(0, 1 << 20);
  m = next();
  ws.send(text);
  got = await m;
  assert.equal(got.isBinary, false);
  assert.equal(got.d.length, text.length);
  assert.equal(got.d.toString(), text);
  const after_ = await tlsMetrics();
  const inDelta = after_.plaza_bytes_received_total - mid.plaza_bytes_received_total;
  const outDelta = after_.plaza_bytes_sent_total - mid.plaza_bytes_sent_total;
  assert.ok(inDelta < 100000, `received ${inDelta} bytes for a compressible 1 MiB message`);
  assert.ok(outDelta < 100000, `sent ${outDelta} bytes for a compressible 1 MiB message`);

  ws.close(1000);
  const [code] = await new Promise((r) => ws.once('close', (...a) => r(a)));
  assert.equal(code, 1000);
  const fin = await tlsMetrics();
  assert.equal(fin.plaza_ws_handshakes_ok_total - before_.plaza_ws_handshakes_ok_total, 1);
  assert.ok(fin.plaza_ws_frames_received_total - before_.plaza_ws_frames_received_total >= 4);
});

test('plain HTTP to the TLS port fails cleanly and is counted', async () => {
  const m0 = await tlsMetrics();
  for (let i = 0; i < 3; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    let data = Buffer.alloc(0);
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const closed = await new Promise((r) => {
      const t = setTimeout(() => r(false), 3000);
      s.once('close', () => { clearTimeout(t); r(true); });
    });
    s.destroy();
    assert.equal(closed, true, 'server kept a plaintext connection open');
    assert.ok(!data.toString('latin1').startsWith('HTTP/'), 'plaintext answer on the TLS port');
  }
  let m1;
  for (let i = 0; i < 20; i++) {
    m1 = await tlsMetrics();
    if (m1.plaza_tls_handshakes_failed_total - m0.plaza_tls_handshakes_failed_total >= 3) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(m1.plaza_tls_handshakes_failed_total - m0.plaza_tls_handshakes_failed_total, 3);
  // Still serving, process alive.
  assert.equal(srv.proc.exitCode, null);
  assert.equal((await get('/healthz')).body, 'ok\n');
});

test('/metrics over TLS', async () => {
  const res = await get('/metrics');
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  for (const fam of ['plaza_connections', 'plaza_bytes_received_total', 'plaza_tls_handshakes_failed_total', 'plaza_ws_handshakes_ok_total'])
    assert.match(res.body, new RegExp(`^# TYPE ${fam} `, 'm'));
  assert.match(res.body, /^plaza_connections\{state="http"\} [1-9]\d*$/m);   // this request
});
