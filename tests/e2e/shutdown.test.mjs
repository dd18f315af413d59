// End-to-end tests of graceful shutdown: SIGTERM/SIGINT close every
// WebSocket with 1001, end HTTP connections, stop accepting, and exit 0
// within shutdown_timeout_ms even when a client never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import WebSocket from 'ws';
import { startPlaza } from './lib/server.mjs';
import { rawWs, frame, closePayload } from './lib/raw.mjs';
import { rawHttp, req } from './lib/http.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves with { code, signal, ms } when the process exits; rejects after
// limitMs (and kills it, so the test run does not hang).
async function exitWithin(srv, limitMs, t0 = Date.now()) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => { srv.proc.kill('SIGKILL'); reject(new Error(`plaza did not exit within ${limitMs} ms:\n${srv.logs()}`)); }, limitMs);
  });
  try {
    const r = await Promise.race([srv.exited, timeout]);
    return { ...r, ms: Date.now() - t0 };
  } finally { clearTimeout(timer); }
}

async function openWs(url) {
  const ws = new WebSocket(url);
  const closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  // Make sure the server side is fully up: one echo round trip.
  const echoed = new Promise((r) => ws.once('message', r));
  ws.send('ping?');
  assert.equal((await echoed).toString(), 'ping?');
  return { ws, closed };
}

async function gracefulWithSignal(signal) {
  const srv = await startPlaza({ args: ['--set', 'shutdown_timeout_ms=5000'] });
  const clients = await Promise.all(Array.from({ length: 6 }, () => openWs(srv.wsUrl)));
  const t0 = Date.now();
  srv.proc.kill(signal);
  const results = await Promise.all(clients.map((c) => c.closed));
  for (const r of results) {
    assert.equal(r.code, 1001);
    assert.equal(r.reason, 'server shutting down');
  }
  const { code, signal: sig, ms } = await exitWithin(srv, 5000, t0);
  assert.equal(sig, null);
  assert.equal(code, 0);
  assert.ok(ms < 2000, `exit took ${ms} ms although every client answered the close`);
  assert.match(srv.logs(), new RegExp(`signal ${signal === 'SIGTERM' ? 15 : 2}: shutting down`));
  assert.match(srv.logs(), /plaza stopped/);
  assert.doesNotMatch(srv.logs(), /shutdown timeout/);
  await srv.stop();   // sanitizer check
}

test('SIGTERM: every WebSocket gets 1001 and the process exits 0', { timeout: 15000 }, async () => {
  await gracefulWithSignal('SIGTERM');
});

test('SIGINT works the same', { timeout: 15000 }, async () => {
  await gracefulWithSignal('SIGINT');
});

test('a client that never answers the close does not hold the exit past shutdown_timeout_ms', { timeout: 15000 }, async () => {
  const srv = await startPlaza({ args: ['--set', 'shutdown_timeout_ms=1000', '--set', 'websocket.close_timeout_ms=20000'] });
  const raw = await rawWs(srv.port);
  raw.send(frame(1, 'hi'));
  await raw.waitFor((f) => f.opcode === 1);
  const polite = await openWs(srv.wsUrl);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const close = await raw.waitFor((f) => f.opcode === 8, 3000);
  assert.equal(close.code, 1001);
  assert.equal(close.reason, 'server shutting down');
  assert.equal((await polite.closed).code, 1001);
  // The raw client sends nothing back.
  const { code, ms } = await exitWithin(srv, 6000, t0);
  assert.equal(code, 0);
  assert.ok(ms >= 800, `exited after ${ms} ms, before the shutdown timeout`);
  assert.ok(ms < 3000, `exit took ${ms} ms with shutdown_timeout_ms=1000`);
  assert.match(srv.logs(), /shutdown timeout: closing remaining connections/);
  await raw.closed;
  await srv.stop();
});

test('a second signal stops at once', { timeout: 15000 }, async () => {
  const srv = await startPlaza({ args: ['--set', 'shutdown_timeout_ms=20000', '--set', 'websocket.close_timeout_ms=20000'] });
  const raw = await rawWs(srv.port);
  srv.proc.kill('SIGTERM');
  await raw.waitFor((f) => f.opcode === 8, 3000);
  await sleep(100);
  assert.equal(srv.proc.exitCode, null, 'exited before the stuck client closed');
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  const { code, ms } = await exitWithin(srv, 5000, t0);
  assert.equal(code, 0);
  assert.ok(ms < 1500, `second signal took ${ms} ms`);
  assert.match(srv.logs(), /second signal: stopping now/);
  await srv.stop();
});

test('open HTTP keep-alive connections are closed on shutdown', { timeout: 15000 }, async () => {
  const srv = await startPlaza({ args: ['--set', 'shutdown_timeout_ms=5000'] });
  const idle = await rawHttp(srv.port);
  idle.send(req('GET', '/healthz'));
  const [r] = await idle.waitResponses(1);
  assert.equal(r.status, 200);
  assert.equal(r.headers.connection, undefined);   // kept alive
  const partial = await rawHttp(srv.port);
  partial.send('GET /healthz HTTP/1.1\r\nHost: x\r\n');   // head not finished
  const fresh = await rawHttp(srv.port);                  // nothing sent yet
  await sleep(50);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  for (const c of [idle, partial, fresh]) {
    const { at } = await c.waitClosed(3000);
    assert.ok(at - (t0 - c.t0) < 1500, `connection closed ${at - (t0 - c.t0)} ms after SIGTERM`);
  }
  assert.equal(idle.responses().length, 1, 'extra bytes on the idle connection: ' + idle.data());
  assert.equal(fresh.data().length, 0);
  const { code, ms } = await exitWithin(srv, 5000, t0);
  assert.equal(code, 0);
  assert.ok(ms < 2000, `exit took ${ms} ms`);
  await srv.stop();
});

test('new connections are refused once shutdown has started', { timeout: 15000 }, async () => {
  // One worker, so the listener that is closed is the only one; a client
  // that never answers keeps the process alive meanwhile.
  const srv = await startPlaza({ args: ['--workers', '1', '--set', 'shutdown_timeout_ms=3000', '--set', 'websocket.close_timeout_ms=20000'] });
  const raw = await rawWs(srv.port);
  const t0 = Date.now();
  srv.proc.kill('SIGTERM');
  await raw.waitFor((f) => f.opcode === 8, 3000);
  assert.equal(srv.proc.exitCode, null);
  const err = await new Promise((resolve) => {
    const s = net.connect(srv.port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(null); });
    s.once('error', resolve);
  });
  assert.ok(err, 'a new connection was accepted during shutdown');
  assert.equal(err.code, 'ECONNREFUSED');
  const ws = new WebSocket(srv.wsUrl);
  const wsErr = await new Promise((r) => { ws.once('error', r); ws.once('open', () => r(null)); });
  assert.ok(wsErr && wsErr.code === 'ECONNREFUSED', 'WebSocket connected during shutdown');
  // Now the stuck client answers; the process exits before the timeout.
  raw.send(frame(8, closePayload(1001)));
  await raw.closed;
  const { code, ms } = await exitWithin(srv, 5000, t0);
  assert.equal(code, 0);
  assert.ok(ms < 2500, `exit took ${ms} ms after the last client closed`);
  assert.doesNotMatch(srv.logs(), /shutdown timeout/);
  await srv.stop();
});
