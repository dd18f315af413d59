import { startPlaza } from './lib/server.mjs';
import { rawWs, frame, closePayload } from './lib/raw.mjs';
const plaza = await startPlaza({ args: ['--set', 'log_level=debug'] });
const c = await rawWs(plaza.port);
c.sock.on('end', () => console.log('FIN from server at', Date.now() - t0));
c.sock.on('close', () => console.log('socket closed at', Date.now() - t0));

const t0 = Date.now();
const p = plaza.stop().then(() => console.log('stopped', Date.now() - t0));
const f = await c.waitFor((f) => f.opcode === 8);
console.log('close frame', f.code, Date.now() - t0);
c.send(frame(8, closePayload(1001)));
await p;
console.log(plaza.logs());
