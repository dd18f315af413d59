// Presence: who is in a space right now. Being subscribed to the stream
// channel space:<name> is being present; Plaza lists every subscribed tab in
// the presence map spacepc:space:<name> (key = client id, info = user and
// the sign-in token's name/colour/region), which this page watches with
// newMapClientsSubscription. Entries written over the HTTP API
// (/v1/spaces/...) have the key http:<user> and the PUT body as data.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = Plaza.el;
  const SPACE_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const COLOR_RE = /^#[0-9a-fA-F]{6}$/;

  // ---- which space -------------------------------------------------------
  let space = new URLSearchParams(location.search).get('space');
  if (space === null || space === '') space = 'lobby';
  else if (!SPACE_RE.test(space)) {
    Plaza.showError('"' + space.slice(0, 80) + '" is not a space name (letters, digits, - and _; up to 64). Showing the lobby instead.', { sticky: true });
    space = 'lobby';
  }
  const STREAM = 'space:' + space;
  const PRESENCE = 'spacepc:' + STREAM;
  $('space-name').textContent = space;
  $('space-input').value = space;
  document.title = space + ' · Presence · Plaza';

  // ---- the HTTP API panel -------------------------------------------------
  (function curlLines() {
    const base = location.origin + '/v1/spaces/' + space + '/users';
    const key = "-H 'X-API-Key: demo-api-key'";
    $('curl').textContent = [
      '# be here as "robot-1" (repeat every few seconds)',
      "curl -X PUT " + key + " -H 'Content-Type: application/json' \\",
      "  -d '{\"name\":\"Robot\",\"color\":\"#0083c7\"}' " + base + '/robot-1',
      '# who is here',
      'curl ' + key + ' ' + base,
      '# leave',
      'curl -X DELETE ' + key + ' ' + base + '/robot-1',
    ].join('\n');
  }());

  // ---- the space form -----------------------------------------------------
  $('space-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('space-input').value.trim();
    const msg = $('space-msg');
    if (!SPACE_RE.test(v)) {
      msg.textContent = v === '' ? 'Type a space name.'
        : 'Not a space name: use letters, digits, - and _ (up to 64 characters).';
      msg.classList.remove('ok');
      return;
    }
    msg.textContent = '';
    if (v === space) return;
    location.search = '?space=' + encodeURIComponent(v);
  });

  // ---- state: the presence map's entries -------------------------------------
  // key -> { key, user, client, http, name, color, since }
  const entries = new Map();
  const sinceByKey = new Map();   // from GET /v1/spaces/<space>/users, or first seen
  const rows = new Map();         // user -> <li>
  let synced = false;

  function entryOf(u) {
    const info = u.info || {};
    const ci = info.connInfo || {};
    const data = u.data && typeof u.data === 'object' ? u.data : {};
    const http = u.key.startsWith('http:');
    const user = info.user || (http ? u.key.slice(5) : '');
    const name = String((http ? data.name : ci.name) || ci.name || data.name || user || 'anonymous').slice(0, 32);
    const color = [http ? data.color : ci.color, ci.color, data.color].find((c) => COLOR_RE.test(c || '')) || '#999999';
    if (!sinceByKey.has(u.key)) sinceByKey.set(u.key, Plaza.serverNow());
    return { key: u.key, user, client: info.client || '', http, name, color, region: ci.region || '' };
  }

  // Users (one row each) from the entries.
  function usersNow() {
    const by = new Map();
    for (const e of entries.values()) {
      let u = by.get(e.user);
      if (!u) { u = { user: e.user, name: e.name, color: e.color, tabs: 0, http: false, since: Infinity, keys: [] }; by.set(e.user, u); }
      if (e.http) u.http = true; else u.tabs++;
      if (!e.http) { u.name = e.name; u.color = e.color; }     // a tab's token wins over HTTP display data
      else if (u.tabs === 0) { u.name = e.name; u.color = e.color; }
      u.since = Math.min(u.since, sinceByKey.get(e.key) || Plaza.serverNow());
      u.keys.push(e.key);
    }
    return by;
  }

  function ago(ms) {
    const s = Math.max(0, Math.round((Plaza.serverNow() - ms) / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  function logEvent(text, cls) {
    const li = el('li', { class: cls }, el('span', { class: 'when', text: Plaza.fmtTime(Date.now()) }), el('span', { text }));
    const ul = $('events');
    ul.prepend(li);
    while (ul.children.length > 20) ul.lastChild.remove();
  }

  function fillRow(li, u) {
    li.textContent = '';
    li.dataset.user = u.user;
    li.dataset.tabs = String(u.tabs);
    li.dataset.http = u.http ? 'true' : 'false';
    const bits = [];
    if (u.tabs > 1) bits.push(u.tabs + ' tabs');
    if (u.http) bits.push('via HTTP');
    const me = u.user === Plaza.userId();
    li.append(...[
      el('span', { class: 'dot', style: { background: u.color } }),
      el('span', { class: 'name', text: u.name }),
      me ? el('span', { class: 'badge you', text: 'you' }) : null,
      ...bits.map((b) => el('span', { class: 'badge ' + (b === 'via HTTP' ? 'http' : 'tabs'), text: b })),
      el('span', { class: 'since', title: new Date(u.since).toString(), text: 'since ' + Plaza.fmtTime(u.since) + ' · ' + ago(u.since) }),
    ].filter(Boolean));
  }

  let prevUsers = new Map();
  function render(announce) {
    const now = usersNow();
    const ul = $('people');
    // gone: fade out, then drop the row
    for (const [user, u] of prevUsers) {
      if (now.has(user)) continue;
      const li = rows.get(user);
      rows.delete(user);
      if (announce) logEvent(u.name + ' left', 'left');
      if (li) {
        li.classList.add('leaving');
        li.dataset.leaving = 'true';
        setTimeout(() => li.remove(), 1200);
      }
    }
    // here: ordered by arrival
    const list = Array.from(now.values()).sort((a, b) => a.since - b.since || a.name.localeCompare(b.name));
    for (const u of list) {
      let li = rows.get(u.user);
      if (!li) {
        li = el('li', { class: 'person' });
        rows.set(u.user, li);
        if (announce) {
          li.classList.add('joined');
          setTimeout(() => li.classList.remove('joined'), 1500);
          logEvent(u.name + ' joined' + (u.http ? ' (via HTTP)' : ''), 'joined');
        }
      } else {
        const before = prevUsers.get(u.user);
        if (announce && before && before.tabs !== u.tabs && u.tabs > 0) {
          li.classList.remove('changed'); void li.offsetWidth; li.classList.add('changed');
          logEvent(u.name + ' now has ' + u.tabs + (u.tabs === 1 ? ' tab' : ' tabs'), 'tabs');
        }
        if (announce && before && before.http !== u.http) {
          logEvent(u.name + (u.http ? ' is here via HTTP too' : ' stopped the HTTP heartbeat'), 'tabs');
        }
      }
      fillRow(li, u);
      ul.append(li);   // (re)append in order; leaving rows stay where they were
    }
    prevUsers = now;
    $('count').textContent = String(now.size);
    $('empty').hidden = !(synced && now.size === 0);
  }

  setInterval(() => { if (entries.size) render(false); }, 15000);

  // The since of the entries already there when the page came: the server
  // knows (GET /v1/spaces/<space>/users); without it, the first time seen.
  async function loadSince() {
    const s = Plaza.session;
    if (!s || !s.token) return;
    try {
      const res = await fetch('/v1/spaces/' + encodeURIComponent(space) + '/users', { headers: { Authorization: 'Bearer ' + s.token } });
      if (!res.ok) return;
      const body = await res.json();
      const list = (body && body.result && body.result.users) || [];
      let changed = false;
      for (const u of list) {
        // "since" as the spec names it; the server answers the entry's
        // "time" (its first write: a presence refresh only extends the TTL)
        const since = u && (typeof u.since === 'number' ? u.since : u.time);
        if (u && typeof u.key === 'string' && typeof since === 'number' && since > 0) {
          sinceByKey.set(u.key, since);
          changed = true;
        }
      }
      if (changed) render(false);
    } catch (e) { /* the list still shows; "since" is when this page saw them */ }
  }

  // ---- the connection ----------------------------------------------------------
  const client = Plaza.start({ onSignOut: leave });

  const stream = client.newSubscription(STREAM);
  const pc = client.newMapClientsSubscription(PRESENCE);
  for (const sub of [stream, pc]) {
    sub.on('error', (ctx) => { if (ctx && ctx.error) Plaza.showError(ctx.error); });
    sub.on('unsubscribed', (ctx) => { if (ctx && ctx.code >= 100) Plaza.showError({ code: ctx.code, message: ctx.reason }); });
  }
  pc.on('sync', (ctx) => {
    const first = !synced;
    entries.clear();
    for (const u of ctx.entries || []) entries.set(u.key, entryOf(u));
    synced = true;
    render(!first);
    loadSince();
  });
  pc.on('update', (u) => {
    if (u.removed) {
      entries.delete(u.key);
      sinceByKey.delete(u.key);
    } else {
      const had = entries.has(u.key);
      entries.set(u.key, entryOf(u));
      if (had && !u.key.startsWith('http:')) return;   // a refresh of a tab: nothing to show
    }
    render(true);
  });

  // Signed out, the lists are hidden but kept: subscribing again recovers
  // (only the changes meanwhile come), so the state must still be here.
  function enter() {
    document.body.classList.remove('out');
    $('signin-needed').hidden = true;
    if (pc.state === 'unsubscribed') pc.subscribe();
    if (stream.state === 'unsubscribed') stream.subscribe();
  }
  function leave() {
    stream.unsubscribe();
    pc.unsubscribe();
    document.body.classList.add('out');
  }
  client.on('connected', () => {
    Plaza.clockOffset(client).then(() => render(false), () => {});
    if (Plaza.session) enter();
    else { $('signin-needed').hidden = false; $('empty').hidden = true; }
  });

  client.connect();

  // for tests and the curious
  window.app = {
    space,
    client,
    me: () => Plaza.userId(),
    keys: () => Array.from(entries.keys()).sort(),
    users: () => Array.from(usersNow().values()).map((u) => ({ user: u.user, name: u.name, tabs: u.tabs, http: u.http, since: u.since })),
  };
}());
