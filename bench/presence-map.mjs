// Presence as a live map, measured: N members join a stream channel whose
// namespace names a map_clients presence prefix (bench/plaza-bench.json:
// pbench -> pc), at a steady rate, while one watcher holds a map
// subscription to the presence map. For each member: the time from its
// subscribe command being sent to its entry reaching the watcher
// (join-to-visible), and the server's memory per member (VmRSS after the
// joins less before). With --plain the members join bench:0 instead (no
// presence map): the difference is what a presence entry costs.
//
//   node bench/presence-map.mjs --port P --pid PID [--members 10000] [--rate 1000] [--plain]
//
// Prints one key=value line. Raw `ws` clients speaking the protocol (the
// centrifuge client would cost the generator more than the server).
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).map((a, i, v) => a.startsWith('--') ? [a.slice(2), v[i + 1]?.startsWith('--') || v[i + 1] === undefined ? '1' : v[i + 1]] : null).filter(Boolean));
const port = Number(args.port), pid = Number(args.pid);
const members = Number(args.members || 10000), rate = Number(args.rate || 1000);
const plain = args.plain === '1';
const url = `ws://127.0.0.1:${port}/connection/websocket`;
const room = plain ? 'bench:0' : 'pbench:room';
const now = () => performance.timeOrigin + performance.now();
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function open(onLine) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
    ws.on('message', (d) => {
      for (const line of d.toString().split('\n')) {
        if (line === '{}') { ws.send('{}'); continue; }
        if (line) onLine(JSON.parse(line), ws);
      }
    });
  });
}

const sentAt = new Map(), visible = new Map();
let watcherLive = false;
if (!plain) {
  await open((m) => {
    if (m.id === 2) { watcherLive = true; return; }
    const pub = m.push?.pub;
    if (pub?.key && !pub.removed && !visible.has(pub.key)) visible.set(pub.key, now());
  }).then((ws) => {
    ws.send('{"id":1,"connect":{}}');
    ws.send(JSON.stringify({ id: 2, subscribe: { channel: 'pc:' + room, type: 2, phase: 2 } }));
  });
  while (!watcherLive) await sleep(10);
}

await sleep(500);
const rss0 = rssKb();
const socks = [];
let joined = 0;
const t0 = now();
for (let i = 0; i < members; i++) {
  const due = t0 + (i * 1000) / rate;
  if (due > now()) await sleep(due - now());
  const ws = await open((m, w) => {
    if (m.id === 1) {
      w.client = m.connect.client;
      sentAt.set(w.client, now());
      w.send(JSON.stringify({ id: 2, subscribe: { channel: room } }));
    } else if (m.id === 2) joined++;
  });
  ws.send('{"id":1,"connect":{}}');
  socks.push(ws);
}
const deadline = now() + 30000;
while ((joined < members || (!plain && visible.size < members)) && now() < deadline) await sleep(50);
await sleep(1000);
const rss1 = rssKb();
const lat = [];
for (const [k, t] of sentAt) if (visible.has(k)) lat.push(visible.get(k) - t);
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2) : 'NaN';
console.log(`mode=${plain ? 'plain' : 'presence_map'} members=${members} rate=${rate} joined=${joined} ` +
  `visible=${plain ? 0 : visible.size} join_to_visible_p50_ms=${q(0.5)} join_to_visible_p99_ms=${q(0.99)} ` +
  `join_to_visible_max_ms=${lat.length ? lat[lat.length - 1].toFixed(2) : 'NaN'} rss0_kb=${rss0} rss1_kb=${rss1} ` +
  `rss_per_member_b=${Math.round(((rss1 - rss0) * 1024) / members)}`);
for (const s of socks) s.terminate();
process.exit(0);
