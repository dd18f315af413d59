// Plaza demo apps: the shared helper (global `Plaza`). Plain ES2020, no
// build step. Load after /vendor/centrifuge.js:
//   <script src="/vendor/centrifuge.js"></script>
//   <script src="/common/plaza.js"></script>
//
// API (small on purpose):
//
// Identity
//   Plaza.userId()              this browser's user id ("u-xxxxxxxx", kept in
//                               localStorage `plaza.user`; all tabs share it)
//   Plaza.profile()             {name, color} remembered in localStorage
//                               (`plaza.name`, `plaza.color`), or null
//   Plaza.saveProfile(p)        remember {name, color}; Plaza.forget() drops it
//   Plaza.signIn(profile?)      POST /v1/sign-in with {user, name, color}
//                               -> Promise<{token,user,name,color,region,expires_in}>;
//                               rejects with {code, message} (code 'off' when
//                               the server has sign-in off: HTTP 404).
//                               Remembers the profile when it succeeds.
//   Plaza.session               the last sign-in answer (or null)
//   Plaza.onSession(fn)         fn(session|null) after every sign-in / sign-out
//   Plaza.forget()              sign out: forget the name (the user id stays)
//   Plaza.tokenFromUrl()        the ?token= of the page URL, or ''
//   Plaza.decodeToken(jwt)      the token's payload (no check), or null
//   Plaza.signInBox(el, {onChange})
//                               renders the sign-in box into el (a selector or
//                               element): name + colour form, or "<dot> name"
//                               with "change"/"sign out". onChange(answer|null)
//                               runs after the person signs in (answer) or out
//                               (null) -- call Plaza.reconnect(client) there.
//                               Ids inside: #signin-name, #signin-color,
//                               #signin-go, #signin-msg (form); #signin-who,
//                               #signin-change, #signin-out (signed in).
//
// Connection
//   Plaza.wsUrl                 ws(s)://<host>/connection/websocket
//   Plaza.connect(opts)         a Centrifuge client (NOT yet connected: add
//                               subscriptions, then call client.connect()).
//                               opts.token: a fixed token (e.g. ?token=);
//                               otherwise the client signs in through getToken
//                               when a profile is remembered (a refused
//                               profile is forgotten), and connects
//                               anonymously when not. opts.centrifuge: extra
//                               Centrifuge options. Disconnects with a code
//                               >= 3000 and connect errors are shown through
//                               Plaza.showError.
//   Plaza.reconnect(client)     connect again with a fresh token (after a
//                               sign-in or sign-out); subscriptions resubscribe.
//   Plaza.start({status, signin, onSignOut, connect})
//                               connect + bindStatus + signInBox, reconnecting
//                               after a sign-in or sign-out; returns the client
//   Plaza.bindStatus(client, el) keeps el's text ("connecting…", "online",
//                               "offline: <why>") and data-state in step.
//
// Errors
//   Plaza.describeError(err)    a protocol error {code,message} (or an Error)
//                               -> plain words ("Too many requests: ...").
//   Plaza.describeDisconnect(ctx) a disconnect {code,reason} -> plain words
//                               (3500 token refused, 3503 moderator, ...).
//   Plaza.showError(errOrText, {el, sticky, ms})
//                               shows the words in #error (or el); hides after
//                               ms (default 8000) unless sticky. Returns the text.
//   Plaza.clearError(el?)       hides it.
//   Plaza.toast(text, {kind, ms}) a short message at the bottom (kind 'info',
//                               'error' or 'hi'); also in #toasts.
//
// Time
//   Plaza.clockOffset(client)   rpc 'plaza.time' a few times -> Promise<offset ms>
//                               (server clock - local clock, best round trip);
//                               also stored in Plaza.offset.
//   Plaza.serverNow()           Date.now() + Plaza.offset
//   Plaza.fmtTime(ms)           "14:05" (today) / "3 Jan 14:05"
//
// Small DOM helpers
//   Plaza.$(sel), Plaza.el(tag, {class, text, attrs...}, ...children)
//
// Page skeleton (see web/board/index.html, web/chat/index.html):
//   <header class="bar"><a class="home" href="/">← Plaza</a><h1>Board</h1>
//     <span id="status" class="status">connecting…</span><span class="spacer"></span>
//     <div id="signin"></div></header>
//   <div id="error" class="error" role="alert" hidden></div>
//   <main class="app">…<section class="card">…</section></main>
//   <p class="how"><strong>How it works.</strong> …</p>
//   const client = Plaza.connect();
//   Plaza.bindStatus(client, '#status');
//   Plaza.signInBox('#signin', { onChange: () => Plaza.reconnect(client) });
//   …client.newSubscription(…)…; client.connect();
'use strict';

