// Starts Debian's redis-server for a test on a free loopback port (no
// persistence), and stops, pauses (SIGSTOP) or restarts it.
import { spawn } from 'node:child_process';
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

export async function startRedis({ port } = {}) {
  port = port || await freePort();
  const proc = spawn(redisBin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
