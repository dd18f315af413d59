import WebSocket from 'ws';
import crypto from 'node:crypto';
import { startPlaza } from './lib/server.mjs';
const d = '/tmp/e2probe/tls'; 
const srv = await startPlaza({ tls: true, args: ['--set', `tls.cert=${d}/c.pem`, '--set', `tls.key=${d}/k.pem`, '--set', 'websocket.compression=' + process.argv[2], '--set', 'log_level=debug'] });
const ws = new WebSocket(srv.wsUrl, { rejectUnauthorized: false, perMessageDeflate: true, maxPayload: 4 << 20 });
await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
console.log('open', ws.extensions);
ws.on('close', (c) => console.log('close', c));
for (const n of [10, 1000, 20000, 100000, 1 << 20]) {
  const b = crypto.randomBytes(n);
  const m = new Promise((r) => ws.once('message', r));
  ws.send(b);
  const t = setTimeout(() => { console.log('timeout at', n); console.log(srv.logs()); process.exit(1); }, 3000);
  const got = await m; clearTimeout(t);
  console.log(n, Buffer.from(got).equals(b));
}
ws.close(); await srv.stop(); 