(function () {
  const LS = {
    get(k) { try { return localStorage.getItem(k); } catch (e) { return null; } },
    set(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* private mode */ } },
    del(k) { try { localStorage.removeItem(k); } catch (e) { /* private mode */ } },
  };
  const NAME_RE = /^.{1,32}$/u;
  const COLOR_RE = /^#[0-9a-fA-F]{6}$/;
  const SWATCHES = ['#e50000', '#e59500', '#02be01', '#0083c7', '#820080', '#cf6ee4', '#222222', '#a06a42'];

  const Plaza = {
    session: null,
    offset: 0,
    wsUrl: (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/connection/websocket',
    swatches: SWATCHES,
  };

  // ---- DOM helpers ---------------------------------------------------
  Plaza.$ = (sel) => (typeof sel === 'string' ? document.querySelector(sel) : sel);
  Plaza.el = function (tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'style' && typeof v === 'object') Object.assign(e.style, v);
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  };

  // ---- identity --------------------------------------------------------
  Plaza.userId = function () {
    let id = LS.get('plaza.user');
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      const b = new Uint8Array(4);
      crypto.getRandomValues(b);
      id = 'u-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
      LS.set('plaza.user', id);
    }
    return id;
  };

  Plaza.profile = function () {
    const name = LS.get('plaza.name');
    const color = LS.get('plaza.color');
    if (!name) return null;
    return { name, color: COLOR_RE.test(color || '') ? color : SWATCHES[3] };
  };
  Plaza.saveProfile = function (p) {
    LS.set('plaza.name', p.name);
    if (p.color) LS.set('plaza.color', p.color);
  };
  Plaza.forget = function () {
    LS.del('plaza.name');
    setSession(null);
  };

  // POST /v1/sign-in. Rejects with {code, message}.
  Plaza.signIn = async function (profile) {
    const p = profile || Plaza.profile();
    if (!p) throw { code: 103, message: 'sign in first (a name and a colour)' };
    const name = String(p.name || '').trim();
    if (!NAME_RE.test(name)) throw { code: 107, message: 'name: 1 to 32 characters' };
    if (!COLOR_RE.test(p.color || '')) throw { code: 107, message: 'color: pick a colour (#rrggbb)' };
    let res;
    try {
      res = await fetch('/v1/sign-in', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ user: Plaza.userId(), name, color: p.color.toLowerCase() }),
      });
    } catch (e) {
      throw { code: 'network', message: 'the server cannot be reached' };
    }
    if (res.status === 404) throw { code: 'off', message: 'sign-in is off on this server' };
    let body = null;
    try { body = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok || !body || !body.token) {
      const err = (body && body.error) || { code: res.status, message: 'sign-in failed (HTTP ' + res.status + ')' };
      throw { code: err.code, message: err.message };
    }
    Plaza.saveProfile({ name, color: p.color });
    setSession(body);
    return body;
  };

  const sessionListeners = [];
  function setSession(s) {
    Plaza.session = s;
    for (const fn of sessionListeners) { try { fn(s); } catch (e) { console.error(e); } }
  }
  Plaza.onSession = (fn) => { sessionListeners.push(fn); };

  Plaza.tokenFromUrl = function () {
    return new URLSearchParams(location.search).get('token') || '';
  };

  Plaza.decodeToken = function (jwt) {
    try {
      const part = String(jwt).split('.')[1];
      const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
      const bin = atob(b64);
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      return null;
    }
  };

  // ---- errors ----------------------------------------------------------
  function cooldownMs(message) {
    const m = /retry after (\d+) ?ms/.exec(message || '');
    return m ? Number(m[1]) : null;
  }
  Plaza.cooldownMs = cooldownMs;
  // "bad request (data: larger than 2048 bytes)" -> "data: larger than 2048 bytes"
  function unwrap(msg, prefix) {
    let m = String(msg || '').trim();
    if (m.toLowerCase().startsWith(prefix)) m = m.slice(prefix.length).trim();
    if (m.startsWith('(') && m.endsWith(')')) m = m.slice(1, -1);
    return m.replace(/^:\s*/, '');
  }

  Plaza.describeError = function (err) {
    if (err === null || err === undefined) return 'Something went wrong.';
    if (typeof err === 'string') return err;
    const e = err.error && typeof err.error === 'object' ? err.error : err;
    const code = e.code;
    const msg = e.message ? String(e.message) : '';
    switch (code) {
      case 1: return 'The server did not answer in time. Try again.';
      case 3: return 'Not connected right now. Wait for "online" and try again.';
      case 7: return 'Not subscribed yet. Try again in a moment.';
      case 100: return 'The server had an internal problem. Try again.';
      case 101: return 'Not authorized.';
      case 102: return 'That channel does not exist on this server.';
      case 103: return 'Permission denied: ' + (/sign/i.test(msg) ? msg : 'sign in first (or you may not do this).');
      case 106: return 'A limit was reached (' + (msg || 'limit exceeded') + ').';
      case 107: return 'Bad request: ' + (unwrap(msg, 'bad request') || 'the server refused it') + '.';
      case 108: return 'Not available on this server' + (msg ? ' (' + unwrap(msg, 'not available') + ')' : '') + '.';
      case 109: return 'Your token expired. Sign in again.';
      case 111: {
        // "too many requests (at most 2 per second: retry after 423 ms)", "... (cooldown: retry after 992 ms)"
        const ms = cooldownMs(msg);
        const detail = unwrap(msg, 'too many requests').replace(/:?\s*retry after \d+ ?ms/, '').trim();
        if (ms !== null) return 'Too many requests: wait ' + (ms / 1000).toFixed(1) + ' s' + (detail ? ' (' + detail + ')' : '') + '.';
        return 'Too many requests: slow down' + (detail ? ' (' + detail + ')' : '') + '.';
      }
      case 112: return 'Your position in the stream was lost; reloading the state.';
      case 'off': return 'Sign-in is off on this server.';
      case 'network': return 'The server cannot be reached.';
      default:
        if (msg) return msg.charAt(0).toUpperCase() + msg.slice(1) + (code !== undefined ? ' (code ' + code + ')' : '');
        if (err instanceof Error) return err.message;
        return 'Something went wrong' + (code !== undefined ? ' (code ' + code + ')' : '') + '.';
    }
  };

  Plaza.describeDisconnect = function (ctx) {
    const code = ctx && ctx.code;
    const reason = (ctx && ctx.reason) || '';
    switch (code) {
      case 0: return 'Disconnected.';
      case 3000: return 'Disconnected (' + (reason || 'by the server') + ').';
      case 3001: return 'The server is restarting; reconnecting…';
      case 3005: return 'Your token expired; reconnecting with a new one…';
      case 3008: return 'The connection could not keep up; reconnecting…';
      case 3012: return 'The connection went quiet (no pong); reconnecting…';
      case 3013: return 'Too many requests: the server closed the connection. Reconnecting…';
      case 3500: return 'Your token was refused (invalid token). Sign in again or check the token.';
      case 3501: return 'The server refused the connection (bad request).';
      case 3502: return 'The connection went stale.';
      case 3503: return 'You were disconnected by a moderator.';
      case 3504: return 'Too many connections from your address.';
      default:
        if (code >= 3000) return 'Disconnected by the server (' + (reason || 'code ' + code) + ').';
        return reason ? 'Offline (' + reason + '); reconnecting…' : 'Offline; reconnecting…';
    }
  };

  const hideTimers = new WeakMap();
  function errorEl(el) {
    let e = el ? Plaza.$(el) : document.getElementById('error');
    if (!e) {
      e = Plaza.el('div', { id: 'error', class: 'error', role: 'alert', hidden: true });
      document.body.prepend(e);
    }
    return e;
  }
  Plaza.showError = function (err, opts) {
    const o = opts || {};
    const text = typeof err === 'string' ? err : Plaza.describeError(err);
    const e = errorEl(o.el);
    e.textContent = text;
    e.dataset.kind = o.kind || 'error';
    e.hidden = false;
    e.classList.add('show');
    clearTimeout(hideTimers.get(e));
    if (!o.sticky) hideTimers.set(e, setTimeout(() => Plaza.clearError(e), o.ms || 8000));
    return text;
  };
  Plaza.clearError = function (el) {
    const e = el ? Plaza.$(el) : document.getElementById('error');
    if (!e) return;
    clearTimeout(hideTimers.get(e));
    e.hidden = true;
    e.classList.remove('show');
    e.textContent = '';
  };

  Plaza.toast = function (text, opts) {
    const o = opts || {};
    let box = document.getElementById('toasts');
    if (!box) {
      box = Plaza.el('div', { id: 'toasts', 'aria-live': 'polite' });
      document.body.append(box);
    }
    const t = Plaza.el('div', { class: 'toast ' + (o.kind || 'info'), text });
    box.append(t);
    while (box.children.length > 4) box.firstChild.remove();
    setTimeout(() => t.remove(), o.ms || 5000);
    return t;
  };

  // ---- connection ------------------------------------------------------
  Plaza.connect = function (opts) {
    const o = opts || {};
    const fixed = o.token || '';
    const getToken = fixed
      ? () => Promise.resolve(fixed)
      : () => {
        if (!Plaza.profile()) return Promise.resolve('');   // anonymous
        return Plaza.signIn().then((r) => r.token, (e) => {
          if (e && e.code === 'off') return '';             // no sign-in here: anonymous
          Plaza.showError('Sign-in failed: ' + Plaza.describeError(e));
          if (e && (e.code === 107 || e.code === 400)) {    // the remembered name is refused: anonymous
            Plaza.forget();
            return '';
          }
          throw new Error(e && e.message ? e.message : 'sign-in failed');   // network: retried
        });
      };
    const client = new Centrifuge(Plaza.wsUrl, Object.assign({ token: fixed, getToken }, o.centrifuge || {}));
    client.on('disconnected', (ctx) => {
      if (ctx.code >= 3000) Plaza.showError(Plaza.describeDisconnect(ctx), { sticky: true, kind: 'disconnect' });
    });
    client.on('connected', () => {
      const e = document.getElementById('error');
      if (e && e.dataset.kind === 'disconnect') Plaza.clearError(e);
    });
    client.on('error', (ctx) => {
      if (ctx && ctx.type === 'connect' && ctx.error && ctx.error.code >= 100) Plaza.showError(ctx.error);
    });
    return client;
  };

  Plaza.reconnect = function (client) {
    client.setToken('');
    client.disconnect();
    client.connect();
  };

  Plaza.bindStatus = function (client, el) {
    const e = Plaza.$(el);
    if (!e) return;
    const set = (state, text) => { e.dataset.state = state; e.textContent = text; };
    set(client.state === 'connected' ? 'online' : 'connecting', client.state === 'connected' ? 'online' : 'connecting…');
    client.on('connecting', () => set('connecting', 'connecting…'));
    client.on('connected', () => set('online', 'online'));
    client.on('disconnected', (ctx) => set('offline', ctx.code === 0 ? 'offline' : 'offline: ' + Plaza.describeDisconnect(ctx)));
  };

  // ---- time ------------------------------------------------------------
  Plaza.clockOffset = async function (client, samples) {
    let best = null;
    for (let i = 0; i < (samples || 3); i++) {
      const t0 = Date.now();
      const r = await client.rpc('plaza.time', {});
      const t1 = Date.now();
      const server = r && r.data && Number(r.data.time);
      if (!server) continue;
      if (!best || t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: server - (t0 + t1) / 2 };
    }
    if (best) Plaza.offset = Math.round(best.offset);
    return Plaza.offset;
  };
  Plaza.serverNow = () => Date.now() + Plaza.offset;

  Plaza.fmtTime = function (ms) {
    const d = new Date(ms);
    const now = new Date();
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return hm;
    return d.toLocaleDateString([], { day: 'numeric', month: 'short' }) + ' ' + hm;
  };

  // ---- sign-in box -----------------------------------------------------
  Plaza.signInBox = function (where, opts) {
    const root = Plaza.$(where);
    const o = opts || {};
    if (!root) return null;
    root.classList.add('signin');
    let editing = false;

    function render() {
      if (editing) return;
      root.textContent = '';
      const p = Plaza.profile();
      if (!p) { renderForm(null); return; }
      const s = Plaza.session;
      const dot = Plaza.el('span', { class: 'dot', style: { background: (s && s.color) || p.color } });
      root.append(
        Plaza.el('span', { id: 'signin-who', class: 'who', title: 'user ' + Plaza.userId() }, dot,
          Plaza.el('span', { text: (s && s.name) || p.name })),
        Plaza.el('button', { type: 'button', id: 'signin-change', class: 'link', text: 'change', onclick: () => renderForm(p) }),
        Plaza.el('button', { type: 'button', id: 'signin-out', class: 'link', text: 'sign out', onclick: () => {
          Plaza.forget();
          if (o.onChange) o.onChange(null);
        } }),
      );
    }

    function renderForm(p) {
      editing = !!p;
      root.textContent = '';
      const name = Plaza.el('input', { id: 'signin-name', placeholder: 'your name', maxlength: 32, autocomplete: 'nickname', 'aria-label': 'your name' });
      name.value = p ? p.name : '';
      const color = Plaza.el('input', { id: 'signin-color', type: 'color', 'aria-label': 'your colour' });
      color.value = (p && p.color) || SWATCHES[Math.floor(Math.random() * SWATCHES.length)];
      const msg = Plaza.el('span', { id: 'signin-msg', class: 'msg', role: 'status' });
      const cancel = editing ? Plaza.el('button', { type: 'button', id: 'signin-cancel', class: 'link', text: 'cancel',
        onclick: () => { editing = false; render(); } }) : null;
      const form = Plaza.el('form', { class: 'signin-form' }, name, color,
        Plaza.el('button', { id: 'signin-go', text: 'Sign in' }), cancel, msg);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        msg.textContent = 'signing in…';
        msg.classList.remove('bad');
        try {
          const r = await Plaza.signIn({ name: name.value, color: color.value });
          editing = false;
          render();
          if (o.onChange) o.onChange(r);
        } catch (e) {
          msg.textContent = Plaza.describeError(e);
          msg.classList.add('bad');
        }
      });
      root.append(form);
    }

    Plaza.onSession(() => render());
    render();
    return { render };
  };

  // ---- a page's start -------------------------------------------------------------

  // The usual start of a page: a client (Plaza.connect), its status in
  // opts.status, the sign-in box in opts.signin, and a reconnect with the new
  // identity after every sign-in or sign-out (opts.onSignOut runs first on a
  // sign-out, to drop what belonged to the person). Returns the client, not
  // yet connected.
  Plaza.start = function (opts = {}) {
    const client = Plaza.connect(opts.connect || {});
    Plaza.bindStatus(client, opts.status || '#status');
    Plaza.signInBox(opts.signin || '#signin', {
      onChange: (s) => {
        if (!s && opts.onSignOut) opts.onSignOut();
        Plaza.reconnect(client);
      },
    });
    return client;
  };

  window.Plaza = Plaza;
}());
