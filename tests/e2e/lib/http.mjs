// Raw HTTP/1.1 helpers for tests that must control the exact bytes on the
// wire (pipelining, limits, timeouts, traversal attempts): a response parser
// and a connection that collects what the server sends and when it closes.
import net from 'node:net';
import tls from 'node:tls';

// Parses as many complete responses as buf holds. headOnly: a predicate
// (index) => bool, or a boolean, for responses to HEAD (no body despite
// Content-Length). Returns { responses, rest }. Each response is
// { status, reason, version, headers (lower-case names; repeated names
// joined with ", "), rawHead, body (Buffer) }.
export function parseResponses(buf, { headOnly = false } = {}) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const rawHead = buf.subarray(off, end).toString('latin1');
    const [statusLine, ...lines] = rawHead.split('\r\n');
    const m = statusLine.match(/^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/);
    if (!m) throw new Error('bad status line: ' + JSON.stringify(statusLine));
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i <= 0) throw new Error('bad header line: ' + JSON.stringify(l));
      const k = l.slice(0, i).toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = k in headers ? headers[k] + ', ' + v : v;
    }
    const status = Number(m[2]);
    const isHead = typeof headOnly === 'function' ? headOnly(responses.length) : headOnly;
    let len = 0;
    if (!isHead && status !== 304 && status !== 204 && !(status >= 100 && status < 200)) {
      if (headers['transfer-encoding']) throw new Error('chunked responses not supported here');
      len = Number(headers['content-length'] ?? NaN);
      if (!Number.isInteger(len)) throw new Error('response without Content-Length: ' + rawHead);
    }
    if (buf.length < end + 4 + len) break;
    responses.push({ version: m[1], status, reason: m[3], headers, rawHead,
      body: buf.subarray(end + 4, end + 4 + len) });
    off = end + 4 + len;
  }
  return { responses, rest: buf.subarray(off) };
}

// Opens a TCP (or TLS, with tls: true) connection and records everything
// the server sends. Returns {
//   sock, send(data), data() (all bytes so far), closed (promise of
//   { at: ms since connect }), isClosed(),
//   responses(opts) (parsed so far), waitResponses(n, opts, ms) }.
export async function rawHttp(port, { tls: useTls = false, host = '127.0.0.1' } = {}) {
  const sock = useTls
    ? tls.connect({ port, host, rejectUnauthorized: false })
    : net.connect(port, host);
  await new Promise((resolve, reject) => {
    sock.once(useTls ? 'secureConnect' : 'connect', resolve);
    sock.once('error', reject);
  });
  const t0 = Date.now();
  let buf = Buffer.alloc(0);
  let isClosed = false;
  let error = null;
  const waiters = new Set();
  const wake = () => { for (const w of waiters) w(); };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); wake(); });
  sock.on('error', (e) => { error = e; });
  const closed = new Promise((resolve) => sock.on('close', () => {
    isClosed = true; wake(); resolve({ at: Date.now() - t0, error });
  }));
  const until = async (pred, ms, what) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (isClosed) { const v2 = pred(); if (v2) return v2; throw new Error(`connection closed while waiting for ${what}; got:\n${buf.toString('latin1')}`); }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; got:\n${buf.toString('latin1')}`);
      await new Promise((r) => { const t = setTimeout(r, Math.min(left, 100)); waiters.add(() => { clearTimeout(t); r(); }); });
      waiters.clear();
    }
  };
  return {
    sock,
    t0,
    send: (data) => sock.write(data),
    data: () => buf,
    closed,
    isClosed: () => isClosed,
    responses: (opts) => parseResponses(buf, opts).responses,
    async waitResponses(n, opts = {}, ms = 5000) {
      return until(() => { const r = parseResponses(buf, opts).responses; return r.length >= n ? r : null; }, ms, `${n} response(s)`);
    },
    // Waits for the server to close; fails after ms.
    async waitClosed(ms = 5000) {
      let t;
      const timeout = new Promise((_, reject) => { t = setTimeout(() => reject(new Error('server did not close the connection; got:\n' + buf.toString('latin1'))), ms); });
      try { return await Promise.race([closed, timeout]); } finally { clearTimeout(t); }
    },
    destroy: () => sock.destroy(),
  };
}

// One-shot: sends data on a fresh connection (ending nothing), waits for
// the server to close it, and returns { responses, data, closedAt }.
export async function exchange(port, data, { headOnly = false, ms = 5000, tls: useTls = false } = {}) {
  const c = await rawHttp(port, { tls: useTls });
  c.send(data);
  const { at } = await c.waitClosed(ms);
  const buf = c.data();
  const { responses, rest } = parseResponses(buf, { headOnly });
  return { responses, rest, data: buf, closedAt: at };
}

// A request string: req('GET', '/x', { Host: 'a' }, body).
export function req(method, target, headers = {}, body = '', version = 'HTTP/1.1') {
  const h = { Host: 'plaza.test', ...headers };
  return `${method} ${target} ${version}\r\n` +
    Object.entries(h).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
    '\r\n' + body;
}
