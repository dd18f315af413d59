// End-to-end tests of the HTTP side of the real binary: static files
// (types, ETag/304, Cache-Control, HEAD, 405, traversal), /healthz,
// /metrics, keep-alive, pipelining, chunked bodies, the request limits,
// timeouts and max_connections.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import WebSocket from 'ws';
import { startPlaza, metrics } from './lib/server.mjs';
import { rawHttp, exchange, req, parseResponses } from './lib/http.mjs';

// ---- fixture: a web root and a secret file next to it ---------------------

const base = mkdtempSync(path.join(tmpdir(), 'plaza-http-'));
const root = path.join(base, 'www');
const SECRET = 'TOP-SECRET-OUTSIDE-THE-ROOT\n';
const FILES = {
  'index.html': '<!doctype html><title>plaza</title><p>home</p>\n',
  'app.js': 'console.log("app");\n',
  'style.css': 'body { color: red; }\n',
  'data.json': '{"hello":"world"}\n',
  'sub/index.html': '<p>sub index</p>\n',
  'sub/page.txt': 'plain text\n',
};
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x00, 0x0d, 0x0a])]);
mkdirSync(path.join(root, 'sub'), { recursive: true });
mkdirSync(path.join(root, 'empty'));
for (const [f, body] of Object.entries(FILES)) writeFileSync(path.join(root, f), body);
writeFileSync(path.join(root, 'img.png'), PNG);
const BIG = Buffer.alloc(1 << 20);
for (let i = 0; i < BIG.length; i += 4) BIG.writeUInt32LE((i * 2654435761) >>> 0, i);
writeFileSync(path.join(root, 'big.bin'), BIG);
writeFileSync(path.join(root, '.hidden'), 'hidden file\n');
mkdirSync(path.join(root, '.git'));
writeFileSync(path.join(root, '.git', 'config'), 'hidden dir\n');
writeFileSync(path.join(base, 'secret'), SECRET);
symlinkSync(path.join(base, 'secret'), path.join(root, 'symlink-out'));
symlinkSync(base, path.join(root, 'dirlink-out'));
symlinkSync(path.join(root, 'app.js'), path.join(root, 'symlink-in.js'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));

const MAX_AGE = 3600;

function assertNoSecret(r) {
  assert.ok(!r.data.toString('latin1').includes('TOP-SECRET'), 'outside file leaked:\n' + r.data);
}

// ---- static files, health, metrics on one server --------------------------

