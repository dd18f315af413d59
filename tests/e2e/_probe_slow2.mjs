import net from 'node:net';
import { startPlaza } from './lib/server.mjs';
const srv = await startPlaza({ webRoot: '/tmp/e2probe/big', args: ['--set', 'http.keepalive_timeout_ms=300', '--set', 'log_level=debug'] });
const s = net.connect(srv.port, '127.0.0.1');
await new Promise(r => s.once('connect', r));
s.pause();
s.write(`GET /big8.bin HTTP/1.1\r\nHost: x\r\n\r\n`);
let total = 0; const t0 = Date.now(); let closed = false;
s.once('close', () => { closed = true; console.log('close at', Date.now() - t0, 'total', total); });
s.once('end', () => { console.log('end (FIN) at', Date.now() - t0, 'total', total); });
s.on('error', e => console.log('error', e.code, Date.now() - t0));
while (!closed && Date.now() - t0 < 8000) {
  await new Promise(r => setTimeout(r, 20));
  let c; while ((c = s.read()) !== null) { total += c.length; if (c.length >= 32768) break; }
}
console.log('done total', total, srv.logs().split('\n').slice(-5).join('\n'));
s.destroy(); await srv.stop();
