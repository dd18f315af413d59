// A board's viewers through the page's own load path (web/board/): each
// viewer GETs the snapshot (GET /boards/<channel>: the bitfield and the
// position it reflects), subscribes from that position (since), and applies
// the batches after it to its copy. Viewers join while pixels are being
// written at a steady rate (PUT /boards/<channel>/pixels with the API key,
// from this process), so the snapshot-then-deltas seam is crossed under
// load. At the end, writes stop and every viewer's board is compared with
// a fresh snapshot: a viewer that missed or misapplied a batch differs.
//
//   node bench/board-viewers.mjs --port P --pid PID [--viewers 1000] [--rate 1000]
//        [--seconds 10] [--channel bboard:0] [--key bench] [--procs 2]
//
// Prints one key=value line: load time (GET + subscribe live) p50/p99,
// pixel latency (server batch time -> viewer) p50/p99, pixels applied,
// viewers whose board differs at the end, server CPU and RSS. Raw `ws`
// clients speaking the protocol; viewers spread over --procs processes.
import WebSocket from 'ws';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const args = Object.fromEntries(process.argv.slice(2).map((a, i, v) => a.startsWith('--')
  ? [a.slice(2), v[i + 1]?.startsWith('--') || v[i + 1] === undefined ? '1' : v[i + 1]] : null).filter(Boolean));
