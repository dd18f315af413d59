// Starts Debian's redis-server for a test on a free loopback port (no
// persistence), and stops, pauses (SIGSTOP) or restarts it; or a Redis
// Cluster of several masters (redis-cli --cluster create), with a helper
// that moves one slot from a master to another the way resharding does.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';

export const redisBin = process.env.REDIS_SERVER_BIN || '/usr/bin/redis-server';

const live = new Set();
process.once('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export async function startRedis({ port, extra = [] } = {}) {
  port = port || await freePort();
  const proc = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  // ready once it accepts a connection
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (proc.exitCode !== null || Date.now() - t0 > 10000) throw new Error('redis-server did not start:\n' + out);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port, proc, exited, address: `127.0.0.1:${port}`,
    async stop() { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); await exited; },
    pause() { proc.kill('SIGSTOP'); },
    resume() { proc.kill('SIGCONT'); },
  };
}

// A free port whose cluster bus port (port + 10000) is free too.
async function clusterPort() {
  for (;;) {
    const p = await freePort();
    if (p > 55000) continue;
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(p + 10000, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return p;
  }
}

// A Redis Cluster of `masters` nodes (no replicas), every slot served.
// Returns { nodes, seeds, stop(), owner(key), migrate(slot, to) }.
export async function startRedisCluster({ masters = 3 } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'plaza-cluster-'));
  const nodes = [];
  for (let i = 0; i < masters; i++) {
    const port = await clusterPort();
    nodes.push(await startRedis({ port, extra: ['--cluster-enabled', 'yes', '--cluster-node-timeout', '2000',
      '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--dir', dir] }));
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => n.address),
    '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30000 });
  if (create.status !== 0) throw new Error('redis-cli --cluster create failed:\n' + create.stdout + create.stderr);
  const t0 = Date.now();
  for (;;) {
    const states = await Promise.all(nodes.map((n) => redisQuery(n.port, 'CLUSTER', 'INFO')));
    if (states.every((s) => /cluster_state:ok/.test(s))) break;
    if (Date.now() - t0 > 15000) throw new Error('the cluster did not come up: ' + states.join('\n'));
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const n of nodes) n.id = String(await redisQuery(n.port, 'CLUSTER', 'MYID'));
  const cluster = {
    nodes,
    seeds: nodes.map((n) => n.address),
    async stop() { for (const n of nodes) await n.stop(); },
    async slot(key) { return Number(await redisQuery(nodes[0].port, 'CLUSTER', 'KEYSLOT', key)); },
    // the master serving a slot, from CLUSTER SLOTS
    async owner(slot) {
      const ranges = await redisQuery(nodes[0].port, 'CLUSTER', 'SLOTS');
      const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
      return r && nodes.find((n) => n.port === Number(r[2][1]));
    },
    // moves a slot and its keys from its master to `to`, as resharding does
    async migrate(slot, to) {
      const from = await cluster.owner(slot);
      if (from === to) return;
      await redisQuery(to.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await redisQuery(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
      for (;;) {
        const keys = await redisQuery(from.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 100);
        if (!keys.length) break;
        const r = await redisQuery(from.port, 'MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
        if (r instanceof Error) throw r;
      }
      for (const n of [to, from, ...nodes]) await redisQuery(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
    },
  };
  return cluster;
}

// Reads one RESP2 value from buf at i: [value, next index] or null if incomplete.
function parseResp(buf, i = 0) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]), line = buf.toString('utf8', i + 1, eol);
  if (type === '+') return [line, eol + 2];
  if (type === '-') return [new Error(line), eol + 2];
  if (type === ':') return [Number(line), eol + 2];
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return [null, eol + 2];
    if (buf.length < eol + 2 + n + 2) return null;
    return [buf.toString('utf8', eol + 2, eol + 2 + n), eol + 2 + n + 2];
  }
  if (type === '*') {
    const n = Number(line), out = [];
    let at = eol + 2;
    for (let k = 0; k < n; k++) {
      const v = parseResp(buf, at);
      if (!v) return null;
      out.push(v[0]);
      at = v[1];
    }
    return [out, at];
  }
  throw new Error('unexpected RESP type ' + type);
}

// Sends one command and resolves with its parsed reply (an Error for an
// error reply).
export function redisQuery(port, ...args) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const v = parseResp(buf);
      if (v) { s.end(); resolve(v[0]); }
    });
    s.once('error', reject);
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(''));
  });
}

// Sends one command (RESP) and resolves with the raw reply text.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => { out += d; if (out.endsWith('\r\n')) { s.end(); resolve(out); } });
    s.once('error', reject);
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(''));
  });
}
