// Auction: the lots of the persistent map auction:main (key = lot id, data =
// the lot), written only by the server's RPCs auction.open / auction.bid.
// Lot data: {title, start_price, increment, price, bids, leader,
// leader_name, ends_at, bid_at, opened_by, opened_by_name}; times are
// server Unix ms.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = Plaza.el;
  const CHANNEL = 'auction:main';
  const GOAL_MS = 300;
  const TITLE_MAX = 80;
  const PRICE_MAX = 1e12;
  const fmt = (n) => Number(n).toLocaleString('en-US');

  // ---- lots ------------------------------------------------------------------
  const lots = new Map();   // id -> { id, d (data), node, input, dirty }
  let synced = false;

  function minimum(d) { return d.bids > 0 ? d.price + d.increment : d.start_price; }
  function ended(d) { return Plaza.serverNow() >= d.ends_at; }
  function validLot(d) {
    return d && typeof d === 'object' && typeof d.title === 'string' && Number.isFinite(d.price) &&
      Number.isFinite(d.start_price) && Number.isFinite(d.increment) && Number.isFinite(d.ends_at);
  }

  function left(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    if (s >= 86400) return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const two = (x) => String(x).padStart(2, '0');
    return h ? h + ':' + two(m) + ':' + two(sec) : m + ':' + two(sec);
  }

  function build(lot) {
    const input = el('input', { class: 'amount', inputmode: 'numeric', autocomplete: 'off', 'aria-label': 'your bid' });
    input.addEventListener('input', () => { lot.dirty = true; });
    const form = el('form', { class: 'row bidform', novalidate: true },
      input, el('button', { class: 'bid', text: 'Bid' }));
    form.addEventListener('submit', (ev) => { ev.preventDefault(); bid(lot); });
    lot.input = input;
    lot.node = el('article', { class: 'lot', 'data-lot': lot.id },
      el('div', { class: 'head' }, el('h3', { class: 'title' }), el('span', { class: 'countdown' })),
      el('div', { class: 'pricebox' }, el('span', { class: 'price' }), el('span', { class: 'leader' })),
      el('p', { class: 'meta hint' }),
      form,
      el('p', { class: 'formmsg lotmsg', role: 'status' }));
  }

  function fill(lot) {
    const d = lot.d;
    const n = lot.node;
    const me = Plaza.userId();
    const isEnded = ended(d);
    n.dataset.price = String(d.price);
    n.dataset.bids = String(d.bids || 0);
    n.dataset.ended = isEnded ? 'true' : 'false';
    n.classList.toggle('ended', isEnded);
    n.classList.toggle('leading', d.leader === me);
    n.querySelector('.title').textContent = d.title;
    n.querySelector('.price').textContent = fmt(d.price);
    const leader = n.querySelector('.leader');
    if (d.bids > 0) {
      leader.textContent = (isEnded ? 'won by ' : 'leader: ') + (d.leader === me ? 'you' : (d.leader_name || d.leader || 'someone')) +
        ' · ' + d.bids + (d.bids === 1 ? ' bid' : ' bids');
    } else leader.textContent = isEnded ? 'no bids' : 'no bids yet: starts at ' + fmt(d.start_price);
    n.querySelector('.meta').textContent = 'step ' + fmt(d.increment) +
      (d.opened_by_name ? ' · opened by ' + d.opened_by_name : '');
    const min = minimum(d);
    if (!lot.dirty && document.activeElement !== lot.input) lot.input.value = String(min);
    lot.input.placeholder = 'at least ' + fmt(min);
    lot.input.disabled = isEnded;
    const btn = n.querySelector('button.bid');
    btn.disabled = isEnded;
    btn.textContent = d.leader === me && !isEnded ? 'You lead' : 'Bid';
    tickOne(lot);
  }

  function tickOne(lot) {
    const d = lot.d;
    const ms = d.ends_at - Plaza.serverNow();
    const c = lot.node.querySelector('.countdown');
    const isEnded = ms <= 0;
    c.textContent = isEnded ? 'ended' : 'ends in ' + left(ms);
    c.classList.toggle('soon', !isEnded && ms < 10000);
    if (isEnded !== (lot.node.dataset.ended === 'true')) fill(lot);
  }

  function order() {
    const now = Plaza.serverNow();
    const list = Array.from(lots.values());
    const open = list.filter((l) => l.d.ends_at > now).sort((a, b) => a.d.ends_at - b.d.ends_at);
    const done = list.filter((l) => l.d.ends_at <= now).sort((a, b) => b.d.ends_at - a.d.ends_at).slice(0, 20);
    const box = $('lots');
    const want = open.concat(done).map((l) => l.node);
    const have = Array.from(box.children);
    if (want.length !== have.length || want.some((n, i) => n !== have[i])) {
      const focused = document.activeElement;
      box.textContent = '';
      for (const n of want) box.append(n);
      if (focused && box.contains(focused)) focused.focus();
    }
    $('count').textContent = String(open.length);
    $('empty').hidden = !(synced && list.length === 0);
  }

  function upsert(id, d, live) {
    if (!validLot(d)) return;
    let lot = lots.get(id);
    const before = lot ? lot.d : null;
    if (!lot) { lot = { id, d, dirty: false }; build(lot); lots.set(id, lot); }
    lot.d = d;
    fill(lot);
    if (live) {
      if (!before || d.bids !== before.bids) { lot.node.classList.remove('flash'); void lot.node.offsetWidth; lot.node.classList.add('flash'); }
      if (before && d.ends_at > before.ends_at && d.bids > before.bids) {
        const c = lot.node.querySelector('.countdown');
        c.classList.remove('extended'); void c.offsetWidth; c.classList.add('extended');
      }
      if (before && d.bids > (before.bids || 0) && Number.isFinite(d.bid_at)) latency(Plaza.serverNow() - d.bid_at);
    }
  }

  setInterval(() => { for (const lot of lots.values()) tickOne(lot); order(); }, 250);

  // ---- latency ----------------------------------------------------------------
  const samples = [];
  let seen = 0;
  function pct(sorted, p) { return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))]; }
  function latency(ms) {
    ms = Math.max(0, Math.round(ms));
    seen++;
    samples.push(ms);
    if (samples.length > 1000) samples.shift();
    const s = samples.slice().sort((a, b) => a - b);
    const p50 = pct(s, 50), p99 = pct(s, 99);
    $('lat-n').textContent = String(seen);
    $('lat-last').textContent = ms + ' ms';
    $('lat-p50').textContent = p50 + ' ms';
    $('lat-p99').textContent = p99 + ' ms';
    const v = $('lat-verdict');
    v.textContent = p99 <= GOAL_MS ? 'Within the 300 ms goal.' : 'p99 is above the 300 ms goal.';
    v.className = 'verdict ' + (p99 <= GOAL_MS ? 'good' : 'bad');
  }

  // ---- bidding ------------------------------------------------------------------
  // The server's reason: errors come as "bad request (amount: at least 130)".
  function why(e) {
    const msg = String((e && e.message) || '');
    const m = /\((.*)\)$/.exec(msg);
    return m ? m[1] : msg;
  }

  function bidError(e) {
    const msg = why(e);
    if (e && e.code === 107) {
      let m;
      if ((m = /^amount: at least (\d+)/.exec(msg))) return 'Too low: the next bid must be at least ' + fmt(m[1]) + '.';
      if ((m = /^amount: you lead already at (\d+)/.exec(msg))) return 'You lead already (at ' + fmt(m[1]) + '): wait until someone outbids you.';
      if (/^lot: ended/.test(msg)) return 'Too late: this lot has ended.';
      if (/^lot: no such lot/.test(msg)) return 'This lot does not exist (any more).';
    }
    if (e && e.code === 103) return 'Sign in first (at the top) to bid.';
    if (e && e.code === 111) return 'Too fast: one bid per 100 ms. ' + Plaza.describeError(e);
    return 'Not taken: ' + Plaza.describeError(e);
  }

  async function bid(lot) {
    const msg = lot.node.querySelector('.lotmsg');
    msg.textContent = '';
    msg.classList.remove('ok');
    if (!Plaza.session) { msg.textContent = 'Sign in first (at the top) to bid.'; return; }
    const raw = lot.input.value.trim().replace(/[ ,_]/g, '');
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > PRICE_MAX) {
      msg.textContent = 'Type a whole number of at least ' + fmt(minimum(lot.d)) + '.';
      return;
    }
    const amount = Number(raw);
    const btn = lot.node.querySelector('button.bid');
    btn.disabled = true;
    try {
      const r = await client.rpc('auction.bid', { channel: CHANNEL, lot: lot.id, amount });
      const res = (r && r.data) || {};
      lot.dirty = false;
      msg.textContent = 'Your bid of ' + fmt(res.price || amount) + ' leads' + (res.extended ? ' (the lot was extended by 10 s).' : '.');
      msg.classList.add('ok');
    } catch (e) {
      msg.textContent = bidError(e);
    } finally {
      fill(lot);
    }
  }

  // ---- opening a lot --------------------------------------------------------------
  function intField(id, label) {
    const v = $(id).value.trim().replace(/[ ,_]/g, '');
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > PRICE_MAX) throw new Error(label + ': a whole number, at least 1.');
    return Number(v);
  }
  $('open-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const msg = $('open-msg');
    msg.textContent = '';
    msg.classList.remove('ok');
    if (!Plaza.session) { msg.textContent = 'Sign in first (at the top) to open a lot.'; return; }
    let req;
    try {
      const title = $('open-title').value.trim();
      if (!title) throw new Error('Say what is for sale (a title).');
      if (Array.from(title).length > TITLE_MAX) throw new Error('The title is too long: at most ' + TITLE_MAX + ' characters.');
      req = {
        channel: CHANNEL, title,
        start_price: intField('open-start', 'Start price'),
        increment: intField('open-increment', 'Step'),
        duration_ms: Number($('open-duration').value),
      };
    } catch (e) {
      msg.textContent = e.message;
      return;
    }
    $('open-go').disabled = true;
    try {
      const r = await client.rpc('auction.open', req);
      const id = r && r.data && r.data.lot;
      msg.textContent = 'Opened: "' + req.title + '".';
      msg.classList.add('ok');
      $('open-title').value = '';
      if (id) {
        const show = () => {
          const lot = lots.get(id);
          if (!lot) return false;
          lot.node.scrollIntoView({ block: 'nearest' });
          return true;
        };
        if (!show()) setTimeout(show, 300);
      }
    } catch (e) {
      msg.textContent = 'Not opened: ' + Plaza.describeError(e);
    } finally {
      $('open-go').disabled = false;
    }
  });

  // ---- the connection ------------------------------------------------------------------
  const client = Plaza.start({ onSignOut: leave });

  const sub = client.newMapSubscription(CHANNEL);
  sub.on('error', (ctx) => { if (ctx && ctx.error) Plaza.showError(ctx.error); });
  sub.on('unsubscribed', (ctx) => { if (ctx && ctx.code >= 100) Plaza.showError({ code: ctx.code, message: ctx.reason }); });
  sub.on('sync', (ctx) => {
    const keep = new Set();
    for (const e of ctx.entries || []) { keep.add(e.key); upsert(e.key, e.data, false); }
    for (const [id, lot] of lots) if (!keep.has(id)) { lot.node.remove(); lots.delete(id); }
    synced = true;
    order();
  });
  sub.on('update', (u) => {
    if (u.removed) {
      const lot = lots.get(u.key);
      if (lot) { lot.node.remove(); lots.delete(u.key); }
    } else upsert(u.key, u.data, true);
    order();
  });

  // Signed out, the lots are hidden but kept: subscribing again recovers
  // (only the changes meanwhile come), so the state must still be here.
  function enter() {
    document.body.classList.remove('out');
    $('signin-needed').hidden = true;
    if (sub.state === 'unsubscribed') sub.subscribe();
  }
  function leave() {
    sub.unsubscribe();
    document.body.classList.add('out');
  }
  client.on('connected', () => {
    Plaza.clockOffset(client).then((o) => {
      $('offset').textContent = (o >= 0 ? '+' : '') + o + ' ms';
      for (const lot of lots.values()) fill(lot);
    }, () => {});
    if (Plaza.session) enter();
    else { $('signin-needed').hidden = false; $('empty').hidden = true; }
  });

  client.connect();

  window.app = {
    client,
    me: () => Plaza.userId(),
    lots: () => Array.from(lots.values()).map((l) => ({ id: l.id, ...l.d })),
    latency: () => {
      const s = samples.slice().sort((a, b) => a - b);
      return { n: seen, p50: s.length ? pct(s, 50) : null, p99: s.length ? pct(s, 99) : null };
    },
    offset: () => Plaza.offset,
  };
}());
