// End-to-end tests of the command line: version, keys, checkconfig, the
// configuration sources (file, PLAZA_* environment, flags) and start-up
// failures of `plaza serve`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { startPlaza, plazaBin, repoRoot } from './lib/server.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'plaza-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name, text) {
  const p = path.join(dir, name);
  writeFileSync(p, typeof text === 'string' ? text : JSON.stringify(text, null, 2));
  return p;
}

// Runs the binary to completion (killed after timeout ms) with a clean
// PLAZA_* environment plus env.
function plaza(args, { env = {}, timeout = 5000 } = {}) {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith('PLAZA_')) delete e[k];
  e.PLAZA_STORE_PATH = '';              // memory only: the default would write ./data
  Object.assign(e, env);
  const r = spawnSync(plazaBin, args, { env: e, timeout, encoding: 'utf8' });
  if (r.error) throw r.error;
  assert.equal(r.signal, null, `plaza ${args.join(' ')} did not exit by itself:\n${r.stdout}${r.stderr}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const webRoot = path.join(repoRoot, 'web');

test('plaza version prints a version', () => {
  for (const arg of ['version', '--version']) {
    const r = plaza([arg]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^plaza \d+\.\d+\.\d+\S*\n$/);
    assert.equal(r.stderr, '');
  }
});

test('plaza keys lists every key of docs/configuration.md', () => {
  const r = plaza(['keys']);
  assert.equal(r.code, 0);
  const listed = r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
  const doc = readFileSync(path.join(repoRoot, 'docs/configuration.md'), 'utf8');
  const documented = [...doc.matchAll(/^\| `([a-z_.]+)` \| `PLAZA_/gm)].map((m) => m[1]);
  assert.ok(documented.length > 20);
  assert.deepEqual(listed, documented);
  for (const k of ['port', 'http.max_header_bytes', 'websocket.compression', 'tls.cert', 'tls.key', 'shutdown_timeout_ms'])
    assert.ok(listed.includes(k), k);
});

