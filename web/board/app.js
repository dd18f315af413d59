// The board (r/place) on Plaza: snapshot over HTTP, then the channel's
// pixel batches from the snapshot's position; board.put RPC to paint.
'use strict';

(function () {
  const CHANNEL = new URLSearchParams(location.search).get('channel') || 'board:main';
  const DEFAULT_COOLDOWN_MS = 1000;   // deploy/demo.json's board.cooldown_ms (the answer does not say)
  const $ = (id) => document.getElementById(id);

  const state = {
    width: 0, height: 0, bits: 4, palette: [], px: null,   // px: one colour index per pixel
    offset: 0, epoch: '',
    loads: 0, batches: 0, seen: 0, recoveries: 0,
    color: Number(localStorage.getItem('plaza.board.color') || 5) || 0,
    cooldownUntil: 0, cooldownMs: DEFAULT_COOLDOWN_MS,
    placing: false,
    view: { scale: 1, tx: 0, ty: 0, fitted: false },
  };

  // ---- connection -------------------------------------------------------
  const client = Plaza.start();
  Plaza.onSession(showYou);
  client.on('connected', () => { showYou(); });

  function showYou() {
    const s = Plaza.session;
    $('you').textContent = s ? 'You paint as ' + s.name + '. Pick a colour, then click or tap a square.'
      : 'Sign in (name and colour, at the top) to paint; anyone can watch.';
  }

  // ---- pixels -------------------------------------------------------------
  const off = document.createElement('canvas');   // 1 px per board pixel
  let offCtx = null, image = null, rgb = [];

  function hexToRgb(h) {
    const n = parseInt(h.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function setPixel(x, y, c) {
    if (x < 0 || y < 0 || x >= state.width || y >= state.height) return;
    state.px[y * state.width + x] = c;
    const i = (y * state.width + x) * 4;
    const col = rgb[c] || [0, 0, 0];
    image.data[i] = col[0]; image.data[i + 1] = col[1]; image.data[i + 2] = col[2]; image.data[i + 3] = 255;
  }

  async function fetchSnapshot() {
    const res = await fetch('/boards/' + encodeURIComponent(CHANNEL), { cache: 'no-store' });
    if (!res.ok) {
      let msg = 'HTTP ' + res.status;
      try { const b = await res.json(); if (b.error) msg = b.error.message; } catch (e) { /* not JSON */ }
      throw { code: 'snapshot', message: 'the board could not be loaded (' + msg + ')' };
    }
    const h = (k) => res.headers.get(k);
    const snap = {
      bytes: new Uint8Array(await res.arrayBuffer()),
      width: Number(h('X-Board-Width')), height: Number(h('X-Board-Height')), bits: Number(h('X-Board-Bits')),
      offset: Number(h('X-Board-Offset')), epoch: h('X-Board-Epoch') || '',
      palette: (h('X-Board-Palette') || '').split(',').filter(Boolean),
    };
    return snap;
  }

  function applySnapshot(s) {
    const sized = s.width !== state.width || s.height !== state.height;
    Object.assign(state, { width: s.width, height: s.height, bits: s.bits, offset: s.offset, epoch: s.epoch });
    if (s.palette.join() !== state.palette.join()) { state.palette = s.palette; rgb = s.palette.map(hexToRgb); buildPalette(); }
    if (sized || !image) {
      off.width = s.width; off.height = s.height;
      offCtx = off.getContext('2d');
      image = offCtx.createImageData(s.width, s.height);
      state.px = new Uint8Array(s.width * s.height);
      state.view.fitted = false;
    }
    const row = Math.ceil(s.width * s.bits / 8);
    for (let y = 0; y < s.height; y++) {
      for (let x = 0; x < s.width; x++) {
        let c;
        if (s.bits === 8) c = s.bytes[y * row + x];
        else { const v = s.bytes[y * row + (x >> 1)]; c = x & 1 ? v & 15 : v >> 4; }
        setPixel(x, y, c);
      }
    }
    state.loads++;
    $('size').textContent = s.width + ' × ' + s.height + ', ' + s.palette.length + ' colours';
    $('loads').textContent = String(state.loads);
    showPosition();
    dirty = true;
    if (!state.view.fitted) fit();
  }

  function showPosition() {
    $('position').textContent = state.offset + (state.epoch ? ' (epoch ' + state.epoch + ')' : '');
  }

  // ---- the subscription: from the snapshot's position ------------------
  let sub = null, following = 0, lastLoad = 0;

  async function loadAndFollow() {
    const gen = ++following;
    if (sub) { sub.removeAllListeners(); client.removeSubscription(sub); sub = null; }
    // a snapshot older than the stream keeps (a very busy board) would loop: pace the reloads
    const since = Date.now() - lastLoad;
    if (since < 2000) await new Promise((r) => setTimeout(r, 2000 - since));
    if (gen !== following) return;
    lastLoad = Date.now();
    let snap;
    for (let attempt = 0; ; attempt++) {
      try { snap = await fetchSnapshot(); break; } catch (e) {
        Plaza.showError(e);
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
        if (gen !== following) return;
      }
    }
    if (gen !== following) return;
    applySnapshot(snap);
    const s = client.newSubscription(CHANNEL, { since: { offset: snap.offset, epoch: snap.epoch } });
    sub = s;
    s.on('publication', (ctx) => {
      const p = ctx.data && ctx.data.p;
      if (!Array.isArray(p)) return;
      for (let i = 0; i + 2 < p.length; i += 3) setPixel(p[i], p[i + 1], p[i + 2]);
      state.batches++;
      state.seen += Math.floor(p.length / 3);
      if (ctx.offset) state.offset = ctx.offset;
      $('seen').textContent = String(state.seen);
      showPosition();
      dirty = true;
    });
    s.on('subscribed', (ctx) => {
      if (ctx.streamPosition) { state.epoch = ctx.streamPosition.epoch || state.epoch; }
      if (ctx.wasRecovering && !ctx.recovered) {
        // too far behind (or the server restarted): a fresh snapshot, and follow from it
        state.recoveries++;
        Plaza.toast('The board was reloaded: too much happened while you were away.');
        loadAndFollow();
      }
    });
    s.on('error', (ctx) => Plaza.showError(ctx.error));
    s.on('unsubscribed', (ctx) => { if (ctx.code >= 100) Plaza.showError('Stopped following the board: ' + ctx.reason); });
    s.subscribe();
  }

  // ---- drawing --------------------------------------------------------------
  const canvas = $('board');
  const ctx2d = canvas.getContext('2d');
  let dirty = true, hover = null;

  function resize() {
    const r = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; dirty = true; }
    if (!state.view.fitted) fit();
  }

  function fit() {
    const r = canvas.getBoundingClientRect();
    if (!state.width || !r.width) return;
    const scale = Math.min(r.width / state.width, r.height / state.height);
    state.view.scale = scale;
    state.view.tx = (r.width - state.width * scale) / 2;
    state.view.ty = (r.height - state.height * scale) / 2;
    state.view.fitted = true;
    dirty = true;
  }

  function minScale() {
    const r = canvas.getBoundingClientRect();
    return state.width ? Math.min(r.width / state.width, r.height / state.height) * 0.5 : 0.1;
  }

  function zoomAt(factor, cx, cy) {
    const v = state.view;
    const s = Math.max(minScale(), Math.min(48, v.scale * factor));
    const k = s / v.scale;
    v.tx = cx - (cx - v.tx) * k;
    v.ty = cy - (cy - v.ty) * k;
    v.scale = s;
    dirty = true;
  }

  function draw() {
    if (dirty && image) {
      dirty = false;
      offCtx.putImageData(image, 0, 0);
      const dpr = window.devicePixelRatio || 1, v = state.view;
      ctx2d.setTransform(1, 0, 0, 1, 0, 0);
      ctx2d.fillStyle = '#d9dce5';
      ctx2d.fillRect(0, 0, canvas.width, canvas.height);
      ctx2d.imageSmoothingEnabled = false;
      ctx2d.setTransform(dpr * v.scale, 0, 0, dpr * v.scale, dpr * v.tx, dpr * v.ty);
      ctx2d.drawImage(off, 0, 0);
      ctx2d.lineWidth = 1 / v.scale;
      ctx2d.strokeStyle = '#9aa1b2';
      ctx2d.strokeRect(0, 0, state.width, state.height);
      if (hover) {
        ctx2d.lineWidth = Math.max(1 / v.scale, 0.08);
        ctx2d.strokeStyle = '#000';
        ctx2d.strokeRect(hover.x, hover.y, 1, 1);
        if (v.scale >= 6) {
          ctx2d.fillStyle = state.palette[state.color] || '#000';
          ctx2d.globalAlpha = 0.6;
          ctx2d.fillRect(hover.x + 0.2, hover.y + 0.2, 0.6, 0.6);
          ctx2d.globalAlpha = 1;
        }
      }
    }
    drawCooldown();
    requestAnimationFrame(draw);
  }

  function toBoard(clientX, clientY) {
    const r = canvas.getBoundingClientRect(), v = state.view;
    return { x: Math.floor((clientX - r.left - v.tx) / v.scale), y: Math.floor((clientY - r.top - v.ty) / v.scale) };
  }
  function inBoard(p) { return p.x >= 0 && p.y >= 0 && p.x < state.width && p.y < state.height; }

  // ---- pointer input: drag to pan, pinch/wheel to zoom, click/tap to paint
  const pointers = new Map();
  let gesture = null;   // {moved, pinch, startX, startY, lastDist, lastMid}

  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) gesture = { moved: false, pinch: false, startX: e.clientX, startY: e.clientY };
    else if (gesture) { gesture.pinch = true; gesture.moved = true; gesture.lastDist = null; }
  });
  canvas.addEventListener('pointermove', (e) => {
    const r = canvas.getBoundingClientRect();
    const p = toBoard(e.clientX, e.clientY);
    const h = inBoard(p) ? p : null;
    if ((h && (!hover || h.x !== hover.x || h.y !== hover.y)) || (!h && hover)) { hover = h; dirty = true; }
    $('coords').textContent = h ? '(' + h.x + ', ' + h.y + ')' : '\u00a0';
    const prev = pointers.get(e.pointerId);
    if (!prev || !gesture) return;
    if (pointers.size >= 2) {
      pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      const [a, b] = [...pointers.values()];
      const dist = Math.hypot(a.x - b.x, a.y - b.y);
      const mid = { x: (a.x + b.x) / 2 - r.left, y: (a.y + b.y) / 2 - r.top };
      if (gesture.lastDist) {
        zoomAt(dist / gesture.lastDist, mid.x, mid.y);
        state.view.tx += mid.x - gesture.lastMid.x;
        state.view.ty += mid.y - gesture.lastMid.y;
      }
      gesture.lastDist = dist;
      gesture.lastMid = mid;
      return;
    }
    if (!gesture.moved && Math.hypot(e.clientX - gesture.startX, e.clientY - gesture.startY) > 6) {
      gesture.moved = true;
      canvas.classList.add('panning');
    }
    if (gesture.moved && !gesture.pinch) {
      state.view.tx += e.clientX - prev.x;
      state.view.ty += e.clientY - prev.y;
      dirty = true;
    }
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
  });
  function pointerEnd(e, cancelled) {
    if (!pointers.has(e.pointerId)) return;
    pointers.delete(e.pointerId);
    if (pointers.size > 0) { if (gesture) gesture.lastDist = null; return; }
    canvas.classList.remove('panning');
    const g = gesture;
    gesture = null;
    if (!cancelled && g && !g.moved && !g.pinch) {
      const p = toBoard(e.clientX, e.clientY);
      if (inBoard(p)) place(p.x, p.y);
    }
  }
  canvas.addEventListener('pointerup', (e) => pointerEnd(e, false));
  canvas.addEventListener('pointercancel', (e) => pointerEnd(e, true));
  canvas.addEventListener('pointerleave', () => { if (hover) { hover = null; dirty = true; } });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  function zoomCenter(f) { const r = canvas.getBoundingClientRect(); zoomAt(f, r.width / 2, r.height / 2); }
  $('zoom-in').addEventListener('click', () => zoomCenter(1.6));
  $('zoom-out').addEventListener('click', () => zoomCenter(1 / 1.6));
  $('zoom-fit').addEventListener('click', fit);
  window.addEventListener('resize', resize);

  // ---- palette --------------------------------------------------------------
  function buildPalette() {
    const box = $('palette');
    box.textContent = '';
    if (state.color >= state.palette.length) state.color = 0;
    state.palette.forEach((hex, i) => {
      const b = Plaza.el('button', {
        type: 'button', role: 'radio', 'data-color': i, title: 'colour ' + i + ' ' + hex,
        'aria-label': 'colour ' + i + ' ' + hex, 'aria-checked': String(i === state.color),
        style: { background: hex },
      });
      b.addEventListener('click', () => selectColor(i));
      box.append(b);
    });
  }
  function selectColor(i) {
    state.color = i;
    localStorage.setItem('plaza.board.color', String(i));
    for (const b of $('palette').children) b.setAttribute('aria-checked', String(Number(b.dataset.color) === i));
    dirty = true;
  }

  // ---- painting -------------------------------------------------------------
  function setMsg(text, ok) {
    const m = $('place-msg');
    m.textContent = text;
    m.classList.toggle('ok', !!ok);
  }

  function startCooldown(ms) {
    state.cooldownMs = ms;
    state.cooldownUntil = Date.now() + ms;
  }

  function drawCooldown() {
    const left = Math.max(0, state.cooldownUntil - Date.now());
    const el = $('cooldown');
    const text = left > 0 ? 'wait ' + (left / 1000).toFixed(1) + ' s' : 'ready';
    if ($('cooldown-text').textContent !== text) $('cooldown-text').textContent = text;
    el.dataset.state = left > 0 ? 'wait' : 'ready';
    $('cooldown-bar').style.width = left > 0 ? (100 * left / state.cooldownMs).toFixed(1) + '%' : '0';
  }

  async function place(x, y, color) {
    const c = color === undefined ? state.color : color;
    if (!Plaza.session) {
      const t = 'Sign in first (name and colour, at the top) to paint. Anyone can watch.';
      setMsg(t);
      Plaza.showError(t);
      return { ok: false, code: 103, message: t };
    }
    const left = state.cooldownUntil - Date.now();
    if (left > 0) {
      const t = 'Too many requests: wait ' + (left / 1000).toFixed(1) + ' s (cooldown).';
      setMsg(t);
      return { ok: false, code: 111, message: t };
    }
    setMsg('painting (' + x + ', ' + y + ')…', true);
    try {
      const r = await client.rpc('board.put', { channel: CHANNEL, x, y, color: c });
      const d = (r && r.data) || {};
      startCooldown(Number(d.cooldown_ms || d.retry_after) || DEFAULT_COOLDOWN_MS);
      setMsg('painted (' + x + ', ' + y + ')', true);
      return { ok: true, offset: d.offset };
    } catch (e) {
      if (e && e.code === 111) {
        const ms = Plaza.cooldownMs(e.message);
        startCooldown(ms === null ? DEFAULT_COOLDOWN_MS : ms);
      }
      const t = Plaza.describeError(e);
      setMsg(t);
      Plaza.showError(t);
      return { ok: false, code: e && e.code, message: e && e.message, text: t };
    }
  }

  // ---- start -------------------------------------------------------------
  resize();
  requestAnimationFrame(draw);
  loadAndFollow();
  client.connect();

  // For tests and the curious: state getters and a way to click a pixel.
  window.app = {
    channel: CHANNEL,
    client,
    get state() { return state; },
    get subscribed() { return !!sub && sub.state === 'subscribed'; },
    pixel: (x, y) => (state.px ? state.px[y * state.width + x] : undefined),
    // client coordinates of the centre of pixel (x, y) as drawn now
    screenPoint(x, y) {
      const r = canvas.getBoundingClientRect(), v = state.view;
      return { x: r.left + v.tx + (x + 0.5) * v.scale, y: r.top + v.ty + (y + 0.5) * v.scale };
    },
    place, selectColor, zoomAt, fit, reload: loadAndFollow,
  };
}());