describe('static files and built-in routes', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ webRoot: root, args: ['--set', `http.static_max_age=${MAX_AGE}`] });
  });
  after(async () => {
    const { code } = await srv.stop();
    assert.equal(code, 0);
  });

  test('content types, bodies and Cache-Control', async () => {
    const cases = [
      ['/', 'text/html; charset=utf-8', FILES['index.html'], 'no-cache'],
      ['/index.html', 'text/html; charset=utf-8', FILES['index.html'], 'no-cache'],
      ['/app.js', 'text/javascript; charset=utf-8', FILES['app.js'], `public, max-age=${MAX_AGE}`],
      ['/style.css', 'text/css; charset=utf-8', FILES['style.css'], `public, max-age=${MAX_AGE}`],
      ['/data.json', 'application/json', FILES['data.json'], `public, max-age=${MAX_AGE}`],
      ['/img.png', 'image/png', PNG, `public, max-age=${MAX_AGE}`],
      ['/sub/page.txt', 'text/plain; charset=utf-8', FILES['sub/page.txt'], `public, max-age=${MAX_AGE}`],
      ['/sub/', 'text/html; charset=utf-8', FILES['sub/index.html'], 'no-cache'],
      ['/sub', 'text/html; charset=utf-8', FILES['sub/index.html'], 'no-cache'],
      ['/symlink-in.js', 'text/javascript; charset=utf-8', FILES['app.js'], `public, max-age=${MAX_AGE}`],
    ];
    for (const [p, type, body, cache] of cases) {
      const res = await fetch(srv.url + p);
      assert.equal(res.status, 200, p);
      assert.equal(res.headers.get('content-type'), type, p);
      assert.equal(res.headers.get('cache-control'), cache, p);
      const got = Buffer.from(await res.arrayBuffer());
      assert.deepEqual(got, Buffer.from(body), p);
      assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(body)), p);
      assert.match(res.headers.get('etag'), /^"[0-9a-f]+-[0-9a-f]+"$/, p);
    }
  });

  test('ETag and If-None-Match give 304 with an empty body', async () => {
    const first = await fetch(srv.url + '/app.js');
    const etag = first.headers.get('etag');
    await first.arrayBuffer();
    assert.ok(etag);
    // Same file, same ETag; different files, different ETags.
    assert.equal((await fetch(srv.url + '/app.js')).headers.get('etag'), etag);
    assert.notEqual((await fetch(srv.url + '/style.css')).headers.get('etag'), etag);

    // Over a raw socket, pipelined with a /healthz request so that any body
    // bytes sent after a 304 would corrupt the second response.
    const matching = [etag, `W/${etag}`, `"nope", ${etag}`, '*'];
    for (const inm of matching) {
      const c = await rawHttp(srv.port);
      c.send(req('GET', '/app.js', { 'If-None-Match': inm }) + req('GET', '/healthz'));
      const [r304, health] = await c.waitResponses(2);
      assert.equal(r304.status, 304, inm);
      assert.equal(r304.body.length, 0);
      // RFC 9110 8.6: Content-Length on a 304 must be absent or the 200's.
      assert.ok(r304.headers['content-length'] === undefined || r304.headers['content-length'] === String(FILES['app.js'].length),
        'Content-Length on 304: ' + r304.headers['content-length']);
      assert.equal(r304.headers.etag, etag);
      assert.equal(r304.headers['cache-control'], `public, max-age=${MAX_AGE}`);
      assert.equal(health.status, 200);
      assert.equal(health.body.toString(), 'ok\n');
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(parseResponses(c.data()).rest.length, 0, 'bytes after the 304: ' + c.data());
      c.destroy();
    }
    for (const inm of ['"nope"', `"${etag.slice(1, -2)}"`]) {
      const res = await fetch(srv.url + '/app.js', { headers: { 'If-None-Match': inm } });
      assert.equal(res.status, 200, inm);
      assert.equal(await res.text(), FILES['app.js']);
    }
    // html: ETag too, with no-cache.
    const h = await fetch(srv.url + '/');
    const hetag = h.headers.get('etag');
    await h.arrayBuffer();
    const h304 = await fetch(srv.url + '/', { headers: { 'If-None-Match': hetag } });
    assert.equal(h304.status, 304);
    assert.equal(h304.headers.get('cache-control'), 'no-cache');
    assert.equal(await h304.text(), '');
  });

  test('HEAD has the GET headers and no body', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('HEAD', '/data.json') + req('HEAD', '/healthz') + req('GET', '/app.js'));
    const rs = await c.waitResponses(3, { headOnly: (i) => i < 2 });
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['content-type'], 'application/json');
    assert.equal(rs[0].headers['content-length'], String(FILES['data.json'].length));
    assert.match(rs[0].headers.etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.equal(rs[0].headers['cache-control'], `public, max-age=${MAX_AGE}`);
    assert.equal(rs[1].status, 200);
    assert.equal(rs[1].headers['content-length'], '3');
    // The third response starts right after the two heads: no body bytes.
    assert.equal(rs[2].status, 200);
    assert.equal(rs[2].body.toString(), FILES['app.js']);
    c.destroy();
  });

  test('methods other than GET/HEAD on static files get 405 with Allow', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const res = await fetch(srv.url + '/app.js', { method: m, body: m === 'POST' || m === 'PUT' ? 'x' : undefined });
      assert.equal(res.status, 405, m);
      assert.equal(res.headers.get('allow'), 'GET, HEAD', m);
      assert.equal(await res.text(), 'method not allowed\n', m);
    }
    // 405 keeps the connection: a pipelined request after a POST with a body.
    const c = await rawHttp(srv.port);
    c.send(req('POST', '/index.html', { 'Content-Length': 5 }, 'hello') + req('GET', '/data.json'));
    const [r1, r2] = await c.waitResponses(2);
    assert.equal(r1.status, 405);
    assert.equal(r1.headers.connection, undefined);
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), FILES['data.json']);
    c.destroy();
  });

  test('traversal and hidden paths never reach outside files', async () => {
    const cases = [
      ['/../secret', 404],
      ['/../../../../../../etc/passwd', 404],
      ['/%2e%2e/secret', 404],
      ['/%2E%2E/secret', 404],
      ['/sub/..%2f..%2fsecret', 404],
      ['/sub/%2e%2e/%2e%2e/secret', 404],
      ['/sub/../../secret', 404],
      ['/..%5csecret', 404],
      ['/.hidden', 404],
      ['/%2ehidden', 404],
      ['/.git/config', 404],
      ['/sub/./page.txt', 404],
      ['/symlink-out', 404],
      ['/dirlink-out/secret', 404],
      ['/app.js%00.png', 400],
      ['/%00', 400],
      ['/bad%zzescape', 400],
      ['/trunc%2', 400],
      ['/missing.txt', 404],
    ];
    for (const [p, status] of cases) {
      const r = await exchange(srv.port, req('GET', p, { Connection: 'close' }));
      assertNoSecret(r);
      assert.equal(r.responses.length, 1, p + ': ' + r.data);
      assert.equal(r.responses[0].status, status, p);
      assert.equal(r.responses[0].body.toString(), status === 404 ? 'not found\n' : 'bad path\n', p);
    }
    // A traversal attempt does not end a kept-alive connection.
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/../secret') + req('GET', '/app.js'));
    const [a, b] = await c.waitResponses(2);
    assert.equal(a.status, 404);
    assert.equal(b.status, 200);
    c.destroy();
  });

  test('a directory without index.html is 404, never a listing', async () => {
    for (const p of ['/empty', '/empty/']) {
      const res = await fetch(srv.url + p);
      assert.equal(res.status, 404, p);
      assert.equal(await res.text(), 'not found\n');
    }
  });

  test('/healthz answers 200 ok', async () => {
    const res = await fetch(srv.url + '/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(await res.text(), 'ok\n');
    const q = await fetch(srv.url + '/healthz?probe=1');
    assert.equal(q.status, 200);
    assert.equal(await q.text(), 'ok\n');
  });

  test('/metrics exposes the families and counters move with traffic', async () => {
    const res = await fetch(srv.url + '/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const families = {
      plaza_connections: 'gauge',
      plaza_bytes_received_total: 'counter',
      plaza_bytes_sent_total: 'counter',
      plaza_ws_frames_received_total: 'counter',
      plaza_ws_handshakes_ok_total: 'counter',
      plaza_ws_handshakes_failed_total: 'counter',
      plaza_ws_close_sent_total: 'counter',
      plaza_slow_consumer_disconnects_total: 'counter',
      plaza_loop_lag_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(families)) {
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'), name);
    }
    for (const s of ['http', 'websocket', 'closing'])
      assert.match(text, new RegExp(`^plaza_connections\\{state="${s}"\\} \\d+$`, 'm'));
    assert.match(text, /^plaza_loop_lag_seconds \d+\.\d+$/m);
    // Every sample line is "name{labels} number".
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]\w*="[^"]*"(,[a-zA-Z_]\w*="[^"]*")*\})? (-?[0-9.]+(e[+-]?\d+)?|NaN|[+-]Inf)$/, line);
    }

    const m0 = await metrics(srv.url);
    // One good WebSocket: a text and a binary message, then a normal close.
    const ws = new WebSocket(srv.wsUrl);
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    const during = await metrics(srv.url);
    assert.equal(during['plaza_connections{state="websocket"}'], 1);
    const echoed = new Promise((r) => { const got = []; ws.on('message', (d) => { got.push(d.toString()); if (got.length === 2) r(got); }); });
    ws.send('hello');
    ws.send(Buffer.from('bin'));
    assert.deepEqual(await echoed, ['hello', 'bin']);
    ws.close(1000, 'bye');
    const closeCode = await new Promise((r) => ws.once('close', r));
    assert.equal(closeCode, 1000);
    // Two refused handshakes: no Upgrade header, and a bad version.
    const noUpgrade = await fetch(srv.url + '/connection/websocket');
    assert.equal(noUpgrade.status, 400);
    assert.equal(await noUpgrade.text(), 'WebSocket upgrade expected\n');
    const badVersion = await exchange(srv.port, req('GET', '/connection/websocket', {
      Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '8' }));
    assert.equal(badVersion.responses[0].status, 426);
    assert.equal(badVersion.responses[0].headers['sec-websocket-version'], '13');

    let m1;
    for (let i = 0; i < 50; i++) {   // the close is processed asynchronously
      m1 = await metrics(srv.url);
      if (m1['plaza_connections{state="websocket"}'] === 0 && m1['plaza_connections{state="closing"}'] === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
    assert.equal(d('plaza_ws_handshakes_ok_total'), 1);
    assert.equal(d('plaza_ws_handshakes_failed_total'), 2);
    assert.equal(d('plaza_ws_frames_received_total'), 3);       // text, binary, close
    assert.equal(d('plaza_ws_close_sent_total{code="1000"}'), 1);
    assert.equal(d('plaza_slow_consumer_disconnects_total'), 0);
    assert.ok(d('plaza_bytes_received_total') > 200, 'bytes received ' + d('plaza_bytes_received_total'));
    assert.ok(d('plaza_bytes_sent_total') > 200, 'bytes sent ' + d('plaza_bytes_sent_total'));
    assert.equal(m1['plaza_connections{state="websocket"}'], 0);
  });

  test('keep-alive: two requests on one connection', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/app.js'));
    const [r1] = await c.waitResponses(1);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers.connection, undefined);
    assert.equal(r1.body.toString(), FILES['app.js']);
    c.send(req('GET', '/style.css'));
    const rs = await c.waitResponses(2);
    assert.equal(rs[1].status, 200);
    assert.equal(rs[1].body.toString(), FILES['style.css']);
    assert.equal(c.isClosed(), false);
    // Connection: close on the third ends it after the response.
    c.send(req('GET', '/healthz', { Connection: 'close' }));
    await c.waitClosed();
    const all = c.responses();
    assert.equal(all.length, 3);
    assert.equal(all[2].headers.connection, 'close');
    assert.equal(all[2].body.toString(), 'ok\n');
  });

  test('HTTP/1.0 without keep-alive is closed after one response', async () => {
    const r = await exchange(srv.port, 'GET /app.js HTTP/1.0\r\n\r\n');
    assert.equal(r.responses.length, 1);
    assert.equal(r.responses[0].status, 200);
    assert.equal(r.responses[0].headers.connection, 'close');
    assert.equal(r.responses[0].body.toString(), FILES['app.js']);
  });

  test('HTTP/1.0 with Connection: keep-alive is kept and says so', async () => {
    const c = await rawHttp(srv.port);
    c.send('GET /app.js HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    c.send('GET /data.json HTTP/1.0\r\n\r\n');
    await c.waitClosed();
    const rs = c.responses();
    assert.deepEqual(rs.map((r) => r.status), [200, 200]);
    assert.equal(rs[0].headers.connection, 'keep-alive');
    assert.equal(rs[1].headers.connection, 'close');
    assert.equal(rs[1].body.toString(), FILES['data.json']);
  });

  test('pipelining: three requests in one write are answered in order', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/data.json') + req('GET', '/missing') + req('GET', '/app.js', { Connection: 'close' }));
    await c.waitClosed();
    const rs = c.responses();
    assert.deepEqual(rs.map((r) => r.status), [200, 404, 200]);
    assert.deepEqual(rs.map((r) => r.body.toString()), [FILES['data.json'], 'not found\n', FILES['app.js']]);
    assert.equal(parseResponses(c.data()).rest.length, 0);

    // Many small pipelined requests split at odd places.
    const c2 = await rawHttp(srv.port);
    const all = Array.from({ length: 20 }, (_, i) => req('GET', i % 2 ? '/healthz' : '/style.css')).join('');
    for (let i = 0; i < all.length; i += 37) c2.send(all.slice(i, i + 37));
    const rs2 = await c2.waitResponses(20);
    rs2.forEach((r, i) => assert.equal(r.body.toString(), i % 2 ? 'ok\n' : FILES['style.css']));
    c2.destroy();
  });

  test('chunked request body is consumed; the connection stays usable', async () => {
    // /healthz answers any method; the chunked body (with extensions and a
    // trailer) must be consumed so the pipelined GET is parsed correctly.
    const chunked = 'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;name=value\r\nhello\r\n' + '1\r\n \r\n' + 'a;x="q"\r\n0123456789\r\n' + '0\r\nX-Trailer: t\r\n\r\n';
    const c = await rawHttp(srv.port);
    c.send(chunked + req('GET', '/app.js'));
    const [r1, r2] = await c.waitResponses(2);
    assert.equal(r1.status, 200);
    assert.equal(r1.body.toString(), 'ok\n');
    assert.equal(r1.headers.connection, undefined);
    assert.equal(r2.status, 200);
    assert.equal(r2.body.toString(), FILES['app.js']);

    // Same, sent byte-split across writes, then a Content-Length body.
    const rest = chunked + req('POST', '/healthz', { 'Content-Length': 4 }, 'abcd') + req('GET', '/data.json');
    for (let i = 0; i < rest.length; i += 7) {
      c.send(rest.slice(i, i + 7));
      if (i % 49 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    const rs = await c.waitResponses(5);
    assert.deepEqual(rs.slice(2).map((r) => r.body.toString()), ['ok\n', 'ok\n', FILES['data.json']]);
    // A chunked POST to a static file: 405, connection still usable.
    c.send('POST /app.js HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' + req('GET', '/healthz'));
    const rs2 = await c.waitResponses(7);
    assert.equal(rs2[5].status, 405);
    assert.equal(rs2[6].body.toString(), 'ok\n');
    c.destroy();
  });

  test('a bad chunk size is 400 and closes', async () => {
    const r = await exchange(srv.port, 'POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n');
    assert.equal(r.responses.length, 1);
    assert.equal(r.responses[0].status, 400);
    assert.equal(r.responses[0].headers.connection, 'close');
    assert.equal(r.responses[0].body.toString(), 'bad request: invalid chunk size\n');
  });
});

