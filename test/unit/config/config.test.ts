import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { CONFIG_ENV, describeChoice, findConfig, SYSTEM_CONFIG } from '../../../src/config/config-search.js';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { Service } from '../../../src/service/service.js';

/** A wrong config fails at start with the file, the path of the bad key, and why. */

const dir = mkdtempSync(join(tmpdir(), 'tb-config-'));
let n = 0;
function file(text: string): string {
  const f = join(dir, `c${++n}.yaml`);
  writeFileSync(f, text);
  return f;
}

const GOOD = `
listeners:
  - name: smtps
    type: tunnel
    listen: 127.0.0.1:0
    upstream:
      host: 127.0.0.1
      port: 465
`;

function rejects(text: string, ...patterns: RegExp[]): void {
  const f = file(text);
  assert.throws(
    () => loadConfig(f),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(err.message.startsWith(f), `names the file: ${err.message}`);
      for (const p of patterns) assert.match(err.message, p);
      return true;
    },
  );
}

describe('config validation', () => {
  test('the shipped config/default.yaml is valid, with the documented defaults', () => {
    const c = loadConfig('config/default.yaml');
    assert.ok(c.listeners.length >= 1);
    assert.equal(c.cache.ticketsPerDestination, 8);
    assert.equal(c.cache.reuse, 'never');
    for (const l of c.listeners) if (l.type === 'tunnel') assert.notEqual(l.upstream.verify, false, 'verification on by default');
  });

  test('defaults: verify on, loopback-only allow list, cache and audit sections optional', () => {
    const c = loadConfig(file(GOOD));
    const [l] = c.listeners;
    assert.equal(l.type, 'tunnel');
    if (l.type !== 'tunnel') return;
    assert.equal(l.upstream.verify, true);
    assert.deepEqual(l.allow, ['127.0.0.0/8', '::1/128']);
    assert.deepEqual(
      { ...c.cache, store: c.cache.store.type },
      { ticketsPerDestination: 8, maxDestinations: 10_000, maxAgeSeconds: 3600, reuse: 'never', store: 'memory' },
    );
  });

  test('a wrong type names the key path', () => {
    rejects(GOOD.replace('port: 465', 'port: "465x"'), /listeners\[0\]\.upstream\.port: /);
  });

  test('a misspelt key is named with its parent path', () => {
    rejects(
      GOOD.replace('      port: 465', '      port: 465\n      servrname: x'),
      /listeners\[0\]\.upstream: Unrecognized key: "servrname" \(did you mean "servername"\?\)/,
    );
  });

  test('an unknown reuse policy, an out-of-range cap', () => {
    rejects(`${GOOD}cache:\n  reuse: sometimes\n`, /cache\.reuse: /);
    rejects(`${GOOD}cache:\n  ticketsPerDestination: 0\n`, /cache\.ticketsPerDestination: /);
    rejects(`${GOOD}cache:\n  maxAgeSeconds: 700000\n`, /cache\.maxAgeSeconds: /);
  });

  test('a bad listen address, a missing upstream, an unknown listener type', () => {
    rejects(GOOD.replace('listen: 127.0.0.1:0', 'listen: localhost'), /listeners\[0\]\.listen: expected HOST:PORT/);
    rejects('listeners:\n  - name: x\n    type: tunnel\n    listen: "1"\n', /listeners\[0\]\.upstream: /);
    rejects('listeners:\n  - name: x\n    type: teleport\n    listen: "1"\n', /listeners\[0\]\.type/);
  });

  test('a port past 65535 and an allow entry that is no CIDR name their keys', () => {
    rejects(GOOD.replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:70000'), /listeners\[0\]\.listen: port must be at most 65535/);
    rejects(
      GOOD.replace('    upstream:', '    allow: [10.0.0.0/33]\n    upstream:'),
      /listeners\[0\]\.allow\[0\]: "10\.0\.0\.0\/33" is not an address or CIDR range/,
    );
  });

  test('ciphers that match nothing fail the start, naming the listener and the upstream', async () => {
    const c = loadConfig(file(GOOD.replace('port: 465', 'port: 465\n      ciphers: NO-SUCH-CIPHER')));
    await assert.rejects(Service.start(c), /listener smtps: upstream 127\.0\.0\.1:465: .*cipher/i);
  });

  test('groups: a list or a colon string, kept in the colon form; an unknown name fails the load naming the key', () => {
    const list = loadConfig(file(GOOD.replace('port: 465', 'port: 465\n      groups: [X25519MLKEM768, X25519, P-256]')));
    const upstream = (c: ReturnType<typeof loadConfig>): unknown =>
      c.listeners[0].type === 'tunnel' ? c.listeners[0].upstream.groups : null;
    assert.equal(upstream(list), 'X25519MLKEM768:X25519:P-256');
    assert.equal(upstream(loadConfig(file(GOOD.replace('port: 465', 'port: 465\n      groups: X25519:P-256')))), 'X25519:P-256');
    assert.equal(upstream(loadConfig(file(GOOD))), undefined, "absent: Node's default");
    rejects(
      GOOD.replace('port: 465', 'port: 465\n      groups: [X25519, X99999]'),
      /listeners\[0\]\.upstream\.groups: unknown TLS group "X99999"/,
    );
    rejects(GOOD.replace('port: 465', 'port: 465\n      groups: []'), /listeners\[0\]\.upstream\.groups/);
    const smtp = `
listeners:
  - name: mx
    type: smtp
    listen: 127.0.0.1:0
    route: { mode: mx, tls: { groups: 'X25519:NOPE' } }
`;
    rejects(smtp, /listeners\[0\]\.route\.tls\.groups: unknown TLS group "NOPE"/);
  });

  test('an unknown key gets the known key it most likely meant', () => {
    rejects(GOOD.replace('upstream:', 'upstreem:'), /listeners\[0\]: Unrecognized key: "upstreem" \(did you mean "upstream"\?\)/);
    rejects(`${GOOD}cach: { reuse: never }\n`, /Unrecognized key: "cach" \(did you mean "cache"\?\)/);
    rejects(`${GOOD}colour: blue\n`, /Unrecognized key: "colour"$/);
  });

  test('the suggestion is a key of the object refusing it, never the refused key itself', () => {
    // `tls` and `url` are keys of the Redis store: with type memory they are refused, and said to go with redis.
    rejects(
      `${GOOD}cache:\n  store: { type: memory, tls: { ca: x } }\n`,
      /cache\.store: Unrecognized key: "tls" \("tls" goes with type: redis\)$/,
    );
    rejects(`${GOOD}cache:\n  store: { type: memory, url: x }\n`, /cache\.store: Unrecognized key: "url" \("url" goes with type: redis\)$/);
    // A typo is matched against the branch `type` names, not against every key of the config.
    rejects(
      `${GOOD}cache:\n  store: { type: redis, url: x, prefx: y }\n`,
      /cache\.store: Unrecognized key: "prefx" \(did you mean "prefix"\?\)/,
    );
    // `servername` belongs under `upstream`; at the listener's level it is no suggestion for itself.
    rejects(GOOD.replace('    upstream:', '    servername: x\n    upstream:'), /listeners\[0\]: Unrecognized key: "servername"$/);
    rejects(
      GOOD.replace('    upstream:', '    Listen2: x\n    upstream:'),
      /listeners\[0\]: Unrecognized key: "Listen2" \(did you mean "listen"\?\)/,
    );
  });

  test('duplicate listener names', () => {
    const twice = `${GOOD}  - name: smtps\n    type: tunnel\n    listen: 127.0.0.1:0\n    upstream: { host: 127.0.0.1, port: 466 }\n`;
    rejects(twice, /listeners\[1\]\.name: duplicate listener name "smtps"/);
  });

  test('workers: 1 by default, a count or auto; a spool refuses more than one', () => {
    assert.equal(loadConfig(file(GOOD)).workers, 1);
    assert.equal(loadConfig(file(`workers: 4\n${GOOD}`)).workers, 4);
    assert.equal(loadConfig(file(`workers: auto\n${GOOD}`)).workers, 'auto');
    rejects(`workers: 0\n${GOOD}`, /workers: /);
    rejects(`workers: many\n${GOOD}`, /workers: /);
    const spooled = `  - name: mx\n    type: smtp\n    listen: 127.0.0.1:0\n    route: { mode: mx }\n    spool: { dir: ${dir}/spool }\n`;
    assert.equal(loadConfig(file(`${GOOD}${spooled}`)).workers, 1);
    rejects(`workers: 2\n${GOOD}${spooled}`, /listeners\[1\]\.spool: a spool is one process's own; with workers: 2/);
  });

  test('invalid YAML names the line; an unreadable file names the file', () => {
    rejects('listeners:\n  - name: [unclosed\n', /line \d+.*invalid YAML/, /\n 2 \| {3}- name: \[unclosed\n/);
    assert.throws(() => loadConfig(join(dir, 'absent.yaml')), /absent\.yaml: cannot read/);
  });

  test('a CA file that cannot be read fails the start with the file name', async () => {
    const c = loadConfig(file(GOOD.replace('port: 465', `port: 465\n      ca: ${join(dir, 'no-such-ca.pem')}`)));
    await assert.rejects(Service.start(c), /cannot read ca file .*no-such-ca\.pem/);
  });

  test('the CLI exits 2 with the file and key path on a bad config', async () => {
    const f = file(GOOD.replace('port: 465', 'port: 0'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--config', f], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.ok(stderr.includes(f), stderr);
    assert.match(stderr, /listeners\[0\]\.upstream\.port/);
  });
});

describe('cache.store: one Redis (url) or a Sentinel group (sentinels + name), passwords from a file or the environment', () => {
  const store = (yaml: string): string => `${GOOD}cache:\n  store:\n${yaml.replace(/^/gm, '    ')}\n`;

  test('the Sentinel form, with the passwords of the Redis servers and of the sentinels named, not given', () => {
    const c = loadConfig(
      file(
        store(
          'type: redis\nsentinels: ["10.0.0.1:26379", "[fd00::2]:26379", "26379"]\nname: mymaster\n' +
            'auth: { username: ticketbooth, passwordFile: /run/secrets/redis }\nsentinelAuth: { passwordEnv: SENTINEL_PASSWORD }',
        ),
      ),
    );
    assert.deepEqual(c.cache.store, {
      type: 'redis',
      sentinels: ['10.0.0.1:26379', '[fd00::2]:26379', '26379'],
      name: 'mymaster',
      prefix: 'ticketbooth:',
      auth: { username: 'ticketbooth', passwordFile: '/run/secrets/redis' },
      sentinelAuth: { passwordEnv: 'SENTINEL_PASSWORD' },
    });
  });

  test('exactly one of url and sentinels; name goes with sentinels; each mistake names its key', () => {
    rejects(
      store('type: redis\nurl: redis://127.0.0.1:6379\nsentinels: ["127.0.0.1:26379"]\nname: m'),
      /cache\.store\.sentinels: give either url .* not both/,
    );
    rejects(
      store('type: redis\nprefix: "x:"'),
      /cache\.store: give url \(one Redis\), sentinels and name \(Redis Sentinel\), or cluster \(Redis Cluster\)/,
    );
    rejects(
      store('type: redis\nsentinels: ["127.0.0.1:26379"]'),
      /cache\.store\.name: the Sentinel master name is required with sentinels/,
    );
    rejects(store('type: redis\nurl: redis://127.0.0.1:6379\nname: m'), /cache\.store\.name: a master name goes with sentinels/);
    rejects(store('type: redis\nurl: redis://h:6379\nsentinelAuth: { passwordEnv: X }'), /cache\.store\.sentinelAuth: only with sentinels/);
    rejects(
      store('type: redis\nsentinels: ["127.0.0.1:26379", "sentinel-b"]\nname: m'),
      /cache\.store\.sentinels\[1\]: expected HOST:PORT/,
    );
    rejects(store('type: redis\nsentinels: []\nname: m'), /cache\.store\.sentinels: /);
  });

  test('a password is never inline: from a file or a variable, exactly one, and not also in the url', () => {
    rejects(store('type: redis\nurl: redis://h:6379\nauth: { password: s3cret }'), /cache\.store\.auth: Unrecognized key: "password"/);
    rejects(
      store('type: redis\nurl: redis://h:6379\nauth: { username: u }'),
      /cache\.store\.auth: give exactly one of passwordFile and passwordEnv/,
    );
    rejects(
      store('type: redis\nsentinels: ["h:26379"]\nname: m\nsentinelAuth: { passwordFile: /a, passwordEnv: B }'),
      /cache\.store\.sentinelAuth: give exactly one of passwordFile and passwordEnv/,
    );
    rejects(
      store('type: redis\nurl: "redis://u:pw@h:6379"\nauth: { passwordEnv: P }'),
      /cache\.store\.auth: the url holds a password already/,
    );
  });

  test('a password file that cannot be read, an unset variable: the start fails naming the key', async () => {
    const missingFile = loadConfig(
      file(store(`type: redis\nurl: redis://127.0.0.1:1\nauth: { passwordFile: ${join(dir, 'no-such-pw')} }`)),
    );
    await assert.rejects(
      Service.start(missingFile),
      /cache\.store\.auth: cannot read password file .*no-such-pw: no such file or directory \(ENOENT\)/,
    );
    const unset = loadConfig(
      file(store('type: redis\nsentinels: ["127.0.0.1:1"]\nname: m\nsentinelAuth: { passwordEnv: TB_TEST_UNSET_VARIABLE }')),
    );
    await assert.rejects(Service.start(unset), /cache\.store\.sentinelAuth: environment variable TB_TEST_UNSET_VARIABLE is not set/);
  });

  test('seal: keys from files or variables, never inline; current among them; tls files with rediss:// or sentinels', async () => {
    const c = loadConfig(
      file(
        store(
          'type: redis\nurl: rediss://h:6380\nseal: { keys: [{ id: k2, env: TB_K2 }, { id: k1, file: /run/secrets/k1 }], current: k2 }\n' +
            'tls: { ca: /etc/redis/ca.pem, cert: /etc/redis/client.pem, key: /etc/redis/client-key.pem }',
        ),
      ),
    );
    assert.deepEqual(c.cache.store.type === 'redis' && [c.cache.store.seal, c.cache.store.tls], [
      {
        keys: [
          { id: 'k2', env: 'TB_K2' },
          { id: 'k1', file: '/run/secrets/k1' },
        ],
        current: 'k2',
      },
      { ca: '/etc/redis/ca.pem', cert: '/etc/redis/client.pem', key: '/etc/redis/client-key.pem' },
    ]);
    const url = 'type: redis\nurl: rediss://h:6380\n';
    rejects(
      store(`${url}seal: { keys: [{ id: k1, key: c2VjcmV0 }], current: k1 }`),
      /cache\.store\.seal\.keys\[0\]: Unrecognized key: "key"/,
    );
    rejects(
      store(`${url}seal: { keys: [{ id: k1, file: /a, env: B }], current: k1 }`),
      /seal\.keys\[0\]: give exactly one of file and env/,
    );
    rejects(store(`${url}seal: { keys: [{ id: k1, file: /a }], current: k2 }`), /cache\.store\.seal\.current: k2 is not among the keys/);
    rejects(
      store(`${url}seal: { keys: [{ id: k1, file: /a }, { id: k1, env: B }], current: k1 }`),
      /seal\.keys\[1\]\.id: key id k1 is listed twice/,
    );
    rejects(store(`${url}seal: { keys: [], current: k1 }`), /cache\.store\.seal\.keys: /);
    rejects(store('type: redis\nurl: redis://h:6379\ntls: { ca: /a }'), /cache\.store\.tls: tls goes with a rediss:\/\/ url/);
    rejects(store(`${url}tls: { cert: /a }`), /cache\.store\.tls: give cert and key together, or neither/);
    // A key file that cannot be read fails the start naming the key, before Redis is asked.
    const missingKey = loadConfig(
      file(store(`type: redis\nurl: redis://127.0.0.1:1\nseal: { keys: [{ id: k1, file: ${join(dir, 'no-key')} }], current: k1 }`)),
    );
    await assert.rejects(
      Service.start(missingKey),
      /cache\.store\.seal\.keys\[0\] \(k1\): cannot read key file .*no-key: no such file or directory/,
    );
  });

  test('cluster: some nodes, alone, with a prefix that keeps the hash tag', () => {
    const c = loadConfig(file(store('type: redis\ncluster: ["10.0.0.21:6379", "10.0.0.22:6379"]')));
    assert.deepEqual(c.cache.store, { type: 'redis', cluster: ['10.0.0.21:6379', '10.0.0.22:6379'], prefix: 'ticketbooth:' });
    rejects(
      store('type: redis\nurl: redis://h:6379\ncluster: ["h:6379"]'),
      /cache\.store\.cluster: give one of url, sentinels and cluster/,
    );
    rejects(store('type: redis\ncluster: ["h:6379"]\nprefix: "{tb}:"'), /cache\.store\.prefix: no \{ or \} in a cluster/);
    rejects(store('type: redis\ncluster: ["h:6379"]\nname: m'), /cache\.store\.name: a master name goes with sentinels/);
  });

  test('replicaAck: {} is one replica within 50 ms; a longer wait than 500 ms, no replica, or a cluster is refused', () => {
    const c = loadConfig(file(store('type: redis\nurl: redis://h:6379\nreplicaAck: {}')));
    assert.deepEqual(c.cache.store.type === 'redis' && c.cache.store.replicaAck, { replicas: 1, timeoutMs: 50 });
    const two = loadConfig(file(store('type: redis\nurl: redis://h:6379\nreplicaAck: { replicas: 2, timeoutMs: 100 }')));
    assert.deepEqual(two.cache.store.type === 'redis' && two.cache.store.replicaAck, { replicas: 2, timeoutMs: 100 });
    rejects(store('type: redis\nurl: redis://h:6379\nreplicaAck: { timeoutMs: 1000 }'), /cache\.store\.replicaAck\.timeoutMs: /);
    rejects(store('type: redis\nurl: redis://h:6379\nreplicaAck: { replicas: 0 }'), /cache\.store\.replicaAck\.replicas: /);
    rejects(store('type: redis\nurl: redis://h:6379\nreplicaAck: 1'), /cache\.store\.replicaAck: /);
    rejects(store('type: redis\ncluster: ["h:6379"]\nreplicaAck: {}'), /cache\.store\.replicaAck: not with cluster/);
  });

  test('no sentinel answers: the start fails at once (ioredis alone would retry for ever), naming the group', async () => {
    const c = loadConfig(file(store('type: redis\nsentinels: ["127.0.0.1:1", "127.0.0.1:2"]\nname: mymaster')));
    await assert.rejects(
      Service.start(c),
      /cache\.store: cannot reach Redis primary of mymaster \(Sentinel 127\.0\.0\.1:1, 127\.0\.0\.1:2\): All sentinels are unreachable/,
    );
  });
});

describe('the config file when --config is not given', () => {
  const shipped = join(process.cwd(), 'config', 'default.yaml');
  const only =
    (...files: string[]) =>
    (f: string) =>
      files.includes(f);

  test('--config, then $TICKETBOOTH_CONFIG, then /etc/ticketbooth/ticketbooth.yaml, then the package default', () => {
    const all = only('/srv/a.yaml', '/env.yaml', SYSTEM_CONFIG, shipped);
    assert.deepEqual(findConfig('/srv/a.yaml', { [CONFIG_ENV]: '/env.yaml' }, all), { file: '/srv/a.yaml', from: '--config' });
    assert.deepEqual(findConfig(undefined, { [CONFIG_ENV]: '/env.yaml' }, all), { file: '/env.yaml', from: 'env' });
    assert.deepEqual(findConfig(undefined, {}, all), { file: SYSTEM_CONFIG, from: 'system' });
    assert.deepEqual(findConfig(undefined, { [CONFIG_ENV]: '' }, only(shipped)), { file: shipped, from: 'package' });
  });

  test('a file the variable names must exist: no quiet fall-through to another file', () => {
    assert.throws(
      () => findConfig(undefined, { [CONFIG_ENV]: '/nonexistent.yaml' }, only(SYSTEM_CONFIG, shipped)),
      (e: Error) => e instanceof ConfigError && /\$TICKETBOOTH_CONFIG names \/nonexistent\.yaml, which does not exist/.test(e.message),
    );
    assert.throws(() => findConfig(undefined, {}, only()), /no config file: no --config, \$TICKETBOOTH_CONFIG is not set, and neither/);
  });

  test('the line said at start names the file and why it was chosen', () => {
    assert.equal(describeChoice({ file: '/env.yaml', from: 'env' }), 'config /env.yaml (from $TICKETBOOTH_CONFIG)');
    assert.match(
      describeChoice({ file: shipped, from: 'package' }),
      /^config .*\/config\/default\.yaml \(the package's default: no --config/,
    );
  });
});
