// Chat rooms on Plaza: chat:<room> (history, recovery, presence, join/leave),
// the chatrooms:index map (the room list), the typing:<room> ephemeral map,
// and a moderation panel on the server API.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = Plaza.el;
  const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
  const HISTORY_LIMIT = 100;

  // ---- identity: ?token= (or pasted) or the sign-in box ------------------
  const urlToken = Plaza.tokenFromUrl();
  const claims = urlToken ? Plaza.decodeToken(urlToken) : null;

  function me() {
    if (urlToken) {
      const info = (claims && claims.info) || {};
      const user = (claims && claims.sub) || '';
      return { user, name: info.name || user || 'anonymous', color: info.color || '#5d6577' };
    }
    const s = Plaza.session;
    return s ? { user: s.user, name: s.name, color: s.color } : null;
  }

  const client = Plaza.connect(urlToken ? { token: urlToken } : {});
  Plaza.bindStatus(client, '#status');

  if (urlToken) {
    $('signin').hidden = true;
    const who = $('token-who');
    who.hidden = false;
    const m = me();
    who.append(
      el('span', { id: 'signin-who', class: 'who', title: 'from the token in the address' },
        el('span', { class: 'dot', style: { background: m.color } }), el('span', { text: m.name + ' (token)' })),
      el('a', { href: location.pathname + location.hash, id: 'token-drop', text: 'drop the token' }),
    );
    $('token-box').hidden = true;
  } else {
    Plaza.signInBox('#signin', {
      onChange(r) {
        if (!r) leaveAll();
        Plaza.reconnect(client);
      },
    });
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (!t) return;
    location.href = location.pathname + '?token=' + encodeURIComponent(t) + location.hash;
  });

  // ---- state -------------------------------------------------------------------
  let indexSub = null;
  let cur = null;          // the open room: {room, sub, typingSub, seen, clearedAt, people, typing}
  const rooms = new Map(); // key -> {title}
  const knownUsers = new Map();   // user id -> name (for moderation)
  let moderated = false;

  function roomFromHash() {
    const r = decodeURIComponent(location.hash.replace(/^#/, '')).toLowerCase();
    return ROOM_RE.test(r) ? r : 'general';
  }

  // ---- the room list: map chatrooms:index ---------------------------------
  function ensureIndex() {
    if (indexSub) return;
    indexSub = client.newMapSubscription('chatrooms:index');
    indexSub.on('sync', (ctx) => {
      rooms.clear();
      for (const e of ctx.entries || []) rooms.set(e.key, e.data || {});
      renderRooms();
    });
    indexSub.on('update', (u) => {
      if (u.removed) rooms.delete(u.key);
      else rooms.set(u.key, u.data || {});
      renderRooms();
    });
    indexSub.on('error', (ctx) => Plaza.showError(ctx.error));
    indexSub.subscribe();
  }

  function renderRooms() {
    const list = $('rooms');
    list.textContent = '';
    const keys = new Set(rooms.keys());
    keys.add('general');
    if (cur) keys.add(cur.room);
    for (const key of [...keys].sort()) {
      const data = rooms.get(key) || {};
      const title = typeof data.title === 'string' && data.title ? data.title : key;
      const a = el('a', { href: '#' + key, 'data-room': key, 'aria-current': String(!!cur && cur.room === key) },
        el('span', { text: title }), title !== key ? el('span', { class: 'key', text: '#' + key }) : null);
      list.append(el('li', {}, a));
    }
  }

  $('add-room').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const msg = $('room-msg');
    msg.classList.remove('ok');
    const raw = $('room-name').value.trim();
    const key = raw.toLowerCase();
    if (!ROOM_RE.test(key)) {
      msg.textContent = 'Room names are 1 to 32 characters: a-z, 0-9, - and _ (starting with a letter or digit).';
      return;
    }
    if (!me() || !indexSub) { msg.textContent = 'Sign in first to add a room.'; return; }
    try {
      await indexSub.publish(key, { title: raw });
      $('room-name').value = '';
      msg.textContent = 'Room #' + key + ' added.';
      msg.classList.add('ok');
      location.hash = key;
    } catch (e) {
      msg.textContent = Plaza.describeError(e);
    }
  });

  // ---- a room ----------------------------------------------------------------
  function leaveRoom() {
    if (!cur) return;
    for (const s of [cur.sub, cur.typingSub]) { s.removeAllListeners(); client.removeSubscription(s); }
    cur = null;
    $('messages').textContent = '';
    $('people').textContent = '';
    $('typing').textContent = '';
    $('here').textContent = '0 here';
  }

  function leaveAll() {
    leaveRoom();
    if (indexSub) { indexSub.removeAllListeners(); client.removeSubscription(indexSub); indexSub = null; }
    updateComposer();
  }

  function enterRoom(room) {
    if (cur && cur.room === room) return;
    leaveRoom();
    const sub = client.newSubscription('chat:' + room, { joinLeave: true });
    const typingSub = client.newMapSubscription('typing:' + room);
    const r = { room, sub, typingSub, seen: new Set(), clearedAt: 0, people: new Map(), typing: new Map(), lastTyping: 0 };
    cur = r;
    $('messages').textContent = '';
    $('room-title').textContent = '#' + room;
    document.title = '#' + room + ' · Chat · Plaza';

    sub.on('subscribed', async (ctx) => {
      if (cur !== r) return;
      updateComposer();
      if (ctx.wasRecovering) {
        if (!ctx.recovered) {
          note('Reconnected, but too much happened meanwhile: showing the latest messages again.');
          clearMessages();
          await loadHistory(r);
        } else if (ctx.hasRecoveredPublications) {
          note('Reconnected: the messages you missed are shown below.');
        }
      } else {
        await loadHistory(r);
      }
      refreshPresence(r);
    });
    sub.on('publication', (ctx) => { if (cur === r) addPublication(r, ctx, true); });
    sub.on('join', (ctx) => {
      if (cur !== r) return;
      const info = ctx.info || {};
      const was = r.people.has(info.user);
      addPerson(r, info);
      if (!was) note(personName(info) + ' joined');
      renderPeople(r);
    });
    sub.on('leave', (ctx) => {
      if (cur !== r) return;
      const info = ctx.info || {};
      const p = r.people.get(info.user);
      if (p) {
        p.clients.delete(info.client);
        if (!p.clients.size) { r.people.delete(info.user); note(p.name + ' left'); }
      }
      renderPeople(r);
    });
    sub.on('error', (ctx) => Plaza.showError(ctx.error));
    sub.on('unsubscribed', (ctx) => {
      if (ctx.code >= 100) Plaza.showError('You left #' + room + ': ' + Plaza.describeError({ code: ctx.code, message: ctx.reason }));
      updateComposer();
    });
    sub.on('subscribing', () => updateComposer());

    typingSub.on('sync', (ctx) => {
      r.typing.clear();
      for (const e of ctx.entries || []) r.typing.set(e.key, e);
      renderTyping(r);
    });
    typingSub.on('update', (u) => {
      if (u.removed) r.typing.delete(u.key); else r.typing.set(u.key, u);
      renderTyping(r);
    });

    sub.subscribe();
    typingSub.subscribe();
    renderRooms();
    updateComposer();
  }

  async function loadHistory(r) {
    try {
      const h = await r.sub.history({ limit: HISTORY_LIMIT, reverse: true });
      if (cur !== r) return;
      const pubs = h.publications.slice().reverse();
      for (const p of pubs) addPublication(r, p, false);
    } catch (e) {
      if (cur === r) Plaza.showError('The history could not be loaded: ' + Plaza.describeError(e));
    }
  }

  // ---- messages -----------------------------------------------------------------
  function clearMessages() {
    $('messages').textContent = '';
    if (cur) cur.seen.clear();
  }

  function note(text) {
    const list = $('messages');
    list.append(el('li', { class: 'note', text }));
    list.scrollTop = list.scrollHeight;
  }

  function personName(info) {
    const ci = info.connInfo || info.conn_info || {};
    return ci.name || info.user || 'someone';
  }

  function addPublication(r, ctx, live) {
    const off = ctx.offset || 0;
    if (off && r.seen.has(off)) return;
    if (off && off <= r.clearedAt) return;
    if (off) r.seen.add(off);
    const d = ctx.data && typeof ctx.data === 'object' ? ctx.data : { text: String(ctx.data) };
    if (d.type === 'cleared') {
      r.clearedAt = Math.max(r.clearedAt, off);
      clearMessages();
      r.seen.add(off);
      note('A moderator cleared this room\'s history.');
      return;
    }
    const info = ctx.info || {};
    const ci = info.connInfo || info.conn_info || {};
    const name = ci.name || d.name || info.user || 'someone';
    const color = /^#[0-9a-f]{6}$/i.test(ci.color || '') ? ci.color : (/^#[0-9a-f]{6}$/i.test(d.color || '') ? d.color : '#5d6577');
    if (info.user) knownUsers.set(info.user, name);
    const when = Number(ctx.time || d.sent_at) || 0;
    const m = me();
    const li = el('li', { 'data-offset': off, 'data-user': info.user || '', class: m && info.user === m.user ? 'mine' : null },
      el('span', { class: 'nick', style: { color } }, el('span', { class: 'dot', style: { background: color } }), name),
      el('span', { class: 'text', text: typeof d.text === 'string' ? d.text : JSON.stringify(d) }),
      when ? el('time', { datetime: new Date(when).toISOString(), text: Plaza.fmtTime(when) }) : null);
    const list = $('messages');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    // keep offset order (history and live publications may interleave)
    let before = null;
    if (off) {
      for (let n = list.lastElementChild; n; n = n.previousElementSibling) {
        const o = Number(n.dataset.offset || 0);
        if (o && o < off) break;
        if (o && o > off) before = n;
      }
    }
    list.insertBefore(li, before);
    while (list.children.length > 500) list.firstElementChild.remove();
    if (atBottom || !live || (m && info.user === m.user)) list.scrollTop = list.scrollHeight;
  }

  // ---- presence ---------------------------------------------------------------
  function addPerson(r, info) {
    if (!info.user && !info.client) return;
    const key = info.user || info.client;
    let p = r.people.get(key);
    const ci = info.connInfo || info.conn_info || {};
    if (!p) { p = { user: info.user, name: personName(info), color: ci.color || '#5d6577', clients: new Set() }; r.people.set(key, p); }
    p.clients.add(info.client);
    if (info.user) knownUsers.set(info.user, p.name);
  }

  async function refreshPresence(r) {
    try {
      const res = await r.sub.presence();
      if (cur !== r) return;
      r.people.clear();
      for (const info of Object.values(res.clients || {})) addPerson(r, info);
      renderPeople(r);
    } catch (e) { /* not subscribed at the moment: join/leave will follow */ }
  }

  function renderPeople(r) {
    const ul = $('people');
    ul.textContent = '';
    const people = [...r.people.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const p of people) {
      ul.append(el('li', { 'data-user': p.user || '' }, el('span', { class: 'dot', style: { background: p.color } }),
        el('span', { text: p.name + (p.clients.size > 1 ? ' (' + p.clients.size + ' tabs)' : '') })));
    }
    $('here').textContent = people.length + ' here';
    const dl = $('mod-users');
    dl.textContent = '';
    for (const [user, name] of knownUsers) dl.append(el('option', { value: name, label: user }));
  }

  // ---- typing -----------------------------------------------------------------
  function renderTyping(r) {
    const m = me();
    const names = [];
    for (const [key, e] of r.typing) {
      if (m && key === m.user) continue;
      const ci = (e.info && (e.info.connInfo || e.info.conn_info)) || {};
      names.push(ci.name || (e.data && typeof e.data.name === 'string' && e.data.name) || key);
    }
    names.sort();
    let t = '';
    if (names.length === 1) t = names[0] + ' is typing…';
    else if (names.length === 2) t = names[0] + ' and ' + names[1] + ' are typing…';
    else if (names.length > 2) t = names.length + ' people are typing…';
    $('typing').textContent = t;
  }

  function typed() {
    if (!cur || !me() || cur.typingSub.state !== 'subscribed') return;
    const now = Date.now();
    if (!$('text').value.trim() || now - cur.lastTyping < 2000) return;
    cur.lastTyping = now;
    cur.typingSub.publish(me().user, { typing: true, name: me().name }).catch(() => { /* best effort */ });
  }

  function stopTyping() {
    if (!cur || !me() || !cur.lastTyping) return;
    cur.lastTyping = 0;
    cur.typingSub.remove(me().user).catch(() => { /* it expires anyway */ });
  }

  // ---- composing ----------------------------------------------------------------
  function updateComposer() {
    const ok = !!me() && !!cur && cur.sub.state === 'subscribed' && !moderated;
    $('text').disabled = !ok;
    $('send-go').disabled = !ok;
    $('text').placeholder = moderated ? 'A moderator disconnected you.'
      : !me() ? 'Sign in (at the top) to chat'
        : ok ? 'Message #' + cur.room + ' (Enter sends, Shift+Enter: new line)' : 'connecting…';
  }

  async function send() {
    const msg = $('send-msg');
    msg.classList.remove('ok');
    const text = $('text').value.trim();
    if (!text || !cur) return;
    const m = me();
    if (!m) { msg.textContent = 'Sign in first.'; return; }
    try {
      await cur.sub.publish({ text, name: m.name, color: m.color, sent_at: Date.now() });
      $('text').value = '';
      msg.textContent = '';
      stopTyping();
    } catch (e) {
      msg.textContent = Plaza.describeError(e);
    }
  }

  $('send').addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
  $('text').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); }
  });
  $('text').addEventListener('input', () => {
    if ($('text').value.trim()) typed(); else stopTyping();
  });

  // ---- moderation (server API) ---------------------------------------------------
  async function api(method, body) {
    const key = $('mod-key').value.trim();
    if (!key) throw new Error('Type the API key first.');
    let res;
    try {
      res = await fetch('/api/' + method, {
        method: 'POST', headers: { 'X-API-Key': key, 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
    } catch (e) { throw new Error('The server cannot be reached.'); }
    if (res.status === 401) throw new Error('The API key was refused.');
    let j = null;
    try { j = await res.json(); } catch (e) { /* not JSON */ }
    if (!j) throw new Error('The server API answered HTTP ' + res.status + '.');
    if (j.error) throw new Error(Plaza.describeError(j.error));
    return j.result;
  }

  function modMsg(text, ok) {
    const m = $('mod-msg');
    m.textContent = text;
    m.classList.toggle('ok', !!ok);
  }

  $('mod-key-form').addEventListener('submit', (ev) => ev.preventDefault());
  $('mod-disconnect').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const who = $('mod-user').value.trim();
    if (!who) { modMsg('Type a name or a user id.'); return; }
    const matches = [...knownUsers].filter(([, name]) => name.toLowerCase() === who.toLowerCase());
    let user = who;
    if (matches.length > 1) { modMsg('Several users are called ' + who + ': type the user id (' + matches.map((x) => x[0]).join(', ') + ').'); return; }
    if (matches.length === 1) user = matches[0][0];
    else if (!/^[A-Za-z0-9_-]{1,64}$/.test(who)) { modMsg('Nobody called ' + who + ' was seen here; type their user id.'); return; }
    try {
      await api('disconnect', { user });
      modMsg('Disconnected ' + (matches.length ? who + ' (' + user + ')' : user) + '.', true);
    } catch (e) { modMsg(e.message); }
  });

  $('mod-clear').addEventListener('click', async () => {
    if (!cur) return;
    const channel = 'chat:' + cur.room;
    try {
      const r = await api('batch', { commands: [{ history_remove: { channel } }, { publish: { channel, data: { type: 'cleared' } } }] });
      const bad = ((r && r.replies) || []).find((x) => x.error);
      if (bad) throw new Error(Plaza.describeError(bad.error));
      modMsg('Cleared the history of #' + cur.room + '.', true);
    } catch (e) { modMsg(e.message); }
  });

  // ---- connection events -------------------------------------------------------------
  client.on('connected', () => {
    if (!me()) {
      leaveAll();
      $('messages').textContent = '';
      note('Sign in (name and colour, at the top) to read and write in the rooms.');
      updateComposer();
      return;
    }
    ensureIndex();
    enterRoom(roomFromHash());
  });
  client.on('disconnected', (ctx) => {
    if (ctx.code === 3503) {
      moderated = true;
      note('A moderator disconnected you. Reload the page to come back.');
    } else if (ctx.code === 3500) {
      note('Your token was refused, so you are not connected.');
    }
    updateComposer();
  });
  window.addEventListener('hashchange', () => { if (me() && client.state === 'connected') enterRoom(roomFromHash()); });

  renderRooms();
  updateComposer();
  client.connect();

  // For tests: state getters (the tests mostly read the DOM).
  window.app = {
    client,
    me,
    get room() { return cur && cur.room; },
    get subscribed() { return !!cur && cur.sub.state === 'subscribed'; },
    rooms: () => [...rooms.keys()].sort(),
    messages: () => [...$('messages').querySelectorAll('li:not(.note)')].map((li) => ({
      offset: Number(li.dataset.offset), user: li.dataset.user, name: li.querySelector('.nick').textContent,
      text: li.querySelector('.text').textContent,
    })),
    people: () => (cur ? [...cur.people.values()].map((p) => ({ user: p.user, name: p.name, tabs: p.clients.size })) : []),
    typing: () => $('typing').textContent,
  };
}());
