// Demo page: a lobby on channel demo:lobby with the unmodified centrifuge
// client (served by Plaza at /vendor/centrifuge.js), plus live server metrics.
'use strict';

const CHANNEL = 'demo:lobby';
const $ = (id) => document.getElementById(id);
const proto = location.protocol === 'https:' ? 'wss' : 'ws';
const centrifuge = new Centrifuge(`${proto}://${location.host}/connection/websocket`);
const sub = centrifuge.newSubscription(CHANNEL, { joinLeave: true });
const seen = new Set();   // offsets shown, so a recovered message is never shown twice

function show(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  const ol = $('messages');
  ol.append(li);
  while (ol.children.length > 100) ol.firstChild.remove();
  ol.scrollTop = ol.scrollHeight;
}

function showPublication(p) {
  if (p.offset && seen.has(p.offset)) return;
  if (p.offset) seen.add(p.offset);
  const d = p.data || {};
  show(`${d.name || 'someone'}: ${d.text ?? JSON.stringify(d)}`, 'pub');
}

async function refreshPresence() {
  try {
    const res = await sub.presence();
    const users = new Map();
    for (const info of Object.values(res.clients)) {
      const name = info.user || 'anonymous ' + info.client.slice(0, 4);
      users.set(name, (users.get(name) || 0) + 1);
    }
    $('presence').innerHTML = '';
    for (const [name, tabs] of users) {
      const li = document.createElement('li');
      li.textContent = tabs > 1 ? `${name} (${tabs} tabs)` : name;
      $('presence').append(li);
    }
    const stats = await sub.presenceStats();
    $('counts').textContent = `${stats.numUsers} users, ${stats.numClients} connections`;
  } catch (e) { /* not subscribed yet */ }
}

centrifuge.on('connecting', (ctx) => { $('status').textContent = `connecting (${ctx.reason})`; });
centrifuge.on('connected', () => { $('status').textContent = 'connected'; });
centrifuge.on('disconnected', (ctx) => { $('status').textContent = `disconnected (${ctx.reason})`; });

sub.on('subscribed', async (ctx) => {
  document.body.dataset.subscribed = 'true';
  if (ctx.wasRecovering) {
    show(ctx.recovered ? 'reconnected: nothing missed' : 'reconnected: some messages were lost', 'note');
  } else {
    const h = await sub.history({ limit: 20, reverse: true });
    h.publications.reverse().forEach(showPublication);
  }
  refreshPresence();
});
sub.on('publication', (ctx) => showPublication(ctx));
sub.on('join', (ctx) => { show(`${ctx.info.user || 'anonymous'} joined`, 'note'); refreshPresence(); });
sub.on('leave', (ctx) => { show(`${ctx.info.user || 'anonymous'} left`, 'note'); refreshPresence(); });

$('send').onsubmit = async (e) => {
  e.preventDefault();
  const text = $('msg').value.trim();
  if (!text) return;
  $('msg').value = '';
  try {
    await sub.publish({ name: $('name').value || 'anonymous', text });
  } catch (err) {
    show(`not sent: ${err.message}`, 'note');
  }
};

const SHOWN = {
  'plaza_clients': 'Clients',
  'plaza_channels': 'Channels',
  'plaza_subscriptions': 'Subscriptions',
  'plaza_publications_total': 'Publications',
  'plaza_pushes_total': 'Pushes delivered',
  'plaza_bytes_sent_total': 'Bytes sent',
  'plaza_loop_lag_seconds': 'Loop lag (s)',
};

async function refreshStats() {
  try {
    const text = await (await fetch('/metrics', { cache: 'no-store' })).text();
    const rows = [];
    for (const line of text.split('\n')) {
      const i = line.lastIndexOf(' ');
      const name = line.slice(0, i);
      if (SHOWN[name]) rows.push(`<tr><td>${SHOWN[name]}</td><td>${line.slice(i + 1)}</td></tr>`);
    }
    $('stats').querySelector('tbody').innerHTML = rows.join('');
  } catch (e) { /* server restarting */ }
}

sub.subscribe();
centrifuge.connect();
refreshStats();
setInterval(refreshStats, 1000);