// ---- limits -----------------------------------------------------------------

describe('request limits', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ webRoot: root, config: { http: { max_header_bytes: 1024, max_headers: 10, max_body_bytes: 1000 } } });
  });
  after(async () => { assert.equal((await srv.stop()).code, 0); });

  // Sends data, expects exactly one response with status and message, a
  // Connection: close, and the socket closed by the server.
  async function expectRefused(data, status, message, { endAfter } = {}) {
    const c = await rawHttp(srv.port);
    if (Array.isArray(data)) for (const d of data) c.send(d); else c.send(data);
    if (endAfter) c.sock.end();
    await c.waitClosed(3000);
    const { responses, rest } = parseResponses(c.data());
    assert.equal(responses.length, 1, 'responses: ' + c.data().toString('latin1'));
    const r = responses[0];
    assert.equal(r.status, status, r.rawHead);
    assert.equal(r.version, 'HTTP/1.1');
    assert.equal(r.headers.connection, 'close');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(r.body.toString(), message + '\n');
    assert.equal(rest.length, 0);
    return r;
  }

  test('headers over max_header_bytes: 431', async () => {
    await expectRefused(req('GET', '/', { 'X-Big': 'a'.repeat(1100) }), 431, 'request header fields too large');
    // Many small headers adding up over the limit (under max_headers).
    await expectRefused(req('GET', '/', Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`X-H${i}`, 'v'.repeat(150)]))), 431, 'request header fields too large');
    // Just under the limit is fine.
    const ok = await exchange(srv.port, req('GET', '/healthz', { 'X-Big': 'a'.repeat(900), Connection: 'close' }));
    assert.equal(ok.responses[0].status, 200);
  });

  test('more headers than max_headers: 431', async () => {
    const h = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']));
    await expectRefused(req('GET', '/', h(10)), 431, 'too many headers');   // + Host = 11
    const ok = await exchange(srv.port, req('GET', '/healthz', { ...h(8), Connection: 'close' }));  // + Host + Connection = 10
    assert.equal(ok.responses[0].status, 200);
  });

  test('URL longer than max_header_bytes: 414', async () => {
    await expectRefused(`GET /${'a'.repeat(1100)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, 'URI too long');
    // A long URL arriving in small pieces still gives 414.
    const line = `GET /${'b'.repeat(1500)}`;
    const parts = [];
    for (let i = 0; i < line.length; i += 100) parts.push(line.slice(i, i + 100));
    await expectRefused(parts, 414, 'URI too long');
  });

  test('Content-Length over max_body_bytes: 413 before the body is sent', async () => {
    // Only the head is sent; the answer must come without the body.
    await expectRefused(req('POST', '/healthz', { 'Content-Length': 5000 }), 413, 'payload too large');
    await expectRefused(req('PUT', '/x', { 'Content-Length': '99999999999999' }), 413, 'payload too large');
    const ok = await exchange(srv.port, req('POST', '/healthz', { 'Content-Length': 1000, Connection: 'close' }, 'z'.repeat(1000)));
    assert.equal(ok.responses[0].status, 200);
  });

  test('chunked body over max_body_bytes: 413', async () => {
    const chunk = (s) => s.length.toString(16) + '\r\n' + s + '\r\n';
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
      chunk('a'.repeat(400)) + chunk('b'.repeat(400)) + chunk('c'.repeat(400)) + '0\r\n\r\n', 413, 'payload too large');
    // One huge chunk announced: refused from its size line.
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffff\r\n', 413, 'payload too large');
    // Exactly the limit, in chunks: accepted.
    const ok = await exchange(srv.port, 'POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n' +
      chunk('a'.repeat(500)) + chunk('b'.repeat(500)) + '0\r\n\r\n');
    assert.equal(ok.responses[0].status, 200);
  });

  test('garbage request line: 400', async () => {
    await expectRefused('HELLO\r\n\r\n', 400, 'bad request: invalid method');
    await expectRefused('\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03', 400, 'bad request: invalid method');
    await expectRefused('GET / HTTX/1.1\r\n\r\n', 400, 'bad request: invalid constant');
    await expectRefused('GET / HTTP/1.1\r\nBad Header: x\r\n\r\n', 400, 'bad request: invalid header token');
  });

  test('unsupported HTTP versions: 505', async () => {
    for (const v of ['HTTP/2.0', 'HTTP/3.0', 'HTTP/1.2'])
      await expectRefused(`GET / ${v}\r\nHost: x\r\n\r\n`, 505, 'HTTP version not supported');
    await expectRefused('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'HTTP version not supported');
  });

  test('both Content-Length and Transfer-Encoding: 400', async () => {
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'bad request: unexpected content-length');
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n', 400, 'bad request: unexpected content-length');
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 400, 'bad request: invalid transfer-encoding');
    await expectRefused('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400, 'bad request: unexpected content-length');
  });

  test('an error after a good pipelined request: first answered, then the error', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/healthz') + 'GET / HTTP/9.9\r\n\r\n' + req('GET', '/healthz'));
    await c.waitClosed(3000);
    const rs = c.responses();
    assert.deepEqual(rs.map((r) => r.status), [200, 505]);
    assert.equal(rs[1].headers.connection, 'close');
  });
});

// ---- timeouts -----------------------------------------------------------------

describe('timeouts', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ webRoot: root, args: ['--set', 'http.read_timeout_ms=300', '--set', 'http.keepalive_timeout_ms=600'] });
  });
  after(async () => { assert.equal((await srv.stop()).code, 0); });

  test('a partial request gets 408 and close after read_timeout_ms', async () => {
    const c = await rawHttp(srv.port);
    c.send('GET /app.js HTTP/1.1\r\nHost: x\r\n');
    const { at } = await c.waitClosed(3000);
    const rs = c.responses();
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 408);
    assert.equal(rs[0].headers.connection, 'close');
    assert.equal(rs[0].body.toString(), 'request timeout\n');
    assert.ok(at >= 250 && at < 1500, `closed after ${at} ms`);
  });

  test('a request trickled byte by byte cannot outlive read_timeout_ms', async () => {
    const c = await rawHttp(srv.port);
    const data = req('GET', '/app.js', { 'X-Pad': 'p'.repeat(100) });
    let i = 0;
    const timer = setInterval(() => { if (i < data.length && !c.isClosed()) c.send(data[i++]); }, 20);
    try {
      const { at } = await c.waitClosed(3000);
      assert.ok(at >= 250 && at < 1500, `closed after ${at} ms`);
      assert.equal(c.responses()[0].status, 408);
      assert.ok(i < data.length, 'the whole request got through');
    } finally { clearInterval(timer); }
  });

  test('a connection that sends nothing is closed after read_timeout_ms', async () => {
    const c = await rawHttp(srv.port);
    const { at } = await c.waitClosed(3000);
    assert.equal(c.data().length, 0, 'unexpected bytes: ' + c.data());
    assert.ok(at >= 250 && at < 1500, `closed after ${at} ms`);
  });

  test('an idle keep-alive connection is closed after keepalive_timeout_ms', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/healthz'));
    await c.waitResponses(1);
    const t1 = Date.now() - c.t0;
    // Still open and usable half way through the idle time (and past the
    // read timeout, which no longer applies between requests).
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(c.isClosed(), false);
    c.send(req('GET', '/app.js'));
    const rs = await c.waitResponses(2);
    assert.equal(rs[1].body.toString(), FILES['app.js']);
    const t2 = Date.now() - c.t0;
    const { at } = await c.waitClosed(3000);
    assert.equal(c.responses().length, 2);
    assert.ok(at - t2 >= 500 && at - t2 < 2000, `closed ${at - t2} ms after the last response (first at ${t1})`);
  });
});

// ---- max_connections ------------------------------------------------------------

describe('max_connections', () => {
  let srv;
  before(async () => {
    srv = await startPlaza({ webRoot: root, args: ['--set', 'max_connections=2'] });
  });
  after(async () => { assert.equal((await srv.stop()).code, 0); });

  test('the third connection gets 503 and close; a slot frees up again', async () => {
    const a = await rawHttp(srv.port);
    const b = await rawHttp(srv.port);
    a.send(req('GET', '/healthz'));
    b.send(req('GET', '/healthz'));
    await a.waitResponses(1);
    await b.waitResponses(1);
    const c = await rawHttp(srv.port);
    const { at } = await c.waitClosed(3000);
    const rs = c.responses();
    assert.equal(rs.length, 1);
    assert.equal(rs[0].status, 503);
    assert.equal(rs[0].headers.connection, 'close');
    assert.equal(rs[0].body.toString(), 'too many connections\n');
    assert.ok(at < 1000);
    // The first two still work.
    a.send(req('GET', '/app.js'));
    assert.equal((await a.waitResponses(2))[1].body.toString(), FILES['app.js']);
    // Free one slot: a new connection is served.
    b.destroy();
    await b.closed;
    let served = false;
    for (let i = 0; i < 40 && !served; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const d = await exchange(srv.port, req('GET', '/healthz', { Connection: 'close' }));
      served = d.responses[0]?.status === 200;
    }
    assert.ok(served, 'no connection served after one closed');
    a.destroy();
    await a.closed;
    await new Promise((r) => setTimeout(r, 100));
    const m = await metrics(srv.url);
    assert.ok(m.plaza_connections_refused_total >= 1);
  });
});

// ---- pipelined responses that are never read -------------------------------------

describe('pipelining without reading the responses', () => {
  let srv;
  before(async () => { srv = await startPlaza({ webRoot: root, args: ['--workers', '1'] }); });
  after(async () => { assert.equal((await srv.stop()).code, 0); });

  const rssMiB = () => Number(readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;

  test('a few pipelined large responses are all answered', async () => {
    const c = await rawHttp(srv.port);
    c.send(req('GET', '/big.bin').repeat(3));
    const rs = await c.waitResponses(3);
    for (const r of rs) { assert.equal(r.status, 200); assert.ok(r.body.equals(BIG)); }
    c.destroy();
  });

  test('the server does not queue unbounded responses for a client that never reads', async () => {
    const before_ = rssMiB();
    const s = net.connect(srv.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.pause();   // read nothing: the server's output backs up
    // 200 requests (~8 KiB) would ask for 200 MiB of responses.
    s.write(req('GET', '/big.bin').repeat(200));
    await new Promise((r) => setTimeout(r, 800));
    const grown = rssMiB() - before_;
    // Now read what the server sends until it closes.
    let buf = Buffer.alloc(0);
    s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
    s.resume();
    const closed = await new Promise((r) => {
      const t = setTimeout(() => r(false), 5000);
      s.once('close', () => { clearTimeout(t); r(true); });
    });
    s.destroy();
    assert.ok(grown < 64, `server memory grew by ${grown.toFixed(0)} MiB for 200 unread pipelined responses`);
    assert.equal(closed, true, 'connection not closed');
    const { responses, rest } = parseResponses(buf);
    assert.ok(responses.length >= 1, 'no response at all');
    for (const r of responses) { assert.equal(r.status, 200); assert.ok(r.body.equals(BIG)); }
    assert.equal(rest.length, 0, 'a truncated response');
    // Other clients are unaffected.
    const res = await fetch(srv.url + '/healthz');
    assert.equal(await res.text(), 'ok\n');
  });
});

// ---- a response still being written is not idleness ------------------------------

describe('slow readers and keepalive_timeout_ms', () => {
  // Much larger than what the two socket buffers hold (a few MiB), so the
  // server is still writing long after keepalive_timeout_ms.
  const HUGE = Buffer.alloc(12 << 20);
  for (let i = 0; i < HUGE.length; i += 4) HUGE.writeUInt32LE((i * 2246822519) >>> 0, i);
  let srv;
  before(async () => {
    writeFileSync(path.join(root, 'huge.bin'), HUGE);
    srv = await startPlaza({ webRoot: root, args: ['--set', 'http.keepalive_timeout_ms=400'] });
  });
  after(async () => { assert.equal((await srv.stop()).code, 0); });

  // Reads at most 64 KiB per 30 ms (about 2 MB/s): the 12 MiB answer takes
  // about 6 s, far past keepalive_timeout_ms and the 2 s linger after it.
  async function slowGet(headers) {
    const s = net.connect(srv.port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.on('error', () => {});
    const parts = [];
    let total = 0, inWindow = 0;
    const done = new Promise((resolve) => {
      const cap = setTimeout(resolve, 20000);
      const finish = () => { clearTimeout(cap); resolve(); };
      s.on('data', (d) => {
        parts.push(d); total += d.length; inWindow += d.length;
        if (total >= HUGE.length && parseResponses(Buffer.concat(parts)).responses.length) return finish();
        if (inWindow >= 65536) { s.pause(); setTimeout(() => { inWindow = 0; s.resume(); }, 30); }
      });
      s.once('close', finish);
    });
    s.write(req('GET', '/huge.bin', headers));
    await done;
    s.destroy();
    return Buffer.concat(parts);
  }

  test('a large response is not cut off while the client keeps reading', { timeout: 30000 }, async () => {
    // keepalive_timeout_ms is "idle time between requests"; a response that
    // is still moving is not idle. Kept-alive and Connection: close alike.
    const [kept, closing] = await Promise.all([slowGet({}), slowGet({ Connection: 'close' })]);
    for (const [what, buf] of [['keep-alive', kept], ['Connection: close', closing]]) {
      const { responses } = parseResponses(buf);
      assert.equal(responses.length, 1, `${what}: response cut off after ${buf.length} of ${HUGE.length} body bytes`);
      assert.ok(responses[0].body.equals(HUGE), what);
    }
  });
});
