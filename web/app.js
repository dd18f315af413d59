// Demo page: server health and metrics, and a WebSocket to /connection/websocket.
'use strict';

const SHOWN = {
  'plaza_connections{state="websocket"}': 'WebSocket connections',
  'plaza_connections{state="http"}': 'HTTP connections',
  'plaza_connections_accepted_total': 'Connections accepted',
  'plaza_ws_messages_received_total': 'Messages received',
  'plaza_ws_frames_sent_total': 'Frames sent',
  'plaza_bytes_received_total': 'Bytes received',
  'plaza_bytes_sent_total': 'Bytes sent',
  'plaza_loop_lag_seconds': 'Loop lag (s)',
};

async function refresh() {
  try {
    const health = await fetch('/healthz', { cache: 'no-store' });
    document.getElementById('health').textContent = health.ok ? 'ok' : 'HTTP ' + health.status;
    const text = await (await fetch('/metrics', { cache: 'no-store' })).text();
    const rows = [];
    for (const line of text.split('\n')) {
      const i = line.lastIndexOf(' ');
      const name = line.slice(0, i);
      if (SHOWN[name]) rows.push(`<tr><td>${SHOWN[name]}</td><td>${line.slice(i + 1)}</td></tr>`);
    }
    document.querySelector('#stats tbody').innerHTML = rows.join('');
  } catch (e) {
    document.getElementById('health').textContent = 'unreachable';
  }
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = text;
  const ol = document.getElementById('log');
  ol.prepend(li);
  while (ol.children.length > 50) ol.lastChild.remove();
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/connection/websocket`);
  const status = document.getElementById('ws-status');
  ws.onopen = () => { status.textContent = 'connected'; };
  ws.onmessage = (e) => log('← ' + e.data);
  ws.onclose = (e) => {
    status.textContent = `closed (${e.code}${e.reason ? ' ' + e.reason : ''}), retrying`;
    setTimeout(connect, 2000);
  };
  document.getElementById('send').onsubmit = (e) => {
    e.preventDefault();
    const text = document.getElementById('msg').value;
    if (ws.readyState === WebSocket.OPEN) { ws.send(text); log('→ ' + text); }
  };
}

refresh();
setInterval(refresh, 1000);
connect();
