// Here: who is here (by region), a shared light, greetings.
//   here:world              stream: being subscribed = being here; waves
//                           (history 50)
//   herepc:here:world       the presence map of here:world (one entry per tab,
//                           info.conn_info = {name, color, region})
//   herestate:world         a persistent map: key "light" = {on, by}
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = Plaza.el;
  const STREAM = 'here:world';
  const PRESENCE = 'herepc:' + STREAM;
  const STATE = 'herestate:world';
  const COLOR_RE = /^#[0-9a-fA-F]{6}$/;

  // ---- presence ------------------------------------------------------------
  const entries = new Map();     // key (client id) -> {user, name, color, region}
  let synced = false;
  const seenUsers = new Set();   // for the short "joined" highlight

  function entryOf(u) {
    const info = u.info || {};
    const ci = info.connInfo || {};
    const user = info.user || '';
    return {
      user,
      name: String(ci.name || user || 'anonymous').slice(0, 32),
      color: COLOR_RE.test(ci.color || '') ? ci.color : '#999999',
      region: String(ci.region || 'unknown region').slice(0, 64),
    };
  }

  function renderPeople(announce) {
    const me = Plaza.userId();
    // region -> user -> {name, color, tabs}
    const regions = new Map();
    const users = new Set();
    let mine = 0;
    for (const e of entries.values()) {
      if (e.user === me) mine++;
      users.add(e.user);
      if (!regions.has(e.region)) regions.set(e.region, new Map());
      const r = regions.get(e.region);
      const u = r.get(e.user) || { user: e.user, name: e.name, color: e.color, tabs: 0 };
      u.tabs++;
      r.set(e.user, u);
    }
    const box = $('regions');
    box.textContent = '';
    for (const region of Array.from(regions.keys()).sort()) {
      const people = Array.from(regions.get(region).values()).sort((a, b) => a.name.localeCompare(b.name));
      const ul = el('ul', { class: 'plain people' });
      for (const u of people) {
        const isMe = u.user === me;
        const li = el('li', { 'data-user': u.user, 'data-tabs': String(u.tabs) },
          el('span', { class: 'dot', style: { background: u.color } }),
          el('span', { class: 'name', text: u.name }),
          isMe ? el('span', { class: 'badge you', text: 'you' }) : null,
          u.tabs > 1 ? el('span', { class: 'badge', text: u.tabs + ' tabs' }) : null,
          el('span', { class: 'spacer' }),
          isMe ? null : el('button', { type: 'button', class: 'wave', 'data-to': u.user, text: 'Wave',
            'aria-label': 'wave at ' + u.name, onclick: () => wave(u) }));
        if (announce && !seenUsers.has(u.user)) li.classList.add('flash');
        ul.append(li);
      }
      box.append(el('section', { class: 'region', 'data-region': region },
        el('h3', {}, el('span', { text: region }), ' ', el('span', { class: 'badge', text: String(people.length) })), ul));
    }
    seenUsers.clear();
    for (const u of users) seenUsers.add(u);
    $('count').textContent = String(users.size);
    const signedIn = !!Plaza.session;
    $('tabs').textContent = !signedIn || !synced ? ''
      : mine === 1 ? 'You have 1 tab open here.' : 'You have ' + mine + ' tabs open here.';
    $('tabs').dataset.tabs = String(mine);
  }

  // ---- the light -------------------------------------------------------------
  let light = { on: false, by: '' };
  function renderLight() {
    const on = light.on === true;
    document.body.classList.toggle('lit', on);
    document.body.classList.toggle('dark', !on);
    $('light-on').setAttribute('aria-pressed', on ? 'true' : 'false');
    $('light-off').setAttribute('aria-pressed', on ? 'false' : 'true');
    $('light-state').textContent = 'The light is ' + (on ? 'on' : 'off') + '.' +
      (light.by ? ' ' + (on ? 'Switched on' : 'Switched off') + ' by ' + light.by + '.' : '');
    $('light-state').dataset.on = on ? 'true' : 'false';
  }
  function lightOf(data) {
    const d = data && typeof data === 'object' ? data : {};
    return { on: d.on === true, by: typeof d.by === 'string' ? d.by.slice(0, 32) : '' };
  }

  async function setLight(on) {
    const msg = $('light-msg');
    msg.textContent = '';
    if (!Plaza.session) { msg.textContent = 'Sign in first (at the top) to switch the light.'; return; }
    try {
      await state.publish('light', { on, by: Plaza.session.name });   // the whole value: a SET, not a toggle
    } catch (e) {
      msg.textContent = 'Not switched: ' + Plaza.describeError(e);
    }
  }
  $('light-on').addEventListener('click', () => setLight(true));
  $('light-off').addEventListener('click', () => setLight(false));

  // ---- greetings ---------------------------------------------------------------
  const shown = new Set();    // offsets in the feed: a recovered wave is never shown twice
  function greetOf(ctx) {
    const d = ctx.data;
    if (!d || typeof d !== 'object' || d.type !== 'greet' || typeof d.to !== 'string') return null;
    const ci = ctx.info && ctx.info.connInfo;
    return {
      from: (ctx.info && ctx.info.user) || '',
      fromName: String((ci && ci.name) || d.from_name || 'someone').slice(0, 32),
      fromColor: ci && COLOR_RE.test(ci.color || '') ? ci.color : '#999999',
      to: d.to,
      toName: String(d.to_name || d.to).slice(0, 32),
      text: String(d.text || '').slice(0, 300),
      sentAt: Number.isFinite(d.sent_at) && d.sent_at > 0 ? d.sent_at : 0,
    };
  }
  function addGreeting(ctx, live) {
    if (ctx.offset) {
      if (shown.has(ctx.offset)) return;
      shown.add(ctx.offset);
    }
    const g = greetOf(ctx);
    if (!g) return;
    const me = Plaza.userId();
    const toMe = g.to === me;
    const li = el('li', { class: toMe ? 'tome' : g.from === me ? 'fromme' : '', 'data-offset': ctx.offset ? String(ctx.offset) : null },
      el('span', { class: 'dot', style: { background: g.fromColor } }),
      el('span', { class: 'who', text: g.fromName + ' → ' + (toMe ? 'you' : g.toName) }),
      el('span', { class: 'when', text: Plaza.fmtTime(g.sentAt || Date.now()) }),
      el('span', { class: 'text', text: g.text }));
    if (live) li.classList.add('flash');
    const feed = $('feed');
    feed.prepend(li);
    while (feed.children.length > 50) feed.lastChild.remove();
    $('feed-empty').hidden = true;
    if (live && toMe) Plaza.toast(g.fromName + ' waves at you: ' + g.text, { kind: 'hi', ms: 6000 });
  }

  async function wave(u) {
    const msg = $('greet-msg');
    msg.textContent = '';
    msg.classList.remove('ok');
    if (!Plaza.session) { msg.textContent = 'Sign in first (at the top) to wave.'; return; }
    const text = $('greet-text').value.trim();
    if (!text) { msg.textContent = 'Type a greeting first (it goes with the wave).'; return; }
    try {
      await stream.publish({ type: 'greet', to: u.user, to_name: u.name, from_name: Plaza.session.name, text, sent_at: Plaza.serverNow() });
      msg.textContent = 'You waved at ' + u.name + '.';
      msg.classList.add('ok');
    } catch (e) {
      const m = e && e.code === 107 && /larger than (\d+) bytes/.exec(e.message || '');
      msg.textContent = m ? 'Not sent: the greeting is too long (a wave may carry at most ' + m[1] + ' bytes). Shorten it.'
        : 'Not sent: ' + Plaza.describeError(e);
    }
  }
  $('greet-form').addEventListener('submit', (ev) => ev.preventDefault());

  // ---- the connection -----------------------------------------------------------
  const client = Plaza.start({ onSignOut: leave });

  const stream = client.newSubscription(STREAM);
  const pc = client.newMapClientsSubscription(PRESENCE);
  const state = client.newMapSubscription(STATE);
  for (const sub of [stream, pc, state]) {
    sub.on('error', (ctx) => { if (ctx && ctx.error) Plaza.showError(ctx.error); });
    sub.on('unsubscribed', (ctx) => { if (ctx && ctx.code >= 100) Plaza.showError({ code: ctx.code, message: ctx.reason }); });
  }

  pc.on('sync', (ctx) => {
    const first = !synced;
    entries.clear();
    for (const u of ctx.entries || []) entries.set(u.key, entryOf(u));
    synced = true;
    renderPeople(!first);
  });
  pc.on('update', (u) => {
    if (u.removed) entries.delete(u.key);
    else entries.set(u.key, entryOf(u));
    renderPeople(true);
  });

  state.on('sync', (ctx) => {
    const e = (ctx.entries || []).find((x) => x.key === 'light');
    light = e ? lightOf(e.data) : { on: false, by: '' };
    renderLight();
  });
  state.on('update', (u) => {
    if (u.key !== 'light') return;
    light = u.removed ? { on: false, by: '' } : lightOf(u.data);
    renderLight();
  });

  stream.on('subscribed', async (ctx) => {
    if (ctx.recovered) return;            // the missed waves come as publications
    try {
      const h = await stream.history({ limit: 50, reverse: true });
      $('feed').textContent = '';
      shown.clear();
      for (const p of h.publications.reverse()) addGreeting(p, false);
      $('feed-empty').hidden = $('feed').children.length > 0;
    } catch (e) {
      Plaza.showError('The greetings so far could not be loaded: ' + Plaza.describeError(e));
    }
  });
  stream.on('publication', (ctx) => addGreeting(ctx, true));

  // Signed out, the views are hidden but kept: subscribing again recovers
  // (only the changes meanwhile come), so the state must still be here.
  function enter() {
    document.body.classList.remove('out');
    $('signin-needed').hidden = true;
    for (const sub of [state, pc, stream]) if (sub.state === 'unsubscribed') sub.subscribe();
  }
  function leave() {
    for (const sub of [stream, pc, state]) sub.unsubscribe();
    document.body.classList.add('out');
  }
  client.on('connected', () => {
    Plaza.clockOffset(client).catch(() => {});
    if (Plaza.session) enter();
    else $('signin-needed').hidden = false;
  });

  renderLight();
  client.connect();

  window.app = {
    client,
    me: () => Plaza.userId(),
    light: () => ({ ...light }),
    regions: () => Array.from(new Set(Array.from(entries.values()).map((e) => e.region))).sort(),
    myTabs: () => Array.from(entries.values()).filter((e) => e.user === Plaza.userId()).length,
    users: () => Array.from(new Set(Array.from(entries.values()).map((e) => e.user))).sort(),
  };
}());
