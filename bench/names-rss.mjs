#!/usr/bin/env node
// Memory per distinct channel name ever used (a benchmark, not a test):
// starts Plaza, reads its RSS, publishes once to each of N distinct channel
// names through the server API (history of 1, a TTL of 30 s), reads the RSS at
// the peak, waits for the engine's sweeper to expire the history and free
// the channels, and reads the RSS again. With nothing kept per name, the
// last figure returns to about the first.
//
//   node bench/names-rss.mjs [--bin build/plaza] [--names 1000000] [--ttl 30000]
// (--ttl: the history TTL in ms; longer than the publishing takes, so every
// name is alive at the peak)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const bin = arg('bin', 'build/plaza');
const names = Number(arg('names', 1000000));
const batch = 5000;
const KEY = 'names-rss';

const dir = mkdtempSync(path.join(tmpdir(), 'plaza-names-'));
const cfgFile = path.join(dir, 'plaza.json');
// --legacy: a build from before the engine had a sweeper of its own (its
// history expiry ran every presence_ttl_ms / 3), for a side-by-side run.
const legacy = process.argv.includes('--legacy');
writeFileSync(cfgFile, JSON.stringify({
  api: { key: KEY },
  store: { path: '' },
  http: { max_body_bytes: 4 << 20 },
  ...(legacy ? {} : { engine: { sweep_interval_ms: 200 } }),
  channel: { ...(legacy ? { presence_ttl_ms: 600 } : {}),
             namespaces: [{ name: 'n', history_size: 1, history_ttl_ms: Number(arg('ttl', 30000)) }] },
}));
const proc = spawn(bin, ['serve', '--config', cfgFile, '--host', '127.0.0.1', '--port', '0', '--log-level', 'warn'],
                   { stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
proc.stderr.on('data', (d) => { out += d; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1]) * 1024;
const mib = (b) => (b / 1048576).toFixed(1) + ' MiB';

async function port() {
  // --log-level warn hides the "listening" line: find the port in /proc.
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    const inodes = new Set();
    try {
      for (const fd of (await import('node:fs')).readdirSync(`/proc/${proc.pid}/fd`)) {
        const l = (await import('node:fs')).readlinkSync(`/proc/${proc.pid}/fd/${fd}`);
        const m = /socket:\[(\d+)\]/.exec(l);
        if (m) inodes.add(m[1]);
      }
    } catch { continue; }
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) return parseInt(f[1].split(':')[1], 16);
    }
  }
  throw new Error('plaza did not start:\n' + out);
}

const p = await port();
const api = async (method, params) => {
  const r = await fetch(`http://127.0.0.1:${p}/api/${method}`, {
    method: 'POST', headers: { 'X-API-Key': KEY }, body: JSON.stringify(params),
  });
  return r.json();
};
const gauge = async (name) => {
  const t = await (await fetch(`http://127.0.0.1:${p}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(t);
  return m ? Number(m[1]) : NaN;
};

await sleep(300);
const before = rss();
const t0 = Date.now();
for (let i = 0; i < names; i += batch) {
  const commands = [];
  for (let k = i; k < Math.min(names, i + batch); k++) commands.push({ publish: { channel: `n:${k}`, data: 1 } });
  const r = await api('batch', { commands });
  if (!r.result) throw new Error(JSON.stringify(r));
}
const secs = (Date.now() - t0) / 1000;
const peak = rss();
const streamsPeak = await gauge('plaza_engine_streams');
let channels = await gauge('plaza_engine_channels');
const t1 = Date.now();
while (channels > 0 && Date.now() - t1 < (legacy ? 40000 : 60000)) { await sleep(250); channels = await gauge('plaza_engine_channels'); }
await sleep(500);
const after = rss();
proc.kill('SIGTERM');
console.log(`names=${names} publish_s=${secs.toFixed(1)} rss_before=${before} rss_peak=${peak} ` +
            `rss_after=${after} streams_at_peak=${streamsPeak} channels_after=${channels}`);
console.log(`RSS ${mib(before)} -> ${mib(peak)} with ${names} names (${((peak - before) / names).toFixed(0)} B/name while their history lives) -> ` +
            `${mib(after)} once it expired (${((after - before) / names).toFixed(1)} B/name left)`);
