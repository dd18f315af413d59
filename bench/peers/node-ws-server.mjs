// node-ws-server.mjs: the Node.js peer of the benchmark, a broadcast server
// on the npm `ws` package written the way a typical user writes one.
//
//   node bench/peers/node-ws-server.mjs [PORT]     (0 or none: a free port)
//
// WebSocket clients connect on /ws and send {"sub":"<channel>"}; the server
// answers {"subscribed":"<channel>"}. An HTTP POST /pub/<channel> sends its
// body to every socket of that channel with ws.send, and answers
// {"subscribers":N}. Prints "node-ws listening on 127.0.0.1:PORT".
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.argv[2] || process.env.PORT || 0);
const channels = new Map(); // channel name -> Set of sockets

const server = http.createServer((req, res) => {
  const m = req.method === 'POST' && /^\/pub\/(.+)$/.exec(req.url);
  if (!m) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const sockets = channels.get(m[1]);
    if (sockets) {
      for (const ws of sockets) {
        if (ws.readyState === WebSocket.OPEN) ws.send(body);
      }
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ subscribers: sockets ? sockets.size : 0 }));
  });
});
server.keepAliveTimeout = 60000;

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  const mine = new Set();
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof msg.sub !== 'string') return;
    let sockets = channels.get(msg.sub);
    if (!sockets) channels.set(msg.sub, (sockets = new Set()));
    sockets.add(ws);
    mine.add(msg.sub);
    ws.send(JSON.stringify({ subscribed: msg.sub }));
  });
  ws.on('close', () => {
    for (const name of mine) {
      const sockets = channels.get(name);
      sockets.delete(ws);
      if (sockets.size === 0) channels.delete(name);
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`node-ws listening on 127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