test('no command or an unknown command: usage and exit 2', () => {
  const none = plaza([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: plaza serve/);
  const bad = plaza(['frobnicate']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
});

test('checkconfig accepts good files', () => {
  const good = file('good.json', {
    host: '127.0.0.1', port: 8080, log_format: 'json',
    http: { max_headers: 32, read_timeout_ms: 5000 },
    websocket: { compression: true, allowed_origins: ['https://a.example'] },
  });
  const r = plaza(['checkconfig', good]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${good}: ok\n`);
  const example = path.join(repoRoot, 'deploy/plaza.example.json');
  assert.equal(plaza(['checkconfig', example]).code, 0);
  assert.equal(plaza(['checkconfig', file('empty.json', '{}')]).code, 0);
});

test('checkconfig rejects bad files, naming the key', () => {
  const cases = [
    ['unknown top-level key', { prot: 1 }, /unknown key "prot" \(did you mean "port"\?\)/],
    ['unknown nested key', { websocket: { compresion: true } }, /unknown key "websocket\.compresion" \(did you mean "websocket\.compression"\?\)/],
    ['unknown section', { nope: { a: 1 } }, /unknown key "nope"/],
    ['wrong type (string for int)', { port: 'abc' }, /key "port": expected an integer between 0 and 65535, got "abc"/],
    ['wrong type (float)', { port: 8000.5 }, /key "port": expected an integer/],
    ['wrong type (bool)', { websocket: { compression: 'yes' } }, /key "websocket\.compression": expected true or false/],
    ['out of range', { port: 70000 }, /key "port": expected an integer between 0 and 65535, got 70000/],
    ['out of range (min)', { http: { max_header_bytes: 10 } }, /key "http\.max_header_bytes": expected an integer >= 256, got 10/],
    ['bad enum', { log_level: 'loud' }, /key "log_level": expected one of debug, info, warn, error/],
    ['dotted name', { 'http.max_headers': 3 }, /key "http\.max_headers": write sections as nested objects/],
    ['section not an object', { http: 5 }, /key "http": expected an object/],
    ['tls.cert without tls.key', { tls: { cert: '/x.pem' } }, /"tls\.cert" and "tls\.key" must be set together \("tls\.key" is empty\)/],
    ['not an object', [1, 2], /must be a JSON object/],
  ];
  for (const [what, json, re] of cases) {
    const p = file('bad.json', json);
    const r = plaza(['checkconfig', p]);
    assert.equal(r.code, 1, what);
    assert.match(r.stderr, re, what);
    // Per-key errors name the file too (the cross-key tls check does not).
    if (!what.startsWith('tls')) assert.ok(r.stderr.includes(p), `${what}: file name missing in ${r.stderr}`);
    assert.equal(r.stdout, '', what);
  }
});

test('checkconfig: invalid JSON reports the line', () => {
  const p = file('syntax.json', '{\n  "port": 8000,\n  "host": "x",\n}\n');
  const r = plaza(['checkconfig', p]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /invalid JSON at line 4, column \d+/);
  const dup = plaza(['checkconfig', file('dup.json', '{"port": 1,\n"port": 2}')]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /invalid JSON at line 2.*duplicate/);
  const missing = plaza(['checkconfig', path.join(dir, 'missing.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /missing\.json: No such file or directory/);
});

test('serve refuses a bad config file with exit 2 before listening', () => {
  const p = file('bad-serve.json', { websocket: { compresion: true } });
  const r = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--config', p]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /configuration error: .*unknown key "websocket\.compresion"/);
  assert.doesNotMatch(r.stderr + r.stdout, /listening/);
});

test('environment overrides the file, flags override the environment', async () => {
  // File says port 1; PLAZA_PORT=0 wins, so it starts on a free port.
  const cfg = file('port1.json', { port: 1, host: '127.0.0.1' });
  const srv = await startPlaza({ args: ['--config', cfg], env: { PLAZA_PORT: '0' } });
  try {
    assert.notEqual(srv.port, 1);
    assert.equal((await fetch(srv.url + '/healthz')).status, 200);
  } finally { assert.equal((await srv.stop()).code, 0); }

  // PLAZA_CONFIG names the file; env var from the file's key overridden.
  const cfg2 = file('limits.json', { http: { max_headers: 50 } });
  const srv2 = await startPlaza({ env: { PLAZA_CONFIG: cfg2, PLAZA_HTTP_MAX_HEADERS: '2' } });
  try {
    // Host + two more headers = 3 > 2: refused, so the env value is in force.
    const res = await fetch(srv2.url + '/healthz', { headers: { 'X-A': '1', 'X-B': '2' } }).catch((e) => e);
    assert.ok(res instanceof Error || res.status === 431, 'expected 431, got ' + res.status);
  } finally { assert.equal((await srv2.stop()).code, 0); }

  // The flag (--port 0 from startPlaza) beats PLAZA_PORT=1.
  const srv3 = await startPlaza({ env: { PLAZA_PORT: '1' } });
  try { assert.notEqual(srv3.port, 1); } finally { await srv3.stop(); }
});

test('unknown PLAZA_* variables are warnings naming them; a bad value is an error', async () => {
  const srv = await startPlaza({ env: { PLAZA_FOO: '1', PLAZA_PROT: '1' } });
  try {
    assert.match(srv.logs(), /WARN unknown environment variable PLAZA_FOO ignored\n/);
    assert.match(srv.logs(), /WARN unknown environment variable PLAZA_PROT ignored \(did you mean PLAZA_PORT\?\)/);
  } finally { assert.equal((await srv.stop()).code, 0); }
  const badval = plaza(['serve', '--host', '127.0.0.1', '--port', '0'], { env: { PLAZA_WORKERS: 'two' } });
  assert.equal(badval.code, 2);
  assert.match(badval.stderr, /PLAZA_WORKERS: key "workers": expected an integer between 0 and 256, got "two"/);
});

// What Kubernetes injects into a pod for a Service named "plaza" with port
// 8000 (enableServiceLinks defaults to true), except PLAZA_PORT itself.
const k8sEnv = {
  PLAZA_SERVICE_HOST: '10.0.0.1',
  PLAZA_SERVICE_PORT: '8000',
  PLAZA_PORT_8000_TCP: 'tcp://10.0.0.1:8000',
  PLAZA_PORT_8000_TCP_PROTO: 'tcp',
  PLAZA_PORT_8000_TCP_PORT: '8000',
  PLAZA_PORT_8000_TCP_ADDR: '10.0.0.1',
};
const k8sPort = { PLAZA_PORT: 'tcp://10.0.0.1:8000' };
const k8sPortError = 'PLAZA_PORT="tcp://10.0.0.1:8000" looks like a Kubernetes service link, not a port: ' +
  'name the Service something other than "plaza", or set enableServiceLinks: false in the pod spec, ' +
  'or set PLAZA_PORT in the container\'s env';

function assertLinkWarnings(out) {
  for (const name of Object.keys(k8sEnv))
    assert.ok(out.includes(`WARN unknown environment variable ${name} ignored (it looks like a Kubernetes service link)\n`),
      `${name} not warned about:\n${out}`);
}

test('Kubernetes service links: serve starts and warns; PLAZA_PORT=tcp://... is an error naming the cause', async () => {
  const srv = await startPlaza({ env: k8sEnv, noEcho: true });
  try {
    assertLinkWarnings(srv.logs());
    assert.equal((await fetch(srv.url + '/healthz')).status, 200);
  } finally { assert.equal((await srv.stop()).code, 0); }

  const r = plaza(['serve', '--host', '127.0.0.1', '--web-root', webRoot], { env: { ...k8sEnv, ...k8sPort } });
  assert.equal(r.code, 2);
  assert.ok(r.stderr.includes(`plaza: configuration error: ${k8sPortError}\n`), r.stderr);
  assert.doesNotMatch(r.stderr, /listening/);
});

test('checkconfig applies the PLAZA_* environment as serve does', () => {
  const good = file('env-good.json', { port: 8080 });
  const badval = plaza(['checkconfig', good], { env: { PLAZA_WORKERS: 'two' } });
  assert.equal(badval.code, 1);
  assert.match(badval.stderr, /PLAZA_WORKERS: key "workers": expected an integer between 0 and 256, got "two"/);
  assert.equal(badval.stdout, '');

  const link = plaza(['checkconfig', good], { env: { ...k8sEnv, ...k8sPort } });
  assert.equal(link.code, 1);
  assert.ok(link.stderr.includes(k8sPortError), link.stderr);

  // Cross-key checks see the environment too.
  const cross = plaza(['checkconfig', good], { env: { PLAZA_TLS_CERT: '/x.pem' } });
  assert.equal(cross.code, 1);
  assert.match(cross.stderr, /"tls\.cert" and "tls\.key" must be set together/);

  const warned = plaza(['checkconfig', good], { env: { ...k8sEnv, PLAZA_FOO: '1' } });
  assert.equal(warned.code, 0, warned.stderr);
  assert.equal(warned.stdout, `${good}: ok\n`);
  assertLinkWarnings(warned.stderr);
  assert.match(warned.stderr, /WARN unknown environment variable PLAZA_FOO ignored\n/);
});

test('api.insecure with api.key set: a warning that the key is ignored', async () => {
  const warning = /WARN keys "api\.insecure" and "api\.key" are both set: the API accepts every call without a key, and api\.key is ignored/;
  const srv = await startPlaza({ noEcho: true, config: { api: { key: 'k', insecure: true } } });
  try { assert.match(srv.logs(), warning); } finally { await srv.stop(); }
  const p = file('api-insecure.json', { api: { key: 'k', insecure: true } });
  const r = plaza(['checkconfig', p]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, warning);
  const keyOnly = plaza(['checkconfig', file('api-key.json', { api: { key: 'k' } })]);
  assert.equal(keyOnly.code, 0);
  assert.equal(keyOnly.stderr, '');
});

test('--set with a bad value or unknown key is an error naming the key', () => {
  const r = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--set', 'websocket.compression=maybe']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /key "websocket\.compression": expected a boolean .*got "maybe"/);
  const u = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--set', 'websocket.compresion=true']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown key "websocket\.compresion"/);
  const noeq = plaza(['serve', '--port', '0', '--set', 'port']);
  assert.equal(noeq.code, 2);
  assert.match(noeq.stderr, /--set expects KEY=VALUE/);
  const noval = plaza(['serve', '--port']);
  assert.equal(noval.code, 2);
  assert.match(noval.stderr, /--port needs a value/);
  const opt = plaza(['serve', '--bogus', 'x']);
  assert.equal(opt.code, 2);
  assert.match(opt.stderr, /unknown option "--bogus"/);
  const port = plaza(['serve', '--port', '65536']);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /key "port": expected an integer between 0 and 65535, got "65536"/);
});

test('tls.cert without tls.key is an error', () => {
  const r = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--set', `tls.cert=${path.join(dir, 'c.pem')}`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /keys "tls\.cert" and "tls\.key" must be set together \("tls\.key" is empty\)/);
  const k = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--set', `tls.key=${path.join(dir, 'k.pem')}`]);
  assert.equal(k.code, 2);
  assert.match(k.stderr, /\("tls\.cert" is empty\)/);
});

test('serve with a missing tls.cert file fails with a message', () => {
  const cert = path.join(dir, 'no-such-cert.pem');
  const r = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--web-root', webRoot,
    '--set', `tls.cert=${cert}`, '--set', `tls.key=${path.join(dir, 'no-such-key.pem')}`]);
  assert.equal(r.code, 1);
  assert.ok(r.stderr.includes(`tls.cert ${cert}`), r.stderr);
  assert.match(r.stderr, /No such file or directory/);
  assert.doesNotMatch(r.stderr, /listening/);
  // A cert file that is not PEM fails the same way.
  const junk = file('junk.pem', 'not a certificate\n');
  const j = plaza(['serve', '--host', '127.0.0.1', '--port', '0', '--web-root', webRoot,
    '--set', `tls.cert=${junk}`, '--set', `tls.key=${junk}`]);
  assert.equal(j.code, 1);
  assert.ok(j.stderr.includes(`tls.cert ${junk}`), j.stderr);
});

test('an occupied port makes serve exit non-zero naming the address', async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const { port } = blocker.address();
  try {
    const r = plaza(['serve', '--host', '127.0.0.1', '--port', String(port), '--web-root', webRoot]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`port ${port} is already in use on 127.0.0.1`), r.stderr);
    assert.doesNotMatch(r.stderr, /listening/);
    // reuse_port cannot share a port with a listener that did not ask for it.
    const shared = plaza(['serve', '--host', '127.0.0.1', '--port', String(port), '--web-root', webRoot,
      '--set', 'reuse_port=true']);
    assert.equal(shared.code, 1);
    assert.ok(shared.stderr.includes(`bind 127.0.0.1:${port}`), shared.stderr);
    assert.match(shared.stderr, /address already in use/i);
    assert.doesNotMatch(shared.stderr, /listening/);
  } finally {
    await new Promise((r) => blocker.close(r));
  }
  const bad = plaza(['serve', '--host', 'not-an-ip', '--port', '0', '--web-root', webRoot]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /host "not-an-ip" is not an IPv4 or IPv6 address/);
});

test('a second Plaza on the same port is refused unless reuse_port is set', async () => {
  const first = await startPlaza({ noEcho: true });
  const { port } = first;
  try {
    const args = ['serve', '--host', '127.0.0.1', '--port', String(port), '--web-root', webRoot];
    const r = plaza(args);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`port ${port} is already in use on 127.0.0.1 (another Plaza or another program); ` +
      'set reuse_port=true to share it on purpose'), r.stderr);
    assert.doesNotMatch(r.stderr, /listening/);
    const env = plaza(args, { env: { PLAZA_REUSE_PORT: 'false' } });
    assert.equal(env.code, 1);

    const second = await startPlaza({ noEcho: true, args: ['--port', String(port), '--set', 'reuse_port=true'] });
    try {
      assert.equal(second.port, port);
      assert.equal((await fetch(first.url + '/healthz')).status, 200);
    } finally { assert.equal((await second.stop()).code, 0); }
  } finally { assert.equal((await first.stop()).code, 0); }
  // Free again, with the /healthz connection in TIME_WAIT: a plain start works.
  const again = await startPlaza({ noEcho: true, args: ['--port', String(port)] });
  try { assert.equal(again.port, port); } finally { assert.equal((await again.stop()).code, 0); }
});

test('deploy/plaza.example.json sets every key', () => {
  const listed = plaza(['keys']).stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
  const example = JSON.parse(readFileSync(path.join(repoRoot, 'deploy/plaza.example.json'), 'utf8'));
  const keys = [];
  const walk = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj)) {
      const name = prefix + k;
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, name + '.');
      else keys.push(name);
    }
  };
  walk(example, '');
  assert.deepEqual([...keys].sort(), [...listed].sort());
});

test('the store commands say what is wrong with their arguments', () => {
  const noTo = plaza(['backup', '--store', '/nonexistent']);
  assert.equal(noTo.code, 2);
  assert.match(noTo.stderr, /--to DIR is required/);
  const sub = plaza(['store', 'vacuum']);
  assert.equal(sub.code, 2);
  assert.match(sub.stderr, /store check\|repair/);
  const missing = plaza(['store', 'check', '--store', '/nonexistent/plaza-store']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no store here/);
  const unknown = plaza(['restore', '--to', '/tmp/x', '--frm', 'y', '--store', '/nonexistent']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--frm: unknown option/);
  const memOnly = plaza(['backup', '--to', '/tmp/x']);           // PLAZA_STORE_PATH is ""
  assert.equal(memOnly.code, 2);
  assert.match(memOnly.stderr, /store.path is empty/);
});