const port = Number(args.port), pid = Number(args.pid);
const viewers = Number(args.viewers || 1000), rate = Number(args.rate || 1000);
const seconds = Number(args.seconds || 10), channel = args.channel || 'bboard:0';
const key = args.key || 'bench', procs = Number(args.procs || 2);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent,
      headers: body ? { 'X-API-Key': key, 'Content-Type': 'application/json' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function snapshot() {
  const r = await request('GET', '/boards/' + encodeURIComponent(channel));
  if (r.status !== 200) throw new Error('snapshot: HTTP ' + r.status);
  return { px: new Uint8Array(r.body), width: Number(r.headers['x-board-width']), bits: Number(r.headers['x-board-bits']),
    offset: Number(r.headers['x-board-offset']), epoch: r.headers['x-board-epoch'] };
}

function setPixel(b, x, y, c) {
  const row = Math.ceil(b.width * b.bits / 8);
  if (b.bits === 8) { b.px[y * row + x] = c; return; }
  const i = y * row + (x >> 1);
  b.px[i] = x & 1 ? (b.px[i] & 0xf0) | c : (b.px[i] & 0x0f) | (c << 4);
}

const pct = (a, q) => a.length ? a[Math.min(a.length - 1, Math.floor(q * a.length))] : 0;

// ---- a viewer process ----------------------------------------------------------
async function viewerProcess(count, spreadMs) {
  const boards = [], loads = [], lats = [];
  let applied = 0, failed = 0;
  const one = async () => {
    const t0 = now();
    const b = await snapshot();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/connection/websocket`, { perMessageDeflate: false });
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    const live = new Promise((resolve) => {
      ws.on('message', (d) => {
        for (const line of d.toString().split('\n')) {
          if (!line) continue;
          if (line === '{}') { ws.send('{}'); continue; }
          const m = JSON.parse(line);
          if (m.id === 2) {
            if (m.error || m.subscribe?.recovered === false) failed++;
            for (const p of m.subscribe?.publications || []) for (let i = 0; i < p.data.p.length; i += 3) setPixel(b, p.data.p[i], p.data.p[i + 1], p.data.p[i + 2]);
            resolve();
            continue;
          }
          const pub = m.push?.pub;
          if (!pub?.data?.p) continue;
          const t = now();
          for (let i = 0; i < pub.data.p.length; i += 3) { setPixel(b, pub.data.p[i], pub.data.p[i + 1], pub.data.p[i + 2]); applied++; }
          if (pub.time) lats.push(t - pub.time);
        }
      });
    });
    ws.send('{"id":1,"connect":{}}');
    ws.send(JSON.stringify({ id: 2, subscribe: { channel, recoverable: true, recover: true, offset: b.offset, epoch: b.epoch } }));
    await live;
    loads.push(now() - t0);
    boards.push(b);
  };
  const started = [];
  for (let i = 0; i < count; i++) {
    started.push(one().catch((e) => { if (failed++ < 3) console.error('viewer failed:', e.message); }));
    await sleep(spreadMs / count);
  }
  await Promise.all(started);
  process.send({ type: 'live' });
  await new Promise((resolve) => process.once('message', resolve));   // writes are over
  await sleep(2500);          // the last batches, and a snapshot cache (max_age) younger than them
  const final = await snapshot();
  let differ = 0;
  const want = Buffer.from(final.px.buffer, final.px.byteOffset, final.px.length);
  for (const b of boards) if (Buffer.compare(Buffer.from(b.px.buffer, b.px.byteOffset, b.px.length), want) !== 0) differ++;
  loads.sort((a, b) => a - b);
  lats.sort((a, b) => a - b);
  // exit once the message is out (an exit right after send may lose it)
  process.send({ type: 'done', loads, lats: lats.filter((_, i) => i % 10 === 0), applied, failed, differ, n: boards.length },
    () => process.exit(0));
}

if (args.child) {
  await viewerProcess(Number(args.count), Number(args.spread));
} else {
  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const b0 = await snapshot();
  // writes at `rate` for the whole run; viewers join over its first half
  let writing = true, puts = 0, putErr = 0, seq = 0;
  const writer = (async () => {
    const tick = 10, perTick = rate * tick / 1000;
    let next = now();
    while (writing) {
      for (let i = 0; i < perTick; i++) {
        const n = seq++;
        const body = JSON.stringify({ x: n % b0.width, y: Math.floor(n / b0.width) % b0.width, color: n % 15 + 1 });
        request('PUT', '/boards/' + encodeURIComponent(channel) + '/pixels', body)
          .then((r) => { if (r.status === 200) puts++; else putErr++; }, () => putErr++);
      }
      next += tick;
      await sleep(Math.max(0, next - now()));
    }
  })();
  const rss0 = rssKb(), cpu0 = cpu(), t0 = now();
  const children = [];
  for (let i = 0; i < procs; i++) {
    const count = Math.floor(viewers / procs) + (i < viewers % procs ? 1 : 0);
    children.push(fork(new URL(import.meta.url).pathname,
      ['--child', '1', '--count', String(count), '--spread', String(seconds * 500), '--port', String(port),
        '--channel', channel, '--key', key]));
  }
  for (const c of children) c.on('exit', (code) => { if (code) { console.error(`board-viewers: a viewer process exited (${code})`); process.exit(1); } });
  await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))));
  const rssLive = rssKb();
  await sleep(Math.max(0, t0 + seconds * 1000 - now()));
  writing = false;
  await writer;
  const cpuUs = (cpu() - cpu0) / 100 * 1e6, wall = (now() - t0) / 1000;
  const results = await Promise.all(children.map((c) => { c.send('stop'); return new Promise((resolve) => c.once('message', resolve)); }));
  const loads = results.flatMap((r) => r.loads).sort((a, b) => a - b);
  const lats = results.flatMap((r) => r.lats).sort((a, b) => a - b);
  const applied = results.reduce((a, r) => a + r.applied, 0);
  const out = {
    viewers: results.reduce((a, r) => a + r.n, 0), failed: results.reduce((a, r) => a + r.failed, 0),
    puts, put_errors: putErr, put_rate: Math.round(puts / wall),
    load_p50_ms: pct(loads, 0.5).toFixed(1), load_p99_ms: pct(loads, 0.99).toFixed(1),
    pixel_lat_p50_ms: pct(lats, 0.5).toFixed(1), pixel_lat_p99_ms: pct(lats, 0.99).toFixed(1),
    pixels_applied: applied, differ: results.reduce((a, r) => a + r.differ, 0),
    srv_cpu_pct: (cpuUs / wall / 1e4).toFixed(1), srv_cpu_us_per_pixel: (cpuUs / Math.max(1, applied)).toFixed(3),
    srv_rss_per_viewer_b: Math.round((rssLive - rss0) * 1024 / viewers),
  };
  console.log(Object.entries(out).map(([k, v]) => `${k}=${v}`).join(' '));
  agent.destroy();
  process.exit(0);
}
