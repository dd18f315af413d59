import net from 'node:net';
import { startPlaza } from './lib/server.mjs';
const srv = await startPlaza({ webRoot: '/tmp/e2probe/big', args: ['--set', 'http.keepalive_timeout_ms=100'] });
async function one(close) {
  const s = net.connect(srv.port, '127.0.0.1');
  await new Promise(r => s.once('connect', r));
  let total = 0, inWindow = 0; const t0 = Date.now();
  s.on('data', (d) => { total += d.length; inWindow += d.length; if (inWindow >= 65536) { s.pause(); setTimeout(() => { inWindow = 0; s.resume(); }, 30); } });
  s.on('error', (e) => console.log(close, 'error', e.code, Date.now() - t0, 'total', total));
  s.write(`GET /big8.bin HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`);
  await new Promise(r => { s.once('close', r); s.once('end', r); setTimeout(r, 15000); });
  console.log(close, 'close/end at', Date.now() - t0, 'total', total, 'want', 8388608 + 150);
  s.destroy();
}
await Promise.all([one(false), one(true)]);
console.log(srv.logs().split('\n').filter(l => l.includes('deadline')).join('\n'));
await srv.stop();
