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

// Servers still running when the test process exits (a test that failed
// or timed out before stop()) are killed, so none outlive the runner.
const live = new Set();
process.once('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

// startPlaza({ args: [...], env: {...}, config: {...} }) -> { port, url, wsUrl, proc, logs(), stop() }
export async function startPlaza(opts = {}) {
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
      if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(out))
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
