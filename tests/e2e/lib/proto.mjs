// Clients for tests that speak the protocol by hand: a raw protocol client
// (JSON commands over npm `ws`, every reply and push recorded in arrival
// order) and a server API caller. For exact wire checks; the real
// `centrifuge` client covers the rest.
import WebSocket from 'ws';
import { withTimeout } from './raw.mjs';

// POST /api/<method>; returns { status, body (parsed JSON or text) }.
export async function apiCall(baseUrl, method, params, { key } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers['X-API-Key'] = key;
  const res = await fetch(`${baseUrl}/api/${method}`, { method: 'POST', headers, body: JSON.stringify(params ?? {}) });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, body };
}

// rawClient(wsUrl, { token, connect }) -> { msgs, cmd(), send(), waitFor(), pushes(),
// closed, close(), kill(), client, connectReply }
export async function rawClient(wsUrl, { token, connect = true } = {}) {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  const c = { ws, msgs: [], nextId: 1, waiters: [], replies: 0 };
  ws.on('message', (data) => {
    for (const line of data.toString().split('\n')) {
      if (!line.trim()) continue;
      const m = JSON.parse(line);
      if (Object.keys(m).length === 0) { if (ws.readyState === 1) ws.send('{}'); continue; }
      if (m.id) c.replies++;
      c.msgs.push(m);
    }
    for (const w of c.waiters.splice(0)) w();
  });
  c.closed = new Promise((r) => ws.on('close', (code, reason) => {
    c.isClosed = true;
    for (const w of c.waiters.splice(0)) w();
    r({ code, reason: reason.toString() });
  }));
  ws.on('error', () => {});
  await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 5000, 'ws open');
  c.send = (...cmds) => ws.send(cmds.map((x) => JSON.stringify(x)).join('\n'));
  c.waitFor = async (pred, ms = 5000, from = 0) => {
    const t0 = Date.now();
    let i = from;
    for (;;) {
      for (; i < c.msgs.length; i++) if (pred(c.msgs[i])) return c.msgs[i];
      if (c.isClosed) throw new Error('connection closed while waiting; got ' + JSON.stringify(c.msgs.slice(-3)));
      if (Date.now() - t0 > ms) throw new Error('timeout waiting; last messages ' + JSON.stringify(c.msgs.slice(-3)));
      await new Promise((r) => { c.waiters.push(r); setTimeout(r, 50); });
    }
  };
  c.cmd = async (body, ms = 5000) => {
    const id = c.nextId++;
    const from = c.msgs.length;
    c.send({ id, ...body });
    return c.waitFor((m) => m.id === id, ms, from);
  };
  c.pushes = (channel, type) => c.msgs.filter((m) => m.push && m.push.channel === channel && m.push[type])
    .map((m) => m.push[type]);
  c.close = () => { try { ws.close(); } catch { /* gone */ } };
  c.kill = () => ws._socket.destroy();          // no Close frame
  if (connect) {
    const r = await c.cmd({ connect: token ? { token, name: 'raw' } : { name: 'raw' } });
    if (!r.connect?.client) throw new Error('connect reply: ' + JSON.stringify(r));
    c.client = r.connect.client;
    c.connectReply = r.connect;
  }
  return c;
}
