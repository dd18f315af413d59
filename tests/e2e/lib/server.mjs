// Starts the real plaza binary for a test on a free loopback port and stops
// it again. The binary is $PLAZA_BIN (default build/plaza); the port is read
// from its "listening on" log line (it binds port 0).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const plazaBin = process.env.PLAZA_BIN || path.join(repoRoot, 'build/plaza');

// E2E_ENGINE=delayed runs every server on the test-only delayed engine
// (a build with -DPLAZA_TEST_ENGINES=ON): each engine answer and event
// comes after a random delay of 0..E2E_ENGINE_DELAY_MS (default 20) ms.
// Each server gets its own seed (E2E_ENGINE_SEED fixes it); the seeds are
// printed when a test file fails, so a failing run can be replayed.
const engineType = process.env.E2E_ENGINE || '';
// Tests that measure a rate scale it by this: a client's commands run one at
// a time, so on the delayed engine each takes ~delay/2.
export const engineDelayed = engineType === 'delayed';
const seeds = [];
process.once('exit', (code) => {
  if (code && seeds.length) console.error(`delayed engine seeds of this file's servers: ${seeds.join(', ')} (replay with E2E_ENGINE_SEED=N)`);
});

// E2E_ENGINE=redis runs every server as two Plaza nodes on one Redis (a
// redis-server this file starts): srv.wsUrl is the first node's WebSocket,
// srv.url (the server API, HTTP) the second's, so every test drives its
// clients and its API calls through different nodes. A test of the durable
// store (opts.store: the memory engine's) runs on one node.
let redisPromise = null;
let redisPrefixes = 0;
async function sharedRedis() {
  if (!redisPromise) redisPromise = import('./redis.mjs').then((m) => m.startRedis());
  return redisPromise;
}

function engineArgs() {
  if (!engineType || engineType === 'redis') return [];
  const seed = Number(process.env.E2E_ENGINE_SEED) || 1 + Math.floor(Math.random() * 2147483646);
  seeds.push(seed);
  return ['--set', `engine.type=${engineType}`,
          '--set', `engine.delay_max_ms=${process.env.E2E_ENGINE_DELAY_MS || 20}`,
          '--set', `engine.delay_seed=${seed}`];
}

// Servers still running when the test process exits (a test that failed
// or timed out before stop()) are killed, so none outlive the runner.
const live = new Set();
process.once('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

// startPlaza({ args: [...], env: {...}, config: {...}, store: dir }) -> { port, url, wsUrl, proc, logs(), stop() }
export async function startPlaza(opts = {}) {
  if (engineType === 'redis' && opts.noEcho && !opts.single && !opts.store) {
    const r = await sharedRedis();
    const redisArgs = ['--set', 'engine.type=redis', '--set', `engine.redis.address=${r.address}`,
      '--set', `engine.redis.prefix=t${process.pid}-${++redisPrefixes}`];
    const first = await startOne({ ...opts, args: [...redisArgs, ...(opts.args || [])] });
    const second = await startOne({ ...opts, args: [...redisArgs, ...(opts.args || [])] }).catch(async (e) => {
      await first.stop();
      throw e;
    });
    return {
      ...first,
      url: second.url,
      localUrl: first.url,
      apiNode: second,
      logs: () => first.logs() + second.logs(),
      async stop(timeoutMs) {
        const [a, b] = await Promise.all([first.stop(timeoutMs), second.stop(timeoutMs)]);
        return a.code !== 0 ? a : b;
      },
    };
  }
  return startOne(opts);
}

async function startOne(opts = {}) {
  const args = ['serve', '--host', '127.0.0.1', '--port', '0'];
  if (opts.config) {
    const dir = mkdtempSync(path.join(tmpdir(), 'plaza-'));
    const file = path.join(dir, 'plaza.json');
    writeFileSync(file, JSON.stringify(opts.config));
    args.push('--config', file);
  }
  if (!opts.noEcho) args.push('--debug-echo');
  if (!opts.webRoot) args.push('--web-root', path.join(repoRoot, 'web'));
  else args.push('--web-root', opts.webRoot);
  if (opts.noEcho) args.push(...engineArgs());
  // Memory only unless the test names a store folder (opts.store): the
  // compiled-in default would write ./data.
  args.push('--set', `store.path=${opts.store || ''}`);
  args.push(...(opts.args || []));
  const env = { ...process.env, ...(opts.env || {}) };
  for (const k of Object.keys(env)) if (k.startsWith('PLAZA_') && k !== 'PLAZA_BIN' && !(opts.env && k in opts.env)) delete env[k];
  delete env.PLAZA_BIN;
  const proc = spawn(plazaBin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    // On a timeout the process is killed: a live child would keep the test
    // runner from ever exiting.
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('plaza did not start (no "listening on" line in 15 s; a log_level above info hides it):\n' + out)); }, 15000);
    const check = () => {
      const m = out.match(/listening on [^\s]*:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    proc.stderr.on('data', check);
    proc.stdout.on('data', check);
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`plaza exited (${code}):\n${out}`)); });
  });
  const scheme = opts.tls ? 'https' : 'http';
  return {
    port, proc, exited,
    url: `${scheme}://127.0.0.1:${port}`,
    wsUrl: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/connection/websocket`,
    logs: () => out,
    // Stops with SIGTERM; resolves with the exit status. Fails the test if
    // the process does not exit within timeoutMs or sanitizers reported.
    async stop(timeoutMs = 15000) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const res = await exited;
      clearTimeout(t);
      if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer/.test(out))
        throw new Error('sanitizer report:\n' + out);
      return res;
    },
  };
}

// Reads /metrics and returns { name{labels}: value }.
export async function metrics(base) {
  const text = await (await fetch(base + '/metrics')).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}
